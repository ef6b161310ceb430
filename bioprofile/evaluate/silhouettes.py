"""scIB's silhouettes (label, batch, isolated labels) and the exact kNN graph from one pass of blocked BLAS distances.

scib-metrics computes each silhouette with its own all-pairs pass in JAX (``cdist`` of 256-row chunks, about
1 GFLOP/s on two CPU cores). All three need the same thing: for every cell, the sum of its euclidean distances to
the cells of each (label, batch) group. :func:`distance_pass` gets those sums from one pass: float32 blocks of
``D^2 = |x|^2 + |y|^2 - 2 x.y`` as a single matrix product (norms folded in as two extra columns), blocks sized to a
memory budget and run one per core (BLAS one thread each, so the elementwise work runs on both cores too). The
same pass can keep each row's ``k`` nearest cells (the exact kNN graph, self first).

Numerics, so that the scores equal scib-metrics' own (:func:`silhouette_label`, :func:`silhouette_batch`,
:func:`isolated_labels` mirror ``scib_metrics.silhouette_label``, ``silhouette_batch`` and ``isolated_labels``):

- The embedding is centred first (distances do not change; the norms, and so the cancellation, shrink).
- ``|x|^2 + |y|^2 - 2 x.y`` cancels where two cells nearly coincide: every pair whose squared distance comes out
  below ``1e-3`` of the largest squared norm (duplicate rows, scib-metrics#77, and each cell with itself) is
  recomputed directly as ``|x - y|``, so a duplicate is at distance 0 exactly, as in scib-metrics; a small negative
  square can then never reach the square root.
- Group sums are accumulated in float64 over column chunks of float32 products.
- The silhouette rules are scib-metrics': a cell alone in its cluster, or with no other cluster, scores 0
  (its ``nan_to_num``); silhouette batch skips a label whose cells are all in one batch or each in its own batch,
  takes ``1 - |s|`` per cell, averages per label, then over labels; isolated labels are the labels present in the
  fewest batches, each scored by the mean rescaled label silhouette of its cells.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from bioprofile.errors import BioprofileInputError

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DistancePass",
    "SilhouetteScores",
    "check_max_cells",
    "distance_pass",
    "isolated_labels",
    "silhouette_batch",
    "silhouette_label",
    "silhouette_scores",
    "stratified_subsample",
]

#: Memory the blocks of one distance pass may take together (all cores), in MiB.
DEFAULT_MEMORY_MB = 1024
# Squared distances below this share of the largest squared norm are recomputed as |x - y| (see module docstring).
_NEAR_SHARE = 1e-3
# Columns per float32 product before its group sums are added in float64.
_SUM_CHUNK = 8192
# Columns of the sample that bounds each row's k-th nearest distance before the exact selection.
_SAMPLE_COLUMNS = 2048
# Pairs recomputed directly per step (a step holds pairs x dims floats).
_PAIR_CHUNK = 16384


@dataclass(frozen=True)
class DistancePass:
    """What one pass over all pairs of rows kept.

    Attributes
    ----------
    group_sums
        ``(n_rows, n_groups)`` float64: row ``i``'s summed distance to the rows of each group, or ``None``.
    knn_indices, knn_distances
        ``(n_rows, k)``: each row's ``k`` nearest rows, itself first, by increasing distance; or ``None``.
    """

    group_sums: np.ndarray | None
    knn_indices: np.ndarray | None
    knn_distances: np.ndarray | None


@dataclass(frozen=True)
class SilhouetteScores:
    """The three silhouette columns of the scIB table, from one :func:`distance_pass`.

    Attributes
    ----------
    label
        Silhouette label (rescaled to [0, 1]).
    batch
        Silhouette batch (``1 - |s|`` per cell; NaN when no label has cells of two batches).
    isolated
        Isolated labels (silhouette of the labels present in the fewest batches, rescaled).
    """

    label: float
    batch: float
    isolated: float


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def distance_pass(
    X: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    k: int = 0,
    memory_mb: int = DEFAULT_MEMORY_MB,
    threads: int | None = None,
) -> DistancePass:
    """Euclidean distances between all rows of ``X`` in blocks, reduced to group sums and/or the ``k`` nearest rows.

    Parameters
    ----------
    X
        ``(n_rows, dim)`` embedding.
    groups
        Integer group code (``0 .. n_groups - 1``) per row, or ``None`` for no group sums.
    k
        Nearest rows to keep per row (itself included, first); 0 for none. At most ``n_rows``.
    memory_mb
        Memory the blocks may take together, in MiB (sets the rows per block).
    threads
        Blocks computed at once (default: the cores this process may use), BLAS at one thread each.

    Returns
    -------
    DistancePass
        The group sums and/or the kNN graph.
    """
    from threadpoolctl import threadpool_limits

    X64 = np.asarray(X, dtype=np.float64)
    n = X64.shape[0]
    if k > n:
        raise BioprofileInputError(f"k={k} nearest rows asked of {n} rows", argument="k")
    centred = X64 - X64.mean(axis=0)
    squares = np.einsum("ij,ij->i", centred, centred)
    ones = np.ones((n, 1))
    left = np.hstack([centred, squares[:, None], ones]).astype(np.float32)
    right = np.hstack([-2.0 * centred, ones, squares[:, None]]).astype(np.float32)
    near = np.float32(_NEAR_SHARE * (squares.max() if n else 0.0))
    onehot = None
    sums = None
    if groups is not None:
        codes = np.asarray(groups, dtype=np.int64)
        onehot = np.zeros((n, int(codes.max()) + 1 if n else 0), dtype=np.float32)
        onehot[np.arange(n), codes] = 1.0
        sums = np.zeros((n, onehot.shape[1]), dtype=np.float64)
    knn_idx = np.zeros((n, k), dtype=np.int64) if k else None
    knn_dist = np.zeros((n, k), dtype=np.float32) if k else None
    threads = threads or _cores()
    # per row of a block: the float32 distances, the near-pair mask, and (kNN) argpartition's int64 indices
    # a fixed column sample whose k-th nearest bounds each row's k-th nearest from above (see _nearest)
    sample = np.sort(np.random.default_rng(0).permutation(n)[: max(_SAMPLE_COLUMNS, 4 * k)]) if k else None
    bytes_per_row = n * (4 + 1 + (1 if k else 0)) + 1
    rows = max(1, min(n, int(memory_mb * 2**20 / threads / bytes_per_row)))

    def block(start: int) -> None:
        stop = min(n, start + rows)
        D = left[start:stop] @ right.T
        r, c = np.nonzero(D < near)
        np.maximum(D, 0.0, out=D)
        np.sqrt(D, out=D)
        for s in range(0, len(r), _PAIR_CHUNK):
            i, j = r[s : s + _PAIR_CHUNK], c[s : s + _PAIR_CHUNK]
            diff = centred[start + i] - centred[j]
            D[i, j] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        if onehot is not None:
            for c0 in range(0, n, _SUM_CHUNK):
                sums[start:stop] += D[:, c0 : c0 + _SUM_CHUNK] @ onehot[c0 : c0 + _SUM_CHUNK]
        if k:
            here = np.arange(stop - start)
            D[here, start + here] = -1.0  # self first, before any duplicate at distance 0
            knn_idx[start:stop], knn_dist[start:stop] = _nearest(D, k, sample)
            knn_dist[start:stop, 0] = 0.0

    starts = range(0, n, rows)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=threads) as pool:
        for done in pool.map(block, starts):
            del done
    return DistancePass(group_sums=sums, knn_indices=knn_idx, knn_distances=knn_dist)


def stratified_subsample(
    labels: Sequence[Any], batch: Sequence[Any], max_cells: int, *, seed: int = 0
) -> np.ndarray:
    """Rows of a subsample of ``max_cells`` cells that keeps each label x batch group's share, every group kept.

    Each group gets its proportional share rounded down, at least one cell; the cells left go to the groups with
    the largest remainders. Cells are drawn within each group with ``seed``.

    Parameters
    ----------
    labels, batch
        Cell type and batch of each cell.
    max_cells
        Cells to keep (all of them when there are no more); at least the number of groups.
    seed
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        Sorted row indices.
    """
    codes = _strata(labels, batch)
    sizes = np.bincount(codes)
    n = len(codes)
    if max_cells >= n:
        return np.arange(n)
    check_max_cells(labels, batch, max_cells)
    share = max_cells * sizes / n
    taken = np.clip(np.floor(share).astype(np.int64), 1, sizes)
    remainder = np.where(taken < sizes, share - np.floor(share), -np.inf)
    for group in np.argsort(-remainder, kind="stable")[: max(0, max_cells - int(taken.sum()))]:
        taken[group] += 1
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(codes == g), size=taken[g], replace=False) for g in range(len(sizes))]
    return np.sort(np.concatenate(rows))


def _strata(labels: Sequence[Any], batch: Sequence[Any]) -> np.ndarray:
    """The label x batch group code of each cell."""
    import pandas as pd

    frame = pd.DataFrame({"label": np.asarray(labels), "batch": np.asarray(batch)})
    return frame.groupby(["label", "batch"], sort=True, observed=True).ngroup().to_numpy()


def check_max_cells(labels: Sequence[Any], batch: Sequence[Any], max_cells: int) -> None:
    """One :class:`BioprofileInputError` unless ``max_cells`` keeps a cell of every label x batch group.

    Parameters
    ----------
    labels, batch
        Cell type and batch of each cell.
    max_cells
        Cells :func:`stratified_subsample` is asked to keep (no check when it keeps them all).
    """
    n_groups = len(np.unique(_strata(labels, batch)))
    if max_cells < len(labels) and max_cells < n_groups:
        raise BioprofileInputError(
            f"max_cells={max_cells} is below the {n_groups} label x batch groups, each of which keeps a cell: "
            "raise max_cells",
            argument="max_cells",
        )


def _nearest(D: np.ndarray, k: int, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` smallest entries of ``D`` (indices, values), by value.

    Selecting among all ``n`` columns (``argpartition``) costs about as much as the block's matrix product;
    instead the ``k``-th smallest of a fixed column sample bounds the row's ``k``-th smallest from above, so only
    the columns at or under that bound (about ``k n / len(sample)`` per row, at least ``k``) are selected from.
    """
    rows = D.shape[0]
    bound = np.partition(D[:, sample], k - 1, axis=1)[:, k - 1] if len(sample) > k else D.max(axis=1)
    r, c = np.nonzero(D <= bound[:, None])
    counts = np.bincount(r, minlength=rows)
    slot = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    values = np.full((rows, counts.max()), np.inf, dtype=np.float32)
    columns = np.zeros((rows, counts.max()), dtype=np.int64)
    values[r, slot], columns[r, slot] = D[r, c], c
    picked = np.argpartition(values, k - 1, axis=1)[:, :k] if counts.max() > k else np.argsort(values, axis=1)
    picked_values = np.take_along_axis(values, picked, axis=1)
    order = np.argsort(picked_values, axis=1, kind="stable")
    return (
        np.take_along_axis(np.take_along_axis(columns, picked, axis=1), order, axis=1),
        np.maximum(np.take_along_axis(picked_values, order, axis=1), 0.0),
    )


def _codes(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values and each value's code, as ``pd.Categorical`` orders them."""
    import pandas as pd

    categorical = pd.Categorical(np.asarray(values))
    return np.asarray(categorical.categories), np.asarray(categorical.codes, dtype=np.int64)


def _silhouettes(
    own: np.ndarray, by_cluster: np.ndarray, sizes: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """Per-cell silhouettes from summed distances, with scib-metrics' rules (a NaN or 0/0 silhouette is 0).

    ``own``: each cell's cluster code; ``by_cluster``: ``(cells, clusters)`` summed distances; ``sizes``: cluster
    sizes; ``present``: ``(cells, clusters)`` whether a cluster counts as another cluster for that cell.
    """
    rows = np.arange(len(own))
    with np.errstate(divide="ignore", invalid="ignore"):
        intra = by_cluster[rows, own] / (sizes[own] - 1)
        means = np.where(present, by_cluster / sizes, np.inf)
        means[rows, own] = np.inf
        inter = means.min(axis=1)
        scores = (inter - intra) / np.maximum(intra, inter)
    return np.nan_to_num(scores)


def _isolated(label_codes: np.ndarray, batch_codes: np.ndarray, n_labels: int) -> np.ndarray:
    """Codes of the labels present in the fewest batches (scib-metrics' rule with its default threshold)."""
    pairs = np.unique(np.stack([label_codes, batch_codes], axis=1), axis=0)
    batches_per_label = np.bincount(pairs[:, 0], minlength=n_labels)
    return np.flatnonzero(batches_per_label == batches_per_label.min())


def _scores(
    sums: np.ndarray, label_codes: np.ndarray, batch_codes: np.ndarray, n_labels: int, n_batches: int
):
    """:class:`SilhouetteScores` from the per-cell sums over (label, batch) groups (code ``label * n_batches + b``)."""
    by_group = sums.reshape(len(sums), n_labels, n_batches)
    group_sizes = np.bincount(label_codes * n_batches + batch_codes, minlength=n_labels * n_batches).reshape(
        n_labels, n_batches
    )
    label_sizes = group_sizes.sum(axis=1)
    per_cell = _silhouettes(
        label_codes, by_group.sum(axis=2), label_sizes.astype(np.float64), np.ones((1, n_labels), dtype=bool)
    )
    rescaled = (per_cell + 1) / 2
    label = float(np.mean(rescaled))
    isolated = float(
        np.mean(
            [rescaled[label_codes == code].mean() for code in _isolated(label_codes, batch_codes, n_labels)]
        )
    )
    per_label = []
    for code in range(n_labels):
        cells = np.flatnonzero(label_codes == code)
        here = group_sizes[code] > 0
        if cells.size == 0 or here.sum() in (1, cells.size):
            continue  # scib-metrics skips a label in one batch only, or with each cell in its own batch
        s = _silhouettes(
            batch_codes[cells],
            by_group[cells, code, :],
            group_sizes[code].astype(np.float64),
            np.broadcast_to(here, (cells.size, n_batches)),
        )
        per_label.append(np.mean(1 - np.abs(s)))
    batch = float(np.mean(per_label)) if per_label else float("nan")
    return SilhouetteScores(label=label, batch=batch, isolated=isolated)


def silhouette_scores(
    X: np.ndarray,
    labels: Sequence[Any],
    batch: Sequence[Any],
    *,
    k: int = 0,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> tuple[SilhouetteScores, DistancePass]:
    """Silhouette label, silhouette batch and isolated labels of ``X`` from one :func:`distance_pass`.

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    labels, batch
        Cell type and batch of each cell.
    k
        Also keep the exact ``k`` nearest cells of each cell (0: no kNN graph).
    memory_mb
        Memory budget of the pass's blocks, in MiB.

    Returns
    -------
    tuple of SilhouetteScores and DistancePass
        The three scores (rescaled as scib-metrics' defaults), and the pass (its kNN graph when ``k``).
    """
    label_values, label_codes = _codes(labels)
    batch_values, batch_codes = _codes(batch)
    if len(label_codes) != np.asarray(X).shape[0] or len(batch_codes) != len(label_codes):
        raise BioprofileInputError("X, labels and batch must have one row per cell", argument="labels")
    n_labels, n_batches = len(label_values), len(batch_values)
    done = distance_pass(X, groups=label_codes * n_batches + batch_codes, k=k, memory_mb=memory_mb)
    sums = np.zeros((len(label_codes), n_labels * n_batches))
    sums[:, : done.group_sums.shape[1]] = done.group_sums
    return _scores(sums, label_codes, batch_codes, n_labels, n_batches), done


def silhouette_label(X: np.ndarray, labels: Sequence[Any], *, rescale: bool = True) -> float:
    """Equal to ``scib_metrics.silhouette_label(X, labels, rescale=rescale)`` (euclidean), on blocked BLAS distances.

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    labels
        Cell type of each cell.
    rescale
        ``(asw + 1) / 2`` into [0, 1], as scib-metrics' default.

    Returns
    -------
    float
        The mean silhouette width of the labels.
    """
    scores, _ = silhouette_scores(X, labels, np.zeros(len(labels), dtype=np.int64))
    return scores.label if rescale else 2 * scores.label - 1


def silhouette_batch(
    X: np.ndarray, labels: Sequence[Any], batch: Sequence[Any], *, rescale: bool = True
) -> float:
    """Equal to ``scib_metrics.silhouette_batch(X, labels, batch, rescale=rescale)`` (euclidean, nearest cluster).

    The classic scIB silhouette batch, which ``bench integration`` reports (scib-metrics' BRAS with
    ``metric="euclidean", between_cluster_distances="nearest"`` is the same function).

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    labels, batch
        Cell type and batch of each cell.
    rescale
        ``1 - |s|`` per cell (higher is better), as scib-metrics' default; ``False``: ``|s|``.

    Returns
    -------
    float
        Mean over labels of the mean per-cell score; NaN when no label has cells of two batches (scib-metrics
        raises there).
    """
    scores, _ = silhouette_scores(X, labels, batch)
    return scores.batch if rescale else 1 - scores.batch


def isolated_labels(
    X: np.ndarray, labels: Sequence[Any], batch: Sequence[Any], *, rescale: bool = True
) -> float:
    """Equal to ``scib_metrics.isolated_labels(X, labels, batch, rescale=rescale)``, on blocked BLAS distances.

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    labels, batch
        Cell type and batch of each cell.
    rescale
        Silhouettes rescaled to [0, 1] before averaging, as scib-metrics' default.

    Returns
    -------
    float
        Mean over the labels present in the fewest batches of their cells' mean label silhouette.
    """
    scores, _ = silhouette_scores(X, labels, batch)
    return scores.isolated if rescale else 2 * scores.isolated - 1
