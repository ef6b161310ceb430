"""Do cell embeddings cluster by cell type? k-means and Leiden ARI / AMI and the ASW of the labels.

k-means (k = number of labels, the GenePT protocol) and Leiden clusterings are scored with ARI and AMI against a
label column, beside the average silhouette width (ASW) of the labels. ASW is scib-metrics' ``silhouette_label``
(``(silhouette + 1) / 2`` on euclidean distances, the same number :mod:`bioprofile.evaluate.integration` reports),
so every score is in [0, 1] and higher is better. Baselines are
scored on the same cells: PCA of the expression matrix and any ``obsm`` key given.

:func:`benchmark_clustering` returns a :class:`ClusteringResult` that writes itself (``write(prefix)``); its UMAPs
are drawn by :func:`bioprofile.pl.clustering_umaps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.report import TableResult, provenance

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "CLUSTERING_COLUMNS",
    "ClusteringResult",
    "benchmark_clustering",
    "check_expression_source",
    "cluster_scores",
    "expression_pca",
    "umap_coordinates",
]

#: Score columns of :func:`benchmark_clustering`, in table order.
CLUSTERING_COLUMNS = ["kmeans_ari", "kmeans_ami", "leiden_ari", "leiden_ami", "asw", "n_leiden_clusters"]


def _neighbors_graph(X: np.ndarray, n_neighbors: int, seed: int):
    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(obs={"i": np.arange(X.shape[0])}, obsm={"X_rep": np.asarray(X, dtype=np.float32)})
    sc.pp.neighbors(tmp, use_rep="X_rep", n_neighbors=min(n_neighbors, X.shape[0] - 1), random_state=seed)
    return tmp


def cluster_scores(
    X: np.ndarray,
    labels: Sequence[Any],
    *,
    n_clusters: int | None = None,
    leiden_resolution: float = 1.0,
    n_neighbors: int = 15,
    seed: int = 0,
) -> dict[str, float]:
    """Cluster one embedding and score the clusters against ``labels``.

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    labels
        One label per cell (cell type, phenotype).
    n_clusters
        k for k-means; ``None``: the number of distinct labels.
    leiden_resolution, n_neighbors
        Leiden on the ``n_neighbors`` kNN graph of ``X`` (scanpy, igraph flavour).
    seed
        Seed for k-means, the kNN graph and Leiden.

    Returns
    -------
    dict
        ``kmeans_ari``, ``kmeans_ami``, ``leiden_ari``, ``leiden_ami``, ``asw`` (scIB-rescaled to [0, 1]) and
        ``n_leiden_clusters``.
    """
    import scanpy as sc
    from scib_metrics import silhouette_label
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    X = np.asarray(X, dtype=np.float32)
    labels = np.asarray([str(v) for v in labels])
    if X.ndim != 2 or X.shape[0] != len(labels):
        raise ValueError(f"embedding {X.shape} and {len(labels)} labels do not describe the same cells")
    n_labels = len(np.unique(labels))
    if n_labels < 2:
        raise BioprofileInputError(
            "the label column has fewer than 2 distinct values: choose a cell-type column"
        )
    k = n_clusters or n_labels
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    graph = _neighbors_graph(X, n_neighbors, seed)
    sc.tl.leiden(
        graph,
        resolution=leiden_resolution,
        random_state=seed,
        flavor="igraph",
        n_iterations=2,
        directed=False,
    )
    leiden = graph.obs["leiden"].to_numpy()
    return {
        "kmeans_ari": float(adjusted_rand_score(labels, kmeans)),
        "kmeans_ami": float(adjusted_mutual_info_score(labels, kmeans)),
        "leiden_ari": float(adjusted_rand_score(labels, leiden)),
        "leiden_ami": float(adjusted_mutual_info_score(labels, leiden)),
        "asw": float(silhouette_label(X, labels, rescale=True)),
        "n_leiden_clusters": len(np.unique(leiden)),
    }


def expression_pca(
    adata: AnnData, *, n_comps: int = 50, use_raw: bool = False, layer: str | None = None, seed: int = 0
) -> np.ndarray:
    """PCA of the expression matrix as stored (pass log-normalised data): the usual single-cell baseline.

    Sparse matrices are centred implicitly by scanpy, so they are never densified.

    Parameters
    ----------
    adata
        The cells.
    n_comps
        Principal components (at most one less than the smaller side of the matrix).
    use_raw, layer
        Read ``adata.raw.X`` or ``adata.layers[layer]`` instead of ``adata.X``.
    seed
        Random state of the PCA solver.

    Returns
    -------
    numpy.ndarray
        ``(n_cells, n_comps)`` float32.
    """
    import anndata as ad
    import scanpy as sc

    check_expression_source(adata, use_raw=use_raw, layer=layer)
    X = adata.raw.X if use_raw else (adata.layers[layer] if layer else adata.X)
    tmp = ad.AnnData(X=X)
    sc.pp.pca(tmp, n_comps=min(n_comps, min(X.shape) - 1), random_state=seed)
    return np.asarray(tmp.obsm["X_pca"], dtype=np.float32)


def check_expression_source(adata: AnnData, *, use_raw: bool = False, layer: str | None = None) -> None:
    """Fail before any work unless the expression a baseline reads exists: ``.raw``, the layer, or ``X``.

    Raises
    ------
    BioprofileInputError
        ``use_raw`` without a ``.raw``; a ``layer`` that is not in ``adata.layers``; no ``X``.
    """
    if use_raw and adata.raw is None:
        raise BioprofileInputError(
            "use_raw is set but the data has no .raw: leave use_raw off to use X", argument="use_raw"
        )
    if layer is not None and layer not in adata.layers:
        raise BioprofileInputError(
            f"layers has no {display_value(layer)} (layers: {', '.join(adata.layers) or 'none'}): pass an "
            "existing layer",
            argument="layer",
        )
    if not use_raw and layer is None and adata.X is None:
        raise BioprofileInputError("the data has no X: use_raw or a layer must give the expression")


def benchmark_clustering(
    adata: AnnData,
    label_key: str,
    *,
    embeddings: Mapping[str, np.ndarray] | None = None,
    obsm_keys: Sequence[str] = ("X_bioprofile",),
    pca_baseline: bool = True,
    n_pcs: int = 50,
    use_raw: bool = False,
    leiden_resolution: float = 1.0,
    n_neighbors: int = 15,
    seed: int = 0,
) -> ClusteringResult:
    """Score several cell embeddings of the same cells on clustering by ``obs[label_key]``.

    Parameters
    ----------
    adata
        The cells; embeddings are read from ``obsm``.
    label_key
        ``obs`` column with the labels (e.g. ``"bulk_labels"``).
    embeddings
        Further ``{method name: (n_cells, dim) array}`` to score beside the ``obsm`` keys.
    obsm_keys
        ``obsm`` keys to score (missing keys are an error).
    pca_baseline
        Also score ``n_pcs`` principal components of the expression matrix (``.raw`` if ``use_raw``).
    leiden_resolution, n_neighbors, seed
        See :func:`cluster_scores`.

    Returns
    -------
    ClusteringResult
        ``.table``: one row per method (index ``method``), columns :data:`CLUSTERING_COLUMNS` plus ``dim``;
        ``.write(prefix)`` writes it; :func:`bioprofile.pl.clustering_umaps` draws the methods' UMAPs.
    """
    import pandas as pd

    if pca_baseline:
        check_expression_source(adata, use_raw=use_raw)
    if label_key not in adata.obs.columns:
        raise BioprofileInputError(
            f"obs has no column {label_key!r} (columns: {', '.join(map(str, adata.obs.columns))}): pass the "
            "cell-type column as label_key",
            argument="label_key",
        )
    methods: dict[str, np.ndarray] = {}
    for key in obsm_keys:
        if key not in adata.obsm:
            raise BioprofileInputError(
                f"obsm has no {key!r} (keys: {', '.join(adata.obsm) or 'none'}): run "
                "bioprofile.tl.embed_cells first or pass an existing key"
            )
        methods[key] = np.asarray(adata.obsm[key])
    methods.update({name: np.asarray(v) for name, v in (embeddings or {}).items()})
    if pca_baseline:
        methods[f"PCA of expression ({n_pcs} PCs)"] = expression_pca(
            adata, n_comps=n_pcs, use_raw=use_raw, seed=seed
        )
    if not methods:
        raise BioprofileInputError("nothing to score: give obsm keys, embeddings or keep the PCA baseline")
    labels = adata.obs[label_key].astype(str).to_numpy()
    rows = []
    for name, X in methods.items():
        scores = cluster_scores(
            X, labels, leiden_resolution=leiden_resolution, n_neighbors=n_neighbors, seed=seed
        )
        rows.append({"method": name, **scores, "dim": int(X.shape[1])})
    settings = {
        "label_key": label_key,
        "obsm_keys": list(obsm_keys),
        "embeddings": list(embeddings or {}),
        "pca_baseline": pca_baseline,
        "n_pcs": n_pcs,
        "use_raw": use_raw,
        "leiden_resolution": leiden_resolution,
        "n_neighbors": n_neighbors,
        "seed": seed,
        "n_cells": int(adata.n_obs),
    }
    return ClusteringResult(
        table=pd.DataFrame(rows).set_index("method"),
        settings=settings,
        provenance=provenance("numpy", "scikit-learn", "scanpy", "igraph", "scib-metrics"),
        embeddings=methods,
        labels=labels,
    )


@dataclass(frozen=True, eq=False)
class ClusteringResult(TableResult):
    """The clustering scores of several embeddings of the same cells, and the embeddings scored.

    Attributes
    ----------
    table
        One row per method (index ``method``), columns :data:`CLUSTERING_COLUMNS` plus ``dim``.
    settings, provenance
        The arguments of :func:`benchmark_clustering` and the versions that produced the scores.
    embeddings
        ``{method: (n_cells, dim) array}``, as scored (the PCA baseline included).
    labels
        The label of each cell, as strings.
    """

    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=str))

    def umap_coordinates(self) -> dict[str, np.ndarray]:
        """``{method: (n_cells, 2) UMAP}`` of every embedding scored, with the run's ``n_neighbors`` and seed."""
        return umap_coordinates(
            self.embeddings,
            n_neighbors=self.settings.get("n_neighbors", 15),
            seed=self.settings.get("seed", 0),
        )


def umap_coordinates(
    embeddings: Mapping[str, np.ndarray], *, n_neighbors: int = 15, seed: int = 0
) -> dict[str, np.ndarray]:
    """The 2-d UMAP of each embedding, on its own ``n_neighbors`` kNN graph (scanpy).

    Parameters
    ----------
    embeddings
        ``{name: (n_cells, dim) array}``.
    n_neighbors, seed
        kNN graph size and the seed of graph and layout.

    Returns
    -------
    dict of str to numpy.ndarray
        ``(n_cells, 2)`` coordinates per name, in input order.
    """
    import scanpy as sc

    coords = {}
    for name, X in embeddings.items():
        graph = _neighbors_graph(np.asarray(X), n_neighbors, seed)
        sc.tl.umap(graph, random_state=seed)
        coords[name] = np.asarray(graph.obsm["X_umap"])
    return coords
