"""Gene/protein entity and causal-connective tagging, as the diagnosis uses it: the taggers of :mod:`bioprofile.text`.

The functions live in :mod:`bioprofile.text` (a low layer, so training rewards and response metrics use the same
ones); this module keeps their names where the diagnosis has always exported them.

- :func:`gene_entity_spans`: HGNC approved symbols (case-sensitive, English-word symbols dropped) plus the
  gene/protein spans of a spaCy NER pipeline (:func:`ner_gene_spans`, :func:`load_ner_pipeline`);
- :func:`connective_spans`: causal connectives (:data:`CAUSAL_CONNECTIVES`);
- :func:`tokens_in_spans`, :func:`token_tags`: which tokens overlap those spans.
"""

from __future__ import annotations

from bioprofile.text.connectives import CAUSAL_CONNECTIVES, connective_spans
from bioprofile.text.entities import ENGLISH_WORD_SYMBOLS, gene_entity_spans
from bioprofile.text.ner import GENE_ENTITY_LABELS, SCISPACY_MODELS, load_ner_pipeline, ner_gene_spans
from bioprofile.text.tokens import token_tags, tokens_in_spans

__all__ = [
    "CAUSAL_CONNECTIVES",
    "ENGLISH_WORD_SYMBOLS",
    "GENE_ENTITY_LABELS",
    "SCISPACY_MODELS",
    "connective_spans",
    "gene_entity_spans",
    "load_ner_pipeline",
    "ner_gene_spans",
    "token_tags",
    "tokens_in_spans",
]
