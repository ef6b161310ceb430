"""Cells on threads and on Dask: the same numbers as one thread, several inputs, bad input refused before any work.

One local Dask cluster (2 worker processes, started by the library's own ``dask_session("local")``) serves the
module; every Dask result is compared bit for bit with the single-process one.
"""

from __future__ import annotations

import json
import socket
import sys
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from bioprofile.cells import (
    EmbedLimits,
    GeneptWOptions,
    embed_cells,
    embed_cells_file,
    embed_cells_files,
    expression_stats,
    genept_w,
    match_genes,
)
from bioprofile.cells._dask import dask_session
from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_symbols

N_GENES, DIM, CHUNK = 120, 8, 64


def counts(n_cells: int, seed: int) -> sp.csr_matrix:
    X = sp.random(n_cells, N_GENES, density=0.15, format="csr", random_state=seed, dtype=np.float32)
    X.data = np.ceil(X.data * 20)
    return X


@pytest.fixture(scope="module")
def genes():
    return sorted(hgnc_symbols())[:N_GENES]


@pytest.fixture(scope="module")
def files(tmp_path_factory, genes):
    d = tmp_path_factory.mktemp("cells-dask")
    for name, seed, n_cells in (("a", 1, 300), ("b", 2, 170)):
        ad.AnnData(X=counts(n_cells, seed), var=pd.DataFrame(index=genes)).write_h5ad(d / f"{name}.h5ad")
    shuffled = genes[::-1]  # the same genes in another order: accepted
    with_nan = counts(50, 3)
    with_nan.data[[2, 40]] = np.nan  # read as zero with nonfinite="zero", on Dask too
    ad.AnnData(X=with_nan, var=pd.DataFrame(index=shuffled)).write_h5ad(d / "reordered.h5ad")
    other = [*genes[:-5], *sorted(hgnc_symbols())[N_GENES : N_GENES + 5]]
    ad.AnnData(X=counts(50, 4), var=pd.DataFrame(index=other)).write_h5ad(d / "other.h5ad")
    negative = counts(50, 5)
    negative.data[3] = -1.0
    ad.AnnData(X=negative, var=pd.DataFrame(index=genes)).write_h5ad(d / "negative.h5ad")
    rng = np.random.default_rng(0)
    table = GeneEmbeddings(ids=genes, symbols=genes, texts=genes, vectors=rng.normal(size=(N_GENES, DIM)))
    table.write(d / "genes.parquet")
    return d


@pytest.fixture(scope="module")
def scheduler():
    """The address of a local cluster of 2 worker processes, as ``dask_address="local"`` starts it."""
    with dask_session("local", workers=2) as client:
        yield client.scheduler.address


def run(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_refusal(result, folder, before, *needles):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, not even a temporary file


def cells_of(path):
    """The cell vectors of an output, and their provenance as JSON (h5ad reads its lists back as arrays)."""
    adata = ad.read_h5ad(path)
    provenance = json.dumps(adata.uns["X_bioprofile"], default=lambda value: value.tolist(), sort_keys=True)
    return adata.obsm["X_bioprofile"], provenance


def single_thread(files, name, tmp_path, **limits):
    out = tmp_path / f"single-{name}.h5ad"
    limits = EmbedLimits(chunk_size=CHUNK, workers=1, **limits)
    embed_cells_file(files / name, files / "genes.parquet", out, limits=limits, overwrite=True)
    return cells_of(out)


# --- threads ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dense", [False, True])
def test_threads_give_the_single_thread_numbers_bit_for_bit(genes, dense):
    X = counts(500, 7)
    X.data[[5, 9]] = 2.5  # not counts: log1p warns, the numbers stay comparable
    X = X.toarray() if dense else X
    table = {g: np.random.default_rng(i).normal(size=DIM).astype(np.float32) for i, g in enumerate(genes)}
    match = match_genes(genes, table)
    for options in (GeneptWOptions(), GeneptWOptions(normalize="log1p", scale="total", l2=True)):
        one = genept_w(X, match, options, chunk_size=37, workers=1)
        two = genept_w(X, match, options, chunk_size=37, workers=2)
        assert one.tobytes() == two.tobytes()
    assert expression_stats(X, 37, workers=1) == expression_stats(X, 37, workers=2)


def test_workers_below_one_are_refused():
    with pytest.raises(BioprofileInputError, match="workers must be a whole number") as err:
        EmbedLimits(workers=0)
    assert err.value.argument == "workers"


# --- Dask ---------------------------------------------------------------------------------------------------


def test_dask_gives_the_single_process_numbers(files, tmp_path, scheduler):
    expected, expected_uns = single_thread(files, "a.h5ad", tmp_path)
    out = tmp_path / "dask.h5ad"
    limits = EmbedLimits(chunk_size=CHUNK, dask_address=scheduler)
    embed_cells_file(files / "a.h5ad", files / "genes.parquet", out, limits=limits)
    vectors, uns = cells_of(out)
    assert vectors.tobytes() == expected.tobytes() and uns == expected_uns
    # an AnnData in memory: its row blocks are sent to the workers
    adata = ad.read_h5ad(files / "a.h5ad")
    embed_cells(adata, files / "genes.parquet", limits=EmbedLimits(chunk_size=CHUNK, dask_address=scheduler))
    assert adata.obsm["X_bioprofile"].tobytes() == expected.tobytes()


def test_cli_embeds_several_inputs_on_dask_one_output_each(files, tmp_path, scheduler):
    out = tmp_path / "out"
    result = run(
        ["embed-cells", files / "a.h5ad", files / "reordered.h5ad", "-e", files / "genes.parquet", "-o", out,
         "--chunk-size", CHUNK, "--dask", scheduler, "--nonfinite", "zero", "--quiet"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.h5ad", "reordered.h5ad"]
    assert f"to {out / 'a.h5ad'} (genept-w; {N_GENES} of {N_GENES} genes matched)" in result.stdout
    assert "2 NaN/inf values in" in result.stderr and "read as zero" in result.stderr
    for name in ("a.h5ad", "reordered.h5ad"):
        expected, expected_uns = single_thread(files, name, tmp_path, nonfinite="zero")
        vectors, uns = cells_of(out / name)
        assert vectors.tobytes() == expected.tobytes() and uns == expected_uns


def test_a_pattern_embeds_each_match_without_dask(files, tmp_path):
    provenances = embed_cells_files(
        str(files / "[ab].h5ad"),
        files / "genes.parquet",
        tmp_path / "out",
        limits=EmbedLimits(chunk_size=CHUNK),
    )
    assert len(provenances) == 2 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.h5ad",
        "b.h5ad",
    ]
    for name in ("a.h5ad", "b.h5ad"):
        expected, _ = single_thread(files, name, tmp_path)
        assert cells_of(tmp_path / "out" / name)[0].tobytes() == expected.tobytes()


# --- bad input: one line, exit 2, nothing written --------------------------------------------------------------


def test_a_pattern_matching_nothing_is_refused(files, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(
        ["embed-cells", files / "nope-*.h5ad", "-e", files / "genes.parquet", "-o", tmp_path / "out"]
    )
    one_line_refusal(result, tmp_path, before, "no file matches", "nope-*.h5ad")


def test_inputs_with_different_genes_are_refused_and_a_bare_dask_leaves_the_inputs(files, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    # a bare --dask before the inputs takes none of them as its address (a local cluster would be started after
    # the checks: these fail first)
    result = run(
        ["embed-cells", "--dask", files / "a.h5ad", files / "other.h5ad", "-e", files / "genes.parquet",
         "-o", tmp_path / "out"]
    )  # fmt: skip
    one_line_refusal(result, tmp_path, before, "different genes", "5 only in other.h5ad", "5 only in a.h5ad")


def test_several_inputs_need_an_output_folder(files, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(["embed-cells", files / "a.h5ad", files / "b.h5ad", "-e", files / "genes.parquet"])
    one_line_refusal(result, tmp_path, before, "-o FOLDER")


def test_a_failure_in_a_later_input_leaves_no_output(files, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(
        ["embed-cells", files / "a.h5ad", files / "negative.h5ad", "-e", files / "genes.parquet",
         "-o", tmp_path / "out"]
    )  # fmt: skip
    one_line_refusal(result, tmp_path, before, "negative values")


@pytest.mark.parametrize("listening", [False, True])
def test_a_scheduler_that_does_not_answer_is_refused_in_bounded_time(files, tmp_path, listening):
    # a closed port (refused, retried until the timeout) or a socket that accepts and never speaks
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if listening:
        sock.listen(1)
    port = sock.getsockname()[1]
    if not listening:
        sock.close()
    try:
        before = sorted(p.name for p in tmp_path.iterdir())
        started = time.monotonic()
        result = run(
            ["embed-cells", files / "a.h5ad", files / "b.h5ad", "-e", files / "genes.parquet",
             "-o", tmp_path / "out", "--dask", f"tcp://127.0.0.1:{port}", "--dask-timeout", "1"]
        )  # fmt: skip
        assert time.monotonic() - started < 10
        one_line_refusal(
            result, tmp_path, before, "no Dask scheduler answered", f"127.0.0.1:{port}", "--dask"
        )
    finally:
        sock.close()


def test_a_missing_dask_install_names_the_extra(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    adata = ad.read_h5ad(files / "a.h5ad")
    with pytest.raises(BioprofileInputError, match=r"pip install 'bioprofile\[dask\]'") as err:
        embed_cells(adata, files / "genes.parquet", limits=EmbedLimits(dask_address="local"))
    assert err.value.argument == "dask_address" and "X_bioprofile" not in adata.obsm
