"""Gene matching: which columns of ``X`` have a gene vector, with coverage thresholds."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import CaseOnlyMatchWarning, normalize_genes

__all__ = [
    "MIN_COVERAGE",
    "WARN_COVERAGE",
    "GeneMatch",
    "GeneTable",
    "embedding_source",
    "match_genes",
    "vector_table",
]

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


def embedding_source(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Where a gene table's vectors came from: its ``source``, ``generator``, ``template`` and ``encoder``, if given.

    Parameters
    ----------
    provenance
        The provenance of a gene table (:func:`vector_table`'s second value).

    Returns
    -------
    dict
        Those of the four keys that ``provenance`` holds.
    """
    return {k: provenance[k] for k in ("source", "generator", "template", "encoder") if k in provenance}


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
        with warnings.catch_warnings():
            # said below for the genes that get a vector, in the words of cells
            warnings.simplefilter("ignore", CaseOnlyMatchWarning)
            resolution = normalize_genes(names)
        resolved, case_only = resolution.inputs, resolution.case_only
    except BioprofileInputError:  # nothing resolved through HGNC; the raw names may still be table keys
        resolved, case_only = {}, {}
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
        raise _coverage_error(match, names, resolved, vectors, min_coverage, what)
    _warn_case_only(names, match, case_only, vectors, what)
    if match.coverage < warn_coverage:
        warnings.warn(
            f"low gene coverage: {match.n_matched} of {match.n_vars} genes in {what} have a vector "
            f"({match.coverage:.1%}; {_panel(match, vectors)}); cell embeddings use only those",
            UserWarning,
            stacklevel=2,
        )
    return match


def _warn_case_only(
    names: list[str], match: GeneMatch, case_only: Mapping[str, str], vectors: Mapping[str, Any], what: str
) -> None:
    """Warn when matched genes found their vector only by upper-casing (a mouse ``Brca1`` took human BRCA1's)."""
    pairs = [
        f"{names[i]} -> {symbol}"
        for i, symbol in zip(match.var_positions.tolist(), match.symbols, strict=True)
        if names[i].strip() in case_only and names[i] not in vectors
    ]
    if pairs:
        shown = ", ".join(pairs[:5]) + (f", and {len(pairs) - 5} more" if len(pairs) > 5 else "")
        warnings.warn(
            f"{len(pairs)} of {match.n_matched} matched genes in {what} found a vector only when upper-cased "
            f"({shown}): mouse data? their cells are embedded from the human genes' vectors",
            CaseOnlyMatchWarning,
            stacklevel=3,
        )


def _panel(match: GeneMatch, vectors: Mapping[str, np.ndarray]) -> str:
    """How much of the gene table is in ``var``: ``"all 20 genes of the embeddings are here"``."""
    present = len(set(match.symbols))
    return (
        f"all {present} genes of the embeddings are here"
        if present == len(vectors)
        else f"{present} of the {len(vectors)} genes of the embeddings are here"
    )


def _coverage_error(
    match: GeneMatch,
    names: list[str],
    resolved: Mapping[str, str],
    vectors: Mapping[str, np.ndarray],
    min_coverage: float,
    what: str,
) -> BioprofileInputError:
    """Why too few genes have a vector, blaming the id column only when the ids are no gene ids."""
    head = f"only {match.n_matched} of {match.n_vars} genes in {what} have a vector"
    n_gene_ids = sum(1 for name in names if name.strip() in resolved or name in vectors)
    if match.n_matched == 0 or n_gene_ids / match.n_vars < max(min_coverage, WARN_COVERAGE):
        return BioprofileInputError(
            f"{head} (e.g. {', '.join(names[:3])}; {n_gene_ids} of {match.n_vars} are gene ids HGNC knows): pass "
            "the var column holding gene symbols or Ensembl ids as gene_key, or embeddings for these genes",
            argument="gene_key",
        )
    # The ids are genes; the table covers few of them: a small panel, which may be what was meant.
    suggestion = max(math.floor(match.coverage * 1000) / 1000, 0.0)
    return BioprofileInputError(
        f"{head} ({match.coverage:.1%}, under min_coverage={min_coverage:g}), though the ids are genes "
        f"({n_gene_ids} of {match.n_vars} known to HGNC) and {_panel(match, vectors)}: a small panel, which may "
        f"be fine; to embed the cells from these {match.n_matched} genes alone, pass min_coverage={suggestion:g} "
        "(or 0; from Python a field of EmbedLimits, given to embed_cells as limits=), else embed more genes",
        argument="min_coverage",
    )
