"""Gene/protein mentions in a text: HGNC approved symbols (a lexicon), plus the spans of a spaCy NER pipeline."""

from __future__ import annotations

import re
from pathlib import Path

from bioprofile.genes import hgnc_symbols
from bioprofile.text.ner import ner_gene_spans

__all__ = ["ENGLISH_WORD_SYMBOLS", "gene_entity_spans", "lexicon_gene_spans"]

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


def lexicon_gene_spans(text: str, symbols: frozenset[str] | None = None) -> list[tuple[int, int, str]]:
    """Words of ``text`` that are HGNC approved symbols (the lexicon side of :func:`gene_entity_spans`).

    A word (letters and digits, possibly joined by inner ``-`` or ``.``) is an entity when it equals an
    approved symbol exactly (case-sensitive), is at least 2 characters long and is not in
    :data:`ENGLISH_WORD_SYMBOLS`.

    Parameters
    ----------
    text
        The text to tag.
    symbols
        Approved symbols to match; ``None`` reads them with :func:`bioprofile.genes.hgnc_symbols`.

    Returns
    -------
    list of tuple
        ``(start, end, word)`` character spans, in text order.
    """
    symbols = hgnc_symbols() if symbols is None else symbols
    return [
        (match.start(), match.end(), match.group())
        for match in _WORD.finditer(text)
        if len(match.group()) >= 2 and match.group() in symbols and match.group() not in ENGLISH_WORD_SYMBOLS
    ]


def gene_entity_spans(
    text: str, symbols: frozenset[str] | None = None, *, ner_model: str | Path | None = None
) -> list[tuple[int, int, str]]:
    """Gene/protein mentions in ``text``: the lexicon's (:func:`lexicon_gene_spans`) plus spaCy NER spans.

    Parameters
    ----------
    text, symbols
        As for :func:`lexicon_gene_spans`.
    ner_model
        spaCy pipeline whose gene/protein spans are added (see :func:`~bioprofile.text.ner.ner_gene_spans`): an
        installed package name or a directory written by ``nlp.to_disk``. ``None`` uses ``en_ner_jnlpba_md`` or
        ``en_ner_bionlp13cg_md`` when installed, else the lexicon alone.

    Returns
    -------
    list of (start, end, mention)
        Character spans in text order, without repeats.
    """
    spans = lexicon_gene_spans(text, symbols)
    spans.extend(ner_gene_spans(text, ner_model))
    return sorted(set(spans))
