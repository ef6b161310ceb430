"""Protein and antibody-target names (CITE-seq ADT panels) -> protein entities, each mapped to its gene(s).

A target is its own entity (kind ``"protein"``, key ``"adt:<target>"``): CD45RA and CD45RO are isoforms of one
gene, PTPRC, and get two keys and two prompts. Mapping a target to genes, in this order:

1. The curated table ``proteins_data/adt_targets.tsv``, for what HGNC aliases cannot say: isoforms (CD45RA,
   CD45RO, CD45RB -> PTPRC), complexes (HLA-DR -> HLA-DRA, HLA-DRB1; TCRab -> TRAC, TRBC1, TRBC2), aliases HGNC
   shares between genes (CD16 -> FCGR3A, CD25 -> IL2RA) and surface immunoglobulins (IgD -> IGHD). Every row names
   its source (HGNC ids and UniProt accessions of its genes). Names match ignoring case, spaces and punctuation.
2. HGNC symbols, previous symbols and aliases through :func:`bioprofile.genes.normalize_genes` (most CD names are
   HGNC aliases: CD19, CD8 -> CD8A, CD56 -> NCAM1, PD-1 -> PDCD1), then the name without hyphens (LAG-3 -> LAG3).
3. A name in parentheses (``"CD279 (PD-1)"``) is tried the same way when the name before it matches nothing.

A target no step maps is still embedded (its prompt names the target only) and reported; a target whose HGNC
alias names several genes keeps them as candidates and is reported too. Isotype controls (``"Mouse IgG1 kappa
isotype Ctrl"``, ``"IgG2a_control"``) bind nothing in the cell: they are reported and skipped unless asked for.
Vendor decorations are dropped before matching (``"CD3_TotalSeqB"``, ``"ADT_CD4"``, ``"anti-human CD19"``).
"""

from __future__ import annotations

import csv
import re
import textwrap
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import ClassVar

from bioprofile.entities import EntityResolution
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import CaseOnlyMatchWarning, Gene, normalize_genes
from bioprofile.readers import csv_rows, read_text_file

__all__ = [
    "KEY_PREFIX",
    "Protein",
    "ProteinResolution",
    "TargetRecord",
    "clean_target_name",
    "curated_targets",
    "curated_targets_path",
    "is_isotype_control",
    "normalize_proteins",
    "read_target_list",
]

#: Namespace of protein store keys, so they cannot collide with gene keys (HGNC ids).
KEY_PREFIX = "adt:"

# Vendor and pipeline decorations around a target name: "CD3_TotalSeqB", "ADT_CD4", "CD8a-CITE", "anti-human CD19".
_DECORATIONS = (
    re.compile(r"[\s_.-]+(?:totalseq[\s_-]*[a-d]?|adt|cite(?:seq)?|antibody)$", re.IGNORECASE),
    re.compile(r"^(?:adt|cite(?:seq)?)[\s_.:-]+", re.IGNORECASE),
    re.compile(r"^anti[\s_-]+(?:human[\s_-]+)?", re.IGNORECASE),
)
_PARENTHESISED = re.compile(r"^(?P<main>.+?)\s*\((?P<alt>[^()]+)\)$")
# Isotype controls: named so by vendors, or a bare mouse/rat IgG subclass ("IgG1", "IgG2a_control").
_ISOTYPE = re.compile(
    r"isotype|(?:^|[\s_-])(?:ctrl|control)(?:$|[\s_-])"
    r"|^(?:mouse|rat|hamster|armenian[\s_-]*hamster|ms|rt)[\s_-]*ig[gm]"
    r"|^igg[1-3][a-c]?(?:[\s_-]*(?:kappa|lambda|k|l|κ|λ))?$",
    re.IGNORECASE,
)
_TARGET_COLUMNS = ("target", "antibody", "protein", "adt", "name", "id")


@dataclass(frozen=True)
class TargetRecord:
    """One row of the curated target table.

    Attributes
    ----------
    target
        Canonical target name (``"CD45RA"``): the key's suffix and the prompt's symbol.
    aliases
        Other spellings that mean this target.
    genes
        Approved HGNC symbols of the gene(s) the target's protein comes from.
    relation
        How target and genes relate: ``"isoform"``, ``"complex"``, ``"shared alias"`` or ``"immunoglobulin"``.
    name
        Full name of the target, for prompts.
    description
        One or two sentences on what the target is, for prompts.
    source
        Where the mapping comes from (HGNC ids, UniProt accessions).
    """

    target: str
    aliases: tuple[str, ...]
    genes: tuple[str, ...]
    relation: str
    name: str
    description: str
    source: str


@dataclass(frozen=True)
class Protein:
    """One antibody target; an entity (:class:`bioprofile.entities.EntityLike`) of kind ``"protein"``.

    Attributes
    ----------
    target
        The target's name: the curated one where the table has it, else the name as given without vendor
        decorations.
    genes
        The gene(s) its protein comes from; empty when none is known.
    mapped_by
        ``"curated"`` (the curated table), ``"hgnc"`` (an HGNC symbol or alias) or ``None`` (no gene).
    relation
        How target and genes relate (``"isoform"``, ``"complex"``, ... for curated targets; ``"gene"`` for an
        HGNC match), else ``None``.
    description
        A short description of the target (curated targets), else ``None``.
    source
        Where the gene mapping comes from, else ``None``.
    candidates
        Genes an HGNC alias of the target may mean when it means several (then ``genes`` is empty).
    isotype_control
        Whether the target is an isotype control (no antigen in the cell).
    """

    target: str
    genes: tuple[Gene, ...] = ()
    mapped_by: str | None = None
    relation: str | None = None
    description: str | None = None
    source: str | None = None
    candidates: tuple[str, ...] = ()
    isotype_control: bool = False
    full_name: str | None = field(default=None, repr=False)

    #: Every target is an entity of this kind.
    kind: ClassVar[str] = "protein"

    @property
    def key(self) -> str:
        """The store key, ``"adt:<target>"``: one per target, so isoforms of one gene never share a profile."""
        return f"{KEY_PREFIX}{self.target}"

    @property
    def symbol(self) -> str:
        """The target's name (``"CD45RA"``), filled into ``{symbol}`` of a prompt."""
        return self.target

    @property
    def name(self) -> str | None:
        """The full name: the curated one, else the gene's approved name where there is one gene, else ``None``."""
        if self.full_name:
            return self.full_name
        return self.genes[0].name if len(self.genes) == 1 else None

    @property
    def gene_symbols(self) -> list[str]:
        """Approved symbols of :attr:`genes`."""
        return [gene.symbol for gene in self.genes]

    @property
    def details(self) -> str:
        """What a protein prompt adds after the name: the gene(s) and the curated description (``""`` if none)."""
        parts = []
        if self.genes:
            described = ", ".join(f"{g.symbol} ({g.name})" for g in self.genes)
            parts.append(f"{'Genes' if len(self.genes) > 1 else 'Gene'}: {described}.")
        elif self.candidates:
            parts.append(f"Gene: one of {', '.join(self.candidates)}.")
        if self.description:
            parts.append(self.description)
        return " ".join(parts)


@dataclass
class ProteinResolution(EntityResolution):
    """What :func:`normalize_proteins` made of a list of target names: an :class:`EntityResolution` of proteins.

    Attributes
    ----------
    entities
        Unique targets (:class:`Protein`), in the order their first name appeared (also :attr:`proteins`).
    inputs
        Each embedded input name -> the target it became.
    unknown
        Always empty: a target no table knows is still embedded by its name (see :attr:`without_gene`).
    ambiguous
        Always empty: a target whose alias names several genes is embedded with them as candidates.
    without_gene
        Targets mapped to no single gene, in input order (embedded by name; see :attr:`Protein.candidates`).
    isotype_controls
        Input names recognised as isotype controls.
    isotype_controls_skipped
        Whether the isotype controls were left out of :attr:`entities`.
    """

    without_gene: list[str] = field(default_factory=list)
    isotype_controls: list[str] = field(default_factory=list)
    isotype_controls_skipped: bool = True

    nouns: ClassVar[tuple[str, str]] = ("protein target", "protein targets")

    @property
    def proteins(self) -> list[Protein]:
        """The resolved targets (the same list as :attr:`entities`)."""
        return self.entities

    @property
    def n_inputs(self) -> int:
        """Number of distinct names that were given (skipped isotype controls included)."""
        skipped = len(self.isotype_controls) if self.isotype_controls_skipped else 0
        return super().n_inputs + skipped

    def gene_map(self) -> dict[str, list[str]]:
        """Each target -> the approved symbols of its gene(s) (``[]`` where none is known)."""
        return {p.target: p.gene_symbols for p in self.proteins}

    def mapping(self) -> dict[str, dict[str, object]]:
        """Each target -> its genes, HGNC ids, how they were found, relation and source (JSON-ready provenance)."""
        return {
            p.target: {
                "genes": p.gene_symbols,
                "hgnc_ids": [g.hgnc_id for g in p.genes],
                "mapped_by": p.mapped_by,
                "relation": p.relation,
                "candidates": list(p.candidates),
                "isotype_control": p.isotype_control,
                "source": p.source,
            }
            for p in self.proteins
        }

    def report(self) -> str:
        """One line: how many names became targets, how their genes were found, and what was not mapped.

        Returns
        -------
        str
            E.g. ``"30 of 31 ids resolved to 30 protein targets; genes from the curated table for 8, from HGNC for
            21; 1 without a gene, embedded by name: FOO; 1 isotype control skipped: Mouse IgG1 (set
            include_isotype_controls to embed it)"``.
        """
        parts = [super().report()]
        curated = sum(p.mapped_by == "curated" for p in self.proteins)
        hgnc = sum(p.mapped_by == "hgnc" for p in self.proteins)
        parts.append(f"genes from the curated table for {curated}, from HGNC for {hgnc}")
        if self.without_gene:
            described = [
                f"{t} (could be {', '.join(p.candidates)})" if p.candidates else t
                for t, p in ((t, self._by_target(t)) for t in self.without_gene)
            ]
            parts.append(
                f"{len(self.without_gene)} without a gene, embedded by name: {_shortened(described)}"
            )
        if self.isotype_controls:
            noun = "isotype control" if len(self.isotype_controls) == 1 else "isotype controls"
            if self.isotype_controls_skipped:
                parts.append(
                    f"{len(self.isotype_controls)} {noun} skipped: {_shortened(self.isotype_controls)} "
                    f"(set include_isotype_controls to embed {'it' if len(self.isotype_controls) == 1 else 'them'})"
                )
            else:
                parts.append(
                    f"{len(self.isotype_controls)} {noun} embedded: {_shortened(self.isotype_controls)}"
                )
        return "; ".join(parts)

    def _by_target(self, target: str) -> Protein:
        return next(p for p in self.proteins if p.target == target)


def _shortened(items: list[str]) -> str:
    # Long panels would make the one-line report unreadable: cut it at a width, saying that it was cut.
    return textwrap.shorten(", ".join(items), width=240, placeholder=", ...")


def curated_targets_path() -> Path:
    """Path of the curated target table shipped with bioprofile (``proteins_data/adt_targets.tsv``)."""
    return Path(__file__).with_name("proteins_data") / "adt_targets.tsv"


@lru_cache(maxsize=1)
def curated_targets() -> tuple[TargetRecord, ...]:
    """The rows of the curated target table, as :class:`TargetRecord` objects (read once per process).

    Returns
    -------
    tuple of TargetRecord
        One per curated target, in table order.
    """
    path = curated_targets_path()
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    records = []
    for row in csv.DictReader(lines, delimiter="\t"):
        records.append(
            TargetRecord(
                target=row["target"].strip(),
                aliases=_split(row["aliases"]),
                genes=_split(row["genes"]),
                relation=row["relation"].strip(),
                name=row["name"].strip(),
                description=row["description"].strip(),
                source=row["source"].strip(),
            )
        )
    return tuple(records)


def _split(cell: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (cell or "").split("|") if part.strip())


def _match_key(name: str) -> str:
    """A name for matching: lower case, letters and digits only (``"HLA-DR"``, ``"HLA DR"`` -> ``"hladr"``)."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


@lru_cache(maxsize=1)
def _curated_index() -> dict[str, TargetRecord]:
    index: dict[str, TargetRecord] = {}
    for record in curated_targets():
        for spelling in (record.target, *record.aliases):
            index.setdefault(_match_key(spelling), record)
    return index


def clean_target_name(name: str) -> str:
    """A target name without surrounding space and vendor decorations (``"CD3_TotalSeqB"`` -> ``"CD3"``)."""
    cleaned = " ".join(str(name).split())
    for pattern in _DECORATIONS:
        stripped = pattern.sub("", cleaned).strip()
        cleaned = stripped or cleaned
    return cleaned


def is_isotype_control(name: str) -> bool:
    """Whether a target name is an isotype control (``"Mouse IgG1 kappa isotype Ctrl"``, ``"IgG2a_control"``)."""
    return bool(_ISOTYPE.search(clean_target_name(name)))


def normalize_proteins(
    targets: Iterable[str], *, strict: bool = False, include_isotype_controls: bool = False
) -> ProteinResolution:
    """Map antibody-target or protein names to protein entities, each with its gene(s) where one is known.

    Parameters
    ----------
    targets
        Target names as panels write them (``"CD45RA"``, ``"HLA-DR"``, ``"TCRab"``, ``"CD279 (PD-1)"``,
        ``"CD3_TotalSeqB"``), or gene symbols and aliases of proteins. Blank entries are ignored; names that
        become the same target count once.
    strict
        Raise if any target maps to no single gene, instead of embedding it by name and reporting it.
    include_isotype_controls
        Keep isotype controls as targets (by default they are reported and left out).

    Returns
    -------
    ProteinResolution
        Unique targets in first-seen order, the gene mapping, and what was not mapped or was skipped.

    Raises
    ------
    BioprofileInputError
        No target names were given, none is left after skipping isotype controls, or ``strict`` and some target
        has no gene.
    """
    names: list[str] = []
    for raw in targets:
        name = " ".join(str(raw).split())
        if name and name not in names:
            names.append(name)
    if not names:
        raise BioprofileInputError(
            "no target names given; pass antibody targets such as CD45RA", argument="targets"
        )

    resolution = ProteinResolution(isotype_controls_skipped=not include_isotype_controls)
    looked_up = _hgnc_lookup(names)
    seen: dict[str, Protein] = {}
    for name in names:
        if is_isotype_control(name):
            resolution.isotype_controls.append(name)
            if not include_isotype_controls:
                continue
        protein = _resolve_one(name, looked_up)
        if protein.key not in seen:
            seen[protein.key] = protein
            resolution.entities.append(protein)
            if not protein.genes:
                resolution.without_gene.append(protein.target)
        resolution.inputs[name] = protein.target

    if not resolution.entities:
        raise BioprofileInputError(
            f"no target is left to embed: {resolution.report()}", argument="include_isotype_controls"
        )
    if strict and resolution.without_gene:
        raise BioprofileInputError(
            f"{resolution.report()}; add their genes, or drop strict to embed them by name", argument="strict"
        )
    return resolution


def _candidates(name: str) -> list[str]:
    """The spellings tried for a target, in order: as given, without hyphens, then a parenthesised name."""
    cleaned = clean_target_name(name)
    spellings = [cleaned]
    if match := _PARENTHESISED.match(cleaned):
        spellings = [match.group("main"), clean_target_name(match.group("alt"))]
    tried: list[str] = []
    for spelling in spellings:
        for variant in (spelling, re.sub(r"[\s_-]+", "", spelling)):
            if variant and variant not in tried:
                tried.append(variant)
    return tried


@dataclass
class _HgncHits:
    genes: dict[str, Gene]
    ambiguous: dict[str, list[str]]


def _hgnc_lookup(names: list[str]) -> _HgncHits:
    """HGNC matches of every spelling of every name, from one :func:`normalize_genes` call."""
    spellings = list(dict.fromkeys(s for name in names for s in _candidates(name)))
    try:
        with warnings.catch_warnings():
            # antibody names are mixed-case by convention (CD8a, FceRIa): a case-only match is the rule here
            warnings.simplefilter("ignore", CaseOnlyMatchWarning)
            genes = normalize_genes(spellings)
    except BioprofileInputError:  # raised only when no spelling matched a gene: every target is unmapped
        return _HgncHits({}, {})
    by_symbol = {gene.symbol: gene for gene in genes.genes}
    return _HgncHits({s: by_symbol[symbol] for s, symbol in genes.inputs.items()}, dict(genes.ambiguous))


@cache
def _record_genes(record: TargetRecord) -> tuple[Gene, ...]:
    return tuple(normalize_genes(record.genes, strict=True).genes) if record.genes else ()


def _resolve_one(name: str, hits: _HgncHits) -> Protein:
    isotype = is_isotype_control(name)
    spellings = _candidates(name)
    index = _curated_index()
    for spelling in spellings:
        record = index.get(_match_key(spelling))
        if record is not None:
            genes = _record_genes(record)
            return Protein(
                target=record.target,
                genes=genes,
                mapped_by="curated" if genes else None,
                relation=record.relation,
                description=record.description or None,
                source=record.source or None,
                isotype_control=isotype,
                full_name=record.name or None,
            )
    if not isotype:  # an isotype control's name may look like a gene alias; it binds nothing of the cell
        for spelling in spellings:
            if spelling in hits.genes:
                gene = hits.genes[spelling]
                return Protein(
                    target=spellings[0],
                    genes=(gene,),
                    mapped_by="hgnc",
                    relation="gene",
                    source=f"{gene.hgnc_id} (HGNC symbol or alias {spelling})",
                )
        for spelling in spellings:
            if spelling in hits.ambiguous:
                return Protein(target=spellings[0], candidates=tuple(hits.ambiguous[spelling]))
    return Protein(target=spellings[0], isotype_control=isotype)


def read_target_list(path: str | Path) -> list[str]:
    """Read target names from a file, as written (map them with :func:`normalize_proteins`).

    Parameters
    ----------
    path
        A ``.csv`` / ``.tsv`` table with a target column (``target``, ``antibody``, ``protein``, ``adt``,
        ``name`` or ``id``; the first present wins, case-insensitively, so a 10x feature reference works; a
        one-column table without such a header is read as a plain list), or a text file with one name per line
        (names may hold spaces: ``Mouse IgG1 kappa isotype Ctrl``) and ``#`` comments.

    Returns
    -------
    list of str
        Names in file order, duplicates kept.

    Raises
    ------
    BioprofileInputError
        The file cannot be read, its table has no target column, or it holds no names.
    """
    path = Path(path)
    text = read_text_file(path, what="target file", argument="targets_file")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    names: list[str] = []
    if path.suffix.lower() in {".csv", ".tsv"} and lines:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        rows = csv_rows(lines, delimiter=delimiter, path=path, what="target table", argument="targets_file")
        header = [cell.strip().lower() for cell in rows[0]]
        column = next((header.index(c) for c in _TARGET_COLUMNS if c in header), None)
        if column is not None:
            names = [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]
        elif all(len(row) == 1 for row in rows):
            names = [row[0].strip() for row in rows]
        else:
            raise BioprofileInputError(
                f"target table {path} has no target column (found: {', '.join(rows[0])}); name one of them "
                "'target' or 'name'",
                argument="targets_file",
            )
    else:
        names = [line.split("#", 1)[0].strip() for line in lines]
        names = [n for n in names if n]
        if names and names[0].lower() in _TARGET_COLUMNS:
            names = names[1:]
    if not names:
        raise BioprofileInputError(
            f"target file {path} lists no target names; put one per line", argument="targets_file"
        )
    return names
