"""Do cell embeddings cluster by cell type? k-means (k = number of labels, the GenePT protocol) and Leiden
clusterings scored with ARI and AMI against a label column, plus the average silhouette width (ASW) of the labels.

ASW is reported the scIB way, ``(silhouette + 1) / 2`` on euclidean distances, so every score is in [0, 1] and
higher is better. Baselines are scored on the same cells: PCA of the expression matrix and any ``obsm`` key given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

__all__ = ["CLUSTERING_COLUMNS", "benchmark_clustering", "cluster_scores", "expression_pca", "plot_umaps"]

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
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, silhouette_score

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
        "asw": float((silhouette_score(X, labels, metric="euclidean") + 1) / 2),
        "n_leiden_clusters": len(np.unique(leiden)),
    }


def expression_pca(
    adata: AnnData, *, n_comps: int = 50, use_raw: bool = False, layer: str | None = None, seed: int = 0
) -> np.ndarray:
    """PCA of the expression matrix as stored (pass log-normalised data): the usual single-cell baseline.

    Sparse matrices are centred implicitly by scanpy, so they are never densified.
    """
    import anndata as ad
    import scanpy as sc

    X = adata.raw.X if use_raw else (adata.layers[layer] if layer else adata.X)
    tmp = ad.AnnData(X=X)
    sc.pp.pca(tmp, n_comps=min(n_comps, min(X.shape) - 1), random_state=seed)
    return np.asarray(tmp.obsm["X_pca"], dtype=np.float32)


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
    umap_dir: str | Path | None = None,
) -> pd.DataFrame:
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
    umap_dir
        Write one UMAP PNG per method there (coloured by label), and a panel of all of them.

    Returns
    -------
    pandas.DataFrame
        One row per method (index ``method``), columns :data:`CLUSTERING_COLUMNS` plus ``dim``.
    """
    import pandas as pd

    if label_key not in adata.obs.columns:
        raise BioprofileInputError(
            f"obs has no column {label_key!r} (columns: {', '.join(map(str, adata.obs.columns))}): pass the "
            "cell-type column to --label-key"
        )
    methods: dict[str, np.ndarray] = {}
    for key in obsm_keys:
        if key not in adata.obsm:
            raise BioprofileInputError(
                f"obsm has no {key!r} (keys: {', '.join(adata.obsm) or 'none'}): run "
                "embed-cells first or pass an existing key"
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
    table = pd.DataFrame(rows).set_index("method")
    if umap_dir is not None:
        plot_umaps(methods, labels, umap_dir, n_neighbors=n_neighbors, seed=seed)
    return table


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def plot_umaps(
    methods: Mapping[str, np.ndarray],
    labels: Sequence[Any],
    out_dir: str | Path,
    *,
    n_neighbors: int = 15,
    seed: int = 0,
) -> list[Path]:
    """One UMAP PNG per embedding, coloured by label, plus ``umap_all.png`` with every method side by side.

    Returns
    -------
    list of Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = np.asarray([str(v) for v in labels])
    categories = sorted(set(labels))
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(categories), 2)))
    coords = {}
    for name, X in methods.items():
        graph = _neighbors_graph(np.asarray(X), n_neighbors, seed)
        sc.tl.umap(graph, random_state=seed)
        coords[name] = graph.obsm["X_umap"]

    def draw(ax, xy, title):
        for color, cat in zip(colors, categories, strict=False):
            sel = labels == cat
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=color, label=cat, rasterized=True)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    written = []
    for name, xy in coords.items():
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        draw(ax, xy, name)
        ax.legend(markerscale=3, fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
        fig.tight_layout()
        path = out_dir / f"umap_{_slug(name)}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    fig, axes = plt.subplots(1, len(coords), figsize=(4 * len(coords) + 1.5, 4), squeeze=False)
    for ax, (name, xy) in zip(axes[0], coords.items(), strict=False):
        draw(ax, xy, name)
    axes[0][-1].legend(markerscale=3, fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.tight_layout()
    path = out_dir / "umap_all.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written
