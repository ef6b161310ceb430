"""scIB at atlas scale, same numbers: the blocked-BLAS silhouettes, the numpy KMeans and the kNN graph equal
scib-metrics' own functions; the neighbour search and the silhouette subsample are options, checked first."""

from __future__ import annotations

import importlib.util

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scib_metrics
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate import silhouettes
from bioprofile.evaluate.integration import IntegrationOptions, benchmark_integration, scib_scores
from bioprofile.evaluate.kmeans import kmeans_nmi_ari
from bioprofile.evaluate.neighbors import _self_first, exact_neighbors, knn_graph
from bioprofile.evaluate.silhouettes import distance_pass, stratified_subsample


def edge_cells(seed: int = 0):
    """Four labels x three batches, with every edge case of the issue in one set of cells.

    A one-cell label ("solo"), a batch holding one label only ("b_only", label "D"), exact duplicate rows (12 rows
    copied onto others, scib-metrics#77), and far from the origin (cancellation in |x|^2 + |y|^2 - 2 x.y).
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(["A", "B", "C"], 30).astype(object)
    batch = np.tile(["b0", "b1", "b2"], 30).astype(object)
    centres = {"A": 0.0, "B": 1.5, "C": 3.0}
    X = np.stack([rng.normal(loc=centres[v], size=6) for v in labels]) + 40.0
    labels = np.concatenate([labels, ["D"] * 8, ["solo"]])
    batch = np.concatenate([batch, ["b_only"] * 8, ["b0"]])
    X = np.vstack([X, rng.normal(loc=2.0, size=(8, 6)) + 40.0, rng.normal(size=(1, 6)) + 40.0])
    X[:12] = X[40:52]  # duplicates, within and across labels
    return X.astype(np.float32), labels.astype(str), batch.astype(str)


def tied_cells():
    """Points of an integer grid: many equal distances, so equal intra- and inter-cluster means."""
    grid = np.array([[x, y] for x in range(6) for y in range(6)], dtype=np.float32)
    labels = np.array(["L" + str((x + y) % 3) for x in range(6) for y in range(6)])
    batch = np.array(["b" + str(x % 2) for x in range(6) for y in range(6)])
    return grid, labels, batch


@pytest.mark.parametrize("cells", [edge_cells, tied_cells], ids=["edges", "ties"])
def test_each_fast_silhouette_equals_scib_metrics_own(cells):
    X, labels, batch = cells()
    for rescale in (True, False):
        assert silhouettes.silhouette_label(X, labels, rescale=rescale) == pytest.approx(
            float(scib_metrics.silhouette_label(X, labels, rescale=rescale)), abs=1e-5
        )
        assert silhouettes.silhouette_batch(X, labels, batch, rescale=rescale) == pytest.approx(
            float(scib_metrics.silhouette_batch(X, labels, batch, rescale=rescale)), abs=1e-5
        )
        assert silhouettes.isolated_labels(X, labels, batch, rescale=rescale) == pytest.approx(
            float(scib_metrics.isolated_labels(X, labels, batch, rescale=rescale)), abs=1e-5
        )
    # scib-metrics' BRAS with euclidean distances and the nearest cluster is the same silhouette batch
    assert silhouettes.silhouette_batch(X, labels, batch) == pytest.approx(
        float(scib_metrics.bras(X, labels, batch, metric="euclidean", between_cluster_distances="nearest")),
        abs=1e-5,
    )


def test_duplicates_are_at_distance_zero_and_blocks_do_not_change_the_sums():
    X, labels, batch = edge_cells()
    one_block = distance_pass(X, groups=np.zeros(len(X), dtype=int), k=5, memory_mb=64)
    tiny_blocks = distance_pass(X, groups=np.zeros(len(X), dtype=int), k=5, memory_mb=0.001, threads=2)
    direct = np.sqrt(((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(one_block.group_sums[:, 0], direct.sum(1), rtol=1e-5)
    np.testing.assert_allclose(
        one_block.group_sums, tiny_blocks.group_sums, rtol=1e-6
    )  # BLAS rounds per shape
    np.testing.assert_array_equal(one_block.knn_indices, tiny_blocks.knn_indices)
    # a duplicated cell: itself first, its copy next at distance 0 exactly
    assert one_block.knn_indices[0, 0] == 0 and one_block.knn_indices[0, 1] == 40
    assert one_block.knn_distances[0, 1] == 0.0
    assert (one_block.knn_indices[:, 0] == np.arange(len(X))).all()
    np.testing.assert_allclose(one_block.knn_distances, np.sort(direct, axis=1)[:, :5], atol=1e-4)


def test_kmeans_nmi_ari_equals_scib_metrics_own():
    X, labels, _ = edge_cells()
    ours = kmeans_nmi_ari(X, labels)
    theirs = scib_metrics.nmi_ari_cluster_labels_kmeans(X, labels)
    assert ours == pytest.approx({"nmi": float(theirs["nmi"]), "ari": float(theirs["ari"])}, abs=1e-9)


def test_self_comes_first_whatever_the_search_returned():
    indices = np.array([[1, 0, 2], [0, 2, 3], [2, 1, 0]])  # self second; self missing; self first
    distances = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    ordered, dist = _self_first(indices, distances)
    np.testing.assert_array_equal(ordered, [[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    np.testing.assert_array_equal(dist, [[0, 0, 1], [0, 0, 1], [0, 1, 2]])
    with pytest.raises(BioprofileInputError, match="fewer than 3 neighbours for 1 cells"):
        _self_first(np.array([[0, 1, -1], [1, 0, 2]]), np.zeros((2, 3)))


@pytest.mark.parametrize(
    "search", [pytest.param("pynndescent", marks=pytest.mark.slow), "faiss"]
)  # pynndescent: about 100 s of numba compilation on a loaded 2-core machine
def test_approximate_searches_give_self_first_graphs_close_to_exact(search):
    if importlib.util.find_spec(search) is None:
        extra = {"faiss": "bioprofile[faiss]"}.get(search, search)
        pytest.skip(f"{search} is optional ({extra}) and not installed here")
    X, _, _ = edge_cells()
    exact = exact_neighbors(X, 10)
    found = knn_graph(X, 10, neighbors=search)
    assert found.indices.shape == (len(X), 10)
    assert (found.indices[:, 0] == np.arange(len(X))).all() and (found.distances[:, 0] == 0).all()
    np.testing.assert_allclose(found.distances[:, 1:4], exact.distances[:, 1:4], atol=1e-4)


def test_a_missing_search_package_is_one_error_before_any_work(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else real(name, *a)
    )
    with pytest.raises(BioprofileInputError, match=r"neighbors='faiss' needs faiss.*bioprofile\[faiss\]"):
        IntegrationOptions(neighbors="faiss").check()
    with pytest.raises(BioprofileInputError, match="neighbors must be one of exact, pynndescent, faiss"):
        scib_scores(
            {"x": np.zeros((3, 2))}, ["a", "b", "a"], ["l"] * 3, options=IntegrationOptions(neighbors="annoy")
        )


def test_the_subsample_keeps_every_label_x_batch_group_and_is_recorded():
    X, labels, batch = edge_cells()
    rows = stratified_subsample(labels, batch, 40, seed=3)
    assert len(rows) == 40 and len(np.unique(rows)) == 40
    kept = set(zip(labels[rows], batch[rows], strict=True))
    assert kept == set(zip(labels, batch, strict=True))  # the one-cell label and the one-label batch stay
    np.testing.assert_array_equal(rows, stratified_subsample(labels, batch, 40, seed=3))
    with pytest.raises(BioprofileInputError, match="below the 11 label x batch groups"):
        stratified_subsample(labels, batch, 5)

    cells = ad.AnnData(
        obs=pd.DataFrame({"batch": batch, "cell_type": labels}, index=[f"c{i}" for i in range(len(X))]),
        obsm={"X_bioprofile": X},
    )
    options = IntegrationOptions(max_cells=40)
    result = benchmark_integration(cells, "batch", "cell_type", baselines=[], seed=3, options=options)
    assert result.settings["max_cells"] == 40 and result.settings["neighbors"] == "exact"
    assert result.settings["silhouette_subsample"] == {
        "cells": 40,
        "of": len(X),
        "stratified_by": ["cell_type", "batch"],
        "seed": 3,
    }
    table = result.table
    sub = X[rows], labels[rows], batch[rows]
    assert table.loc["X_bioprofile", "Silhouette label"] == pytest.approx(
        silhouettes.silhouette_label(*sub[:2])
    )
    assert table.loc["X_bioprofile", "Isolated labels"] == pytest.approx(silhouettes.isolated_labels(*sub))
    full_result = benchmark_integration(cells, "batch", "cell_type", baselines=[], seed=3)
    full = full_result.table
    # KMeans and the kNN metrics see all cells either way
    pd.testing.assert_series_equal(
        table.loc["X_bioprofile", ["KMeans NMI", "cLISI", "iLISI"]],
        full.loc["X_bioprofile", ["KMeans NMI", "cLISI", "iLISI"]],
    )
    assert (
        "silhouette_subsample"
        not in benchmark_integration(
            cells, "batch", "cell_type", baselines=[], options=IntegrationOptions(max_cells=len(X))
        ).settings
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--neighbors", "annoy"],
            "error: --neighbors must be one of exact, pynndescent, faiss, got 'annoy'",
        ),
        (["--max-cells", "1"], "error: --max-cells must be at least 2, got 1"),
        (["--max-cells", "5"], "error: --max-cells=5 is below the 11 label x batch groups"),
    ],
)
def test_the_cli_refuses_bad_scoring_options_in_one_line(tmp_path, flags, message):
    X, labels, batch = edge_cells()
    cells = tmp_path / "cells.h5ad"
    ad.AnnData(
        obs=pd.DataFrame({"batch": batch, "cell_type": labels}, index=[f"c{i}" for i in range(len(X))]),
        obsm={"X_bioprofile": X},
    ).write_h5ad(cells)
    out = tmp_path / "scib"
    result = CliRunner().invoke(
        app,
        ["bench", "integration", str(cells), "--batch-key", "batch", "--label-key", "cell_type",
         "--baselines", "", *flags, "-o", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(message)
    assert not list(tmp_path.glob("scib*"))
