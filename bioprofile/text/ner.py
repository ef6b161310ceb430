"""Gene/protein spans found by a spaCy NER pipeline (scispaCy's biomedical models by default, when installed).

The one part of :mod:`bioprofile.text` that loads a model: spaCy is imported, and a pipeline loaded, only when
:func:`ner_gene_spans` or :func:`load_ner_pipeline` is called. It sits here rather than in ``diagnose`` so that
every user of :func:`~bioprofile.text.gene_entity_spans` (the diagnosis, rewards, response metrics) counts the
same entities.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from bioprofile.errors import BioprofileInputError

__all__ = [
    "GENE_ENTITY_LABELS",
    "SCISPACY_MODELS",
    "default_ner_model",
    "load_ner_pipeline",
    "ner_gene_spans",
]

# scispaCy's biomedical NER models, tried in this order when no pipeline is named
SCISPACY_MODELS: tuple[str, ...] = ("en_ner_jnlpba_md", "en_ner_bionlp13cg_md")
# Entity labels counted as genes/proteins: JNLPBA's PROTEIN, DNA and RNA (its CELL_LINE and CELL_TYPE are
# not genes) and BioNLP13CG's GENE_OR_GENE_PRODUCT. A custom pipeline must use one of these labels.
GENE_ENTITY_LABELS: frozenset[str] = frozenset({"PROTEIN", "DNA", "RNA", "GENE_OR_GENE_PRODUCT"})


@lru_cache(maxsize=1)
def default_ner_model() -> str | None:
    """The pipeline :func:`ner_gene_spans` uses when none is named: the first of :data:`SCISPACY_MODELS` that loads.

    Returns
    -------
    str or None
        The model's package name, or ``None`` when spaCy or every model is missing (the lexicon alone then tags
        entities): a report records it, so counts from machines with and without scispaCy are told apart.
    """
    for name in SCISPACY_MODELS:
        if (
            find_spec(name) is None
        ):  # not installed: skip spaCy's import (seconds) when no model is there to load
            continue
        try:
            _load_ner_pipeline(name)
        except BioprofileInputError:  # not installed: the default is best effort, unlike a named pipeline
            continue
        return name
    return None


def _scispacy_pipeline():
    """The first installed scispaCy NER model, or ``None`` (spaCy or the models missing): tagging is optional."""
    name = default_ner_model()
    return None if name is None else _load_ner_pipeline(name)


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
