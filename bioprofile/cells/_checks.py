"""Expression sanity before any compute: negative or non-finite data, or already-logged data meets ``log1p``.

A scanpy workflow leaves ``X`` in one of several states: counts, ``normalize_total`` + ``log1p`` (scanpy records
``uns["log1p"]``), or ``sc.pp.scale`` output (negative values, sometimes ``NaN`` for constant genes). GenePT-w with
``normalize="log1p"`` wants counts; on scaled data it writes ``NaN`` cell vectors, with ``normalize="none"`` it
weights genes by negative numbers, and a second ``log1p`` silently compresses logged data. So negative values are
refused for every method. These checks run before the cells are embedded and name the problem and the fix in one
line. Non-finite values poison every method (``NaN * 0`` is ``NaN``), so they are refused by default; with
``nonfinite="zero"`` they are read as zero expression instead, with a warning that counts them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from bioprofile.cells._rows import is_dask_array, summarise_row_blocks
from bioprofile.errors import BioprofileInputError

__all__ = [
    "NONFINITE",
    "ExpressionStats",
    "NonFinite",
    "check_expression",
    "expression_stats",
    "zero_nonfinite",
]

#: What to do with ``NaN`` / ``inf`` expression values: refuse (``"raise"``) or read them as zero (``"zero"``).
NonFinite = Literal["raise", "zero"]
NONFINITE: tuple[str, ...] = ("raise", "zero")


@dataclass(frozen=True)
class ExpressionStats:
    """What one pass over an expression matrix found.

    Attributes
    ----------
    minimum
        The smallest finite value (0 for an empty or all-zero sparse matrix).
    n_nonfinite
        ``NaN`` and ``inf`` values.
    n_nonfinite_cells
        Cells (rows) with at least one of them.
    n_cells
        Rows of the matrix.
    fractional
        Whether some finite value is not a whole number (then it holds no raw counts).
    """

    minimum: float
    n_nonfinite: int
    n_nonfinite_cells: int
    n_cells: int
    fractional: bool = False


def _block_stats(chunk: Any) -> np.ndarray:
    """``[smallest finite value, non-finite values, cells with one, any fractional value]`` of one row block."""
    minimum, n_bad, bad_cells, fractional = np.inf, 0, 0, False
    if sp.issparse(chunk):
        chunk = sp.csr_matrix(chunk)
        values = chunk.data
        finite = np.isfinite(values)
        if not finite.all():
            rows = np.repeat(np.arange(chunk.shape[0]), np.diff(chunk.indptr))
            bad_cells = len(np.unique(rows[~finite]))
        if values.size < np.prod(chunk.shape):  # implicit zeros count towards the minimum
            minimum = 0.0
    else:
        values = np.asarray(chunk)
        finite = np.isfinite(values)
        if not finite.all():
            bad_cells = int((~finite).any(axis=1).sum()) if values.ndim == 2 else 1
    n_bad = int(values.size - finite.sum())
    if finite.any():
        kept = values[finite]
        minimum = min(minimum, float(kept.min()))
        fractional = bool(np.any(kept != np.round(kept)))
    return np.array([minimum, n_bad, bad_cells, fractional], dtype=np.float64)


def expression_stats(X: Any, chunk_size: int = 10_000, *, workers: int | None = None) -> ExpressionStats:
    """One read of ``X`` in row chunks: its smallest finite value and where it is not finite.

    Parameters
    ----------
    X
        Cells x genes: numpy, scipy sparse, a row-sliceable backed dataset, or a dask array (read by the current
        Dask client's workers).
    chunk_size
        Rows read at a time.
    workers
        Blocks checked at once on threads (``None``: one per usable core).

    Returns
    -------
    ExpressionStats
        The minimum and the non-finite counts.
    """
    blocks = summarise_row_blocks(X, _block_stats, width=4, chunk_size=chunk_size, workers=workers)
    minimum = float(blocks[:, 0].min()) if len(blocks) else np.inf
    return ExpressionStats(
        minimum=0.0 if minimum == np.inf else minimum,
        n_nonfinite=int(blocks[:, 1].sum()),
        n_nonfinite_cells=int(blocks[:, 2].sum()),
        n_cells=int(X.shape[0]),
        fractional=bool(blocks[:, 3].any()),
    )


def check_expression(
    X: Any,
    *,
    normalize: str,
    source: str,
    logged: bool,
    nonfinite: NonFinite = "raise",
    chunk_size: int = 10_000,
    workers: int | None = None,
) -> ExpressionStats:
    """Refuse expression the embedding would turn into ``NaN`` or silently distort, before any compute.

    Parameters
    ----------
    X
        Cells x genes, as the embedding will read it.
    normalize
        The GenePT-w normalisation (``"none"`` or ``"log1p"``); ``"none"`` for GenePT-s.
    source
        How messages name ``X`` (``"X"``, ``"raw"``, ``"layers['counts']"``).
    logged
        Whether scanpy recorded a ``log1p`` of this matrix (``uns["log1p"]``).
    nonfinite
        ``"raise"``: refuse ``NaN`` / ``inf`` values; ``"zero"``: read them as zero expression, with a
        warning giving their count.
    chunk_size
        Rows read at a time.
    workers
        Blocks checked at once on threads (``None``: one per usable core).

    Returns
    -------
    ExpressionStats
        What the pass over ``X`` found.

    Raises
    ------
    BioprofileInputError
        Negative values (scaled data), whatever ``normalize``; already-logged data with ``normalize="log1p"``;
        non-finite values with ``nonfinite="raise"``; an unknown ``nonfinite``.

    Warns
    -----
    UserWarning
        Non-finite values read as zero (``nonfinite="zero"``), with the counts; or ``normalize="log1p"`` on
        values that are not whole numbers (normalised already, perhaps: no ``uns["log1p"]`` said so).
    """
    if nonfinite not in NONFINITE:
        raise BioprofileInputError(
            f"unknown nonfinite={nonfinite!r}: choose 'raise' or 'zero'", argument="nonfinite"
        )
    if normalize == "log1p" and logged:
        raise BioprofileInputError(
            f"{source} is already log-transformed (scanpy's log1p recorded uns['log1p']): use normalize='none' "
            "to weight genes by it as it is, or pass the raw counts as layer",
            argument="normalize",
        )
    stats = expression_stats(X, chunk_size, workers=workers)
    if stats.n_nonfinite:
        counts = f"{stats.n_nonfinite} NaN/inf values in {stats.n_nonfinite_cells} of {stats.n_cells} cells"
        if nonfinite == "raise":
            raise BioprofileInputError(
                f"{source} has {counts}, which would give NaN cell vectors: fix or filter those cells, or pass "
                "nonfinite='zero' to read them as zero expression",
                argument="nonfinite",
            )
        warnings.warn(f"{counts} of {source} read as zero expression", UserWarning, stacklevel=3)
    if stats.minimum < 0:
        # Every method reads expression as amounts: GenePT-w as gene weights (a negative one turns the gene's vector
        # around; log1p of it is NaN), GenePT-s as the ranks of expressed genes (negatives silently dropped).
        raise BioprofileInputError(
            f"{source} has negative values (minimum {stats.minimum:.4g}; scaled data, e.g. from scanpy's "
            "pp.scale?), and cells are embedded with expression as non-negative gene weights: pass use_raw "
            "(scanpy's .raw keeps the expression from before scaling) or pass the counts as layer",
            argument="layer",
        )
    if normalize == "log1p" and stats.fractional:
        warnings.warn(
            f"{source} holds values that are not whole numbers, and normalize='log1p' expects counts: if it is "
            "already normalised, use normalize='none'",
            UserWarning,
            stacklevel=3,
        )
    return stats


def _zero_block(chunk: Any) -> Any:
    """A copy of one row block with ``NaN`` / ``inf`` as zero."""
    if sp.issparse(chunk):
        chunk = sp.csr_matrix(chunk, copy=True)
        chunk.data[~np.isfinite(chunk.data)] = 0
        chunk.eliminate_zeros()
        return chunk
    chunk = np.array(chunk, copy=True)
    chunk[~np.isfinite(chunk)] = 0
    return chunk


class _ZeroNonFinite:
    """A row-sliceable view of ``X`` whose chunks read ``NaN`` / ``inf`` as zero (the input is not modified)."""

    def __init__(self, X: Any):
        self.X = X
        self.shape = X.shape

    def __getitem__(self, rows: slice) -> Any:
        return _zero_block(self.X[rows])


def zero_nonfinite(X: Any) -> Any:
    """``X`` as the embedding reads it with ``nonfinite="zero"``: row chunks with ``NaN`` / ``inf`` as zero.

    Parameters
    ----------
    X
        Cells x genes, row-sliceable.

    Returns
    -------
    object
        Something with ``shape`` and ``[start:stop]`` row slices, as :func:`~bioprofile.cells.genept_w` reads; a
        dask array for a dask array (each block zeroed where it is computed).
    """
    if is_dask_array(X):
        return X.map_blocks(_zero_block, dtype=X.dtype, meta=X._meta)
    return _ZeroNonFinite(X)
