"""Mutations and drugs in a text: variant notations (HGVS-like, dbSNP ids), drug names by their INN stems or a list.

Regular expressions, no lexicon download: a mutation is written in a few fixed notations (``p.V600E``,
``T790M``, ``p.Gly12Cys``, ``c.1799T>A``, ``rs113488022``), and most drug names end in a stem the WHO's
International Nonproprietary Names assign by class (``-tinib`` kinase inhibitors, ``-mab`` monoclonal antibodies).
Drugs without such a stem (tamoxifen, metformin, sotorasib) are found by name: :func:`drug_name_spans` matches a
list of names, :data:`DRUG_NAMES` by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["DRUG_NAMES", "DRUG_STEMS", "drug_name_spans", "drug_spans", "mutation_spans"]

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

#: Drug names :func:`drug_name_spans` finds by default: cancer and signalling drugs (and the tool compounds that
#: perturbation screens use) whose names carry no stem of :data:`DRUG_STEMS`, so :func:`drug_spans` misses them.
#: Small on purpose; a study of other drugs passes its own list.
DRUG_NAMES: tuple[str, ...] = (
    # hormone therapy
    "tamoxifen", "fulvestrant", "letrozole", "anastrozole", "exemestane", "enzalutamide", "abiraterone",
    "bicalutamide",
    # chemotherapy
    "methotrexate", "fluorouracil", "5-fluorouracil", "5-FU", "gemcitabine", "cytarabine", "capecitabine",
    "azacitidine", "decitabine", "cyclophosphamide", "ifosfamide", "temozolomide", "etoposide", "irinotecan",
    "topotecan", "vincristine", "vinblastine", "vinorelbine", "hydroxyurea", "pemetrexed", "bendamustine",
    "melphalan", "chlorambucil",
    # targeted drugs without a class stem
    "sotorasib", "adagrasib", "venetoclax", "navitoclax", "everolimus", "sirolimus", "temsirolimus",
    "lenalidomide", "thalidomide", "pomalidomide", "vorinostat", "panobinostat", "romidepsin", "tretinoin",
    "all-trans retinoic acid", "arsenic trioxide", "imiquimod",
    # other drugs and tool compounds of perturbation screens
    "metformin", "aspirin", "dexamethasone", "prednisone", "celecoxib", "staurosporine", "wortmannin",
    "nutlin-3", "idasanutlin", "JQ1", "forskolin", "cycloheximide",
)  # fmt: skip


def drug_name_spans(text: str, names: Iterable[str] | None = None) -> list[tuple[int, int, str]]:
    """Drug names of a list in ``text``: whole words, any case (``Tamoxifen``, ``TAMOXIFEN``).

    A name may hold spaces or hyphens (``all-trans retinoic acid``, ``nutlin-3``); it matches only where no letter,
    digit or hyphen touches it on either side, and the longest name wins where names overlap.

    Parameters
    ----------
    text
        The text to tag.
    names
        Drug names (blank ones ignored); ``None`` for :data:`DRUG_NAMES`.

    Returns
    -------
    list of (start, end, name)
        In text order; ``name`` is the list's spelling of the drug found.
    """
    listed = DRUG_NAMES if names is None else names
    pattern, canonical = _drug_name_pattern(tuple(sorted({n.strip() for n in listed if n.strip()})))
    if pattern is None:
        return []
    return [
        (m.start(), m.end(), canonical[" ".join(m.group().split()).casefold()])
        for m in pattern.finditer(text)
    ]


@lru_cache(maxsize=8)  # one list per run, compiled once (a few thousand names compile in milliseconds)
def _drug_name_pattern(names: tuple[str, ...]) -> tuple[re.Pattern | None, dict[str, str]]:
    if not names:
        return None, {}
    # longest first, so "5-fluorouracil" is found whole rather than as "fluorouracil"
    ordered = sorted(names, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(word) for word in name.split()) for name in ordered)
    pattern = re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)
    return pattern, {" ".join(name.split()).casefold(): name for name in ordered}


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
