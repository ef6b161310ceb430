"""Which tokens of a tokenized text the spans cover: per-token entity and connective flags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.text.connectives import connective_spans
from bioprofile.text.entities import gene_entity_spans

__all__ = ["token_tags", "tokens_in_spans"]


def tokens_in_spans(offsets: np.ndarray, spans: Sequence[tuple[int, int, Any]]) -> np.ndarray:
    """Which tokens overlap any of ``spans``, given each token's ``[start, end)`` character offsets.

    Parameters
    ----------
    offsets
        ``(n, 2)`` ``[start, end)`` character offsets of each token (an empty token, ``start == end``, never
        overlaps).
    spans
        ``(start, end, label)`` character spans, e.g. from :func:`~bioprofile.text.gene_entity_spans`.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` booleans, true where a token overlaps a span.
    """
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    hit = np.zeros(len(offsets), dtype=bool)
    for start, end, _ in spans:
        hit |= (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
    return hit


def token_tags(
    text: str,
    offsets: np.ndarray,
    symbols: frozenset[str] | None = None,
    *,
    ner_model: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-token entity and connective flags of a tokenized text.

    Parameters
    ----------
    text
        The text the tokens come from.
    offsets
        ``(n, 2)`` ``[start, end)`` character offsets of each token in ``text``.
    symbols, ner_model
        Passed to :func:`gene_entity_spans`.

    Returns
    -------
    ``(entity, connective)``: two ``(n,)`` boolean arrays, true where a token overlaps a gene/protein entity
    or a causal connective.
    """
    entities = gene_entity_spans(text, symbols, ner_model=ner_model)
    return tokens_in_spans(offsets, entities), tokens_in_spans(offsets, connective_spans(text))
