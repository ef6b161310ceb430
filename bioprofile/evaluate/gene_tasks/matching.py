"""Matching labelled gene identifiers to embedding rows through canonical HGNC ids.

Whatever id type the label file and the embedding table use (HGNC ids, symbols, aliases, Ensembl ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes

__all__ = ["match_genes", "match_pairs"]


def _canonical_ids(identifiers: Sequence[str]) -> dict[str, str]:
    """Identifier → HGNC id for every identifier that resolves to exactly one gene."""
    unique = [i for i in dict.fromkeys(identifiers) if i]
    if not unique:
        return {}
    try:
        resolution = normalize_genes(unique)
    except BioprofileInputError:  # none resolved
        return {}
    hgnc_of = {g.symbol: g.hgnc_id for g in resolution.genes}
    return {key: hgnc_of[symbol] for key, symbol in resolution.inputs.items()}


class _EmbeddingIndex:
    """Find an embedding row for any gene identifier, via the canonical HGNC id or the exact key."""

    def __init__(self, emb: GeneEmbeddings):
        canonical = _canonical_ids(list(emb.ids) + list(emb.symbols))
        self.by_canonical: dict[str, int] = {}
        self.by_raw: dict[str, int] = {}
        for row, (gene_id, symbol) in enumerate(zip(emb.ids, emb.symbols, strict=False)):
            for key in (gene_id, symbol):
                hgnc = canonical.get(key)
                if hgnc is not None:
                    self.by_canonical.setdefault(hgnc, row)
                self.by_raw.setdefault(key.upper(), row)

    def rows(self, identifiers: Sequence[str], canonical: Mapping[str, str]) -> np.ndarray:
        out = np.full(len(identifiers), -1, dtype=np.int64)
        for i, identifier in enumerate(identifiers):
            hgnc = canonical.get(identifier)
            row = (
                self.by_canonical.get(hgnc, -1)
                if hgnc is not None
                else self.by_raw.get(identifier.upper(), -1)
            )
            out[i] = row
        return out


def match_genes(
    emb: GeneEmbeddings, identifiers: Sequence[str], fallback: Sequence[str] | None = None
) -> np.ndarray:
    """Embedding row of each identifier (``-1`` when the table has no vector for it).

    Parameters
    ----------
    emb
        The embedding table (keyed by HGNC ids, symbols, or anything ``normalize_genes`` reads).
    identifiers
        Gene ids of the labels, any kind.
    fallback
        A second id per gene, tried where the first finds no row.

    Returns
    -------
    numpy.ndarray
        int64 rows, ``-1`` for no vector.
    """
    index = _EmbeddingIndex(emb)
    rows = index.rows(identifiers, _canonical_ids(identifiers))
    if fallback is not None:
        missing = np.flatnonzero(rows < 0)
        second = [fallback[i] for i in missing]
        rows[missing] = index.rows(second, _canonical_ids(second))
    return rows


def match_pairs(emb: GeneEmbeddings, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Embedding rows of both genes of each pair (``-1`` where the table has no vector for that gene).

    Parameters
    ----------
    emb
        The embedding table.
    pairs
        ``(gene_a, gene_b)`` identifiers, any kind; all of them are resolved together.

    Returns
    -------
    rows_a, rows_b : numpy.ndarray
        int64 rows of the first and the second gene of each pair.
    """
    index = _EmbeddingIndex(emb)
    a_ids = [a for a, _ in pairs]
    b_ids = [b for _, b in pairs]
    canonical = _canonical_ids(a_ids + b_ids)
    return index.rows(a_ids, canonical), index.rows(b_ids, canonical)
