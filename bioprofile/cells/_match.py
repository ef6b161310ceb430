"""Gene matching: which columns of ``X`` have a gene vector, with coverage thresholds."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes

__all__ = ["MIN_COVERAGE", "WARN_COVERAGE", "GeneMatch", "GeneTable", "match_genes", "vector_table"]

#: Below this fraction of matched genes embedding fails (almost certainly the wrong id column).
MIN_COVERAGE = 0.05
#: Below this fraction embedding goes on with a warning giving the counts.
WARN_COVERAGE = 0.5

#: Gene vectors as the cell functions take them: a table, ``{symbol: vector}``, or a file GeneEmbeddings reads.
GeneTable = GeneEmbeddings | Mapping[str, Any] | str | Path


@dataclass
class GeneMatch:
    """Which columns of ``X`` have a gene vector.

    Attributes
    ----------
    var_positions
        Column indices into ``X`` (``var``) of the matched genes, ascending.
    vectors
        ``float32`` array ``(len(var_positions), dim)``: the vector of each matched column's gene.
    symbols
        Approved symbol of each matched column.
    n_vars
        Number of columns of ``X``.
    unmatched
        ``var`` entries without a vector, in ``var`` order.
    """

    var_positions: np.ndarray
    vectors: np.ndarray
    symbols: list[str]
    n_vars: int
    unmatched: list[str] = field(default_factory=list)

    @property
    def n_matched(self) -> int:
        """The number of matched columns."""
        return len(self.var_positions)

    @property
    def coverage(self) -> float:
        """The fraction of columns matched (0 for a matrix without columns)."""
        return self.n_matched / self.n_vars if self.n_vars else 0.0

    def full_matrix(self) -> np.ndarray:
        """``(n_vars, dim)`` matrix with zero rows for unmatched columns, so ``X @ full`` needs no column slicing."""
        full = np.zeros((self.n_vars, self.vectors.shape[1]), dtype=np.float32)
        full[self.var_positions] = self.vectors
        return full

    def summary(self) -> dict[str, Any]:
        """The coverage counts and the first 20 unmatched names, as recorded in provenance."""
        return {
            "n_vars": self.n_vars,
            "n_matched": self.n_matched,
            "coverage": round(self.coverage, 6),
            "unmatched_examples": self.unmatched[:20],
        }


def vector_table(embeddings: GeneTable) -> tuple[dict[str, np.ndarray], dict]:
    """The ``{symbol: float32 vector}`` table of ``embeddings`` and its provenance (empty for a plain mapping).

    Parameters
    ----------
    embeddings
        A :class:`GeneEmbeddings`, a ``{symbol: vector}`` mapping, or a file :meth:`GeneEmbeddings.read` reads.

    Returns
    -------
    tuple of (dict, dict)
        The vectors by symbol and the provenance of the table.
    """
    if isinstance(embeddings, (str, Path)):
        embeddings = GeneEmbeddings.read(embeddings)
    if isinstance(embeddings, GeneEmbeddings):
        return embeddings.to_dict(), dict(embeddings.provenance)
    table = {str(k): np.asarray(v, dtype=np.float32) for k, v in embeddings.items()}
    return table, {}


def match_genes(
    names: Any,
    vectors: Mapping[str, np.ndarray],
    *,
    min_coverage: float = MIN_COVERAGE,
    warn_coverage: float = WARN_COVERAGE,
    what: str = "var_names",
) -> GeneMatch:
    """Match gene identifiers (``var`` names or a ``var`` column) to a ``{symbol: vector}`` table.

    Each identifier is normalised with :func:`bioprofile.genes.normalize_genes` (symbols, aliases, previous
    symbols, Ensembl ids) and looked up by its approved symbol; an identifier HGNC does not know is looked up as
    written, so tables keyed by other names still work.

    Parameters
    ----------
    names
        One identifier per column of ``X``.
    vectors
        ``{symbol: vector}``, e.g. :meth:`GeneEmbeddings.to_dict`.
    min_coverage
        Raise when fewer than this fraction of the identifiers match.
    warn_coverage
        Warn (with counts) when fewer than this fraction match.
    what
        How to name the identifiers in messages (``"var_names"``, ``"var['gene_ids']"``).

    Returns
    -------
    GeneMatch
        The matched columns and their vectors.

    Raises
    ------
    BioprofileInputError
        Fewer than ``min_coverage`` of the identifiers (or none at all) have a vector.
    """
    names = [str(n) for n in names]
    if not names:
        raise BioprofileInputError(f"{what} is empty: the AnnData has no genes to match")
    try:
        resolved = normalize_genes(names).inputs
    except BioprofileInputError:  # nothing resolved through HGNC; the raw names may still be table keys
        resolved = {}
    positions, symbols, rows, unmatched = [], [], [], []
    for i, name in enumerate(names):
        symbol = resolved.get(name.strip())
        key = symbol if symbol in vectors else name if name in vectors else None
        if key is None:
            unmatched.append(name)
            continue
        positions.append(i)
        symbols.append(key)
        rows.append(vectors[key])
    dim = len(next(iter(vectors.values()))) if vectors else 0
    match = GeneMatch(
        var_positions=np.asarray(positions, dtype=np.int64),
        vectors=np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32),
        symbols=symbols,
        n_vars=len(names),
        unmatched=unmatched,
    )
    if match.n_matched == 0 or match.coverage < min_coverage:
        raise BioprofileInputError(
            f"only {match.n_matched} of {match.n_vars} genes in {what} have a vector (e.g. {', '.join(names[:3])}): "
            "pass the var column holding gene symbols or Ensembl ids as gene_key, or embeddings for these genes",
            argument="gene_key",
        )
    if match.coverage < warn_coverage:
        warnings.warn(
            f"low gene coverage: {match.n_matched} of {match.n_vars} genes in {what} have a vector "
            f"({match.coverage:.0%}); cell embeddings use only those",
            UserWarning,
            stacklevel=2,
        )
    return match
