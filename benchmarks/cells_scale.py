"""Scale benchmark of GenePT-w: synthetic cells × 20,000 genes (about 2,000 non-zeros per cell) × 384 dims.

Builds a CSR ``.h5ad`` on disk in row chunks (never whole in memory), then runs, each in a fresh process so peak
memory (ru_maxrss) is its own:

- ``stream``: ``anndata.read_h5ad(path, backed="r")`` + :func:`bioprofile.cells.embed_cells` (row chunks read
  from disk, checked, then multiplied on ``--workers`` threads; gene matching through HGNC included);
- ``stream1``: the same on one thread (``EmbedLimits(workers=1)``), to show what the threads buy;
- ``memory``: the whole CSR matrix loaded with scipy, then a plain ``X @ E`` (only the matmul is timed; loading
  is reported separately);
- ``dask``: ``embed_cells`` with ``EmbedLimits(dask_address=...)`` on a local cluster of ``--workers`` processes
  (one thread each) started first (its start-up is reported apart): ``X`` read lazily by the workers with
  ``anndata.experimental.read_elem_lazy``, the blocks multiplied through ``map_blocks``. Its peak memory is the
  client's; the largest worker's is reported beside it.

Every mode's output is hashed (sha256 of the float32 bytes): ``same_result`` says every mode wrote the same bits.

Usage::

    python benchmarks/cells_scale.py --cells 100000 --out benchmarks/results/cells_scale_100k.json
    python benchmarks/cells_scale.py --cells 1000000 --modes stream,dask   # 1M cells: ~16 GB on disk; memory
                                                                            # mode needs ~17 GB of RAM
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def gene_symbols(n_genes: int) -> list[str]:
    """Real approved HGNC symbols, so gene matching is exercised as it would be on real data."""
    from bioprofile.genes import hgnc_symbols

    symbols = sorted(hgnc_symbols())
    if n_genes > len(symbols):
        raise SystemExit(f"only {len(symbols)} HGNC symbols; ask for fewer genes")
    return symbols[:n_genes]


def build_h5ad(
    path: Path, n_cells: int, n_genes: int, nnz_per_cell: int, seed: int, chunk: int = 5000
) -> None:
    """Write a CSR h5ad row chunk by row chunk (anndata's on-disk layout, written with h5py)."""
    import anndata as ad
    import h5py
    import pandas as pd
    from anndata.io import write_elem

    rng = np.random.default_rng(seed)
    stride = n_genes // nnz_per_cell  # column j*stride + r, r < stride: distinct and sorted within a row
    nnz = n_cells * nnz_per_cell
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        X = f.create_group("X")
        X.attrs["encoding-type"] = "csr_matrix"
        X.attrs["encoding-version"] = "0.1.0"
        X.attrs["shape"] = (n_cells, n_genes)
        data = X.create_dataset("data", shape=(nnz,), dtype="float32")
        indices = X.create_dataset("indices", shape=(nnz,), dtype="int32")
        X.create_dataset("indptr", data=np.arange(n_cells + 1, dtype=np.int64) * nnz_per_cell)
        base = np.arange(nnz_per_cell, dtype=np.int32) * stride
        for start in range(0, n_cells, chunk):
            rows = min(chunk, n_cells - start)
            cols = base[None, :] + rng.integers(0, stride, size=(rows, nnz_per_cell), dtype=np.int32)
            lo, hi = start * nnz_per_cell, (start + rows) * nnz_per_cell
            indices[lo:hi] = cols.ravel()
            data[lo:hi] = rng.integers(1, 20, size=rows * nnz_per_cell).astype(np.float32)
        write_elem(f, "obs", pd.DataFrame(index=pd.Index([f"cell{i}" for i in range(n_cells)])))
        write_elem(f, "var", pd.DataFrame(index=pd.Index(gene_symbols(n_genes))))
        for group in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            write_elem(f, group, {})
    os.replace(tmp, path)
    del ad


def gene_table(symbols: list[str], dim: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    vectors = rng.standard_normal((len(symbols), dim), dtype=np.float32)
    return dict(zip(symbols, vectors, strict=False))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def _embed(path: Path, table: dict, limits) -> np.ndarray:
    import anndata as ad

    from bioprofile.cells import embed_cells

    adata = ad.read_h5ad(path, backed="r")
    try:
        embed_cells(adata, table, limits=limits)
        return np.asarray(adata.obsm["X_bioprofile"])
    finally:
        adata.file.close()


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def worker(mode: str, path: Path, dim: int, chunk: int, seed: int, workers: int) -> dict:
    import h5py
    import scipy.sparse as sp

    from bioprofile.cells import EmbedLimits

    with h5py.File(path, "r") as f:
        symbols = [s.decode() if isinstance(s, bytes) else str(s) for s in f["var"]["_index"][:]]
    table = gene_table(symbols, dim, seed)
    rss_before = peak_rss_gb()
    cpu_before = cpu_seconds()
    result: dict = {}
    if mode in ("stream", "stream1"):
        limits = EmbedLimits(chunk_size=chunk, workers=workers if mode == "stream" else 1)
        t0 = time.perf_counter()
        out = _embed(path, table, limits)
        result["seconds"] = time.perf_counter() - t0
    elif mode == "dask":
        from bioprofile.cells._dask import dask_session

        t0 = time.perf_counter()
        with dask_session("local", workers=workers) as client:
            result["cluster_start_seconds"] = time.perf_counter() - t0
            limits = EmbedLimits(chunk_size=chunk, dask_address=client.scheduler.address)
            t0 = time.perf_counter()
            out = _embed(path, table, limits)
            result["seconds"] = time.perf_counter() - t0
        # the workers are this process's children, reaped when the cluster closed
        result["worker_peak_rss_gb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    elif mode == "memory":
        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            g = f["X"]
            X = sp.csr_matrix((g["data"][:], g["indices"][:], g["indptr"][:]), shape=tuple(g.attrs["shape"]))
        load = time.perf_counter() - t0
        E = np.stack([table[s] for s in symbols])
        t0 = time.perf_counter()
        out = np.asarray(X @ E)
        out /= len(symbols)  # in place: no second 1M x 384 copy on top of X
        result = {"seconds": time.perf_counter() - t0, "load_seconds": load}
    else:
        raise SystemExit(f"unknown mode {mode!r}: choose stream, stream1, memory or dask")
    result.update(
        {
            "mode": mode,
            "workers": 1 if mode in ("stream1", "memory") else workers,
            "peak_rss_gb": peak_rss_gb(),
            "rss_before_gb": rss_before,
            # CPU time of this process (and, for dask, of its reaped workers), loading and matching included: on a
            # machine shared with other sessions (autogroup scheduling) wall time shows the share granted, this
            # shows the work done
            "cpu_seconds": cpu_seconds() - cpu_before + cpu_seconds(resource.RUSAGE_CHILDREN),
            "checksum": float(np.abs(out[:1000]).sum()),
            "sha256": hashlib.sha256(np.ascontiguousarray(out, dtype=np.float32).tobytes()).hexdigest(),
            "load_average_after": os.getloadavg(),
        }
    )
    return result


def print_table(report: dict) -> None:
    memory = next(
        (r["seconds"] for r in report["runs"] if r.get("mode") == "memory" and "seconds" in r), None
    )
    print(
        f"\n{report['cells']:,} cells x {report['genes']:,} genes, {report['nnz_per_cell']} non-zeros per cell, "
        f"{report['dim']} dims, {report['chunk']:,}-cell chunks; load {report['load_average_start'][0]:.1f}"
    )
    print("| mode | workers | time (s) | / memory | CPU (s) | peak RSS (GB) | sha256 |")
    print("|---|---|---|---|---|---|---|")
    for run in report["runs"]:
        if "seconds" not in run:
            print(f"| {run['mode']} | failed | | | | | |")
            continue
        ratio = f"{run['seconds'] / memory:.2f}" if memory else ""
        rss = f"{run['peak_rss_gb']:.2f}"
        if "worker_peak_rss_gb" in run:
            rss += f" (+ worker {run['worker_peak_rss_gb']:.2f})"
        cpu = f"{run['cpu_seconds']:.0f}" if "cpu_seconds" in run else ""
        print(
            f"| {run['mode']} | {run['workers']} | {run['seconds']:.1f} | {ratio} | {cpu} | {rss} "
            f"| {run['sha256'][:12]} |"
        )
    print(f"same_result: {report.get('same_result')}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=2_000, help="non-zeros per cell")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--chunk", type=int, default=10_000, help="cells per streamed chunk")
    parser.add_argument("--modes", default="stream,memory,dask", help="stream, stream1, memory, dask")
    parser.add_argument(
        "--workers", type=int, default=2, help="threads of the stream mode, worker processes of the dask mode"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bioprofile_cells_scale"))
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic h5ad")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.dim, args.chunk, args.seed, args.workers)))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"synthetic_{args.cells}x{args.genes}_{args.nnz}.h5ad"
    t0 = time.perf_counter()
    if not path.exists():
        build_h5ad(path, args.cells, args.genes, args.nnz, args.seed)
    build_seconds = time.perf_counter() - t0
    report = {
        "cells": args.cells,
        "genes": args.genes,
        "nnz_per_cell": args.nnz,
        "dim": args.dim,
        "chunk": args.chunk,
        "workers": args.workers,
        "file_gb": path.stat().st_size / 1024**3,
        "build_seconds": build_seconds,
        "cpu_count": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "runs": [],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}), flush=True)
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--path",
            str(path),
            "--dim",
            str(args.dim),
            "--chunk",
            str(args.chunk),
            "--seed",
            str(args.seed),
            "--workers",
            str(args.workers),
        ]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            report["runs"].append({"mode": mode, "error": proc.stderr[-2000:]})
            print(f"{mode}: failed\n{proc.stderr[-2000:]}", flush=True)
            continue
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
    times = {r["mode"]: r["seconds"] for r in report["runs"] if "seconds" in r}
    if "memory" in times:
        for mode in ("stream", "stream1", "dask"):
            if mode in times:
                report[f"{mode}_over_memory"] = times[mode] / times["memory"]
    done = [r for r in report["runs"] if "sha256" in r]
    report["same_result"] = (
        bool(done) and len(done) == len(report["runs"]) and len({r["sha256"] for r in done}) == 1
    )
    report["load_average_end"] = os.getloadavg()
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}), flush=True)
    print_table(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
