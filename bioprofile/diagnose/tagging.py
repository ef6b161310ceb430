"""Gene/protein entity and causal-connective tagging: pure functions on text and token offsets.

Nothing here loads a language model or imports torch: every function takes a string (and, for
:func:`tokens_in_spans` and :func:`token_tags`, the ``(n, 2)`` character offsets of its tokens), so response
metrics and reward functions can tag any generated profile the way the diagnosis does.

- :func:`gene_entity_spans`: HGNC approved symbols (case-sensitive, English-word symbols dropped) plus the
  gene/protein spans of a spaCy NER pipeline (:func:`ner_gene_spans`, :func:`load_ner_pipeline`);
- :func:`connective_spans`: causal connectives (:data:`CAUSAL_CONNECTIVES`);
- :func:`tokens_in_spans`, :func:`token_tags`: which tokens overlap those spans.

Spans are ``(start, end, label)`` tuples of character positions, ``text[start:end]`` being the mention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_symbols

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

# HGNC approved symbols that are also English words (or common non-gene abbreviations) written in capitals.
# Matching is case-sensitive, so lower-case prose ("the cat", "at rest") never matches; these are dropped
# because capitalised headings and shouting would. Symbols famous as genes (KIT, MET, ATM, MAX, ACE, BAD)
# stay: in running text the English words appear in lower case.
ENGLISH_WORD_SYMBOLS: frozenset[str] = frozenset(
    {
        "A", "AN", "AS", "AT", "IT", "IS", "IN", "ON", "OR", "TO", "OF", "NO", "SO", "UP", "WE", "BE", "BY",
        "SET", "WAS", "SHE", "CAT", "CAMP", "CAPS", "CLOCK", "COIL", "COPE", "MICE", "PIGS", "PALM", "RAN",
        "REST", "SON", "STAR", "TANK", "TRIO", "TUB", "KIN", "SAG", "SKI", "MAL", "HR", "PC", "NHS",
    }
)  # fmt: skip

# A word: letters/digits, joined by inner hyphens or dots (HLA-A, NKX2-1, C1orf112).
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")

# Causal connectives, as regular expressions matched case-insensitively at word boundaries. Verbs are matched
# in their inflected forms (inhibits, inhibited, inhibiting) but not as nouns (inhibition): the noun names a
# process, the verb asserts a cause.
CAUSAL_CONNECTIVES: dict[str, str] = {
    "because": r"because(?: of)?",
    "therefore": r"therefore",
    "thus": r"thus",
    "hence": r"hence",
    "thereby": r"thereby",
    "consequently": r"consequently",
    "as a result": r"as a result(?: of)?",
    "so that": r"so that",
    "in order to": r"in order to",
    "due to": r"due to",
    "owing to": r"owing to",
    "via": r"via",
    "through": r"through",
    "leads to": r"(?:lead|leads|leading|led) to",
    "results in": r"(?:result|results|resulting|resulted) in",
    "gives rise to": r"(?:give|gives|giving|gave|given) rise to",
    "contributes to": r"(?:contribute|contributes|contributing|contributed) to",
    "required for": r"(?:required|necessary|essential) for",
    "causes": r"(?:cause|causes|caused|causing)",
    "induces": r"(?:induce|induces|induced|inducing)",
    "inhibits": r"(?:inhibit|inhibits|inhibited|inhibiting)",
    "activates": r"(?:activate|activates|activated|activating)",
    "promotes": r"(?:promote|promotes|promoted|promoting)",
    "regulates": r"(?:up-?|down-?)?(?:regulate|regulates|regulated|regulating)",
    "mediates": r"(?:mediate|mediates|mediated|mediating)",
    "triggers": r"(?:trigger|triggers|triggered|triggering)",
    "suppresses": r"(?:suppress|suppresses|suppressed|suppressing)",
    "enhances": r"(?:enhance|enhances|enhanced|enhancing)",
    "blocks": r"(?:block|blocks|blocked|blocking)",
    "prevents": r"(?:prevent|prevents|prevented|preventing)",
}
_CONNECTIVE = re.compile(
    r"\b(?:"
    + "|".join(f"(?P<c{i}>{pattern})" for i, pattern in enumerate(CAUSAL_CONNECTIVES.values()))
    + r")\b",
    re.IGNORECASE,
)
_CONNECTIVE_NAMES = list(CAUSAL_CONNECTIVES)


def gene_entity_spans(
    text: str, symbols: frozenset[str] | None = None, *, ner_model: str | Path | None = None
) -> list[tuple[int, int, str]]:
    """Gene/protein mentions in ``text``: words that are HGNC approved symbols, plus spaCy NER spans.

    A word (letters and digits, possibly joined by inner ``-`` or ``.``) is an entity when it equals an
    approved symbol exactly (case-sensitive), is at least 2 characters long and is not in
    :data:`ENGLISH_WORD_SYMBOLS`. The gene/protein spans of a spaCy NER pipeline are added (see
    :func:`ner_gene_spans`): the one named by ``ner_model``, else a scispaCy model if one is installed.

    Parameters
    ----------
    text
        The text to tag.
    symbols
        Approved symbols to match; ``None`` reads them with :func:`bioprofile.genes.hgnc_symbols`.
    ner_model
        spaCy pipeline: an installed package name or a directory written by ``nlp.to_disk``. ``None`` uses
        ``en_ner_jnlpba_md`` or ``en_ner_bionlp13cg_md`` when installed, else the lexicon alone.

    Returns
    -------
    ``(start, end, word)`` character spans, in text order.
    """
    symbols = hgnc_symbols() if symbols is None else symbols
    spans = [
        (match.start(), match.end(), match.group())
        for match in _WORD.finditer(text)
        if len(match.group()) >= 2 and match.group() in symbols and match.group() not in ENGLISH_WORD_SYMBOLS
    ]
    spans.extend(ner_gene_spans(text, ner_model))
    return sorted(set(spans))


# scispaCy's biomedical NER models, tried in this order when no pipeline is named
SCISPACY_MODELS: tuple[str, ...] = ("en_ner_jnlpba_md", "en_ner_bionlp13cg_md")
# Entity labels counted as genes/proteins: JNLPBA's PROTEIN, DNA and RNA (its CELL_LINE and CELL_TYPE are
# not genes) and BioNLP13CG's GENE_OR_GENE_PRODUCT. A custom pipeline must use one of these labels.
GENE_ENTITY_LABELS: frozenset[str] = frozenset({"PROTEIN", "DNA", "RNA", "GENE_OR_GENE_PRODUCT"})


@lru_cache(maxsize=1)
def _scispacy_pipeline():
    """The first installed scispaCy NER model, or ``None`` (spaCy or the models missing): tagging is optional."""
    for name in SCISPACY_MODELS:
        try:
            return _load_ner_pipeline(name)
        except BioprofileInputError:  # not installed: the default is best effort, unlike a named pipeline
            continue
    return None


def load_ner_pipeline(ner_model: str | Path):
    """Load a spaCy NER pipeline by package name or directory, once per name.

    Parameters
    ----------
    ner_model
        An installed spaCy pipeline package (e.g. scispaCy's ``en_ner_jnlpba_md``) or a directory written by
        ``nlp.to_disk``.

    Returns
    -------
    The :class:`spacy.language.Language`.

    Raises
    ------
    BioprofileInputError
        spaCy is not installed, the pipeline cannot be loaded, or none of its components predicts one of
        :data:`GENE_ENTITY_LABELS` (it would tag nothing).
    """
    return _load_ner_pipeline(str(ner_model))


@lru_cache(maxsize=4)  # bounded: a biomedical NER model holds a few hundred MB of vectors
def _load_ner_pipeline(name: str):
    # keyed by the string, so a str and a Path naming the same directory share one pipeline
    try:
        import spacy
    except ImportError:
        raise BioprofileInputError(
            f"ner_model {name!r} needs spaCy: pip install 'bioprofile[ner]' (or pip install spacy)",
            argument="ner_model",
        ) from None
    try:
        nlp = spacy.load(name)
    except (OSError, ValueError, ImportError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BioprofileInputError(
            f"cannot load spaCy pipeline {name!r} ({first_line}); install the pipeline package "
            "(e.g. scispaCy's en_ner_jnlpba_md) or pass a directory written by nlp.to_disk",
            argument="ner_model",
        ) from None
    labels = {label for component_labels in nlp.pipe_labels.values() for label in component_labels}
    if not labels & GENE_ENTITY_LABELS:
        raise BioprofileInputError(
            f"spaCy pipeline {name!r} predicts none of the gene/protein labels {sorted(GENE_ENTITY_LABELS)} "
            f"(its labels: {sorted(labels) or 'none'}); pass a biomedical NER pipeline",
            argument="ner_model",
        )
    return nlp


def ner_gene_spans(text: str, ner_model: str | Path | None = None) -> list[tuple[int, int, str]]:
    """Gene/protein spans (labels in :data:`GENE_ENTITY_LABELS`) found by a spaCy NER pipeline.

    Parameters
    ----------
    text
        The text to tag.
    ner_model
        Pipeline package name or directory (see :func:`load_ner_pipeline`; a bad one is an error). ``None``
        uses the first installed model of :data:`SCISPACY_MODELS`, and finds nothing when none is.

    Returns
    -------
    ``(start, end, text)`` character spans, in text order.
    """
    nlp = _scispacy_pipeline() if ner_model is None else load_ner_pipeline(ner_model)
    if nlp is None:
        return []
    doc = nlp(text)
    return [(ent.start_char, ent.end_char, ent.text) for ent in doc.ents if ent.label_ in GENE_ENTITY_LABELS]


def connective_spans(text: str) -> list[tuple[int, int, str]]:
    """Causal connectives in ``text`` (see :data:`CAUSAL_CONNECTIVES`).

    Returns
    -------
    ``(start, end, name)`` spans, ``name`` being the connective's key in :data:`CAUSAL_CONNECTIVES`.
    """
    # each alternative is one named group c<i>, so the group that matched names the connective
    return [
        (match.start(), match.end(), _CONNECTIVE_NAMES[int(match.lastgroup[1:])])
        for match in _CONNECTIVE.finditer(text)
    ]


def tokens_in_spans(offsets: np.ndarray, spans: Sequence[tuple[int, int, Any]]) -> np.ndarray:
    """Which tokens overlap any of ``spans``, given each token's ``[start, end)`` character offsets."""
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
