"""GenePT-w and GenePT-s maths on a cells x genes matrix: pure array work, row chunk by row chunk.

GenePT-w, for a cell with expression ``x`` over the genes that have a vector (matrix ``E``, one row per gene)::

    x' = x                                   normalize="none"   (use X as it is, e.g. already log-normalised)
    x' = log1p(x / sum(x) * target_sum)      normalize="log1p"  (normalize_total over *all* genes, then log1p)
    v  = x'[matched] @ E
    v /= n_matched                           scale="matched"    (one constant for every cell; GenePT divides by
                                                                 all genes of the data, which differs from this
                                                                 by the constant n_all / n_matched: 1.494 on
                                                                 pbmc68k_reduced, nothing after l2)
    v /= sum(x'[matched])                    scale="total"      (a true weighted average; empty cells stay 0)
    v /= ||v||                               l2=True

Every step is per cell, so row chunks give the same result as the whole matrix: ``X`` is read ``chunk_size`` rows at
a time (numpy, scipy CSR, an anndata backed dataset streamed from disk, or a lazily read dask array), which bounds
temporary memory, and the blocks are computed on threads or Dask workers (:mod:`bioprofile.cells._rows`) with equal
results. Sparse ``X`` stays sparse: only ``chunk @ E`` is dense.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from bioprofile.cells._match import GeneMatch
from bioprofile.cells._rows import map_row_blocks, row_chunks
from bioprofile.errors import BioprofileInputError

__all__ = ["GeneptWOptions", "Normalize", "Scale", "genept_s_sentences", "genept_w"]

Normalize = Literal["none", "log1p"]
Scale = Literal["matched", "total", "none"]


@dataclass(frozen=True)
class GeneptWOptions:
    """The options of GenePT-w (expression-weighted gene vectors), checked when made.

    Parameters
    ----------
    normalize
        ``"none"``: use the expression as is; ``"log1p"``: ``normalize_total(target_sum)`` over all genes, then
        ``log1p``.
    target_sum
        Library size after ``normalize="log1p"``.
    scale
        ``"matched"``: divide by the number of matched genes; ``"total"``: by each cell's total (normalised)
        expression over matched genes; ``"none"``: the plain sum.
    l2
        Scale each cell vector to unit length.
    """

    normalize: Normalize = "none"
    target_sum: float = 1e4
    scale: Scale = "matched"
    l2: bool = False

    def __post_init__(self) -> None:
        """Reject an unknown ``normalize`` or ``scale`` before any work."""
        if self.normalize not in ("none", "log1p"):
            raise BioprofileInputError(
                f"unknown normalize={self.normalize!r}: choose 'none' or 'log1p'", argument="normalize"
            )
        if self.scale not in ("matched", "total", "none"):
            raise BioprofileInputError(
                f"unknown scale={self.scale!r}: choose 'matched', 'total' or 'none'", argument="scale"
            )

    def provenance(self) -> dict[str, Any]:
        """The options as recorded in ``uns[key_added]``."""
        return {
            "normalize": self.normalize,
            "target_sum": self.target_sum,
            "scale": self.scale,
            "l2": self.l2,
        }


def _normalize_rows(chunk: Any, normalize: Normalize, target_sum: float) -> Any:
    """Per-cell normalisation of a row chunk; sparse stays sparse, the input is not modified.

    Parameters
    ----------
    chunk
        Cells x genes, dense or scipy sparse.
    normalize
        ``"none"`` (the chunk as is) or ``"log1p"`` (scale every cell to ``target_sum``, then ``log1p``).
    target_sum
        Library size for ``"log1p"``; cells without expression stay zero.

    Returns
    -------
    array or scipy.sparse.csr_matrix
        The normalised chunk (``float32`` unless ``normalize="none"``).
    """
    if normalize == "none":
        return chunk
    if normalize != "log1p":
        raise BioprofileInputError(
            f"unknown normalize={normalize!r}: choose 'none' or 'log1p'", argument="normalize"
        )
    if sp.issparse(chunk):
        chunk = sp.csr_matrix(chunk, dtype=np.float32, copy=True)
        totals = np.asarray(chunk.sum(axis=1)).ravel()
        factors = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        chunk.data *= np.repeat(factors, np.diff(chunk.indptr))
        np.log1p(chunk.data, out=chunk.data)
        return chunk
    chunk = np.asarray(chunk, dtype=np.float32)
    totals = chunk.sum(axis=1, keepdims=True)
    factors = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log1p(chunk * factors)


def _weights_block(
    chunk: Any, full: np.ndarray, mask: np.ndarray, *, options: GeneptWOptions, n_matched: int
) -> np.ndarray:
    """GenePT-w of one row block: module level, so a Dask worker can unpickle it."""
    chunk = _normalize_rows(chunk, options.normalize, options.target_sum)
    if sp.issparse(chunk):
        out = np.asarray(chunk @ full, dtype=np.float32)
    else:
        out = np.asarray(chunk, dtype=np.float32) @ full
    if options.scale == "matched":
        out /= max(n_matched, 1)
    elif options.scale == "total":
        totals = np.asarray(chunk @ mask, dtype=np.float32).reshape(-1, 1)
        np.divide(out, totals, out=out, where=totals != 0)
        out[(totals == 0).ravel()] = 0.0
    if options.l2:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
    return out


def genept_w(
    X: Any,
    match: GeneMatch,
    options: GeneptWOptions | None = None,
    *,
    chunk_size: int = 10_000,
    workers: int | None = None,
) -> np.ndarray:
    """GenePT-w cell embeddings of a cells x genes matrix (dense, scipy sparse, or a row-sliceable on-disk array).

    Parameters
    ----------
    X
        ``(n_cells, match.n_vars)``; anything supporting ``X[start:stop]`` row slices (numpy, scipy CSR,
        anndata backed datasets), or a dask array (its blocks computed by the current Dask client's workers).
    match
        Output of :func:`match_genes` for the columns of ``X``.
    options
        Normalisation, scale and length of the cell vectors (``None``: :class:`GeneptWOptions` defaults).
    chunk_size
        Rows processed at a time; bounds temporary memory. The result does not depend on it for sparse ``X``.
    workers
        Sparse row blocks computed at once on threads (``None``: one per usable core; dense blocks use BLAS's own
        threads). The result is the same, bit for bit, whatever the number.

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(n_cells, dim)``.
    """
    options = GeneptWOptions() if options is None else options
    n_vars = X.shape[1]
    if n_vars != match.n_vars:
        raise ValueError(f"X has {n_vars} columns but the gene match was made for {match.n_vars}")
    if chunk_size < 1:
        raise BioprofileInputError(f"chunk_size must be at least 1, got {chunk_size}", argument="chunk_size")
    full = match.full_matrix()
    mask = np.zeros(n_vars, dtype=np.float32)
    mask[match.var_positions] = 1.0
    block = partial(_weights_block, options=options, n_matched=match.n_matched)
    return map_row_blocks(
        X,
        block,
        width=full.shape[1],
        shared=(full, mask),
        chunk_size=chunk_size,
        workers=workers,
        blas=True,
    )


def genept_s_sentences(X: Any, match: GeneMatch, *, top_n: int = 50, chunk_size: int = 10_000) -> list[str]:
    """Each cell's ``top_n`` most expressed matched genes, highest first, as a space-separated sentence.

    Ties are broken by column order so the sentence is deterministic; genes with zero expression are left out, so
    an empty cell gives an empty sentence.

    Parameters
    ----------
    X
        ``(n_cells, match.n_vars)``, row-sliceable as for :func:`genept_w`.
    match
        Output of :func:`match_genes` for the columns of ``X``.
    top_n
        Genes per sentence at most.
    chunk_size
        Rows processed at a time.

    Returns
    -------
    list of str
        One sentence per cell, in row order.
    """
    if top_n < 1:
        raise BioprofileInputError(f"top_n must be at least 1, got {top_n}", argument="top_n")
    symbols = np.asarray(match.symbols, dtype=object)
    sentences: list[str] = []
    for _, chunk in row_chunks(X, chunk_size):
        if sp.issparse(chunk):
            chunk = chunk.tocsc()[:, match.var_positions].toarray()
        else:
            chunk = np.asarray(chunk)[:, match.var_positions]
        # stable sort of -x keeps column order among equal values
        order = np.argsort(-chunk, axis=1, kind="stable")[:, :top_n]
        for row, idx in zip(chunk, order, strict=False):
            kept = idx[row[idx] > 0]
            sentences.append(" ".join(symbols[kept]))
    return sentences
