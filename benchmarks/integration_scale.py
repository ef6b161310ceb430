"""Time ``bench integration`` (``benchmark_integration``) beside scib-metrics' own ``Benchmarker`` on the same cells.

The cells are synthetic paired RNA + ADT embeddings (``--cells`` per modality, ``--types`` cell types, ``--dim``
wide like MiniLM's vectors, a modality offset), as ``embed_multimodal`` lays them out (``obs["modality"]``,
``obs["cell_id"]``). Both sides score the same two embeddings (the joint one and its PCA, computed once beforehand)
with the same metrics (the scIB columns of the paper's Table 2, silhouette batch as BRAS with euclidean distances
and the nearest cluster: :func:`~bioprofile.evaluate.integration.scib_metrics_config`) and the same exact kNN graph
(bioprofile's :func:`~bioprofile.evaluate.neighbors.exact_neighbors`, handed to ``Benchmarker.prepare(
neighbor_computer=...)``), in one process, one after the other, ``--repeats`` times each, the order alternating,
bioprofile first (so that the JAX compilation it shares with the Benchmarker counts against it).

Printed and written: each side's seconds, the ratio of the best, every metric of both sides and the largest
difference (the check: within ``1e-4``), bioprofile's seconds per step (from its progress steps), and, unless
``--skip-pynndescent``, bioprofile with ``neighbors="pynndescent"`` and each metric's change against exact.
``--max-cells N`` (repeatable) adds bioprofile runs with the silhouettes on N cells and each metric's change
against all cells. ``--skip-benchmarker`` times bioprofile alone (at 50k cells the Benchmarker takes hours on two cores).

Usage::

    nice python benchmarks/integration_scale.py --cells 10000 -o benchmarks/results/integration_scale_10000.json
    nice python benchmarks/integration_scale.py --cells 50000 --skip-benchmarker -o results/integration_scale_50000.json
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from bioprofile._version import __version__
from bioprofile.evaluate.integration import (
    INTEGRATION_COLUMNS,
    IntegrationOptions,
    benchmark_integration,
    scib_metrics_config,
)
from bioprofile.evaluate.neighbors import exact_neighbors
from bioprofile.evaluate.report import markdown_table, write_json

EMBEDDINGS = ["X_bioprofile", "X_pca"]
#: Largest difference allowed between a bioprofile metric and the Benchmarker's.
TOLERANCE = 1e-4


def synthetic_pairs(n_cells: int, n_types: int, dim: int, seed: int = 0) -> ad.AnnData:
    """Paired RNA and ADT embeddings of ``n_cells`` cells (``2 * n_cells`` rows), laid out as embed_multimodal does."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_types, dim))
    types = rng.integers(0, n_types, size=n_cells)
    offset = rng.normal(size=dim) * 0.5
    rna = centres[types] + rng.normal(scale=0.8, size=(n_cells, dim))
    adt = centres[types] + offset + rng.normal(scale=0.8, size=(n_cells, dim))
    X = np.vstack([rna, adt]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ids = [f"cell{i}" for i in range(n_cells)]
    obs = pd.DataFrame(
        {
            "modality": ["RNA"] * n_cells + ["ADT"] * n_cells,
            "cell_type": [f"type{t}" for t in types] * 2,
            "cell_id": ids * 2,
        },
        index=[f"RNA:{i}" for i in ids] + [f"ADT:{i}" for i in ids],
    )
    adata = ad.AnnData(obs=obs, obsm={"X_bioprofile": X})
    from sklearn.decomposition import PCA

    n_components = min(50, *X.shape)  # 50 as scanpy, fewer when the embedding is narrower (a smoke run)
    adata.obsm["X_pca"] = PCA(n_components=n_components, random_state=0).fit_transform(X).astype(np.float32)
    return adata


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds and this process's CPU seconds (all its threads) of one run.

    On a shared machine the wall clock of a run depends on what else runs; the CPU seconds are the work it did,
    so their ratio is the comparison a loaded machine cannot blur (both sides are CPU-bound).
    """

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Timing:
        """The clocks now."""
        return cls(time.perf_counter(), time.process_time())

    def __sub__(self, other: Timing) -> Timing:
        return Timing(self.wall - other.wall, self.cpu - other.cpu)


class StepClock:
    """A stand-in for a rich progress bar that records the seconds between its description updates.

    ``benchmark_integration`` names each step it starts (``"X_pca: cLISI"``) on its progress bar; this records how
    long each one ran, so a timing says where the seconds went.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._since = time.perf_counter()
        self.console = self

    def print(self, line: str, **_: object) -> None:  # noqa: D102 - the progress console's print
        print(line, flush=True)

    def add_task(self, description: str, total: int | None = None) -> int:  # noqa: D102
        return 0

    def advance(self, task: int) -> None:  # noqa: D102
        return None

    def update(self, task: int, description: str | None = None, **_: object) -> None:  # noqa: D102
        if description is not None:
            self.stop()
            self._current = description

    def stop(self) -> None:
        """Close the step that is running."""
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = self.seconds.get(self._current, 0.0) + now - self._since
        self._current, self._since = None, now


def run_bioprofile(
    adata: ad.AnnData, *, neighbors: str = "exact", max_cells: int | None = None
) -> tuple[Timing, pd.DataFrame, dict[str, float]]:
    """Seconds (wall and CPU) of ``benchmark_integration`` on both embeddings, its table, its seconds per step."""
    import bioprofile.evaluate.integration as integration

    clock = StepClock()

    @contextlib.contextmanager
    def bars(enabled: bool = True):
        yield clock

    original = integration.progress_bars
    integration.progress_bars = bars
    try:
        start = Timing.now()
        result = benchmark_integration(
            adata,
            "modality",
            "cell_type",
            obsm_keys=EMBEDDINGS,
            baselines=[],
            options=IntegrationOptions(neighbors=neighbors, max_cells=max_cells, show_progress=True),
        )
        seconds = Timing.now() - start
    finally:
        integration.progress_bars = original
    clock.stop()
    return seconds, result.table, clock.seconds


def prepared_benchmarker(adata: ad.AnnData):
    """scib-metrics' ``Benchmarker`` on the joint embedding and its PCA, with bioprofile's metrics and exact kNN."""
    from scib_metrics.benchmark import Benchmarker

    bio, batch = scib_metrics_config()
    bench = Benchmarker(
        adata,
        batch_key="modality",
        label_key="cell_type",
        embedding_obsm_keys=EMBEDDINGS,
        bio_conservation_metrics=bio,
        batch_correction_metrics=batch,
        pre_integrated_embedding_obsm_key="X_bioprofile",
        n_jobs=1,
        progress_bar=False,
    )
    bench.prepare(neighbor_computer=exact_neighbors)
    return bench


def benchmarker_table(bench) -> pd.DataFrame:
    """The Benchmarker's results as bioprofile names its columns (BRAS is the silhouette batch run)."""
    raw = bench.get_results(min_max_scale=False).drop("Metric Type", errors="ignore")
    table = raw.rename(columns={"BRAS": "Silhouette batch"}).astype(float)
    return table[[c for c in INTEGRATION_COLUMNS if c in table.columns]]


def run_scib(adata: ad.AnnData) -> tuple[Timing, pd.DataFrame]:
    """Seconds (wall and CPU) of scib-metrics' ``Benchmarker`` on the same embeddings, metrics and kNN graph; table."""
    start = Timing.now()
    bench = prepared_benchmarker(adata)
    bench.benchmark()
    table = benchmarker_table(bench)
    return Timing.now() - start, table


def differences(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
    """``ours - theirs`` on the scIB columns both have, one row per embedding."""
    columns = [c for c in INTEGRATION_COLUMNS if c in theirs.columns]
    return ours.loc[theirs.index, columns] - theirs[columns]


def _rows(tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Markdown rows ``metric | side x embedding`` for the tables given."""
    rows = []
    for column in INTEGRATION_COLUMNS:
        row = {"metric": column}
        for side, table in tables.items():
            for embedding in table.index:
                row[f"{side}: {embedding}"] = f"{table.loc[embedding, column]:.6f}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the timings and the comparisons, print them and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=10_000, help="cells per modality (rows: twice this)")
    parser.add_argument("--types", type=int, default=10)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-pynndescent", action="store_true")
    parser.add_argument("--skip-benchmarker", action="store_true", help="time bioprofile alone")
    parser.add_argument(
        "--max-cells", type=int, action="append", default=[], help="also run with this max_cells (repeatable)"
    )
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    adata = synthetic_pairs(args.cells, args.types, args.dim)
    with open("/proc/loadavg", encoding="utf-8") as handle:
        load_before = handle.read().split()[:3]
    timings: dict[str, list[float]] = {"bioprofile": [], "scib_benchmarker": []}
    cpu: dict[str, list[float]] = {"bioprofile": [], "scib_benchmarker": []}
    tables: dict[str, pd.DataFrame] = {}
    steps: dict[str, float] = {}
    for repeat in range(args.repeats):
        order = ("bioprofile", "scib_benchmarker") if repeat % 2 == 0 else ("scib_benchmarker", "bioprofile")
        for name in order:
            if name == "bioprofile":
                seconds, tables[name], steps = run_bioprofile(adata)
            elif args.skip_benchmarker:
                continue
            else:
                seconds, tables[name] = run_scib(adata)
            timings[name].append(seconds.wall)
            cpu[name].append(seconds.cpu)
            print(f"repeat {repeat}: {name} {seconds.wall:.1f} s ({seconds.cpu:.1f} CPU s)", flush=True)
    result: dict = {**_sizes(args), "load_before": load_before, "seconds": timings, "cpu_seconds": cpu}
    result["bioprofile_seconds_per_step"] = steps
    best = {name: min(values) for name, values in timings.items() if values}
    result["best_seconds"] = best
    print("\nbioprofile seconds per step (last run):")
    for step, seconds in steps.items():
        print(f"  {step}: {seconds:.1f}")
    if "scib_benchmarker" in tables:
        diff = differences(tables["bioprofile"], tables["scib_benchmarker"])
        largest = float(diff.abs().max().max())
        ratio = best["bioprofile"] / best["scib_benchmarker"]
        cpu_ratio = min(cpu["bioprofile"]) / min(cpu["scib_benchmarker"])
        result.update(
            ratio_bioprofile_to_scib=ratio,
            cpu_ratio_bioprofile_to_scib=cpu_ratio,
            largest_metric_difference=largest,
            within_tolerance=largest <= TOLERANCE,
            metric_differences=diff.to_dict(orient="index"),
        )
        print(
            "\n"
            + markdown_table(
                _rows({"bioprofile": tables["bioprofile"], "Benchmarker": tables["scib_benchmarker"]})
            )
        )
        print(
            f"\n{2 * args.cells} rows x {args.dim} dims: bioprofile {best['bioprofile']:.1f} s, scib Benchmarker "
            f"{best['scib_benchmarker']:.1f} s: ratio {ratio:.3f} (CPU seconds: {cpu_ratio:.3f}); "
            f"largest metric difference {largest:.2e} "
            f"({'within' if largest <= TOLERANCE else 'OVER'} {TOLERANCE:g})"
        )
    if not args.skip_pynndescent:
        seconds, approximate, approximate_steps = run_bioprofile(adata, neighbors="pynndescent")
        change = approximate - tables["bioprofile"]
        result.update(
            pynndescent_seconds=seconds.wall,
            pynndescent_cpu_seconds=seconds.cpu,
            pynndescent_seconds_per_step=approximate_steps,
            pynndescent_change_against_exact=change.to_dict(orient="index"),
        )
        print(
            f"\nneighbors='pynndescent': {seconds.wall:.1f} s ({seconds.cpu:.1f} CPU s); change against exact:"
        )
        print(
            markdown_table(
                [
                    {"metric": c, **{e: f"{change.loc[e, c]:+.6f}" for e in change.index}}
                    for c in change.columns
                ]
            )
        )
    for max_cells in args.max_cells:
        seconds, subsampled, _ = run_bioprofile(adata, max_cells=max_cells)
        change = subsampled - tables["bioprofile"]
        result.setdefault("max_cells", {})[max_cells] = {
            "seconds": seconds.wall,
            "cpu_seconds": seconds.cpu,
            "change_against_all_cells": change.to_dict(orient="index"),
        }
        print(
            f"\nmax_cells={max_cells}: {seconds.wall:.1f} s ({seconds.cpu:.1f} CPU s); change against all cells:"
        )
        print(
            markdown_table(
                [
                    {"metric": c, **{e: f"{change.loc[e, c]:+.6f}" for e in change.index}}
                    for c in change.columns
                ]
            )
        )
    result["tables"] = {side: table.to_dict(orient="index") for side, table in tables.items()}
    with open("/proc/loadavg", encoding="utf-8") as handle:
        result["load_after"] = handle.read().split()[:3]
    result["bioprofile_version"] = __version__
    print(f"load average before {' '.join(load_before)}, after {' '.join(result['load_after'])}")
    _write(result, args.output)


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    return {
        "cells_per_modality": args.cells,
        "rows": 2 * args.cells,
        "dim": args.dim,
        "cell_types": args.types,
        "embeddings_scored": len(EMBEDDINGS),
    }


def _write(result: dict, output: Path | None) -> None:
    if output is not None:
        write_json(result, output)
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
