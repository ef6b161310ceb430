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
from bioprofile.evaluate.kmeans import kmeans_nmi_ari
from bioprofile.evaluate.modality_matching import MATCHING_COLUMNS, modality_matching
from bioprofile.evaluate.neighbors import check_neighbors, exact_neighbors, knn_graph
from bioprofile.evaluate.report import TableResult, provenance
from bioprofile.evaluate.silhouettes import (
    DEFAULT_MEMORY_MB,
    check_max_cells,
    silhouette_scores,
    stratified_subsample,
)
from bioprofile.progress import progress_bars

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

__all__ = [
    "BATCH_COLUMNS",
    "BIO_COLUMNS",
    "INTEGRATION_COLUMNS",
    "LOWER_IS_BETTER",
    "KNN_NEIGHBORS",
    "SCORING_STEPS",
    "IntegrationOptions",
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
_BASELINE_NAMES = {"pca": "Unintegrated PCA", "harmony": "Harmony", "bbknn": "BBKNN"}
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


@dataclass(frozen=True)
class IntegrationOptions:
    """How :func:`benchmark_integration` and :func:`scib_scores` compute the scIB columns.

    Attributes
    ----------
    neighbors
        The kNN search of cLISI, iLISI and graph connectivity, run once per embedding (90 neighbours, self first):
        ``"exact"`` (blocked BLAS distances, shared with the silhouettes' pass), ``"pynndescent"`` (scib-metrics'
        own default search) or ``"faiss"`` (HNSW; needs ``faiss-cpu``). See :mod:`bioprofile.evaluate.neighbors`.
    max_cells
        Score the silhouettes (label, batch, isolated labels: every pair of cells) on a subsample of this many
        cells, stratified by label x batch and drawn with the run's seed; ``None``: all cells. KMeans and the kNN
        metrics always use all cells.
    n_jobs
        Threads of the pynndescent search.
    memory_mb
        Memory the distance blocks of one pass may take, in MiB.
    show_progress
        One progress bar on stderr, its line naming the embedding and metric being computed.
    """

    neighbors: str = "exact"
    max_cells: int | None = None
    n_jobs: int = 1
    memory_mb: int = DEFAULT_MEMORY_MB
    show_progress: bool = False

    def check(self) -> IntegrationOptions:
        """These options, once each is valid (the search's package installed)."""
        check_neighbors(self.neighbors)
        if self.max_cells is not None and (isinstance(self.max_cells, bool) or self.max_cells < 2):
            raise BioprofileInputError(
                f"max_cells must be at least 2, got {self.max_cells!r}",
                argument="max_cells",
            )
        if self.n_jobs < 1:
            raise BioprofileInputError(f"n_jobs must be at least 1, got {self.n_jobs}", argument="n_jobs")
        if self.memory_mb < 16:
            raise BioprofileInputError(
                f"memory_mb must be at least 16, got {self.memory_mb}", argument="memory_mb"
            )
        return self


#: Neighbours per cell of the one kNN graph (cLISI and iLISI read 90, graph connectivity the first 15).
KNN_NEIGHBORS = 90
#: The steps :func:`scib_scores` takes per embedding, as its progress bar names them.
SCORING_STEPS = ("silhouettes", "kNN graph", "KMeans NMI/ARI", "cLISI", "iLISI", "graph connectivity")


def scib_scores(
    embeddings: Mapping[str, np.ndarray],
    batch: Sequence[Any],
    labels: Sequence[Any],
    *,
    options: IntegrationOptions | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The scIB columns of several embeddings of the same cells, equal to scib-metrics' ``Benchmarker``'s.

    The silhouettes and KMeans run here on numpy BLAS (:mod:`~bioprofile.evaluate.silhouettes`,
    :mod:`~bioprofile.evaluate.kmeans`), equal to scib-metrics' functions; cLISI, iLISI and graph connectivity are
    scib-metrics' own, on one kNN graph per embedding (:mod:`~bioprofile.evaluate.neighbors`). The columns and
    aggregates are the Benchmarker's with :func:`scib_metrics_config`.

    Parameters
    ----------
    embeddings
        ``{method name: (n_cells, dim) array}``.
    batch, labels
        Batch and cell-type label per cell.
    options
        Neighbour search, silhouette subsample, memory, progress (:class:`IntegrationOptions`); ``None``: defaults.
    seed
        Seed of the silhouette subsample.

    Returns
    -------
    pandas.DataFrame
        One row per method, columns :data:`INTEGRATION_COLUMNS`, not min-max scaled.
    """
    options = (options or IntegrationOptions()).check()
    if not embeddings:
        raise BioprofileInputError("nothing to score: pass at least one embedding")
    batch, labels = _checked_cells(embeddings, batch, labels, options)
    with progress_bars(options.show_progress) as progress:
        task = (
            None
            if progress is None
            else progress.add_task("scIB", total=len(embeddings) * len(SCORING_STEPS))
        )
        return _score_table(embeddings, batch, labels, options, seed, (progress, task))[0]


def _checked_cells(embeddings, batch, labels, options) -> tuple[np.ndarray, np.ndarray]:
    """Batch and labels as strings, once the inputs can be scored (before any work)."""
    batch = np.asarray([str(b) for b in batch])
    labels = np.asarray([str(v) for v in labels])
    if len(np.unique(batch)) < 2:
        raise BioprofileInputError(
            "the batch column has fewer than 2 values: integration needs several batches"
        )
    for name, X in embeddings.items():
        if np.shape(X)[0] != len(batch) or np.ndim(X) != 2:
            raise BioprofileInputError(
                f"embedding {name!r} has shape {np.shape(X)}, not one row per cell ({len(batch)} cells)"
            )
        if not np.isfinite(X).all():
            raise BioprofileInputError(f"embedding {name!r} has NaN or infinite values")
    if options.max_cells is not None and options.max_cells < len(labels):
        check_max_cells(labels, batch, options.max_cells)
    return batch, labels


def _score_table(embeddings, batch, labels, options, seed, bar) -> tuple[pd.DataFrame, dict | None]:
    """The table of :func:`scib_scores`, and what its silhouette subsample was (``None``: all cells)."""
    import pandas as pd
    import scib_metrics

    progress, task = bar
    subsample = None
    rows = np.arange(len(labels))
    if options.max_cells is not None and options.max_cells < len(labels):
        rows = stratified_subsample(labels, batch, options.max_cells, seed=seed)
        subsample = {"cells": len(rows), "of": len(labels), "stratified_by": ["label", "batch"], "seed": seed}
        if progress is not None:
            progress.console.print(
                f"silhouettes on {len(rows):,} of {len(labels):,} cells (max_cells; stratified by label x batch, "
                f"seed {seed}); KMeans and the kNN metrics on all cells",
                soft_wrap=True,  # one line, whatever the terminal's width
            )
    fused = subsample is None and options.neighbors == "exact"
    k = min(KNN_NEIGHBORS, len(labels))
    scores: dict[str, dict[str, float]] = {}
    for name, X in embeddings.items():
        X = np.ascontiguousarray(X, dtype=np.float32)

        def step(what: str, name: str = name) -> None:
            if progress is not None:
                progress.update(task, description=f"{name}: {what}")

        step("silhouettes" + (" and exact kNN graph" if fused else ""))
        silhouettes, done = silhouette_scores(
            X[rows], labels[rows], batch[rows], k=k if fused else 0, memory_mb=options.memory_mb
        )
        _advance(progress, task)
        step(f"kNN graph ({options.neighbors})")
        if fused:
            from scib_metrics.nearest_neighbors import NeighborsResults

            graph = NeighborsResults(indices=done.knn_indices, distances=done.knn_distances)
        else:
            graph = knn_graph(
                X, k, neighbors=options.neighbors, n_jobs=options.n_jobs, memory_mb=options.memory_mb
            )
        _advance(progress, task)
        step("KMeans NMI/ARI")
        clusters = kmeans_nmi_ari(X, labels)
        _advance(progress, task)
        step("cLISI")
        clisi = float(scib_metrics.clisi_knn(graph, labels))
        _advance(progress, task)
        step("iLISI")
        ilisi = float(scib_metrics.ilisi_knn(graph, batch))
        _advance(progress, task)
        step("graph connectivity")
        connectivity = float(scib_metrics.graph_connectivity(graph.subset_neighbors(min(15, k)), labels))
        _advance(progress, task)
        scores[name] = {
            "Isolated labels": silhouettes.isolated,
            "KMeans NMI": clusters["nmi"],
            "KMeans ARI": clusters["ari"],
            "Silhouette label": silhouettes.label,
            "cLISI": clisi,
            "Silhouette batch": silhouettes.batch,
            "iLISI": ilisi,
            "Graph connectivity": connectivity,
        }
    table = pd.DataFrame.from_dict(scores, orient="index")[BIO_COLUMNS + BATCH_COLUMNS].astype(float)
    # the Benchmarker's aggregates: the mean of each kind's columns, then 0.4 batch + 0.6 bio
    table["Bio conservation"] = table[BIO_COLUMNS].mean(axis=1)
    table["Batch correction"] = table[BATCH_COLUMNS].mean(axis=1)
    table["Total"] = 0.4 * table["Batch correction"] + 0.6 * table["Bio conservation"]
    table.index.name = "method"
    return table, subsample


def _advance(progress, task) -> None:
    if progress is not None:
        progress.advance(task)


def scib_metrics_config():
    """The scib-metrics ``(BioConservation, BatchCorrection)`` whose ``Benchmarker`` table :func:`scib_scores` equals.

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
    options: IntegrationOptions | None = None,
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
    n_pcs, use_raw, seed
        PCA size, expression from ``.raw``, random seed (baselines and the silhouette subsample).
    options
        Neighbour search, silhouette subsample (``max_cells``), memory, progress bar (:class:`IntegrationOptions`);
        ``None``: the defaults (exact neighbours, all cells, no bar).

    Returns
    -------
    IntegrationResult
        ``.table``: one row per method, columns :data:`INTEGRATION_COLUMNS`; ``.write(prefix)`` writes it and
        :func:`bioprofile.pl.integration_table` draws it. ``settings`` records the neighbour search and, with
        ``max_cells``, the subsample (``silhouette_subsample``: cells, of, stratified_by, seed).
    """
    options = (options or IntegrationOptions()).check()
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
    labels = adata.obs[label_key].astype(str).to_numpy()
    if not methods and not baselines:
        raise BioprofileInputError("nothing to score: pass obsm_keys or baselines", argument="obsm_keys")
    _checked_cells(methods, batch, labels, options)
    pairs = paired_rows(adata, batch_key)
    n_methods = len(methods) + len(baselines)
    with progress_bars(options.show_progress) as progress:
        task = None
        if progress is not None:
            steps = len(baselines) + n_methods * (len(SCORING_STEPS) + (pairs is not None))
            task = progress.add_task("scIB", total=steps)
        pcs = None
        if baselines or not methods:
            pcs = _baseline_pcs(adata, baseline_on, n_pcs, use_raw, seed)
            source = "expression" if baseline_on == "expression" else baseline_on
            for name, make in (
                ("pca", lambda: pcs),
                ("harmony", lambda: harmony_embedding(pcs, batch, seed=seed)),
                ("bbknn", lambda: bbknn_embedding(pcs, batch, seed=seed)),
            ):
                if name in baselines:
                    if progress is not None:
                        progress.update(task, description=f"baseline: {_BASELINE_NAMES[name]}")
                    methods[f"{_BASELINE_NAMES[name]} ({source})"] = make()
                    _advance(progress, task)
        table, subsample = _score_table(methods, batch, labels, options, seed, (progress, task))
        if pairs is not None:
            first, second = pairs
            scores = {}
            for name, X in methods.items():
                if progress is not None:
                    progress.update(task, description=f"{name}: modality matching")
                scores[name] = modality_matching(X[first], X[second])
                _advance(progress, task)
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
        "neighbors": options.neighbors,
        "max_cells": options.max_cells,
    }
    if subsample is not None:
        settings["silhouette_subsample"] = {**subsample, "stratified_by": [label_key, batch_key]}
    libraries = ("numpy", "scikit-learn", "scanpy", "scib-metrics", "harmonypy", "bbknn")
    if options.neighbors != "exact":
        libraries += ({"pynndescent": "pynndescent", "faiss": "faiss-cpu"}[options.neighbors],)
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
