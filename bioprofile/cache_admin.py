"""The store as a user manages it: what it holds, pruning, and moving texts and vectors between machines.

:func:`cache_info` counts what the store holds per generator (model) and per encoder; :func:`prune_cache` removes
the profiles of one model or older than some days (with the vectors only they used), or the vectors of one
encoder; :func:`export_cache` writes texts and vectors to one parquet file and :func:`import_cache` reads such a
file into another store. An export is a data file (parquet: reading it runs no code, unlike a pickle), and an
import never replaces an entry that differs from the stored one unless told to.

Model and encoder patterns match an id exactly, by its name before ``@`` (``smollm2-135m-instruct`` matches
``smollm2-135m-instruct@3f2a...``), or as a shell glob (``openai:*``).
"""

from __future__ import annotations

import fnmatch
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bioprofile._version import __version__
from bioprofile.atomic import atomic_path
from bioprofile.cache_rows import (
    PROFILE_COLUMNS,
    VECTOR_COLUMNS,
    TransferResult,
    add_rows,
    is_profile_row,
    is_vector_row,
)
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path
from bioprofile.store import Store, text_hash
from bioprofile.store_repair import stored_widths, vector_problem

__all__ = [
    "EXPORT_FORMAT",
    "CacheInfo",
    "PruneResult",
    "PruneRule",
    "TransferResult",
    "cache_info",
    "export_cache",
    "id_matches",
    "import_cache",
    "prune_cache",
]

#: The ``format`` recorded in an export's parquet metadata; an import refuses files without it.
EXPORT_FORMAT = "bioprofile-cache-export/1"
# The store writes its timestamps in this form (UTC, so they sort as text).
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_PROFILE_COLUMNS = PROFILE_COLUMNS
_VECTOR_COLUMNS = VECTOR_COLUMNS
# What the sibling folders of the store under the cache root hold (sizes shown by cache_info).
_CACHE_FOLDERS = ("models", "data", "hgnc")


def id_matches(identifier: str, pattern: str) -> bool:
    """Whether a generator or encoder id matches a pattern: exactly, by its name before ``@``, or as a glob."""
    return (
        identifier == pattern
        or identifier.split("@", 1)[0] == pattern
        or fnmatch.fnmatchcase(identifier, pattern)
    )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return 0


def _store_bytes(path: Path) -> int:
    """The store's size on disk, with its write-ahead log and shared-memory files."""
    return sum(_size(Path(f"{path}{suffix}")) for suffix in ("", "-wal", "-shm"))


@dataclass(frozen=True)
class CacheInfo:
    """What a store holds.

    Attributes
    ----------
    path
        The store's SQLite file.
    exists
        Whether there is a store at ``path`` (nothing else is filled in when not).
    size_bytes
        The file's size with its write-ahead log.
    journal_mode
        ``"wal"`` on a local disk; another mode means the file system refused WAL (a network file system?).
    generators
        Per generator id: ``profiles`` (texts), ``templates`` (distinct), ``oldest`` and ``newest`` (UTC times).
    encoders
        Per encoder id: ``vectors``, ``dim`` (the largest), ``bytes`` of vector data and ``damaged``: vectors
        never served because their size, width or values are wrong (written by hand or by an older version).
    folders
        Bytes in the other folders of the cache root beside the store (``models``, ``data``, ``hgnc``).
    """

    path: Path
    exists: bool
    size_bytes: int = 0
    journal_mode: str = ""
    generators: tuple[dict[str, Any], ...] = ()
    encoders: tuple[dict[str, Any], ...] = ()
    folders: dict[str, int] = field(default_factory=dict)

    @property
    def n_profiles(self) -> int:
        """Stored profile texts, all generators together."""
        return sum(row["profiles"] for row in self.generators)

    @property
    def n_vectors(self) -> int:
        """Stored vectors, all encoders together."""
        return sum(row["vectors"] for row in self.encoders)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything above, with the totals."""
        return {
            "path": str(self.path),
            "exists": self.exists,
            "size_bytes": self.size_bytes,
            "journal_mode": self.journal_mode,
            "n_profiles": self.n_profiles,
            "n_vectors": self.n_vectors,
            "generators": list(self.generators),
            "encoders": list(self.encoders),
            "folders": dict(self.folders),
        }


def cache_info(path: str | Path) -> CacheInfo:
    """What the store at ``path`` holds, per generator and encoder (a missing store is not created).

    Parameters
    ----------
    path
        The store's SQLite file (``bioprofile.store.default_store_path()`` for the default one).

    Returns
    -------
    CacheInfo
        Counts, sizes and dates; ``exists`` is false when there is no file.
    """
    path = Path(path).expanduser()
    root = path.parent
    folders = {name: _size(root / name) for name in _CACHE_FOLDERS if (root / name).is_dir()}
    if not path.is_file():
        return CacheInfo(path=path, exists=False, folders=folders)
    with Store(path) as store, store.reading() as conn:
        generators = tuple(
            {"generator": g, "profiles": n, "templates": t, "oldest": lo, "newest": hi}
            for g, n, t, lo, hi in conn.execute(
                "SELECT generator, COUNT(*), COUNT(DISTINCT template), MIN(created), MAX(created) "
                "FROM profiles GROUP BY generator ORDER BY generator"
            )
        )
        encoders = tuple(
            {"encoder": e, "vectors": n, "dim": d, "bytes": b, "damaged": 0}
            for e, n, d, b in conn.execute(
                "SELECT encoder, COUNT(*), MAX(dim), SUM(LENGTH(vector)) FROM vectors GROUP BY encoder "
                "ORDER BY encoder"
            )
        )
        _count_damaged(conn, encoders)
        journal_mode = store.journal_mode
    return CacheInfo(path, True, _store_bytes(path), journal_mode, generators, encoders, folders)


def _count_damaged(conn, encoders: tuple[dict[str, Any], ...]) -> None:
    """Fill each encoder row's ``damaged``: stored vectors the store would not serve (size, width, NaN/inf)."""
    width = stored_widths(conn)
    damaged: Counter = Counter()
    for encoder, shape, dim, blob in conn.execute("SELECT encoder, shape, dim, vector FROM vectors"):
        if vector_problem(shape, dim, blob, width[encoder]) is not None:
            damaged[encoder] += 1
    for row in encoders:
        row["damaged"] = damaged[row["encoder"]]


@dataclass(frozen=True)
class PruneRule:
    """Which entries :func:`prune_cache` removes.

    Parameters
    ----------
    model
        Profiles written by generators matching this pattern (:func:`id_matches`).
    encoder
        Vectors of encoders matching this pattern. With ``model`` or ``older_than_days`` too, only the vectors of
        the removed profiles' texts.
    older_than_days
        Profiles stored more than this many days ago (with ``model``: those of that model only).

    Raises
    ------
    BioprofileInputError
        No criterion at all (that would empty the store), or a negative or non-finite age.
    """

    model: str | None = None
    encoder: str | None = None
    older_than_days: float | None = None

    def __post_init__(self) -> None:
        if self.model is None and self.encoder is None and self.older_than_days is None:
            raise BioprofileInputError(
                "say what to prune: a model, an encoder or older_than_days (nothing is removed without one)",
                argument="model",
            )
        days = self.older_than_days
        if days is not None and not (isinstance(days, int | float) and math.isfinite(days) and days >= 0):
            raise BioprofileInputError(
                f"older_than_days must be a number of days, 0 or more, got {days!r}",
                argument="older_than_days",
            )

    @property
    def selects_profiles(self) -> bool:
        """Whether profiles are removed (a model or an age is given), not only vectors."""
        return self.model is not None or self.older_than_days is not None


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune_cache` removed (or, in a dry run, would remove).

    Attributes
    ----------
    profiles, vectors
        Removed profile texts per generator id and vectors per encoder id.
    dry_run
        Nothing was removed: these are the counts a real run would remove.
    freed_bytes
        How much smaller the store's files became (0 in a dry run).
    """

    profiles: dict[str, int]
    vectors: dict[str, int]
    dry_run: bool
    freed_bytes: int = 0

    @property
    def n_profiles(self) -> int:
        """Profile texts removed (or to remove)."""
        return sum(self.profiles.values())

    @property
    def n_vectors(self) -> int:
        """Vectors removed (or to remove)."""
        return sum(self.vectors.values())


def prune_cache(store: Store, rule: PruneRule, *, dry_run: bool = False) -> PruneResult:
    """Remove the entries ``rule`` selects from ``store``, in one transaction, and give the space back.

    Parameters
    ----------
    store
        The open store.
    rule
        What to remove (:class:`PruneRule`). Removing profiles also removes the vectors of their texts that no
        kept profile shares (restricted to ``rule.encoder`` when it is given); vectors of texts embedded without a
        profile (summaries) are removed only by an encoder rule alone.
    dry_run
        Count what would be removed, remove nothing.

    Returns
    -------
    PruneResult
        Removed (or, in a dry run, removable) counts per generator and encoder.
    """
    with store.reading() as conn:
        profiles = list(
            conn.execute("SELECT entity, template, generator, params, text, created FROM profiles")
        )
        vectors = list(conn.execute("SELECT text_sha256, encoder FROM vectors"))
    cutoff = None
    if rule.older_than_days is not None:
        cutoff = (datetime.now(UTC) - timedelta(days=float(rule.older_than_days))).strftime(_TIME_FORMAT)

    def removed(row: tuple) -> bool:
        if not rule.selects_profiles:
            return False
        if rule.model is not None and not id_matches(row[2], rule.model):
            return False
        return cutoff is None or row[5] < cutoff

    drop_profiles = [row for row in profiles if removed(row)]
    if rule.selects_profiles:
        kept = {text_hash(row[4]) for row in profiles if not removed(row)}
        freed_texts = {text_hash(row[4]) for row in drop_profiles} - kept
        drop_vectors = [
            (digest, encoder)
            for digest, encoder in vectors
            if digest in freed_texts and (rule.encoder is None or id_matches(encoder, rule.encoder))
        ]
    else:
        drop_vectors = [(digest, encoder) for digest, encoder in vectors if id_matches(encoder, rule.encoder)]
    result = PruneResult(
        profiles=dict(Counter(row[2] for row in drop_profiles)),
        vectors=dict(Counter(encoder for _, encoder in drop_vectors)),
        dry_run=dry_run,
    )
    if dry_run or not (drop_profiles or drop_vectors):
        return result
    before = _store_bytes(store.path)
    with store.writing() as conn:
        conn.executemany(
            "DELETE FROM profiles WHERE entity = ? AND template = ? AND generator = ? AND params = ?",
            [row[:4] for row in drop_profiles],
        )
        conn.executemany("DELETE FROM vectors WHERE text_sha256 = ? AND encoder = ?", drop_vectors)
    store.vacuum()
    return PruneResult(result.profiles, result.vectors, False, max(0, before - _store_bytes(store.path)))


def export_cache(
    store: Store,
    path: str | Path,
    *,
    model: str | None = None,
    encoder: str | None = None,
    overwrite: bool = False,
) -> TransferResult:
    """Write the store's texts and vectors (or those of one model / encoder) to one parquet file.

    Parameters
    ----------
    store
        The store to read.
    path
        The ``.parquet`` file to write (atomically; checked before anything is read).
    model
        Only the profiles of generators matching this pattern, and only the vectors of their texts.
    encoder
        Only vectors of encoders matching this pattern.
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    TransferResult
        The counts written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix != ".parquet":
        raise BioprofileInputError(
            f"an export is a parquet file: name it *.parquet, not {path.name}", argument="output"
        )
    check_output_path(path, overwrite=overwrite)
    with store.reading() as conn:
        profiles = [
            row
            for row in conn.execute(
                f"SELECT {', '.join(_PROFILE_COLUMNS)} FROM profiles ORDER BY generator, entity"
            )
            if model is None or id_matches(row[2], model)
        ]
        vectors = list(
            conn.execute(f"SELECT {', '.join(_VECTOR_COLUMNS)} FROM vectors ORDER BY encoder, text_sha256")
        )
    texts = {text_hash(row[4]) for row in profiles} if model is not None else None
    vectors = [
        row
        for row in vectors
        if (encoder is None or id_matches(row[1], encoder)) and (texts is None or row[0] in texts)
    ]
    columns: dict[str, list] = {"kind": ["profile"] * len(profiles) + ["vector"] * len(vectors)}
    for k, name in enumerate(_PROFILE_COLUMNS):
        columns[name] = [row[k] for row in profiles] + [None] * len(vectors)
    for k, name in enumerate(_VECTOR_COLUMNS):
        columns[name] = [None] * len(profiles) + [row[k] for row in vectors]
    schema = pa.schema(
        [(name, pa.string()) for name in ("kind", *_PROFILE_COLUMNS, *_VECTOR_COLUMNS[:3])]
        + [("dim", pa.int64()), ("vector", pa.binary())],
        metadata={"format": EXPORT_FORMAT, "bioprofile": __version__},
    )
    table = pa.table({name: columns[name] for name in schema.names}, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return TransferResult(path, len(profiles), len(vectors))


def _read_export(path: Path) -> tuple[list[tuple], list[tuple]]:
    """The profile and vector rows of an export file, checked; a file that is not one fails in one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise BioprofileInputError(
            f"{path} {what}: give a file written by bioprofile.cache_admin.export_cache",
            argument="input_path",
        )
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        reason = " ".join(str(err).split())[:160]
        raise BioprofileInputError(
            f"{path} is not a parquet file ({reason})", argument="input_path"
        ) from None
    metadata = table.schema.metadata or {}
    if metadata.get(b"format") != EXPORT_FORMAT.encode():
        raise BioprofileInputError(
            f"{path} is not a file bioprofile.cache_admin.export_cache wrote (no format {EXPORT_FORMAT!r} in its "
            "metadata)",
            argument="input_path",
        )
    wanted = ("kind", *_PROFILE_COLUMNS, *_VECTOR_COLUMNS)
    missing = [name for name in wanted if name not in table.column_names]
    if missing:
        raise BioprofileInputError(f"{path} lacks the columns {', '.join(missing)}", argument="input_path")
    data = {name: table.column(name).to_pylist() for name in wanted}
    profiles, vectors = [], []
    for k, kind in enumerate(data["kind"]):
        if kind == "profile":
            row = tuple(data[name][k] for name in _PROFILE_COLUMNS)
            if not is_profile_row(row):
                raise BioprofileInputError(
                    f"{path}: profile row {k} is incomplete or malformed", argument="input_path"
                )
            profiles.append(row)
        elif kind == "vector":
            row = tuple(data[name][k] for name in _VECTOR_COLUMNS)
            if not is_vector_row(row):
                raise BioprofileInputError(
                    f"{path}: vector row {k} is incomplete or malformed", argument="input_path"
                )
            vectors.append(row)
        else:
            raise BioprofileInputError(f"{path}: row {k} is of unknown kind {kind!r}", argument="input_path")
    return profiles, vectors


def import_cache(store: Store, path: str | Path, *, overwrite: bool = False) -> TransferResult:
    """Add the texts and vectors of an export file to ``store``, all in one transaction.

    Parameters
    ----------
    store
        The store to add to (another machine's, typically).
    path
        A file :func:`export_cache` wrote.
    overwrite
        Replace stored entries that differ from the file's. Without it such a difference stops the import before
        anything is written.

    Returns
    -------
    TransferResult
        Entries added, already there unchanged, and replaced.

    Raises
    ------
    BioprofileInputError
        The file is not a cache export, or (without ``overwrite``) some of its entries differ from stored ones.
    """
    path = Path(path)
    profiles, vectors = _read_export(path)
    return add_rows(store, profiles, vectors, source=path, overwrite=overwrite)
