"""Time ``bench integration`` (``benchmark_integration``) beside scib-metrics' own ``Benchmarker`` on the same cells.

The cells are synthetic paired RNA + ADT embeddings (``--cells`` per modality, ``--types`` cell types, ``--dim``
wide like MiniLM's vectors, a modality offset), as ``embed_multimodal`` lays them out (``obs["modality"]``,
``obs["cell_id"]``). Both sides score the same embeddings (the joint one and its unintegrated PCA, computed once
beforehand) with the same metrics (the scIB columns of the paper's Table 2, silhouette batch as BRAS with euclidean
distances and the nearest cluster) and the same neighbour search
(:func:`bioprofile.evaluate.integration.exact_neighbors`), in one process, one after the other, ``--repeats`` times
each (the first call also pays JAX compilation, so the order alternates, bioprofile first: the compilation counts
against it). What bioprofile adds is its own work around the Benchmarker: building the AnnData, the modality
matching columns (matching accuracy, FOSCTTM) and the table. Beside the two totals, each bioprofile run is split
into the seconds spent inside the Benchmarker's ``prepare``/``benchmark``/``get_results`` and the rest (its own
work), measured in the same run, which is what a noisy machine cannot blur. At 50k cells the Benchmarker takes
many hours per side on two cores (one silhouette pass over the 100,000 rows: about 110 min), so
``--own-work-only`` times bioprofile's own work at full size alone, the Benchmarker made instant. A third timing runs the Benchmarker with its default neighbour search
(pynndescent), for reference.

Usage::

    nice python benchmarks/integration_scale.py --cells 50000 -o benchmarks/results/integration_scale.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from bioprofile._version import __version__
from bioprofile.evaluate.integration import (
    INTEGRATION_COLUMNS,
    benchmark_integration,
    exact_neighbors,
    scib_metrics_config,
)
from bioprofile.evaluate.report import write_json


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


def _instant_results(self, min_max_scale: bool = False, clean_names: bool = True) -> pd.DataFrame:
    """What ``Benchmarker.get_results`` returns (one row per embedding, its column names, in our order), but empty."""
    columns = ["BRAS" if c == "Silhouette batch" else c for c in INTEGRATION_COLUMNS]
    return pd.DataFrame(np.nan, index=list(self._embedding_obsm_keys), columns=columns)


INSTANT = {
    "prepare": lambda self, *a, **k: None,
    "benchmark": lambda self: None,
    "get_results": _instant_results,
}


@contextlib.contextmanager
def benchmarker_clock(*, instant: bool = False):
    """Time spent inside scib-metrics' ``Benchmarker`` methods while the block runs: yields a one-item list.

    With ``instant`` the three methods do nothing (``get_results`` answers an empty table of the right shape), so
    what runs is bioprofile's own work alone, at full size, in minutes where the Benchmarker takes hours.
    """
    from scib_metrics.benchmark import Benchmarker

    spent = [0.0]
    originals = {name: getattr(Benchmarker, name) for name in ("prepare", "benchmark", "get_results")}
    timed_methods = INSTANT if instant else originals

    def timed(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return wrapper

    for name, method in timed_methods.items():
        setattr(Benchmarker, name, timed(method))
    try:
        yield spent
    finally:
        for name, method in originals.items():
            setattr(Benchmarker, name, method)


def run_bioprofile(adata: ad.AnnData, *, instant_benchmarker: bool = False) -> tuple[float, float]:
    """Seconds of ``benchmark_integration`` on both embeddings, and the part of them spent inside the Benchmarker.

    The rest is bioprofile's own work: the slim AnnData, the modality matching columns, the table. With
    ``instant_benchmarker`` the Benchmarker does nothing (:func:`benchmarker_clock`), so only that rest is timed.
    """
    with benchmarker_clock(instant=instant_benchmarker) as inside:
        start = time.perf_counter()
        benchmark_integration(
            adata, "modality", "cell_type", obsm_keys=["X_bioprofile", "X_pca"], baselines=[]
        )
        total = time.perf_counter() - start
    return total, inside[0]


def prepared_benchmarker(adata: ad.AnnData, *, exact: bool = True):
    """scib-metrics' ``Benchmarker`` on the joint embedding and its PCA, with bioprofile's metrics, prepared."""
    from scib_metrics.benchmark import Benchmarker

    bio, batch = scib_metrics_config()
    bench = Benchmarker(
        adata,
        batch_key="modality",
        label_key="cell_type",
        embedding_obsm_keys=["X_bioprofile", "X_pca"],
        bio_conservation_metrics=bio,
        batch_correction_metrics=batch,
        pre_integrated_embedding_obsm_key="X_bioprofile",
        n_jobs=1,
        progress_bar=False,
    )
    if exact:
        bench.prepare(neighbor_computer=exact_neighbors)
    else:
        bench.prepare()
    return bench


def run_scib(adata: ad.AnnData, *, exact: bool) -> float:
    """Seconds of scib-metrics' ``Benchmarker`` on the same embeddings and metrics, used directly."""
    start = time.perf_counter()
    bench = prepared_benchmarker(adata, exact=exact)
    bench.benchmark()
    bench.get_results(min_max_scale=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run the timings and write them as JSON (and print a Markdown line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=50_000, help="cells per modality")
    parser.add_argument("--types", type=int, default=10)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-pynndescent", action="store_true")
    parser.add_argument(
        "--own-work-only",
        action="store_true",
        help="time only bioprofile's own work (the Benchmarker made instant), for sizes where it takes hours",
    )
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    adata = synthetic_pairs(args.cells, args.types, args.dim)
    if args.own_work_only:
        own = [run_bioprofile(adata, instant_benchmarker=True)[0] for _ in range(args.repeats)]
        for repeat, seconds in enumerate(own):
            print(
                f"repeat {repeat}: bioprofile's own work {seconds:.1f} s (the Benchmarker made instant)",
                flush=True,
            )
        result = {
            **_sizes(args),
            "benchmarker": "instant (its prepare, benchmark and get_results do nothing)",
            "bioprofile_own_seconds": own,
            "bioprofile_version": __version__,
        }
        _write(result, args.output)
        return
    timings: dict[str, list[float]] = {"bioprofile": [], "scib_benchmarker": []}
    inside: list[float] = []
    for repeat in range(args.repeats):
        order = ("bioprofile", "scib_benchmarker") if repeat % 2 == 0 else ("scib_benchmarker", "bioprofile")
        for name in order:
            if name == "bioprofile":
                seconds, in_benchmarker = run_bioprofile(adata)
                inside.append(in_benchmarker)
                detail = f" ({in_benchmarker:.1f} s inside the Benchmarker, {seconds - in_benchmarker:.1f} s its own)"
            else:
                seconds, detail = run_scib(adata, exact=True), ""
            timings[name].append(seconds)
            print(f"repeat {repeat}: {name} {seconds:.1f} s{detail}", flush=True)
    if not args.skip_pynndescent:
        timings["scib_benchmarker_pynndescent"] = [run_scib(adata, exact=False)]
    best = {name: min(values) for name, values in timings.items()}
    own = [total - spent for total, spent in zip(timings["bioprofile"], inside, strict=True)]
    ratio = best["bioprofile"] / best["scib_benchmarker"]
    result = {
        **_sizes(args),
        "seconds": timings,
        "best_seconds": best,
        "ratio_bioprofile_to_scib": ratio,
        "bioprofile_adds_percent": 100 * (ratio - 1),
        "bioprofile_seconds_inside_benchmarker": inside,
        "bioprofile_own_seconds": own,
        "bioprofile_own_percent_of_its_benchmarker": [
            100 * o / spent for o, spent in zip(own, inside, strict=True)
        ],
        "bioprofile_version": __version__,
    }
    print(
        f"{2 * args.cells} rows: bioprofile {best['bioprofile']:.1f} s, scib Benchmarker "
        f"{best['scib_benchmarker']:.1f} s: ratio {ratio:.3f} ({100 * (ratio - 1):+.1f}%)"
    )
    _write(result, args.output)


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    return {
        "cells_per_modality": args.cells,
        "rows": 2 * args.cells,
        "dim": args.dim,
        "cell_types": args.types,
        "embeddings_scored": 2,
    }


def _write(result: dict, output: Path | None) -> None:
    if output is not None:
        write_json(result, output)
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
