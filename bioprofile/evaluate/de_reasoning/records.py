"""The task's records: ``(pert, cell_line, gene, label, split)``, read from VCWorld's CSVs or one table.

VCWorld writes one CSV per cell line with the columns ``pert,gene,label,split`` (label 1 = differentially
expressed, split ``train``/``test`` by drug); the cell line is the file's name (``C32_DE.csv`` -> ``C32``: a
trailing ``_DE`` is dropped). One table with a ``cell_line`` column holds several cell lines at once. Every check a
run needs (columns, labels, both classes in every cell line) is made here, before any model loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.readers import csv_dict_rows, csv_rows, read_text_file

__all__ = ["RECORD_COLUMNS", "DEQuestion", "check_both_classes", "read_de_records", "sample_records"]

#: The columns a record file must have (a ``cell_line`` column is optional: the file's name gives it).
RECORD_COLUMNS = ("pert", "gene", "label", "split")
# Label values and what they mean (compared lower-cased, spaces stripped).
_LABELS = {"1": True, "yes": True, "0": False, "no": False}
# VCWorld names its files <cell line>_DE.csv; the suffix is not part of the cell line's name.
_FILE_SUFFIX = "_de"


@dataclass(frozen=True)
class DEQuestion:
    """One question of the task, with its answer: is ``gene`` differentially expressed after ``pert`` in ``cell_line``.

    An entity of kind ``"de_question"`` for the profile path: its replies are cached under :attr:`key`.

    Attributes
    ----------
    pert
        The drug (VCWorld's ``pert``), as the file writes it.
    cell_line
        The cell line.
    gene
        The gene asked about.
    label
        ``True`` when the gene is differentially expressed (VCWorld's label 1).
    split
        ``"train"`` or ``"test"`` in VCWorld's files (split by drug); any text is kept as it is.
    """

    pert: str
    cell_line: str
    gene: str
    label: bool
    split: str

    @property
    def key(self) -> str:
        """``"de_question:<sha256 of cell line, drug and gene>"``: the store key of its replies (label-free)."""
        question = "\x00".join((self.cell_line, self.pert, self.gene))
        return f"de_question:{hashlib.sha256(question.encode('utf-8')).hexdigest()}"

    @property
    def symbol(self) -> str:
        """The gene asked about (what a message about the entity shows)."""
        return self.gene

    @property
    def name(self) -> None:
        """No full name: a question is named by its gene."""
        return None

    @property
    def kind(self) -> str:
        """``"de_question"``."""
        return "de_question"


def _cell_line_from_name(path: Path) -> str:
    stem = path.stem
    return stem[: -len(_FILE_SUFFIX)] if stem.lower().endswith(_FILE_SUFFIX) and len(stem) > 3 else stem


def _read_one(path: Path) -> list[DEQuestion]:
    text = read_text_file(path, what="record file", argument="paths")
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise BioprofileInputError(f"record file {path} is empty: it needs a header pert,gene,label,split")
    delimiter = "\t" if "\t" in lines[0] else ","
    header = [c.strip() for c in csv_rows(lines[:1], delimiter=delimiter, path=path, what="record file")[0]]
    lowered = {c.lower(): c for c in header}
    missing = [c for c in RECORD_COLUMNS if c not in lowered]
    if missing:
        raise BioprofileInputError(
            f"record file {path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(it has {', '.join(header) or 'no columns'}); VCWorld's files have pert,gene,label,split",
            argument="paths",
        )
    rows = csv_dict_rows(lines, delimiter=delimiter, path=path, what="record file", argument="paths")
    named_line = _cell_line_from_name(path)
    records = []
    for number, row in enumerate(rows, start=2):
        values = {c: (row.get(lowered[c]) or "").strip() for c in RECORD_COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        label = _LABELS.get(values["label"].lower())
        if label is None:
            raise BioprofileInputError(
                f"record file {path}, line {number}: label {values['label']!r} is not yes/no or 1/0",
                argument="paths",
            )
        empty = [c for c in ("pert", "gene") if not values[c]]
        if empty:
            raise BioprofileInputError(
                f"record file {path}, line {number}: no {' and no '.join(empty)}", argument="paths"
            )
        cell_line = (row.get(lowered["cell_line"]) or "").strip() if "cell_line" in lowered else named_line
        if not cell_line:
            raise BioprofileInputError(f"record file {path}, line {number}: no cell_line", argument="paths")
        records.append(DEQuestion(values["pert"], cell_line, values["gene"], label, values["split"]))
    if not records:
        raise BioprofileInputError(f"record file {path} holds no records, only its header", argument="paths")
    return records


def check_both_classes(records: Sequence[DEQuestion]) -> None:
    """Refuse records in which a cell line has only one class (its balanced accuracy and baselines mean nothing).

    Raises
    ------
    BioprofileInputError
        A cell line whose records are all yes or all no; the message names it.
    """
    classes: dict[str, set[bool]] = {}
    for record in records:
        classes.setdefault(record.cell_line, set()).add(record.label)
    one_class = sorted(line for line, seen in classes.items() if len(seen) < 2)
    if one_class:
        shown = ", ".join(
            f"{line} (all {'yes' if True in classes[line] else 'no'})" for line in one_class[:5]
        ) + (", ..." if len(one_class) > 5 else "")
        raise BioprofileInputError(
            f"cell lines with one class only: {shown}; every cell line needs yes and no records to be scored",
            argument="paths",
        )


def sample_records(records: Sequence[DEQuestion], per_cell_line: int, *, seed: int = 0) -> list[DEQuestion]:
    """At most ``per_cell_line`` records of each cell line, drawn with a seed, keeping both classes.

    Each class gets its share of the sample in proportion to its count, at least one record each, so a small
    sample still has both classes. Records keep their file order.

    Parameters
    ----------
    records
        The records.
    per_cell_line
        Records kept per cell line (at least 2).
    seed
        Seed of the draw.

    Returns
    -------
    list of DEQuestion
    """
    if per_cell_line < 2:
        raise BioprofileInputError(
            f"per_cell_line must be at least 2 (one yes and one no), got {per_cell_line}",
            argument="per_cell_line",
        )
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for line in dict.fromkeys(r.cell_line for r in records):
        indices = [i for i, r in enumerate(records) if r.cell_line == line]
        if len(indices) <= per_cell_line:
            chosen.update(indices)
            continue
        by_class = {c: [i for i in indices if records[i].label is c] for c in (True, False)}
        n_yes = round(per_cell_line * len(by_class[True]) / len(indices))
        n_yes = min(max(n_yes, 1 if by_class[True] else 0), len(by_class[True]), per_cell_line - 1)
        n_no = min(per_cell_line - n_yes, len(by_class[False]))
        for members, n in ((by_class[True], n_yes), (by_class[False], n_no)):
            chosen.update(int(i) for i in rng.choice(members, size=n, replace=False))
    return [records[i] for i in sorted(chosen)]


def read_de_records(
    paths: str | Path | Sequence[str | Path],
    *,
    split: str | None = None,
    cell_lines: Sequence[str] | None = None,
    per_cell_line: int | None = None,
    seed: int = 0,
) -> list[DEQuestion]:
    """DE-reasoning records from VCWorld's per-cell-line CSVs, or from one table with a ``cell_line`` column.

    Parameters
    ----------
    paths
        One file or several (CSV, or TSV when the header has a tab), each with the columns ``pert,gene,label,split``
        (any case, any order, more columns ignored); a ``cell_line`` column names each row's cell line, else the
        file's name does (``C32_DE.csv`` -> ``C32``). Labels are ``yes``/``no`` or ``1``/``0``.
    split
        Keep only the records of this split (``"test"``: VCWorld's held-out drugs).
    cell_lines
        Keep only these cell lines.
    per_cell_line
        Keep at most this many records per cell line, drawn as :func:`sample_records` does.
    seed
        Seed of that draw.

    Returns
    -------
    list of DEQuestion
        In file order; a question asked twice with the same label is kept once.

    Raises
    ------
    BioprofileInputError
        A file that cannot be read, is empty or lacks a column; a label that is not yes/no or 1/0; the same
        question with two labels; nothing left after the filters; a cell line with one class only.
    """
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not given:
        raise BioprofileInputError("no record files given", argument="paths")
    seen: dict[tuple[str, str, str], DEQuestion] = {}
    for path in given:
        for record in _read_one(path):
            question = (record.cell_line, record.pert, record.gene)
            earlier = seen.get(question)
            if earlier is not None and earlier.label != record.label:
                raise BioprofileInputError(
                    f"{record.gene} after {record.pert} in {record.cell_line} is labelled both yes and no "
                    f"(in {path}); keep one label per question",
                    argument="paths",
                )
            seen.setdefault(question, record)
    records = list(seen.values())
    if split is not None:
        records = [r for r in records if r.split == split]
    if cell_lines is not None:
        wanted = set(cell_lines)
        absent = sorted(wanted - {r.cell_line for r in records})
        if absent:
            raise BioprofileInputError(
                f"no records for cell line{'s' if len(absent) > 1 else ''} {', '.join(absent)}",
                argument="cell_lines",
            )
        records = [r for r in records if r.cell_line in wanted]
    if not records:
        raise BioprofileInputError(
            f"no records left{f' in split {split!r}' if split is not None else ''}", argument="split"
        )
    if per_cell_line is not None:
        records = sample_records(records, per_cell_line, seed=seed)
    check_both_classes(records)
    return records
