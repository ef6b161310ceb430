"""User-supplied gene texts used in place of generated profiles (the GenePT "NCBI summary" recipe).

Two layouts are read:

* lines ``SYMBOL: text`` (as in GenePT's and GeneAgent's RefSeq synopsis files); blank lines, ``#`` comments
  and separator lines made only of punctuation (``////``, ``===``) are ignored;
* a table with a header row, tab-separated (comma-separated for ``.csv``), with a symbol column (``symbol``,
  ``gene``, ``gene_symbol`` or ``gene_name``) and a text column (``text``, ``summary``, ``description`` or
  ``profile``); other columns are ignored.
"""

from __future__ import annotations

import csv
import re
import warnings
from os import PathLike
from pathlib import Path
from typing import Literal

from bioprofile.errors import BioprofileInputError
from bioprofile.readers import allow_large_csv_fields

__all__ = ["MissingSummaryWarning", "read_summaries"]

SYMBOL_COLUMNS = ("symbol", "gene", "gene_symbol", "gene_name")
TEXT_COLUMNS = ("text", "summary", "description", "profile")

# A symbol is one token (letters, digits, . _ - / @); the text follows a colon and whitespace.
_SYMBOL_LINE = re.compile(r"^(?P<symbol>[A-Za-z0-9][A-Za-z0-9._@/-]*)\s*:\s+(?P<text>\S.*)$")
_SEPARATOR = re.compile(r"^[\W_]+$")


class MissingSummaryWarning(UserWarning):
    """Some entities have no text in the summaries given and are left out of the table (``strict`` refuses)."""


def read_summaries(
    path: str | PathLike,
    *,
    errors: Literal["raise", "skip"] = "raise",
    duplicates: Literal["longest", "first", "raise"] = "longest",
) -> dict[str, str]:
    """Read gene texts from a ``SYMBOL: text`` file or a table with a header.

    Parameters
    ----------
    path
        The file. A first line holding a tab (or, for ``.csv``, a comma) and a recognised symbol column name
        marks a table; anything else is read as ``SYMBOL: text`` lines.
    errors
        ``"raise"``: a line that is neither ignorable nor an entry raises, naming its line number.
        ``"skip"``: such lines are dropped with one warning giving their count and first line numbers (for
        files that mix summaries with other text, like GeneAgent's synopsis file).
    duplicates
        What to do when a symbol occurs more than once with different texts (after collapsing whitespace):
        keep the ``"longest"`` (synopsis files often repeat a gene with a truncated copy), the ``"first"``,
        or ``"raise"``.

    Returns
    -------
    dict of str to str
        Symbol (as written, surrounding whitespace removed) to text, in first-appearance order.

    Raises
    ------
    BioprofileInputError
        A missing or unreadable file, a table without the needed columns, a bad line (``errors="raise"``), a
        conflicting duplicate (``duplicates="raise"``), or a file with no entries at all.
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if duplicates not in ("longest", "first", "raise"):
        raise ValueError(f"duplicates must be 'longest', 'first' or 'raise', got {duplicates!r}")
    path = Path(path)
    if not path.is_file():
        raise BioprofileInputError(f"summaries file {path} not found: check the path")
    try:
        # utf-8-sig drops a BOM; newline="" lets csv see embedded newlines in quoted fields.
        with open(path, encoding="utf-8-sig", newline="") as fh:
            content = fh.read()
    except UnicodeDecodeError as err:
        raise BioprofileInputError(
            f"summaries file {path} is not UTF-8 text ({err.reason}): re-save it as UTF-8"
        ) from None

    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    first_line = next((line for line in content.splitlines() if line.strip()), "")
    header = [cell.strip().lower() for cell in first_line.split(delimiter)]
    looks_like_table = delimiter in first_line and (
        any(name in header for name in SYMBOL_COLUMNS) or not _SYMBOL_LINE.match(first_line.strip())
    )
    if looks_like_table or path.suffix.lower() == ".csv":
        entries, bad = _read_table(content, delimiter, path)
    else:
        entries, bad = _read_symbol_lines(content)

    if bad:
        if errors == "raise":
            line_no, problem = bad[0]
            raise BioprofileInputError(
                f"summaries file {path}, line {line_no}: {problem}; fix or delete the line "
                "(or read with errors='skip')"
            )
        shown = ", ".join(str(line_no) for line_no, _ in bad[:5])
        warnings.warn(
            f"{path.name}: skipped {len(bad)} line(s) that are not summaries (lines {shown}"
            f"{', ...' if len(bad) > 5 else ''})",
            stacklevel=2,
        )
    if not entries:
        raise BioprofileInputError(
            f"summaries file {path} holds no summaries: expected `SYMBOL: text` lines "
            "or a table with symbol and text columns"
        )
    return _merge_duplicates(entries, duplicates, path)


def _read_symbol_lines(content: str) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    entries: list[tuple[int, str, str]] = []
    bad: list[tuple[int, str]] = []
    for line_no, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or _SEPARATOR.match(line):
            continue
        match = _SYMBOL_LINE.match(line)
        if match is None:
            preview = line if len(line) <= 40 else line[:37] + "..."
            bad.append((line_no, f"expected `SYMBOL: text`, found {preview!r}"))
            continue
        entries.append((line_no, match["symbol"], match["text"].strip()))
    return entries, bad


def _read_table(
    content: str, delimiter: str, path: Path
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    allow_large_csv_fields()  # a long summary is a field over csv's 128 kB default
    reader = csv.reader(content.splitlines(keepends=True), delimiter=delimiter)
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        return _read_rows(reader, header, path)
    except csv.Error as err:
        raise BioprofileInputError(
            f"summaries file {path}: line {reader.line_num} is not CSV/TSV ({' '.join(str(err).split())[:120]})"
        ) from None


def _read_rows(
    reader, header: list[str], path: Path
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    """The ``(line, symbol, text)`` entries and the bad lines of a summaries table after its header."""
    symbol_col = next((header.index(name) for name in SYMBOL_COLUMNS if name in header), None)
    text_col = next((header.index(name) for name in TEXT_COLUMNS if name in header), None)
    if symbol_col is None or text_col is None:
        raise BioprofileInputError(
            f"summaries file {path}: the header needs a symbol column ({', '.join(SYMBOL_COLUMNS)}) and a text "
            f"column ({', '.join(TEXT_COLUMNS)}); found {', '.join(header)}"
        )
    entries: list[tuple[int, str, str]] = []
    bad: list[tuple[int, str]] = []
    for row in reader:
        line_no = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            bad.append((line_no, f"{len(row)} fields where the header has {len(header)}"))
            continue
        symbol, text = row[symbol_col].strip(), row[text_col].strip()
        if not symbol or not text:
            bad.append((line_no, "empty symbol" if not symbol else f"empty text for {symbol}"))
            continue
        entries.append((line_no, symbol, text))
    return entries, bad


def _merge_duplicates(entries: list[tuple[int, str, str]], duplicates: str, path: Path) -> dict[str, str]:
    summaries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line_no, symbol, text in entries:
        if symbol not in summaries:
            summaries[symbol] = text
            first_line[symbol] = line_no
            continue
        if " ".join(text.split()) == " ".join(summaries[symbol].split()):
            continue
        if duplicates == "raise":
            raise BioprofileInputError(
                f"summaries file {path}, line {line_no}: {symbol} already has a different text on line "
                f"{first_line[symbol]}; keep one of them"
            )
        if duplicates == "longest" and len(text) > len(summaries[symbol]):
            summaries[symbol] = text
    return summaries
