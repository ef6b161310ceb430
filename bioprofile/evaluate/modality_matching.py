"""Modality matching of paired cells: how well one modality's embedding finds the same cell in the other's.

Pure array functions, as scMODAL and SCOT report them. Row ``i`` of ``a`` and row ``i`` of ``b`` are the two
modalities (e.g. RNA and protein) of one cell; distances are euclidean. Rows are compared in chunks, so memory
grows with ``chunk_size * n`` and not ``n * n``.

- :func:`matching_accuracy`: the fraction of cells whose nearest ``b`` row to ``a[i]`` is ``b[i]`` (strictly
  nearer than every other row of ``b``; a tie counts as a miss). 1 is perfect; chance is ``1 / n``.
- :func:`foscttm`: FOSCTTM, the fraction of samples closer than the true match: for each cell, the fraction of the
  ``n - 1`` other rows of ``b`` nearer to ``a[i]`` than ``b[i]`` is, and the same from ``b[i]`` into ``a``,
  averaged over both directions and all cells. 0 is perfect; a random embedding gives about 0.5.
"""

from __future__ import annotations

import numpy as np

from bioprofile.errors import BioprofileInputError

__all__ = ["MATCHING_COLUMNS", "foscttm", "matching_accuracy", "modality_matching"]

#: The columns :func:`modality_matching` returns, in table order.
MATCHING_COLUMNS = ["Matching accuracy", "FOSCTTM"]


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise BioprofileInputError(
            f"paired embeddings need the same (cells, dim) shape, got {a.shape} and {b.shape}", argument="b"
        )
    if a.shape[0] < 2:
        raise BioprofileInputError(f"modality matching needs at least 2 paired cells, got {a.shape[0]}")
    return a, b


def _closer_counts(a: np.ndarray, b: np.ndarray, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row ``i`` of ``a``: how many rows ``j != i`` of ``b`` are nearer to ``a[i]`` than ``b[i]`` is.

    Returns the counts of strictly nearer rows (FOSCTTM) and of rows at most as far (a tie is a miss for matching),
    from one pass over the distances.
    """
    strictly, at_most = np.empty(a.shape[0], dtype=np.int64), np.empty(a.shape[0], dtype=np.int64)
    b_sq = np.einsum("ij,ij->i", b, b)
    for start in range(0, a.shape[0], chunk_size):
        rows = np.arange(start, min(start + chunk_size, a.shape[0]))
        block = a[rows]
        # squared euclidean distances; the norm of a[i] is the same for every j, so it is left out
        d = b_sq[None, :] - 2.0 * block @ b.T
        true = d[np.arange(len(rows)), rows][:, None]
        d[np.arange(len(rows)), rows] = np.inf  # the true partner is not counted against itself
        strictly[rows] = (d < true).sum(axis=1)
        at_most[rows] = (d <= true).sum(axis=1)
    return strictly, at_most


def matching_accuracy(a, b, *, chunk_size: int = 2048) -> float:
    """The fraction of cells whose nearest row of ``b`` to ``a[i]`` is ``b[i]``.

    Parameters
    ----------
    a, b
        ``(n_cells, dim)`` embeddings of the same cells in two modalities, row ``i`` of each the same cell.
    chunk_size
        Rows of ``a`` compared at once.

    Returns
    -------
    float
        In ``[0, 1]``; a tie with another row counts as a miss.
    """
    a, b = _paired(a, b)
    return float(np.mean(_closer_counts(a, b, chunk_size)[1] == 0))


def foscttm(a, b, *, chunk_size: int = 2048) -> float:
    """FOSCTTM: the mean fraction of samples closer than the true match, over both directions.

    Parameters
    ----------
    a, b
        ``(n_cells, dim)`` embeddings of the same cells in two modalities, row ``i`` of each the same cell.
    chunk_size
        Rows compared at once.

    Returns
    -------
    float
        In ``[0, 1]``: 0 when every cell's partner is its nearest row, about 0.5 for unrelated embeddings.
    """
    a, b = _paired(a, b)
    return _foscttm(_closer_counts(a, b, chunk_size)[0], _closer_counts(b, a, chunk_size)[0])


def _foscttm(forward: np.ndarray, backward: np.ndarray) -> float:
    """FOSCTTM from the strictly-nearer counts of both directions."""
    n = forward.shape[0]
    return float(np.mean((forward / (n - 1) + backward / (n - 1)) / 2.0))


def modality_matching(a, b, *, chunk_size: int = 2048) -> dict[str, float]:
    """The matching accuracy (mean of ``a`` into ``b`` and ``b`` into ``a``) and FOSCTTM of paired embeddings.

    Parameters
    ----------
    a, b
        ``(n_cells, dim)`` embeddings of the same cells in two modalities, row ``i`` of each the same cell.
    chunk_size
        Rows compared at once.

    Returns
    -------
    dict
        ``{"Matching accuracy": float, "FOSCTTM": float}`` (the columns :data:`MATCHING_COLUMNS` names).
    """
    a, b = _paired(a, b)
    # one pass per direction serves both scores (the distances are the expensive part)
    forward_strict, forward_ties = _closer_counts(a, b, chunk_size)
    backward_strict, backward_ties = _closer_counts(b, a, chunk_size)
    accuracy = (np.mean(forward_ties == 0) + np.mean(backward_ties == 0)) / 2.0
    return dict(
        zip(MATCHING_COLUMNS, (float(accuracy), _foscttm(forward_strict, backward_strict)), strict=True)
    )
