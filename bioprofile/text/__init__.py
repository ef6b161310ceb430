"""Text taggers: gene/protein entities, causal connectives, mutations and drugs as character spans of a text.

Pure functions on strings (and, for the token helpers, the ``(n, 2)`` character offsets of a tokenized text),
below every stage, so the diagnosis, response metrics and reward functions tag a profile the same way. Nothing
here imports torch or a model library; only :mod:`.ner` loads a spaCy pipeline, and only when one is asked for
(or, for the default, when scispaCy is installed).

A span is a ``(start, end, label)`` tuple of character positions, ``text[start:end]`` being the mention.

Modules
-------
- :mod:`.entities` -- gene/protein mentions: HGNC approved symbols (:func:`lexicon_gene_spans`,
  :data:`ENGLISH_WORD_SYMBOLS`) plus a spaCy NER pipeline's spans (:func:`gene_entity_spans`)
- :mod:`.ner` -- the spaCy NER side (:func:`load_ner_pipeline`, :func:`ner_gene_spans`, :data:`SCISPACY_MODELS`,
  :func:`default_ner_model`, :data:`GENE_ENTITY_LABELS`)
- :mod:`.connectives` -- causal connectives (:data:`CAUSAL_CONNECTIVES`, :func:`connective_spans`)
- :mod:`.patterns` -- variant notations (:func:`mutation_spans`), drug names by their INN stems
  (:data:`DRUG_STEMS`, :func:`drug_spans`) and by a list of names (:data:`DRUG_NAMES`, :func:`drug_name_spans`)
- :mod:`.tokens` -- which tokens a span covers (:func:`tokens_in_spans`, :func:`token_tags`)
"""

from __future__ import annotations

from bioprofile.text.connectives import CAUSAL_CONNECTIVES, connective_spans
from bioprofile.text.entities import ENGLISH_WORD_SYMBOLS, gene_entity_spans, lexicon_gene_spans
from bioprofile.text.ner import (
    GENE_ENTITY_LABELS,
    SCISPACY_MODELS,
    default_ner_model,
    load_ner_pipeline,
    ner_gene_spans,
)
from bioprofile.text.patterns import DRUG_NAMES, DRUG_STEMS, drug_name_spans, drug_spans, mutation_spans
from bioprofile.text.tokens import token_tags, tokens_in_spans

__all__ = [
    "CAUSAL_CONNECTIVES",
    "DRUG_NAMES",
    "DRUG_STEMS",
    "ENGLISH_WORD_SYMBOLS",
    "GENE_ENTITY_LABELS",
    "SCISPACY_MODELS",
    "connective_spans",
    "default_ner_model",
    "drug_name_spans",
    "drug_spans",
    "gene_entity_spans",
    "lexicon_gene_spans",
    "load_ner_pipeline",
    "mutation_spans",
    "ner_gene_spans",
    "token_tags",
    "tokens_in_spans",
]
