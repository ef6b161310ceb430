"""scIB integration benchmark of cell embeddings (scib-metrics), beside Harmony, BBKNN and unintegrated PCA.

Columns follow the scIB / scMODAL tables: bio conservation (isolated labels, KMeans NMI and ARI, silhouette
label, cLISI) and batch correction (silhouette batch, iLISI, graph connectivity), their means, and
``Total = 0.4 * batch correction + 0.6 * bio conservation``. Scores are not min-max scaled across methods, so
they compare between runs.

Choices where the sources leave room:

- *Silhouette batch*: scib-metrics >= 0.5.6 only offers BRAS; it is run with euclidean distances and
  ``between_cluster_distances="nearest"``, which is the classic scIB silhouette batch, and named so.
- *BBKNN* outputs a graph, not an embedding, while scib-metrics scores embeddings: BBKNN is scored on the
  diffusion map of its graph (``n_diffmap`` components, the trivial first one dropped), so its graph decides
  every neighbourhood the metrics see.
- kBET and PCR comparison are left out (not in the paper's tables; kBET is slow).
- *Modality matching* (scMODAL): when the batch is a modality of paired cells (two batches holding the same
  ``obs["cell_id"]`` values once each, as :func:`bioprofile.cells.embed_multimodal` writes), the table also gets
  :data:`~bioprofile.evaluate.modality_matching.MATCHING_COLUMNS` per method (matching accuracy, higher is better;
  FOSCTTM, lower is better), placed before the aggregates, which they do not enter.

:func:`benchmark_integration` returns an :class:`IntegrationResult` that writes itself (``write(prefix)``); the
table is drawn as a heatmap by :func:`bioprofile.pl.integration_table`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.cells import CELL_ID_KEY
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.clustering import check_expression_source, expression_pca
from bioprofile.evaluate.modality_matching import MATCHING_COLUMNS, modality_matching
from bioprofile.evaluate.report import TableResult, provenance

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

__all__ = [
    "BATCH_COLUMNS",
    "BIO_COLUMNS",
    "INTEGRATION_COLUMNS",
    "LOWER_IS_BETTER",
    "IntegrationResult",
    "bbknn_embedding",
    "benchmark_integration",
    "exact_neighbors",
    "scib_metrics_config",
    "harmony_embedding",
    "paired_rows",
    "scib_scores",
]

BIO_COLUMNS = ["Isolated labels", "KMeans NMI", "KMeans ARI", "Silhouette label", "cLISI"]
BATCH_COLUMNS = ["Silhouette batch", "iLISI", "Graph connectivity"]
AGGREGATE_COLUMNS = ["Bio conservation", "Batch correction", "Total"]
INTEGRATION_COLUMNS = BIO_COLUMNS + BATCH_COLUMNS + AGGREGATE_COLUMNS
BASELINES = ("pca", "harmony", "bbknn")
#: Columns where a lower score is better (all others: higher is better); plots draw them on an inverted scale.
LOWER_IS_BETTER = frozenset({"FOSCTTM"})


@dataclass(frozen=True, eq=False)
class IntegrationResult(TableResult):
    """The scIB scores of several embeddings of the same cells.

    Attributes
    ----------
    table
        One row per method (index ``method``), columns :data:`INTEGRATION_COLUMNS`, not min-max scaled.
    settings, provenance
        The arguments of :func:`benchmark_integration` and the versions that produced the scores.
    """


def harmony_embedding(X: np.ndarray, batch: Sequence[Any], *, seed: int = 0) -> np.ndarray:
    """Harmony-corrected copy of ``X`` (cells × PCs) for the batches in ``batch`` (harmonypy).

    Harmony corrects each batch inside soft clusters that hold cells of several batches. Where the batches share
    no neighbourhood at all (every cluster holds one batch, as RNA and ADT cells of a joint text space can), it has
    nothing to regress and returns ``X`` unchanged: then a warning says so, since its scores equal unintegrated
    PCA's.
    """
    import harmonypy
    import pandas as pd

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray([str(b) for b in batch])
    result = harmonypy.run_harmony(
        X, pd.DataFrame({"batch": labels}), "batch", random_state=seed, verbose=False
    )
    Z = np.asarray(result.Z_corr)
    # harmonypy < 2 returns PCs × cells
    Z = (Z if Z.shape[0] == X.shape[0] else Z.T).astype(np.float32)
    if np.array_equal(Z, X.astype(np.float32)):  # unchanged to float32, the precision returned
        R = np.asarray(result.R)
        R = R if R.shape[0] == X.shape[0] else R.T
        hard = R.argmax(axis=1)
        pure = sum(len(set(labels[hard == k])) <= 1 for k in np.unique(hard))
        warnings.warn(
            f"Harmony left the embedding unchanged: {pure} of {len(np.unique(hard))} of its clusters hold cells of "
            "one batch only, so there is no batch effect it can estimate (the batches share no neighbourhood); "
            "its scores equal unintegrated PCA's",
            stacklevel=2,
        )
    return Z


def bbknn_embedding(
    X: np.ndarray,
    batch: Sequence[Any],
    *,
    n_diffmap: int = 15,
    neighbors_within_batch: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Diffusion-map embedding of the BBKNN graph built on ``X`` (cells × PCs), first (trivial) component dropped.

    Parameters
    ----------
    X
        ``(n_cells, n_pcs)`` principal components.
    batch
        Batch of each cell.
    n_diffmap
        Diffusion components kept.
    neighbors_within_batch
        BBKNN's neighbours per batch (capped by the smallest batch).
    seed
        Random state of the diffusion map.

    Returns
    -------
    numpy.ndarray
        ``(n_cells, n_diffmap)`` float32.
    """
    import anndata as ad
    import bbknn
    import scanpy as sc

    tmp = ad.AnnData(
        obs={"batch": np.asarray([str(b) for b in batch])}, obsm={"X_pca": np.asarray(X, np.float32)}
    )
    tmp.obs["batch"] = tmp.obs["batch"].astype("category")
    smallest = int(tmp.obs["batch"].value_counts().min())
    bbknn.bbknn(
        tmp,
        batch_key="batch",
        use_rep="X_pca",
        n_pcs=X.shape[1],
        neighbors_within_batch=max(1, min(neighbors_within_batch, smallest - 1)),
    )
    sc.tl.diffmap(tmp, n_comps=min(n_diffmap + 1, tmp.n_obs - 2), random_state=seed)
    return np.asarray(tmp.obsm["X_diffmap"][:, 1:], dtype=np.float32)


def scib_scores(
    embeddings: Mapping[str, np.ndarray],
    batch: Sequence[Any],
    labels: Sequence[Any],
    *,
    pre_integrated: np.ndarray | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """scib-metrics scores of several embeddings of the same cells.

    Parameters
    ----------
    embeddings
        ``{method name: (n_cells, dim) array}``.
    batch, labels
        Batch and cell-type label per cell.
    pre_integrated
        Unintegrated embedding scib-metrics keeps for reference (default: the first embedding).
    n_jobs
        Parallel jobs for the neighbour search.

    Returns
    -------
    pandas.DataFrame
        One row per method, columns :data:`INTEGRATION_COLUMNS`, not min-max scaled.
    """
    import anndata as ad
    import pandas as pd
    from scib_metrics.benchmark import Benchmarker

    if not embeddings:
        raise BioprofileInputError("nothing to score: pass at least one embedding")
    batch = np.asarray([str(b) for b in batch])
    labels = np.asarray([str(v) for v in labels])
    if len(np.unique(batch)) < 2:
        raise BioprofileInputError(
            "the batch column has fewer than 2 values: integration needs several batches"
        )
    keys = {name: f"emb{i}" for i, name in enumerate(embeddings)}
    first = next(iter(embeddings.values()))
    obsm = {keys[name]: np.asarray(v, dtype=np.float32) for name, v in embeddings.items()}
    obsm["X_pre"] = np.asarray(first if pre_integrated is None else pre_integrated, dtype=np.float32)
    data = ad.AnnData(
        obs=pd.DataFrame({"batch": batch, "label": labels}, index=[str(i) for i in range(len(batch))]),
        obsm=obsm,
    )
    bio, batch_metrics = scib_metrics_config()
    bench = Benchmarker(
        data,
        batch_key="batch",
        label_key="label",
        embedding_obsm_keys=list(keys.values()),
        bio_conservation_metrics=bio,
        batch_correction_metrics=batch_metrics,
        pre_integrated_embedding_obsm_key="X_pre",
        n_jobs=n_jobs,
        progress_bar=False,
    )
    bench.prepare(neighbor_computer=exact_neighbors)
    bench.benchmark()
    raw = bench.get_results(min_max_scale=False).drop("Metric Type", errors="ignore")
    raw = raw.rename(columns={"BRAS": "Silhouette batch"})
    table = raw.rename(index={v: k for k, v in keys.items()}).astype(float)
    table.index.name = "method"
    return table[[c for c in INTEGRATION_COLUMNS if c in table.columns]]


def scib_metrics_config():
    """The scib-metrics ``(BioConservation, BatchCorrection)`` :func:`scib_scores` runs: the paper's columns.

    Silhouette batch is BRAS with euclidean distances and the nearest cluster (the classic scIB silhouette batch;
    BRAS's defaults differ); kBET and PCR comparison are off.
    """
    from scib_metrics.benchmark import BatchCorrection, BioConservation

    batch = BatchCorrection(
        bras={"metric": "euclidean", "between_cluster_distances": "nearest"},
        kbet_per_label=False,
        pcr_comparison=False,
    )
    return BioConservation(), batch


def exact_neighbors(X: np.ndarray, k: int):
    """Exact kNN (sklearn) for scib-metrics: deterministic, and avoids pynndescent's long JIT start on small data.

    The ``neighbor_computer`` :func:`scib_scores` gives ``Benchmarker.prepare``: ``(X, k) -> NeighborsResults``.
    """
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    k = min(k, X.shape[0] - 1)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return NeighborsResults(indices=indices, distances=distances)


def benchmark_integration(
    adata: AnnData,
    batch_key: str,
    label_key: str,
    *,
    obsm_keys: Sequence[str] = ("X_bioprofile",),
    baselines: Sequence[str] = BASELINES,
    baseline_on: str = "expression",
    n_pcs: int = 50,
    use_raw: bool = False,
    seed: int = 0,
    n_jobs: int = 1,
) -> IntegrationResult:
    """Score bioprofile cell embeddings for integration across ``obs[batch_key]`` beside standard baselines.

    Parameters
    ----------
    adata
        The cells, with the embeddings to score in ``obsm``.
    batch_key, label_key
        ``obs`` columns with the batch (e.g. ``"modality"`` for RNA + protein) and the cell type.
    obsm_keys
        Embeddings to score.
    baselines
        Any of ``"pca"`` (unintegrated), ``"harmony"`` (Harmony on those PCs), ``"bbknn"`` (BBKNN on them).
    baseline_on
        What the baselines start from: ``"expression"`` (PCA of ``X`` or ``.raw``) or an ``obsm`` key (e.g. the
        joint ``"X_bioprofile"`` of RNA + ADT cells, which share no expression features), reduced to ``n_pcs``.
    n_pcs, use_raw, seed, n_jobs
        PCA size, expression from ``.raw``, random seed, neighbour-search jobs.

    Returns
    -------
    IntegrationResult
        ``.table``: one row per method, columns :data:`INTEGRATION_COLUMNS`; ``.write(prefix)`` writes it and
        :func:`bioprofile.pl.integration_table` draws it.
    """
    for key, argument in ((batch_key, "batch_key"), (label_key, "label_key")):
        if key not in adata.obs.columns:
            raise BioprofileInputError(
                f"obs has no column {key!r} (columns: {', '.join(map(str, adata.obs.columns))}): pass one as "
                f"{argument}",
                argument=argument,
            )
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise BioprofileInputError(f"unknown baselines {unknown}: choose from {', '.join(BASELINES)}")
    if baselines and baseline_on == "expression":
        check_expression_source(adata, use_raw=use_raw)
    methods: dict[str, np.ndarray] = {}
    for key in obsm_keys:
        if key not in adata.obsm:
            raise BioprofileInputError(
                f"obsm has no {key!r} (keys: {', '.join(adata.obsm) or 'none'}): run bioprofile.tl.embed_cells first"
            )
        methods[key] = np.asarray(adata.obsm[key], dtype=np.float32)
    batch = adata.obs[batch_key].astype(str).to_numpy()
    pcs = None
    if baselines or not methods:
        pcs = _baseline_pcs(adata, baseline_on, n_pcs, use_raw, seed)
        source = "expression" if baseline_on == "expression" else baseline_on
        if "pca" in baselines:
            methods[f"Unintegrated PCA ({source})"] = pcs
        if "harmony" in baselines:
            methods[f"Harmony ({source})"] = harmony_embedding(pcs, batch, seed=seed)
        if "bbknn" in baselines:
            methods[f"BBKNN ({source})"] = bbknn_embedding(pcs, batch, seed=seed)
    table = scib_scores(
        methods, batch, adata.obs[label_key].astype(str).to_numpy(), pre_integrated=pcs, n_jobs=n_jobs
    )
    pairs = paired_rows(adata, batch_key)
    if pairs is not None:
        first, second = pairs
        scores = {name: modality_matching(X[first], X[second]) for name, X in methods.items()}
        for column in MATCHING_COLUMNS:
            table.insert(len(BIO_COLUMNS) + len(BATCH_COLUMNS), column, 0.0)
        for name, values in scores.items():
            table.loc[name, MATCHING_COLUMNS] = [values[c] for c in MATCHING_COLUMNS]
        table = table[BIO_COLUMNS + BATCH_COLUMNS + MATCHING_COLUMNS + AGGREGATE_COLUMNS]
    settings = {
        "batch_key": batch_key,
        "label_key": label_key,
        "obsm_keys": list(obsm_keys),
        "baselines": list(baselines),
        "baseline_on": baseline_on,
        "n_pcs": n_pcs,
        "use_raw": use_raw,
        "seed": seed,
        "n_cells": int(adata.n_obs),
        "paired_modalities": None if pairs is None else sorted(map(str, adata.obs[batch_key].unique())),
    }
    libraries = ("numpy", "scikit-learn", "scanpy", "scib-metrics", "harmonypy", "bbknn")
    return IntegrationResult(table=table, settings=settings, provenance=provenance(*libraries))


def paired_rows(adata: AnnData, batch_key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Row indices of the same cells in the two batches, when ``obs[batch_key]`` is a modality of paired cells.

    Parameters
    ----------
    adata
        Cells with ``obs[batch_key]`` and, for paired modalities, ``obs["cell_id"]`` (:data:`CELL_ID_KEY`).
    batch_key
        ``obs`` column of the batch.

    Returns
    -------
    tuple of numpy.ndarray, or None
        ``(rows of the first batch, rows of the second)``, both ordered by cell id, so position ``i`` of each is
        one cell; ``None`` unless there are exactly two batches, each holding every cell id exactly once.
    """
    if CELL_ID_KEY not in adata.obs.columns:
        return None
    batch = adata.obs[batch_key].astype(str).to_numpy()
    ids = adata.obs[CELL_ID_KEY].astype(str).to_numpy()
    names = list(dict.fromkeys(batch))
    if len(names) != 2:
        return None
    rows = []
    for name in names:
        where = np.flatnonzero(batch == name)
        order = np.argsort(ids[where], kind="stable")
        rows.append(where[order])
    first, second = rows
    if len(first) != len(second) or len(set(ids[first])) != len(first):
        return None
    if not np.array_equal(ids[first], ids[second]):
        return None
    return first, second


def _baseline_pcs(adata, baseline_on, n_pcs, use_raw, seed) -> np.ndarray:
    if baseline_on == "expression":
        if adata.X is None and not use_raw:
            raise BioprofileInputError(
                "the AnnData has no X for expression baselines: pass an obsm key as baseline_on",
                argument="baseline_on",
            )
        return expression_pca(adata, n_comps=n_pcs, use_raw=use_raw, seed=seed)
    if baseline_on not in adata.obsm:
        raise BioprofileInputError(
            f"obsm has no {baseline_on!r} to build baselines on: pass 'expression' or a key as baseline_on",
            argument="baseline_on",
        )
    from sklearn.decomposition import PCA

    X = np.asarray(adata.obsm[baseline_on], dtype=np.float32)
    return PCA(n_components=min(n_pcs, *X.shape), random_state=seed).fit_transform(X).astype(np.float32)
