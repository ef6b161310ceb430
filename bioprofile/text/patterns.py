"""Mutations and drugs in a text: variant notations (HGVS-like, dbSNP ids) and drug names by their INN stems.

Regular expressions, no lexicon download: a mutation is written in a few fixed notations (``p.V600E``,
``T790M``, ``p.Gly12Cys``, ``c.1799T>A``, ``rs113488022``), and most drug names end in a stem the WHO's
International Nonproprietary Names assign by class (``-tinib`` kinase inhibitors, ``-mab`` monoclonal antibodies).
"""

from __future__ import annotations

import re

__all__ = ["DRUG_STEMS", "drug_spans", "mutation_spans"]

_AA1 = "ACDEFGHIKLMNPQRSTVWY"
_AA3 = "Ala|Arg|Asn|Asp|Cys|Gln|Glu|Gly|His|Ile|Leu|Lys|Met|Phe|Pro|Ser|Thr|Trp|Tyr|Val|Ter|Sec"
# Each notation is one named group, so the group that matched is the span's label.
_MUTATION = re.compile(
    r"(?<![\w.])(?:"
    # protein change, three-letter codes, p. required: p.Gly12Cys, p.Leu858Arg, p.Glu746_Ala750del
    rf"(?P<protein3>p\.\(?(?:{_AA3})\d+(?:_(?:{_AA3})\d+)?(?:{_AA3}|\*|=|fs(?:Ter\d+|\*\d+)?|del|dup|ins(?:{_AA3})+)\)?)"
    # protein change, one-letter codes: with p. any position (p.V600E), without it two or more digits
    # (T790M, G12C), so that words such as "T1D" or "E2F" are not read as mutations
    rf"|(?P<protein1>(?:p\.[{_AA1}]\d+|[{_AA1}]\d{{2,}})(?:[{_AA1}*X]|fs\*?\d*|del|dup))"
    # coding DNA change: c.1799T>A, c.35_36delGC, c.2573+1G>A
    r"|(?P<cdna>c\.\d+(?:[+-]\d+)?(?:_\d+(?:[+-]\d+)?)?(?:[ACGT]>[ACGT]|del[ACGT]*|dup[ACGT]*|ins[ACGT]+))"
    # dbSNP reference SNP id
    r"|(?P<snp>rs\d{3,})"
    r")(?![\w>])"
)

#: Drug-name stems (WHO INN) and the class each names, matched at the end of a word of at least three more letters.
DRUG_STEMS: dict[str, str] = {
    "tinib": "kinase inhibitor",
    "rafenib": "kinase inhibitor",
    "ciclib": "CDK4/6 inhibitor",
    "parib": "PARP inhibitor",
    "lisib": "PI3K inhibitor",
    "zomib": "proteasome inhibitor",
    "degib": "hedgehog pathway inhibitor",
    "mab": "monoclonal antibody",
    "platin": "platinum compound",
    "taxel": "taxane",
    "rubicin": "anthracycline",
    "statin": "HMG-CoA reductase inhibitor",
    "sartan": "angiotensin II receptor antagonist",
    "pril": "ACE inhibitor",
    "olol": "beta blocker",
    "prazole": "proton pump inhibitor",
    "afil": "PDE5 inhibitor",
    "mycin": "antibiotic",
    "cillin": "penicillin",
    "vir": "antiviral",
}
# One named group per stem, so the group that matched names the class (no stem ends another one).
_DRUG = re.compile(
    r"\b(?P<name>[A-Za-z][a-z]{2,}(?:"
    + "|".join(f"(?P<s{i}>{stem})" for i, stem in enumerate(DRUG_STEMS))
    + r"))\b"
)
_STEMS = list(DRUG_STEMS)


def mutation_spans(text: str) -> list[tuple[int, int, str]]:
    """Variant notations in ``text``: protein and coding-DNA changes, and dbSNP ids.

    A one-letter protein change without ``p.`` needs two or more digits (``G12C``), so ``T1D`` or ``E2F`` are not
    read as mutations.

    Parameters
    ----------
    text
        A profile, a summary or any prose.

    Returns
    -------
    list of (start, end, kind)
        In text order; ``kind`` is ``"protein"`` (``p.V600E``, ``T790M``, ``p.Gly12Cys``, ``p.L858fs``),
        ``"cdna"`` (``c.1799T>A``, ``c.35_36delGC``) or ``"snp"`` (``rs113488022``).
    """
    spans = []
    for match in _MUTATION.finditer(text):
        kind = "protein" if match.lastgroup in ("protein1", "protein3") else match.lastgroup
        spans.append((match.start(), match.end(), kind))
    return spans


def drug_spans(text: str) -> list[tuple[int, int, str]]:
    """Drug names in ``text``, recognised by an INN stem (:data:`DRUG_STEMS`) ending a word.

    The stem must follow at least three letters (so "April" is no ACE inhibitor); a brand name, which carries no
    INN stem, is not found.

    Parameters
    ----------
    text
        Prose naming drugs by their international nonproprietary names (imatinib, trastuzumab).

    Returns
    -------
    list of (start, end, drug class)
        In text order, the class being the stem's (``"kinase inhibitor"`` for imatinib).
    """
    spans = []
    for match in _DRUG.finditer(text):
        stem = next(name for name, value in match.groupdict().items() if name.startswith("s") and value)
        spans.append((match.start(), match.end(), DRUG_STEMS[_STEMS[int(stem[1:])]]))
    return spans
