"""Durable cache for generated profile texts and their embeddings (SQLite in WAL mode).

Texts are keyed by (entity, template, generator id, generation params) and vectors by (sha256 of the text,
encoder id), so a vector is shared by every entity whose profile is the same text. Every ``put_*`` call is one
transaction: a process killed with SIGKILL loses at most the call in flight, and a rerun skips what is stored.
Writes never duplicate rows (primary keys with ``INSERT OR IGNORE`` / upsert). One writer and any number of
readers may share the file across processes; a writer waits up to ``busy_timeout`` for another.

The default location is ``$BIOPROFILE_CACHE_DIR/store.sqlite`` when that variable is set, else
``platformdirs.user_cache_dir("bioprofile")/store.sqlite``. Keep it on a local disk: SQLite's locking (and WAL
mode) is unreliable on network file systems (NFS, SMB); move texts and vectors between machines with
``bioprofile.cache_admin.export_cache`` / ``import_cache`` instead of sharing the file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import numpy as np

from bioprofile.cache import cache_dir
from bioprofile.errors import BioprofileInputError
from bioprofile.store_repair import salvage_rows, vector_problem

__all__ = [
    "DamagedStoreWarning",
    "Store",
    "canonical_params",
    "default_store_path",
    "text_hash",
]

_SCHEMA_VERSION = 1
# SQLite builds differ in how many "?" one statement may hold (999 in old ones); stay under that.
_MAX_VARIABLES = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    entity    TEXT NOT NULL,
    template  TEXT NOT NULL,
    generator TEXT NOT NULL,
    params    TEXT NOT NULL,
    text      TEXT NOT NULL,
    created   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (entity, template, generator, params)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vectors (
    text_sha256 TEXT NOT NULL,
    encoder     TEXT NOT NULL,
    shape       TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    vector      BLOB NOT NULL,
    PRIMARY KEY (text_sha256, encoder)
) WITHOUT ROWID;
"""


# Created on first use by the OpenAI batch path (encoders.openai_batch), so stores without it stay schema 1.
_BATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS openai_batches (
    batch_id      TEXT PRIMARY KEY,
    encoder       TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    status        TEXT NOT NULL,
    requests      TEXT NOT NULL,
    created       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class _NewerSchema(sqlite3.DatabaseError):
    """The file was written by a newer bioprofile whose schema this one does not know."""


class DamagedStoreWarning(UserWarning):
    """The store's file was damaged: it was moved aside, what SQLite could still read was kept, work goes on."""


def _is_damage(err: BaseException) -> bool:
    """Whether ``err`` says the file itself is broken ("file is not a database", "disk image is malformed")."""
    return isinstance(err, sqlite3.DatabaseError) and not isinstance(
        err, sqlite3.OperationalError | _NewerSchema
    )


def text_hash(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes, as 64 hex digits (the key vectors are stored under)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_params(params: Mapping[str, Any] | None) -> str:
    """Generation parameters as compact JSON with sorted keys, so equal settings give equal cache keys.

    Values JSON cannot hold (a ``torch.dtype``, a path) are written with ``str``.
    """
    return json.dumps(
        dict(params or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def default_store_path() -> Path:
    """Where :class:`Store` keeps its file unless told otherwise (see the module docstring)."""
    return cache_dir() / "store.sqlite"


def _chunks(items: Sequence[Any], size: int = _MAX_VARIABLES) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """Profile texts and embedding vectors that survive a kill and make reruns resume.

    Parameters
    ----------
    path
        SQLite file to use (created with its folder if missing). ``None`` uses :func:`default_store_path`.
    busy_timeout
        Seconds a write waits for another process's write to finish before failing.

    Examples
    --------
    >>> with Store(tmp_path / "cache.sqlite") as store:  # doctest: +SKIP
    ...     store.put_profiles({"TP53": "TP53 encodes p53 ..."}, template="gene-v1", generator="m", params={})
    ...     store.get_profiles(["TP53", "EGFR"], template="gene-v1", generator="m", params={})
    {'TP53': 'TP53 encodes p53 ...'}
    """

    def __init__(self, path: str | Path | None = None, *, busy_timeout: float = 60.0):
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._lock = threading.Lock()
        self._busy_timeout = busy_timeout
        #: Vector rows found unfit to serve (wrong size or width, NaN/inf) per encoder id, in this session.
        self.rejected_vectors: dict[str, int] = {}
        #: Where a damaged file was moved, when this session found one (else ``None``).
        self.quarantined: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connect()
        except (OSError, sqlite3.Error) as err:
            if not (_is_damage(err) and self._quarantine(err)):
                raise self._problem(err, "open") from None

    def _connect(self) -> None:
        """Open the file (created if missing) in WAL mode and set the schema up."""
        busy_timeout = self._busy_timeout
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE in _write.
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        # In WAL mode NORMAL loses nothing when the process dies, only (possibly) on power loss.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._create_schema()
        # Some network file systems refuse WAL; the store is still correct then, only readers wait on writers.
        self.journal_mode: str = str(mode).lower()

    def _quarantine(self, err: BaseException) -> bool:
        """Move a damaged file aside, keep what SQLite can still read of it in a fresh store; whether that worked.

        The file (and its write-ahead log) is renamed to ``NAME.damaged-<UTC time>`` and a warning names it. It is
        done once per session: a fresh store that is damaged again is reported, not moved again.
        """
        if self.quarantined is not None or not self._is_sqlite_file():
            return (
                False  # a file that never was SQLite is not ours to move: the one-line error says what it is
            )
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        try:
            for suffix in ("", "-wal", "-shm"):  # the log holds committed rows too: they move together
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.replace(f"{aside}{suffix}")
            self._connect()
        except (OSError, sqlite3.Error):
            return False
        self.quarantined = aside
        kept = self._salvage(aside)
        reason = " ".join(str(err).split())
        warnings.warn(
            f"the cache at {self.path} was damaged ({reason}): moved to {aside}; {kept['profiles']} texts and "
            f"{kept['vectors']} vectors read back from it into a fresh store, the rest is made again",
            DamagedStoreWarning,
            stacklevel=4,
        )
        return True

    def _is_sqlite_file(self) -> bool:
        """Whether the file starts as every SQLite database does."""
        try:
            with open(self.path, "rb") as file:
                return file.read(16) == b"SQLite format 3\x00"
        except OSError:
            return False

    def _salvage(self, aside: Path) -> dict[str, int]:
        """Copy every row SQLite can still read from the damaged file ``aside`` into this (fresh) store."""
        return salvage_rows(aside, self._conn)

    def _attempt(self, doing: str, work):
        """``work()`` under the lock; a damaged file is quarantined once and the work done again on the fresh one.

        Any other failure of the file is the store's one-line :class:`BioprofileInputError`.
        """
        for last in (False, True):
            try:
                with self._lock:
                    return work()
            except sqlite3.Error as err:
                if last or not (_is_damage(err) and self._quarantine(err)):
                    raise self._problem(err, doing) from None
        raise AssertionError("unreachable")

    def _problem(self, err: BaseException, doing: str) -> BioprofileInputError:
        """The one-line error for a failure of the SQLite file: damaged, newer, or not writable."""
        reason = " ".join(str(err).split())
        if isinstance(err, _NewerSchema):
            return BioprofileInputError(f"the cache at {self.path} was {reason}")
        if isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError):
            # "file is not a database", "database disk image is malformed": the file itself is broken.
            return BioprofileInputError(
                f"the cache at {self.path} is damaged ({reason}); it cannot be repaired in place: move it away "
                "(profiles stored in it are then generated again), or point BIOPROFILE_CACHE_DIR at another folder"
            )
        if "locked" in reason or "busy" in reason:
            return BioprofileInputError(
                f"the cache at {self.path} is busy ({reason}): another bioprofile run is writing it; wait for it "
                "to finish and run again"
            )
        return BioprofileInputError(
            f"cannot {doing} the cache at {self.path} ({reason}); "
            "use a writable local folder (BIOPROFILE_CACHE_DIR sets the default one)"
        )

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn a failure of the SQLite file during a read or write into one line (a damaged page shows only then).

        A damaged file is quarantined first (:meth:`_attempt` does the work again; a block cannot be rerun, so
        its line says to run again).
        """
        try:
            yield
        except sqlite3.Error as err:
            if _is_damage(err) and self._quarantine(err):
                raise BioprofileInputError(
                    f"the cache at {self.path} was damaged and was moved to {self.quarantined}; what could be read "
                    "was kept in a fresh store: run again"
                ) from None
            raise self._problem(err, doing) from None

    def _create_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise _NewerSchema(f"written by a newer bioprofile (schema {version}); upgrade bioprofile")
        if version == _SCHEMA_VERSION:  # already set up: don't take the write lock just to open
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _write(self, sql: str, rows: list[tuple]) -> None:
        """Run one statement over many rows as a single transaction."""
        if not rows:
            return

        def work() -> None:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

        self._attempt("write to", work)

    # -- profile texts -------------------------------------------------------------------------------------

    def get_profiles(
        self, entities: Sequence[str], *, template: str, generator: str, params: Mapping[str, Any]
    ) -> dict[str, str]:
        """Stored texts for those entities that have one under this template, generator and params.

        Returns
        -------
        dict
            Entity → text, only for entities found.
        """
        wanted = list(dict.fromkeys(entities))
        key = canonical_params(params)

        def work() -> dict[str, str]:
            found: dict[str, str] = {}
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT entity, text FROM profiles WHERE template = ? AND generator = ? AND params = ? "
                    f"AND entity IN ({marks})",
                    (template, generator, key, *chunk),
                )
                found.update(rows)
            return found

        return self._attempt("read", work)

    def put_profiles(
        self, texts: Mapping[str, str], *, template: str, generator: str, params: Mapping[str, Any]
    ) -> None:
        """Store entity → text in one transaction; a text already stored under the same key is kept.

        Keeping the first text makes a rerun reproducible even when generation samples.
        """
        key = canonical_params(params)
        rows = [(entity, template, generator, key, text) for entity, text in texts.items()]
        self._write(
            "INSERT OR IGNORE INTO profiles (entity, template, generator, params, text) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    # -- vectors --------------------------------------------------------------------------------------------

    def get_vectors(
        self, texts: Sequence[str], *, encoder: str, width: int | None = None
    ) -> dict[str, np.ndarray]:
        """Stored embeddings of those texts that the encoder has embedded before, each checked before it is served.

        A row whose bytes do not match its shape, whose values are not all finite, or whose width is not the
        encoder's (``width``, else the width most of the rows found have) was written by hand or by an older
        bioprofile: it is not served (the text counts as not stored, so it is encoded again and replaced) and is
        counted in :attr:`rejected_vectors`, with a warning.

        Parameters
        ----------
        texts
            The texts whose vectors are wanted.
        encoder
            The encoder id.
        width
            The encoder's vector width, when the caller knows it.

        Returns
        -------
        dict
            Text → float32 array with the shape it was stored with, only for texts found and fit to serve.
        """
        by_hash: dict[str, list[str]] = {}
        for text in texts:
            by_hash.setdefault(text_hash(text), []).append(text)
        hashes = list(by_hash)

        def work() -> list[tuple]:
            rows = []
            for chunk in _chunks(hashes):
                marks = ",".join("?" * len(chunk))
                rows += self._conn.execute(
                    f"SELECT text_sha256, shape, dim, vector FROM vectors WHERE encoder = ? "
                    f"AND text_sha256 IN ({marks})",
                    (encoder, *chunk),
                ).fetchall()
            return rows

        rows = self._attempt("read", work)
        if width is None and rows:  # the width most rows have: a stray row of another width is the odd one
            widths = [dim for _, _, dim, _ in rows]
            width = max(set(widths), key=widths.count)
        found: dict[str, np.ndarray] = {}
        rejected = 0
        for digest, shape, dim, blob in rows:
            if vector_problem(shape, dim, blob, width) is not None:
                rejected += 1
                continue
            dims = tuple(int(n) for n in shape.split(","))
            vector = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(dims)
            for text in by_hash[digest]:
                found[text] = vector
        if rejected:
            self.rejected_vectors[encoder] = self.rejected_vectors.get(encoder, 0) + rejected
            warnings.warn(
                f"{rejected} vectors of {encoder} in the cache at {self.path} are damaged (wrong size or width, or "
                "not finite): not used, their texts are encoded again",
                DamagedStoreWarning,
                stacklevel=2,
            )
        return found

    def put_vectors(self, vectors: Mapping[str, np.ndarray], *, encoder: str) -> None:
        """Store text → vector (as little-endian float32, shape kept) in one transaction, replacing any old one."""
        self.put_hashed_vectors(
            {text_hash(text): vector for text, vector in vectors.items()}, encoder=encoder
        )

    def put_hashed_vectors(self, vectors: Mapping[str, np.ndarray], *, encoder: str) -> None:
        """Store ``text_sha256 -> vector`` like :meth:`put_vectors`, for vectors that arrive keyed by text hash.

        An OpenAI batch's output names its texts by the hashes recorded when it was sent (:meth:`put_batch_job`),
        so it is collected without the texts themselves.
        """
        rows = []
        for digest, vector in vectors.items():
            array = np.asarray(vector, dtype="<f4")
            shape = ",".join(str(n) for n in array.shape)
            dim = array.shape[-1] if array.ndim else 1
            rows.append((str(digest), encoder, shape, dim, np.ascontiguousarray(array).tobytes()))
        self._write(
            "INSERT INTO vectors (text_sha256, encoder, shape, dim, vector) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (text_sha256, encoder) DO UPDATE SET shape = excluded.shape, dim = excluded.dim, "
            "vector = excluded.vector",
            rows,
        )

    # -- OpenAI batch jobs -----------------------------------------------------------------------------------

    def _ensure_batch_table(self) -> None:
        """Create the batch-job table on first use (an addition older stores lack; no schema version change)."""
        self._attempt("write to", lambda: self._conn.execute(_BATCH_SCHEMA))

    def put_batch_job(self, job: Mapping[str, Any]) -> None:
        """Record (or update) one OpenAI batch job in one transaction, before anything waits on it.

        Parameters
        ----------
        job
            ``batch_id``, ``encoder`` (the encoder id whose vectors it makes), ``input_file_id``, ``status``
            (``"open"`` while it may still deliver, ``"collected"`` once its results are stored) and ``requests``
            (``custom_id -> [text_sha256, ...]``, the texts of each request line in order).
        """
        self._ensure_batch_table()
        row = (
            str(job["batch_id"]),
            str(job["encoder"]),
            str(job["input_file_id"]),
            str(job["status"]),
            json.dumps(job["requests"], separators=(",", ":")),
        )
        self._write(
            "INSERT INTO openai_batches (batch_id, encoder, input_file_id, status, requests) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (batch_id) DO UPDATE SET status = excluded.status, "
            "updated = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            [row],
        )

    def get_batch_jobs(self, *, encoder: str, status: str | None = "open") -> list[dict[str, Any]]:
        """The recorded batch jobs of ``encoder`` (only those with ``status``; ``None``: all), oldest first."""
        self._ensure_batch_table()
        sql = "SELECT batch_id, encoder, input_file_id, status, requests, created FROM openai_batches WHERE encoder = ?"
        args: tuple = (encoder,)
        if status is not None:
            sql += " AND status = ?"
            args += (status,)
        rows = self._attempt(
            "read", lambda: self._conn.execute(sql + " ORDER BY created, batch_id", args).fetchall()
        )
        keys = ("batch_id", "encoder", "input_file_id", "status", "requests", "created")
        jobs = [dict(zip(keys, row, strict=True)) for row in rows]
        for job in jobs:
            job["requests"] = json.loads(job["requests"])
        return jobs

    # -- housekeeping ----------------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The SQLite connection for reads of the cache's tables (``bioprofile.cache_admin``), under the lock.

        A failure of the file becomes the store's one-line :class:`BioprofileInputError`.
        """
        with self._lock, self._guard("read"):
            yield self._conn

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The SQLite connection inside one write transaction: committed when the block ends, else rolled back.

        For maintenance that changes many rows at once (``bioprofile.cache_admin``: prune, import).
        """
        with self._lock, self._guard("write to"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def vacuum(self) -> None:
        """Give the space of deleted rows back to the file system (rewrites the file; outside any transaction)."""
        with self._lock, self._guard("write to"):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def counts(self) -> dict[str, int]:
        """Number of stored profile texts and vectors, e.g. for a verbose summary."""

        def work() -> dict[str, int]:
            profiles = self._conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
            vectors = self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
            return {"profiles": profiles, "vectors": vectors}

        return self._attempt("read", work)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


@contextmanager
def open_store(store: Store | None = None) -> Iterator[Store]:
    """``store`` as is, or the default store (:func:`default_store_path`) opened for the block and closed after it.

    For functions that take an optional ``store=``: the caller's store stays open, one opened here does not leak.
    """
    if store is not None:
        yield store
        return
    with Store() as opened:
        yield opened
