"""Clustering benchmark: separable synthetic cell types score high, shuffled embeddings score near chance."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from bioprofile import pl
from bioprofile._version import __version__
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.clustering import CLUSTERING_COLUMNS, benchmark_clustering, cluster_scores


def blobs(n_per: int = 40, n_types: int = 3, dim: int = 10, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_types, dim))
    labels = np.repeat([f"type{i}" for i in range(n_types)], n_per)
    X = np.vstack([c + rng.normal(scale=spread, size=(n_per, dim)) for c in centres]).astype(np.float32)
    return X, labels


def test_separable_clusters_score_high_and_noise_scores_low():
    X, labels = blobs()
    good = cluster_scores(X, labels)
    assert good["kmeans_ari"] > 0.95 and good["kmeans_ami"] > 0.95 and good["asw"] > 0.8
    assert good["leiden_ari"] > 0.8
    noise = cluster_scores(np.random.default_rng(1).normal(size=X.shape), labels)
    assert abs(noise["kmeans_ari"]) < 0.1 and noise["asw"] < 0.55


def test_benchmark_table_with_pca_baseline_and_umaps(tmp_path):
    X, labels = blobs(dim=30)
    expr = np.abs(X)  # a stand-in expression matrix with the same structure
    adata = ad.AnnData(
        X=expr, obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(len(labels))])
    )
    adata.obsm["X_bioprofile"] = X[:, :8]
    shuffled = np.random.default_rng(2).permutation(X[:, :8])
    result = benchmark_clustering(adata, "cell_type", n_pcs=5, embeddings={"shuffled": shuffled})
    pl.clustering_umaps(result, tmp_path)
    table = result.table
    assert list(table.index) == ["X_bioprofile", "shuffled", "PCA of expression (5 PCs)"]
    assert set(CLUSTERING_COLUMNS) <= set(table.columns)
    assert table.loc["X_bioprofile", "kmeans_ari"] > table.loc["shuffled", "kmeans_ari"] + 0.5
    assert table.loc["PCA of expression (5 PCs)", "dim"] == 5
    assert (tmp_path / "umap_x_bioprofile.png").stat().st_size > 1000 and (
        tmp_path / "umap_all.png"
    ).is_file()
    # The table holds what cluster_scores gives for each embedding on its own.
    assert table.loc["shuffled", CLUSTERING_COLUMNS].to_dict() == cluster_scores(shuffled, labels)


def test_result_writes_itself_and_keeps_what_the_plots_need(tmp_path):
    X, labels = blobs(dim=12)
    adata = ad.AnnData(
        X=np.abs(X), obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(len(labels))])
    )
    adata.obsm["X_bioprofile"] = X
    result = benchmark_clustering(adata, "cell_type", pca_baseline=False, seed=1)
    assert list(result.embeddings) == ["X_bioprofile"] and list(result.labels) == list(labels)
    written = result.write(tmp_path / "run")
    assert written == [tmp_path / "run.md", tmp_path / "run.json"]
    assert (
        tmp_path / "run.md"
    ).read_text() == result.to_markdown() and "X_bioprofile" in result.to_markdown()
    payload = json.loads((tmp_path / "run.json").read_text())
    assert payload["settings"]["label_key"] == "cell_type" and payload["settings"]["seed"] == 1
    assert payload["provenance"]["bioprofile"] == __version__ and payload["provenance"]["libraries"]["scanpy"]
    assert payload["rows"] == [{"method": "X_bioprofile", **result.table.loc["X_bioprofile"].to_dict()}]
    coords = result.umap_coordinates()
    assert coords["X_bioprofile"].shape == (len(labels), 2)
    figure = pl.clustering_umaps(
        result, show=False, return_fig=True
    )  # no folder: a figure only, nothing written
    assert len(figure.axes) == 1 and not (tmp_path / "umap_all.png").exists()


def test_bad_label_or_key_is_input_error():
    X, labels = blobs()
    adata = ad.AnnData(
        X=X, obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(len(labels))])
    )
    with pytest.raises(BioprofileInputError, match="no column 'celltype'"):
        benchmark_clustering(adata, "celltype")
    with pytest.raises(BioprofileInputError, match="obsm has no 'X_bioprofile'"):
        benchmark_clustering(adata, "cell_type")
    with pytest.raises(BioprofileInputError, match="fewer than 2"):
        cluster_scores(X, ["a"] * len(X))
