"""Profile and vector rows added to a store, checked, all or nothing: the core of cache import and cache merge.

:func:`add_rows` adds rows read from elsewhere (an export file, :func:`bioprofile.cache_admin.import_cache`; other
stores, :func:`merge_stores`) in one transaction, refusing rows that disagree among themselves or with the store.
:func:`merge_stores` joins the stores of a sharded run (one per job, :mod:`bioprofile.shards`) into one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store
from bioprofile.store_repair import stored_widths, vector_problem

__all__ = [
    "PROFILE_COLUMNS",
    "VECTOR_COLUMNS",
    "TransferResult",
    "add_rows",
    "is_profile_row",
    "is_vector_row",
    "merge_stores",
]

#: The columns of a profile row, in the order rows are passed around.
PROFILE_COLUMNS = ("entity", "template", "generator", "params", "text", "created")
#: The columns of a vector row.
VECTOR_COLUMNS = ("text_sha256", "encoder", "shape", "dim", "vector")
# The store's file inside a --cache-dir folder.
_STORE_FILE = "store.sqlite"


@dataclass(frozen=True)
class TransferResult:
    """What :func:`~bioprofile.cache_admin.export_cache` wrote, or an import or merge added.

    Attributes
    ----------
    path
        The export file (for a merge: the target store).
    profiles, vectors
        Entries written to the file (export) or added to the store (import, merge).
    identical
        Import and merge: entries the store already held, unchanged.
    replaced
        Import and merge: entries that differed and were replaced (only with ``overwrite``).
    """

    path: Path
    profiles: int
    vectors: int
    identical: int = 0
    replaced: int = 0


def is_profile_row(row: tuple) -> bool:
    """Whether ``row`` (:data:`PROFILE_COLUMNS`) is a whole profile row: texts where texts go, params a JSON object."""
    if len(row) != len(PROFILE_COLUMNS) or not all(isinstance(value, str) for value in row[:5]):
        return False
    try:
        return isinstance(json.loads(row[3]), dict)
    except ValueError:
        return False


def is_vector_row(row: tuple) -> bool:
    """Whether ``row`` (:data:`VECTOR_COLUMNS`) is a servable vector: a sha256, an encoder, 1-D finite float32s."""
    if len(row) != len(VECTOR_COLUMNS):
        return False
    digest, encoder, shape, dim, blob = row
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        return False
    if not (isinstance(encoder, str) and encoder and isinstance(shape, str) and isinstance(blob, bytes)):
        return False
    # one vector per text: 1-D, not empty, its bytes those of its shape, every value finite
    return "," not in shape and vector_problem(shape, dim, blob, None) is None


def _check_rows(source: Any, profiles: list[tuple], vectors: list[tuple], widths: dict[str, int]) -> None:
    """Refuse rows that disagree among themselves or with the store, before anything is written.

    Each key at most once (or twice with the same content), and each encoder's vectors of one width: the width
    the store already holds for it (``widths``), else the first row's.
    """
    seen: dict[tuple, Any] = {}
    for kind, rows, size in (("profile", profiles, 4), ("vector", vectors, 2)):
        for row in rows:
            key, content = (kind, *row[:size]), row[size:]
            if key in seen and seen[key] != content:
                shown = display_value(row[0])
                raise BioprofileInputError(
                    f"{source} holds the {kind} of {shown} twice with different contents: nothing imported",
                    argument="input_path",
                )
            seen[key] = content
    expected = dict(widths)
    for _, encoder, _, dim, _ in vectors:
        width = expected.setdefault(encoder, dim)
        if dim != width:
            where = "the store holds" if encoder in widths else "the file's first has"
            raise BioprofileInputError(
                f"{source} holds vectors of width {dim} for {display_value(encoder)}, whose vectors {where} width "
                f"{width}: nothing imported",
                argument="input_path",
            )


def add_rows(
    store: Store, profiles: list[tuple], vectors: list[tuple], *, source: Any, overwrite: bool = False
) -> TransferResult:
    """Add checked profile and vector rows to ``store`` in one transaction: all of them, or none.

    Parameters
    ----------
    store
        The store to add to.
    profiles, vectors
        Rows of :data:`PROFILE_COLUMNS` and :data:`VECTOR_COLUMNS` (checked with :func:`is_profile_row` and
        :func:`is_vector_row` by the caller, who knows where they came from).
    source
        Where the rows came from (a file, stores), for messages.
    overwrite
        Replace stored entries that differ from the given ones; without it such a difference stops everything.

    Returns
    -------
    TransferResult
        Entries added, already there unchanged, and replaced (``path``: ``source``).

    Raises
    ------
    BioprofileInputError
        A key is given twice with different contents, an encoder's vectors have two widths, or (without
        ``overwrite``) a row differs from the stored one. Nothing is written then.
    """
    with store.reading() as conn:
        widths = stored_widths(conn)
    _check_rows(source, profiles, vectors, widths)
    # an identical row given twice is one row
    profiles, vectors = list(dict.fromkeys(profiles)), list(dict.fromkeys(vectors))
    with store.reading() as conn:
        stored_texts = {
            tuple(row[:4]): row[4]
            for row in conn.execute("SELECT entity, template, generator, params, text FROM profiles")
        }
        stored_vectors = {
            (digest, encoder): (shape, bytes(blob))
            for digest, encoder, shape, blob in conn.execute(
                "SELECT text_sha256, encoder, shape, vector FROM vectors"
            )
        }
    new_profiles, new_vectors, identical, differing = [], [], 0, []
    for row in profiles:
        old = stored_texts.get(tuple(row[:4]))
        if old is None:
            new_profiles.append(row)
        elif old == row[4]:
            identical += 1
        else:
            differing.append(("profile", row[2], row[0], row))
    for row in vectors:
        old = stored_vectors.get((row[0], row[1]))
        if old is None:
            new_vectors.append(row)
        elif old == (row[2], row[4]):
            identical += 1
        else:
            differing.append(("vector", row[1], row[0][:12], row))
    if differing and not overwrite:
        kind, owner, key, _ = differing[0]
        raise BioprofileInputError(
            f"{len(differing)} entries of {source} differ from those in the store {store.path} (first: the {kind} "
            f"of {key} by {owner}): nothing imported; set overwrite to replace the stored ones with the file's",
            argument="overwrite",
        )
    with store.writing() as conn:
        conn.executemany(
            "INSERT INTO profiles (entity, template, generator, params, text, created) "
            "VALUES (?, ?, ?, ?, ?, COALESCE(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))) "
            "ON CONFLICT (entity, template, generator, params) DO UPDATE SET text = excluded.text",
            new_profiles + [row for kind, *_, row in differing if kind == "profile"],
        )
        conn.executemany(
            "INSERT INTO vectors (text_sha256, encoder, shape, dim, vector) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (text_sha256, encoder) DO UPDATE SET shape = excluded.shape, dim = excluded.dim, "
            "vector = excluded.vector",
            new_vectors + [row for kind, *_, row in differing if kind == "vector"],
        )
    return TransferResult(Path(str(source)), len(new_profiles), len(new_vectors), identical, len(differing))


def merge_stores(store: Store, shards: Sequence[str | Path], *, overwrite: bool = False) -> TransferResult:
    """Add every profile and vector of the shard stores to ``store``, in one transaction: all, or nothing.

    The stores of a sharded run (one per job, :mod:`bioprofile.shards`) hold disjoint entities; rows of different
    models or encoders never conflict (a store keys texts by model, template and decoding settings, vectors by
    encoder). Rows are checked as an import checks an export's.

    Parameters
    ----------
    store
        The store to add to (open it on a local disk).
    shards
        The shard stores: each a cache folder (holding ``store.sqlite``) or the ``store.sqlite`` file. They are
        only read.
    overwrite
        Replace entries of ``store`` that differ from the shards'. Shards that differ among themselves are always
        refused.

    Returns
    -------
    TransferResult
        Entries added, already there unchanged, and replaced; ``path`` the target store.

    Raises
    ------
    BioprofileInputError
        A shard store is missing or unreadable, or the target itself; a row is malformed or its vector unfit; two
        shards hold one key with different contents (both named); or (without ``overwrite``) a row differs from
        the target store's.
    """
    paths = [_store_file(Path(p)) for p in shards]
    if not paths:
        raise BioprofileInputError("no shard stores given", argument="shards")
    target = Path(store.path).resolve()
    for path in paths:
        if path.resolve() == target:
            raise BioprofileInputError(
                f"{path} is the store merged into: give the shard stores only", argument="shards"
            )
    owners: dict[tuple, tuple[Path, tuple]] = {}
    profiles: list[tuple] = []
    vectors: list[tuple] = []
    for path in paths:
        shard_profiles, shard_vectors = _read_store(path)
        for kind, rows, size in (("profile", shard_profiles, 4), ("vector", shard_vectors, 2)):
            for row in rows:
                key, content = (kind, *row[:size]), row[size:]
                first = owners.setdefault(key, (path, content))
                if first[1] != content:
                    raise BioprofileInputError(
                        f"{first[0]} and {path} hold the {kind} of {display_value(row[0])} with different contents: "
                        "nothing merged",
                        argument="shards",
                    )
        profiles += shard_profiles
        vectors += shard_vectors
    source = f"{len(paths)} shard stores"
    result = add_rows(store, profiles, vectors, source=source, overwrite=overwrite)
    return TransferResult(
        Path(store.path), result.profiles, result.vectors, result.identical, result.replaced
    )


def _store_file(path: Path) -> Path:
    """The store file a shard argument names: a cache folder's ``store.sqlite``, or the file itself."""
    file = path / _STORE_FILE if path.is_dir() else path
    if not file.is_file():
        raise BioprofileInputError(
            f"no store at {file}: give a cache folder (holding {_STORE_FILE}) or its {_STORE_FILE}",
            argument="shards",
        )
    return file


def _read_store(path: Path) -> tuple[list[tuple], list[tuple]]:
    """The checked profile and vector rows of the store file ``path``, opened read-only."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            profiles = conn.execute(f"SELECT {', '.join(PROFILE_COLUMNS)} FROM profiles").fetchall()
            vectors = [
                (digest, encoder, shape, dim, bytes(blob))
                for digest, encoder, shape, dim, blob in conn.execute(
                    f"SELECT {', '.join(VECTOR_COLUMNS)} FROM vectors"
                )
            ]
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise BioprofileInputError(
            f"{path} is not a readable store ({' '.join(str(err).split())[:120]}): give a store bioprofile wrote",
            argument="shards",
        ) from None
    for kind, rows, check in (("profile", profiles, is_profile_row), ("vector", vectors, is_vector_row)):
        bad = next((k for k, row in enumerate(rows) if not check(row)), None)
        if bad is not None:
            raise BioprofileInputError(
                f"{path}: {kind} row {bad} is incomplete or malformed (or its vector unfit): nothing merged",
                argument="shards",
            )
    return profiles, vectors
