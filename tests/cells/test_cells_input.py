"""Cell inputs checked before compute: small panels (min_coverage), scaled / logged / non-finite expression."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from bioprofile.cells import (
    MIN_COVERAGE,
    EmbedLimits,
    GeneptSOptions,
    GeneptWOptions,
    embed_cells,
    expression_stats,
)
from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError

MARKERS = [
    "CD3D", "CD3E", "CD79A", "CD79B", "MS4A1", "LYZ", "FCGR3A", "NKG7", "GNLY", "CST3",
    "FCER1A", "CD8A", "IL7R", "S100A8", "S100A9", "HLA-DRA", "GZMB", "CCR7", "CD4", "GZMK",
]  # fmt: skip


def panel_table(genes=MARKERS, dim: int = 8) -> GeneEmbeddings:
    rng = np.random.default_rng(0)
    return GeneEmbeddings(
        ids=list(genes), symbols=list(genes), texts=list(genes), vectors=rng.normal(size=(20, dim))
    )


@pytest.fixture(scope="module")
def pbmc():
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()  # X: scaled (negative values); raw: log-normalised, 765 genes


@pytest.fixture(scope="module")
def files(tmp_path_factory, pbmc):
    import scanpy as sc

    d = tmp_path_factory.mktemp("cells-input")
    cells = pbmc.raw.to_adata()
    cells.obs = pbmc.obs[["bulk_labels"]].copy()
    cells.write_h5ad(d / "lognorm.h5ad")
    scaled = ad.AnnData(X=np.asarray(pbmc.X), obs=cells.obs.copy(), var=pd.DataFrame(index=pbmc.var_names))
    scaled.write_h5ad(d / "scaled.h5ad")
    rng = np.random.default_rng(1)
    counts = ad.AnnData(
        X=sp.csr_matrix(rng.poisson(1.0, size=(50, 765)).astype(np.float32)),
        var=pd.DataFrame(index=pbmc.raw.var_names),
    )
    logged = counts.copy()
    sc.pp.log1p(logged)  # records uns["log1p"]
    logged.write_h5ad(d / "logged.h5ad")
    nan = counts.copy()
    nan.X = nan.X.toarray()
    nan.X[[3, 7], 5] = np.nan
    nan.X[7, 9] = np.inf
    nan.write_h5ad(d / "nan.h5ad")
    panel_table().write(d / "panel.parquet")
    return d


def run(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_refusal(result, folder, before, *needles):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, not even a temporary file


# --- small panels -------------------------------------------------------------------------------------------


def test_a_20_marker_panel_is_refused_honestly_then_embedded_with_min_coverage(pbmc):
    cells = pbmc.raw.to_adata()
    with pytest.raises(BioprofileInputError) as err:
        embed_cells(cells, panel_table())
    message = str(err.value)
    assert err.value.argument == "min_coverage"
    assert message.startswith(
        "only 20 of 765 genes in var_names have a vector (2.6%, under min_coverage=0.05)"
    )
    assert "755 of 765 known to HGNC" in message and "all 20 genes of the embeddings are here" in message
    assert "small panel, which may be fine" in message and "min_coverage=0.026" in message
    assert "gene_key" not in message  # the ids did match: the id column is not blamed

    with pytest.warns(UserWarning, match=r"low gene coverage: 20 of 765 .*all 20 genes of the embeddings"):
        embed_cells(cells, panel_table(), limits=EmbedLimits(min_coverage=0.026))
    vectors = cells.obsm["X_bioprofile"]
    assert vectors.shape == (700, 8) and np.isfinite(vectors).all()
    assert cells.uns["X_bioprofile"]["gene_coverage"]["n_matched"] == 20


def test_ids_that_are_no_genes_still_blame_the_id_column(pbmc):
    cells = pbmc.raw.to_adata()
    cells.var["barcode"] = [f"bc{i}" for i in range(cells.n_vars)]
    with pytest.raises(BioprofileInputError, match=r"only 0 of 765 .*2 of 765 are gene ids") as err:
        embed_cells(cells, panel_table(), gene_key="barcode")
    assert err.value.argument == "gene_key"


@pytest.mark.parametrize(
    ("field", "value"), [("min_coverage", 1.5), ("min_coverage", -0.1), ("warn_coverage", float("nan"))]
)
def test_coverage_outside_zero_to_one_is_refused(field, value):
    with pytest.raises(BioprofileInputError, match=f"{field} is a fraction") as err:
        EmbedLimits(**{field: value})
    assert err.value.argument == field


def test_cli_min_coverage_on_a_20_gene_panel(files, tmp_path):
    base = ["embed-cells", files / "lognorm.h5ad", "-e", files / "panel.parquet"]
    before = sorted(p.name for p in tmp_path.iterdir())
    refused = run([*base, "-o", tmp_path / "out.h5ad"])
    assert_one_line_refusal(
        refused, tmp_path, before, "only 20 of 765 genes", "pass --min-coverage=0.026", "small panel"
    )
    assert "--gene-key" not in refused.stderr
    done = run([*base, "-o", tmp_path / "out.h5ad", "--min-coverage", "0.02"])
    assert done.exit_code == 0, done.output
    assert "20 of 765 genes matched" in done.stdout
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "low gene coverage: 20 of 765" in warned[0]
    out = ad.read_h5ad(tmp_path / "out.h5ad")
    assert out.obsm["X_bioprofile"].shape == (700, 8) and np.isfinite(out.obsm["X_bioprofile"]).all()


def test_cli_default_floor_is_the_library_one():
    import click

    command = click.Context(typer_main()).command.get_command(click.Context(typer_main()), "embed-cells")
    (param,) = [p for p in command.params if p.name == "min_coverage"]
    assert param.default == MIN_COVERAGE


def typer_main():
    import typer.main

    return typer.main.get_command(app)


# --- expression sanity ----------------------------------------------------------------------------------------


def test_log1p_on_scaled_data_is_refused_before_compute(pbmc):
    genes = list(pbmc.var_names[:300])
    table = {g: np.ones(4, dtype=np.float32) for g in genes}
    with pytest.raises(BioprofileInputError, match=r"X has negative values \(minimum -2\.03") as err:
        embed_cells(pbmc, table, method=GeneptWOptions(normalize="log1p"))
    assert err.value.argument == "layer" and "pass the counts as layer" in str(err.value)
    assert "X_bioprofile" not in pbmc.obsm


@pytest.mark.parametrize("method", [GeneptWOptions(normalize="none"), GeneptSOptions(top_n=5)])
def test_scaled_data_is_refused_whatever_the_normalisation(pbmc, method):
    # negative weights (GenePT-w) or negatives silently dropped from the ranking (GenePT-s): never embedded as is
    table = {g: np.ones(4, dtype=np.float32) for g in pbmc.var_names[:300]}
    with pytest.raises(BioprofileInputError, match=r"X has negative values .*pass use_raw") as err:
        embed_cells(pbmc, table if isinstance(method, GeneptWOptions) else None, method=method)
    assert err.value.argument == "layer"
    assert "X_bioprofile" not in pbmc.obsm


def test_log1p_on_data_scanpy_logged_is_refused(files):
    logged = ad.read_h5ad(files / "logged.h5ad")
    table = {g: np.ones(4, dtype=np.float32) for g in MARKERS}
    with pytest.raises(BioprofileInputError, match=r"X is already log-transformed .*uns\['log1p'\]"):
        embed_cells(
            logged, table, method=GeneptWOptions(normalize="log1p"), limits=EmbedLimits(min_coverage=0)
        )
    # the recorded log1p is of X: a counts layer is fine
    logged.layers["counts"] = np.expm1(logged.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        embed_cells(
            logged,
            table,
            method=GeneptWOptions(normalize="log1p"),
            layer="counts",
            limits=EmbedLimits(min_coverage=0),
        )
    assert np.isfinite(logged.obsm["X_bioprofile"]).all()


def test_log1p_on_fractional_values_warns(pbmc):
    table = {g: np.ones(4, dtype=np.float32) for g in MARKERS}
    with pytest.warns(UserWarning, match="not whole numbers"):
        embed_cells(
            pbmc.raw.to_adata(),
            table,
            method=GeneptWOptions(normalize="log1p"),
            limits=EmbedLimits(min_coverage=0, warn_coverage=0),
        )


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("method", ["genept-w", "genept-s"])
def test_nonfinite_expression_is_refused_or_zeroed_with_a_count(files, sparse, method):
    nan = ad.read_h5ad(files / "nan.h5ad")
    if sparse:
        nan.X = sp.csr_matrix(nan.X)
    table = {g: np.arange(4, dtype=np.float32) + i for i, g in enumerate(nan.var_names[:400])}
    options = GeneptWOptions() if method == "genept-w" else GeneptSOptions(encoder=_LengthEncoder())
    with pytest.raises(BioprofileInputError, match=r"X has 3 NaN/inf values in 2 of 50 cells") as err:
        embed_cells(nan, table, method=options)
    assert err.value.argument == "nonfinite" and "nonfinite='zero'" in str(err.value)
    with pytest.warns(UserWarning, match="3 NaN/inf values in 2 of 50 cells of X read as zero expression"):
        embed_cells(nan, table, method=options, limits=EmbedLimits(nonfinite="zero"))
    vectors = nan.obsm["X_bioprofile"]
    assert np.isfinite(vectors).all()
    assert nan.uns["X_bioprofile"]["nonfinite_values_zeroed"] == 3
    clean = ad.read_h5ad(files / "nan.h5ad")
    clean.X = np.nan_to_num(clean.X, nan=0.0, posinf=0.0)
    embed_cells(clean, table, method=options)
    np.testing.assert_allclose(vectors, clean.obsm["X_bioprofile"], rtol=1e-6)


class _LengthEncoder:
    id, dim = "length", 2

    def encode(self, texts):
        return np.array([[len(t), t.count(" ")] for t in texts], dtype=np.float32)


def test_expression_stats_dense_sparse_and_chunks():
    X = np.array([[1.0, -2.0, 0.0], [np.nan, 0.5, np.inf], [0.0, 0.0, 3.0]], dtype=np.float32)
    for matrix in (X, sp.csr_matrix(X)):
        stats = expression_stats(matrix, chunk_size=1)
        assert (stats.minimum, stats.n_nonfinite, stats.n_nonfinite_cells, stats.n_cells) == (-2.0, 2, 1, 3)
        assert stats.fractional
    assert expression_stats(sp.csr_matrix(np.array([[1.0, 0.0]]))).minimum == 0.0


@pytest.mark.parametrize(
    ("name", "extra", "needles"),
    [
        (
            "scaled.h5ad",
            ["--normalize", "log1p"],
            ["X has negative values", "pass --use-raw", "the counts as --layer"],
        ),
        ("scaled.h5ad", [], ["X has negative values", "pass --use-raw", "the counts as --layer"]),
        ("logged.h5ad", ["--normalize", "log1p", "--min-coverage", "0"], ["already log-transformed"]),
        ("nan.h5ad", ["--min-coverage", "0"], ["3 NaN/inf values in 2 of 50 cells", "--nonfinite='zero'"]),
        ("lognorm.h5ad", ["--nonfinite", "drop"], ["unknown --nonfinite='drop'"]),
        ("lognorm.h5ad", ["--min-coverage", "2"], ["--min-coverage is a fraction"]),
    ],
)
def test_cli_refuses_bad_expression_in_one_line(files, tmp_path, name, extra, needles):
    genes = tmp_path / "genes.parquet"
    rng = np.random.default_rng(0)
    names = list(ad.read_h5ad(files / name, backed="r").var_names[:300])
    GeneEmbeddings(ids=names, symbols=names, texts=names, vectors=rng.normal(size=(300, 4))).write(genes)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(["embed-cells", files / name, "-e", genes, "-o", tmp_path / "out.h5ad", *extra])
    assert_one_line_refusal(result, tmp_path, before, *needles)


def test_cli_nonfinite_zero_warns_once_and_writes(files, tmp_path):
    genes = tmp_path / "genes.parquet"
    names = list(ad.read_h5ad(files / "nan.h5ad", backed="r").var_names[:300])
    GeneEmbeddings(ids=names, symbols=names, texts=names, vectors=np.ones((300, 4))).write(genes)
    result = run(
        ["embed-cells", files / "nan.h5ad", "-e", genes, "-o", tmp_path / "o.h5ad", "--nonfinite", "zero"]
        + ["--min-coverage", "0.3"]
    )
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned[0] == "warning: 3 NaN/inf values in 2 of 50 cells of X read as zero expression"
    assert len(warned) == 2 and warned[1].startswith("warning: low gene coverage: 300 of 765")
    out = ad.read_h5ad(tmp_path / "o.h5ad")
    assert (
        np.isfinite(out.obsm["X_bioprofile"]).all()
        and out.uns["X_bioprofile"]["nonfinite_values_zeroed"] == 3
    )


def test_mouse_cased_var_names_warn_that_human_vectors_were_used():
    from bioprofile.genes import CaseOnlyMatchWarning

    cells = ad.AnnData(
        X=np.ones((3, 4), dtype=np.float32), var=pd.DataFrame(index=["Cd3d", "Cd4", "LYZ", "Gzmb"])
    )
    table = {g: np.ones(2, dtype=np.float32) for g in ["CD3D", "CD4", "LYZ", "GZMB"]}
    with pytest.warns(
        CaseOnlyMatchWarning, match=r"3 of 4 matched genes in var_names found a vector only when"
    ):
        embed_cells(cells, table)
    assert cells.uns["X_bioprofile"]["gene_coverage"]["n_matched"] == 4
