"""embed-cells and bench clustering from the command line, on scanpy's real pbmc68k_reduced."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings


@pytest.fixture(scope="module")
def pbmc_files(tmp_path_factory):
    import scanpy as sc

    folder = tmp_path_factory.mktemp("pbmc")
    adata = sc.datasets.pbmc68k_reduced()
    cells = adata.raw.to_adata()  # log-normalised expression of 765 genes
    cells.obs = adata.obs[["bulk_labels"]].copy()
    cells.write_h5ad(folder / "cells.h5ad")
    genes = list(cells.var_names[:300])
    rng = np.random.default_rng(0)
    GeneEmbeddings(ids=genes, symbols=genes, texts=genes, vectors=rng.normal(size=(300, 16))).write(
        folder / "genes.parquet"
    )
    return folder


def embed_cells_args(folder, out, *extra: str) -> list[str]:
    """The embed-cells command line on the fixture's cells and gene table."""
    return [
        "embed-cells",
        str(folder / "cells.h5ad"),
        "-e",
        str(folder / "genes.parquet"),
        "-o",
        str(out),
        *extra,
    ]


def test_embed_cells_then_bench_clustering(pbmc_files, tmp_path):
    runner = CliRunner()
    out = tmp_path / "embedded.h5ad"
    result = runner.invoke(app, embed_cells_args(pbmc_files, out, "--chunk-size", "256"))
    assert result.exit_code == 0, result.output
    import anndata as ad

    embedded = ad.read_h5ad(out)
    assert embedded.obsm["X_bioprofile"].shape == (700, 16)
    assert np.isfinite(embedded.obsm["X_bioprofile"]).all()
    assert embedded.uns["X_bioprofile"]["method"] == "genept-w" and "bioprofile" not in embedded.uns
    assert embedded.uns["X_bioprofile"]["gene_coverage"]["n_matched"] == 300

    again = runner.invoke(app, embed_cells_args(pbmc_files, out))
    assert again.exit_code == 2 and "--force" in again.stderr

    prefix = tmp_path / "clustering"
    result = runner.invoke(
        app, ["bench", "clustering", str(out), "--label-key", "bulk_labels", "--no-pca", "-o", str(prefix)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(prefix.with_suffix(".json").read_text())["rows"]
    assert rows and all(-1 <= row["kmeans_ari"] <= 1 for row in rows), rows
    assert prefix.with_suffix(".md").read_text().startswith("|")


def test_embed_cells_errors_name_flags_and_write_nothing(pbmc_files, tmp_path):
    runner = CliRunner()
    out = tmp_path / "never.h5ad"
    for extra, expected in (
        (["--gene-key", "nope"], "--gene-key"),
        (["--method", "genept-x"], "--method"),
        (["--normalize", "log2"], "--normalize"),
        (["--layer", "counts"], "--layer"),
    ):
        result = runner.invoke(app, embed_cells_args(pbmc_files, out, *extra))
        assert result.exit_code == 2 and expected in result.stderr, (extra, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_bench_commands_reject_bad_paths(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(
        app,
        ["bench", "clustering", str(tmp_path / "none.h5ad"), "--label-key", "x", "-o", str(tmp_path / "c")],
    )
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    no_dir = runner.invoke(
        app,
        [
            "bench",
            "integration",
            str(tmp_path / "none.h5ad"),
            "--batch-key",
            "b",
            "--label-key",
            "x",
            "-o",
            str(tmp_path / "nope" / "i"),
        ],
    )
    assert no_dir.exit_code == 2 and "output directory" in no_dir.stderr
