"""Repair of the store: which vector rows may be served, and what can be read back from a damaged file.

Used by :class:`~bioprofile.store.Store` (quarantine of a damaged file, checks on every vector it serves) and by
``bioprofile.cache_admin`` (``cache_info`` counts the damaged rows, an import is checked row by row).
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np

__all__ = ["salvage_rows", "stored_widths", "vector_problem"]


def vector_problem(shape: str, dim: int, blob: bytes, width: int | None) -> str | None:
    """Why a stored vector row cannot be served, or ``None`` when it can: its bytes, its width, its values.

    Parameters
    ----------
    shape, dim, blob
        The row's ``shape`` ("384"), ``dim`` and little-endian float32 bytes.
    width
        The width its encoder's vectors have (``None``: not checked).

    Returns
    -------
    str or None
        ``"unreadable shape"``, ``"wrong size"``, ``"wrong width"``, ``"not finite"``, or ``None``.
    """
    try:
        dims = tuple(int(n) for n in shape.split(",")) if shape else ()
    except ValueError:
        return "unreadable shape"
    if not dims or min(dims) < 1 or len(blob) != 4 * math.prod(dims) or dim != dims[-1]:
        return "wrong size"
    if width is not None and dims[-1] != width:
        return "wrong width"
    if not np.isfinite(np.frombuffer(blob, dtype="<f4")).all():
        return "not finite"
    return None


def stored_widths(conn: sqlite3.Connection) -> dict[str, int]:
    """Each encoder's vector width in a store: the one most of its rows have (a tie: the larger width).

    Parameters
    ----------
    conn
        A connection to the store (e.g. ``Store.reading()``).

    Returns
    -------
    dict
        Encoder id -> width; a row of another width is one written by hand or by an older version.
    """
    counted = conn.execute("SELECT encoder, dim, COUNT(*) FROM vectors GROUP BY encoder, dim ORDER BY 3, 2")
    return {
        encoder: dim for encoder, dim, _ in counted
    }  # the last row of an encoder is its most common width


def salvage_rows(aside: Path, conn: sqlite3.Connection) -> dict[str, int]:
    """Copy every profile and vector row SQLite can still read from the damaged file ``aside`` into ``conn``.

    Each table is read forward until the first damaged page, then backward from its end: the rows on both sides
    of the damage. Rows are added with ``INSERT OR IGNORE`` in one transaction per table.

    Parameters
    ----------
    aside
        The damaged SQLite file (moved aside, with its write-ahead log beside it).
    conn
        An open connection to a fresh store, in autocommit mode.

    Returns
    -------
    dict
        ``{"profiles": n, "vectors": m}``: the rows kept.
    """
    kept = {"profiles": 0, "vectors": 0}
    columns = {
        "profiles": "entity, template, generator, params, text, created",
        "vectors": "text_sha256, encoder, shape, dim, vector",
    }
    keys = {"profiles": "entity, template, generator, params", "vectors": "text_sha256, encoder"}
    try:
        source = sqlite3.connect(aside, isolation_level=None)
    except sqlite3.Error:
        return kept
    try:
        for table, names in columns.items():
            rows: dict[tuple, tuple] = {}
            # Forward until the first damaged page, then backward from the end: the rows on both sides of it.
            for order in ("ASC", "DESC"):
                by = ", ".join(f"{key.strip()} {order}" for key in keys[table].split(","))
                try:
                    cursor = source.execute(f"SELECT {names} FROM {table} ORDER BY {by}")
                    while batch := cursor.fetchmany(500):
                        rows.update((row[: len(keys[table].split(","))], row) for row in batch)
                except sqlite3.Error:
                    pass
            marks = ", ".join("?" * len(names.split(",")))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", rows.values())
            conn.execute("COMMIT")
            kept[table] = len(rows)
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    finally:
        source.close()
    return kept
