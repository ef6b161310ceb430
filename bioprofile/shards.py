"""Shards for job arrays: a stable split of the entities by a hash of their key, and the merge of shard tables.

A run over many genes is cut into ``N`` shards, each embedded by its own job (a SLURM array task, say) with
``shard=(i, N)``: entity ``e`` belongs to shard ``sha256(key(e)) mod N``, so a gene lands in the same shard
whatever the order or length of the list. Shards are numbered from 0 (``i`` in ``[0, N)``), as the tasks of a
SLURM array declared 0 to N-1 are. Each shard's table records its shard in
``provenance["shard"]``; :func:`merge_tables` joins the ``N`` tables into the table one unsharded run writes,
refusing tables of other runs, overlaps and gaps.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.display import display_value
from bioprofile.embeddings import EntityEmbeddings
from bioprofile.entities import EntityResolution, entity_key
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path

__all__ = [
    "PROVENANCE_KEYS",
    "Shard",
    "as_shard",
    "list_fingerprint",
    "merge_shard_files",
    "merge_tables",
    "record_rows",
    "select_shard",
    "shard_of",
]

#: Provenance every shard of one run shares: shards that differ in any of these come from different runs.
PROVENANCE_KEYS = ("source", "generator", "generation_params", "template", "encoder", "entity_kind")
_SHARD_TEXT = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
# Lists of entities, per merged table, summed or joined rather than taken from the first shard.
_JOINED_LISTS = ("entities_without_text", "genes_without_text", "targets_without_gene")
_SUMMED_COUNTS = ("n_entities", "n_genes", "truncated_texts")


def shard_of(key: str, count: int) -> int:
    """The shard (0 to ``count - 1``) of the entity with store key ``key``: sha256 of the key, mod ``count``.

    Parameters
    ----------
    key
        The entity's store key (a gene's HGNC id, ``"adt:CD45RA"``...), stable across renames.
    count
        The number of shards.

    Returns
    -------
    int
        The same shard for the same key and count, on every machine and Python version.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, numbered from 0.

    Parameters
    ----------
    index
        Which shard: ``0 <= index < count`` (the task id of a SLURM array declared 0 to N-1).
    count
        How many shards the entities are split into (``N >= 1``).
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (self.index, self.count)):
            raise BioprofileInputError(
                f"a shard is two whole numbers i/N, got {self.index!r}/{self.count!r}", argument="shard"
            )
        if self.count < 1:
            raise BioprofileInputError(
                f"shard {self.index}/{self.count}: N must be at least 1", argument="shard"
            )
        if not 0 <= self.index < self.count:
            raise BioprofileInputError(
                f"shard {self.index}/{self.count}: i counts from 0 and must be below N (0 to {self.count - 1})",
                argument="shard",
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """The shard ``"i/N"`` names (``"0/8"`` is the first of eight).

        Raises
        ------
        BioprofileInputError
            ``text`` is not ``i/N`` with ``0 <= i < N``.
        """
        match = _SHARD_TEXT.fullmatch(text)
        if match is None:
            raise BioprofileInputError(
                f"shard {display_value(text)} is not i/N (e.g. 0/8: the first of 8 shards, counted from 0)",
                argument="shard",
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def holds(self, key: str) -> bool:
        """Whether the entity with store key ``key`` belongs to this shard."""
        return shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def as_shard(value: Shard | tuple[int, int] | str | None) -> Shard | None:
    """A :class:`Shard` from a shard, an ``(i, N)`` pair or an ``"i/N"`` text; ``None`` stays ``None`` (no split).

    Raises
    ------
    BioprofileInputError
        The value names no valid shard.
    """
    if value is None or isinstance(value, Shard):
        return value
    if isinstance(value, str):
        return Shard.parse(value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return Shard(*value)
    raise BioprofileInputError(
        f"shard {display_value(value)} is not (i, N) nor 'i/N' (e.g. (0, 8): the first of 8 shards)",
        argument="shard",
    )


def list_fingerprint(keys: Sequence[str]) -> str:
    """sha256 of the resolved entity keys in order: shards of one run share it, shards of another list do not."""
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()


def select_shard(
    resolution: EntityResolution, shard: Shard | tuple[int, int] | str | None
) -> tuple[EntityResolution, dict[str, Any] | None]:
    """The part of ``resolution`` in ``shard``, and the shard's provenance (``None`` and no provenance: all of it).

    Parameters
    ----------
    resolution
        Every resolved entity of the run, in input order (the same list in every shard's job).
    shard
        The shard to keep (see :func:`as_shard`).

    Returns
    -------
    tuple
        The resolution with only the shard's entities (same type, other fields kept), and ``{"index", "count",
        "entities", "of", "list_sha256", "positions"}``: the shard, how many of how many resolved entities it holds,
        the list's fingerprint and each kept entity's position in the whole list (``positions`` is filled in by
        :func:`record_rows`).

    Raises
    ------
    BioprofileInputError
        The shard holds none of the entities (too many shards for the list).
    """
    chosen = as_shard(shard)
    if chosen is None:
        return resolution, None
    keys = [entity_key(e) for e in resolution.entities]
    kept = [e for e, key in zip(resolution.entities, keys, strict=True) if chosen.holds(key)]
    if not kept:
        raise BioprofileInputError(
            f"shard {chosen} holds none of the {len(keys)} resolved entities: split them into fewer shards",
            argument="shard",
        )
    info = {
        "index": chosen.index,
        "count": chosen.count,
        "entities": len(kept),
        "of": len(keys),
        "list_sha256": list_fingerprint(keys),
        "positions": {key: k for k, key in enumerate(keys) if chosen.holds(key)},
    }
    return replace(resolution, entities=kept), info


def record_rows(table: EntityEmbeddings, info: dict[str, Any] | None) -> EntityEmbeddings:
    """Record the shard ``info`` of :func:`select_shard` in ``table``'s provenance, with its rows' positions.

    Parameters
    ----------
    table
        The shard's table (rows: the shard's entities that got a text).
    info
        The shard provenance :func:`select_shard` returned; ``None`` leaves the table as it is.

    Returns
    -------
    EntityEmbeddings
        ``table``, its ``provenance["shard"]`` set (``positions``: each row's place in the whole list).
    """
    if info is not None:
        positions = info["positions"]
        table.provenance["shard"] = {**info, "positions": [positions[key] for key in table.ids]}
    return table


def merge_tables(
    tables: Sequence[EntityEmbeddings], *, names: Sequence[str] | None = None
) -> EntityEmbeddings:
    """Join the shard tables of one run into the table the unsharded run writes: its rows, in its order.

    Parameters
    ----------
    tables
        Every shard's table (written with a shard), in any order.
    names
        What to call each table in messages (its file name); default ``"table 0"``, ``"table 1"``...

    Returns
    -------
    EntityEmbeddings
        The rows of all shards in the order of the whole list; provenance of the first shard with the counts and
        lists of all, ``"shard"`` replaced by ``"merged_shards"`` (N and the list fingerprint).

    Raises
    ------
    BioprofileInputError
        A table records no shard; the tables differ in provenance (:data:`PROVENANCE_KEYS`, N or the entity list);
        a shard is given twice or an entity is in two tables; or shards are missing (named).
    """
    names = list(names) if names is not None else [f"table {k}" for k in range(len(tables))]
    if not tables:
        raise BioprofileInputError(
            "no shard tables given: pass the N tables of a sharded run", argument="tables"
        )
    shards = [_shard_record(table, name) for table, name in zip(tables, names, strict=True)]
    _check_same_run(tables, shards, names)
    _check_no_overlap(tables, shards, names)
    count = shards[0]["count"]
    missing = sorted(set(range(count)) - {s["index"] for s in shards})
    if missing:
        raise BioprofileInputError(
            f"missing shards {', '.join(map(str, missing))} of {count} (indices from 0): run them, then merge all "
            f"{count}",
            argument="tables",
        )
    rows = sorted(
        (position, t, r) for t, shard in enumerate(shards) for r, position in enumerate(shard["positions"])
    )
    merged = EntityEmbeddings(
        ids=[tables[t].ids[r] for _, t, r in rows],
        symbols=[tables[t].symbols[r] for _, t, r in rows],
        texts=[tables[t].texts[r] for _, t, r in rows],
        vectors=np.stack([tables[t].vectors[r] for _, t, r in rows]),
        provenance=_merged_provenance(tables, shards),
    )
    return merged


def merge_shard_files(
    output: str | Path, shards: Sequence[str | Path], *, format: str | None = None, overwrite: bool = False
) -> EntityEmbeddings:
    """Read shard tables (any format :meth:`EntityEmbeddings.read` reads), merge them, write one table atomically.

    Parameters
    ----------
    output
        The merged table to write (checked before any shard is read).
    shards
        The shard tables' files.
    format
        The output's format; default the one its suffix names.
    overwrite
        Replace an existing ``output``.

    Returns
    -------
    EntityEmbeddings
        The merged table, as written (see :func:`merge_tables`; nothing is written when it refuses).
    """
    output = Path(output)
    check_output_path(output, overwrite=overwrite)
    paths = [Path(p) for p in shards]
    if len(set(paths)) != len(paths):
        twice = sorted({str(p) for p in paths if paths.count(p) > 1})
        raise BioprofileInputError(f"shard file given twice: {', '.join(twice)}", argument="shards")
    tables = [EntityEmbeddings.read(p) for p in paths]
    merged = merge_tables(tables, names=[p.name for p in paths])
    merged.write(output, format=format, overwrite=overwrite)
    return merged


def _shard_record(table: EntityEmbeddings, name: str) -> dict[str, Any]:
    shard = table.provenance.get("shard")
    fields = ("index", "count", "list_sha256", "positions")
    if not isinstance(shard, dict) or any(key not in shard for key in fields):
        raise BioprofileInputError(
            f"{display_value(name)} records no shard: it was not written as a shard of a sharded run",
            argument="tables",
        )
    if len(shard["positions"]) != len(table):
        raise BioprofileInputError(
            f"{display_value(name)} records {len(shard['positions'])} row positions for {len(table)} rows: "
            "write the shard again",
            argument="tables",
        )
    return shard


def _check_same_run(tables: Sequence[EntityEmbeddings], shards: list[dict], names: list[str]) -> None:
    """Refuse tables whose shared provenance, N or entity list differ from the first's, naming both tables."""
    first = {key: tables[0].provenance.get(key) for key in PROVENANCE_KEYS}
    for table, shard, name in zip(tables[1:], shards[1:], names[1:], strict=True):
        differing = [key for key in PROVENANCE_KEYS if table.provenance.get(key) != first[key]]
        if shard["count"] != shards[0]["count"]:
            differing.append("shard count N")
        if shard["list_sha256"] != shards[0]["list_sha256"]:
            differing.append("entity list")
        if differing:
            raise BioprofileInputError(
                f"{display_value(name)} and {display_value(names[0])} are shards of different runs (they differ in "
                f"{', '.join(differing)}): merge the shards of one run",
                argument="tables",
            )


def _check_no_overlap(tables: Sequence[EntityEmbeddings], shards: list[dict], names: list[str]) -> None:
    """Refuse a shard given twice and an entity held by two tables, naming them."""
    seen_index: dict[int, str] = {}
    for shard, name in zip(shards, names, strict=True):
        index = shard["index"]
        if index in seen_index:
            raise BioprofileInputError(
                f"shard {index}/{shard['count']} given twice: {display_value(seen_index[index])} and "
                f"{display_value(name)}; keep one",
                argument="tables",
            )
        seen_index[index] = name
    owner: dict[str, str] = {}
    for table, name in zip(tables, names, strict=True):
        for key in table.ids:
            if key in owner:
                raise BioprofileInputError(
                    f"{display_value(key)} is in two shards: {display_value(owner[key])} and "
                    f"{display_value(name)}; merge the shards of one run",
                    argument="tables",
                )
            owner[key] = name


def _merged_provenance(tables: Sequence[EntityEmbeddings], shards: list[dict]) -> dict[str, Any]:
    # in shard order, whatever order the tables were given in
    tables = [table for _, table in sorted(zip((s["index"] for s in shards), tables, strict=True))]
    provenance = {key: value for key, value in tables[0].provenance.items() if key != "shard"}
    for key in _SUMMED_COUNTS:
        if key in provenance:
            provenance[key] = sum(int(t.provenance.get(key, 0)) for t in tables)
    for key in _JOINED_LISTS:
        if key in provenance:
            provenance[key] = [item for t in tables for item in t.provenance.get(key, [])]
    if isinstance(provenance.get("protein_targets"), dict):
        provenance["protein_targets"] = {
            target: value for t in tables for target, value in t.provenance.get("protein_targets", {}).items()
        }
    provenance["merged_shards"] = {"count": shards[0]["count"], "list_sha256": shards[0]["list_sha256"]}
    return provenance
