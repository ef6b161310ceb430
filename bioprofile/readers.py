"""One reader per file format a user hands in: text lists, CSV/TSV rows, ``.h5ad``; each fails in one line.

A file from outside may be binary, truncated, not the format its suffix says, or hold a CSV field larger than
Python's 128 kB default: every reader here turns that into a :class:`~bioprofile.errors.BioprofileInputError`
naming the file, what it should be and the argument that gave it, never a traceback from ``csv``, ``h5py`` or
``anndata``.
"""

from __future__ import annotations

import csv
import pickle
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError

__all__ = [
    "UNREADABLE_FILE_ERRORS",
    "CSV_FIELD_LIMIT",
    "allow_large_csv_fields",
    "csv_dict_rows",
    "csv_rows",
    "read_h5ad",
    "read_text_file",
]

#: What a damaged or foreign file makes a reader raise (pyarrow's errors subclass ValueError and OSError, h5py's
#: OSError, anndata's KeyError/TypeError, torch's weights-only loader pickle.UnpicklingError or RuntimeError).
UNREADABLE_FILE_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    EOFError,
    RuntimeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)

#: The largest CSV field read (a gene list cell, a gene set's genes, a profile text): 64 MiB, far above any real
#: one; Python's own default (128 kB) refuses a long summary or a big gene set.
CSV_FIELD_LIMIT = 64 * 1024 * 1024


def read_text_file(path: str | Path, *, what: str, argument: str | None = None) -> str:
    """The text of a user's file (UTF-8, BOM stripped), or one line saying why it cannot be read.

    Parameters
    ----------
    path
        The file.
    what
        How the message names it (``"gene file"``, ``"gene-set file"``).
    argument
        The argument that gave the path, for the CLI to name its flag.

    Returns
    -------
    str
        The file's text.

    Raises
    ------
    BioprofileInputError
        The file is missing, unreadable, binary (NUL bytes) or not UTF-8.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else "not UTF-8 text"
        raise BioprofileInputError(
            f"cannot read {what} {path}: {reason}; give a readable text, .csv or .tsv file", argument=argument
        ) from None
    if "\x00" in text:
        raise BioprofileInputError(
            f"cannot read {what} {path}: it is a binary file; give a readable text, .csv or .tsv file",
            argument=argument,
        )
    return text


def csv_rows(
    lines: Iterable[str], *, delimiter: str = ",", path: str | Path, what: str, argument: str | None = None
) -> list[list[str]]:
    """The rows of CSV/TSV ``lines`` (fields up to :data:`CSV_FIELD_LIMIT`), or one line naming the bad row.

    Parameters
    ----------
    lines
        The file's lines (e.g. ``text.splitlines()``).
    delimiter
        ``","``, or a tab.
    path, what, argument
        For the message: the file, how it is named, and the argument that gave it.

    Returns
    -------
    list of list of str
        Every row, as ``csv.reader`` reads it.
    """
    return list(_guarded(csv.reader(lines, delimiter=delimiter), path, what, argument))


def csv_dict_rows(
    lines: Iterable[str], *, delimiter: str = ",", path: str | Path, what: str, argument: str | None = None
) -> list[dict[str, Any]]:
    """The rows of a table with a header as dicts (``csv.DictReader``); arguments and errors as :func:`csv_rows`."""
    return list(_guarded(csv.DictReader(lines, delimiter=delimiter), path, what, argument))


def allow_large_csv_fields() -> None:
    """Let ``csv`` read fields up to :data:`CSV_FIELD_LIMIT` (the limit is raised, never lowered).

    For a reader that needs ``csv.reader`` itself (its line numbers), as the summaries reader does.
    """
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def _guarded(reader: Iterator, path: str | Path, what: str, argument: str | None) -> Iterator:
    """Rows of ``reader`` with the field limit raised; a ``csv.Error`` becomes one line naming the row."""
    allow_large_csv_fields()
    done = 0  # rows read so far: the next one is the bad one
    try:
        for item in reader:
            yield item
            done += 1
    except csv.Error as err:
        reason = " ".join(str(err).split())[:120]
        raise BioprofileInputError(
            f"cannot read {what} {path}: row {done + 1} is not CSV/TSV ({reason})", argument=argument
        ) from None


def read_h5ad(
    path: str | Path, *, backed: str | None = None, what: str = "AnnData file", argument: str | None = None
):
    """An ``.h5ad`` file read by anndata (in memory, or ``backed="r"``), or one line saying it is not one.

    Parameters
    ----------
    path
        The file.
    backed
        ``None`` to read it into memory, ``"r"`` to leave ``X`` on disk.
    what, argument
        For the message: how the file is named, and the argument that gave it.

    Returns
    -------
    anndata.AnnData
        The data.

    Raises
    ------
    BioprofileInputError
        Missing, a folder, truncated, not HDF5, or an HDF5 file that is not an AnnData.
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise BioprofileInputError(f"{what} {path} {state}: give an .h5ad file", argument=argument)
    try:
        return ad.read_h5ad(path, backed=backed)
    except UNREADABLE_FILE_ERRORS as err:
        # h5py: "file signature not found" (not HDF5), "truncated file"; anndata: KeyError/ValueError/TypeError
        # for an HDF5 file without AnnData's groups
        reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 120)
        raise BioprofileInputError(
            f"cannot read {what} {path}: it is not a readable .h5ad (AnnData HDF5) file ({reason})",
            argument=argument,
        ) from None
