"""The ``grpo`` stage's training records: DE questions (drug, cell line, gene, label) asked with a DE template.

A record file is CSV, TSV or JSONL with the columns ``pert``, ``gene`` and ``label``, and optionally ``cell_line``
and ``split``: one table of several cell lines, or one of VCWorld's ``pert,gene,label,split`` files, whose name gives
the cell line (``C32_DE.csv`` -> ``C32``), as :func:`bioprofile.evaluate.de_reasoning.read_de_records` reads them. A label is yes/no, true/false or 1/0 (any case). Each record
becomes a chat prompt of a :class:`bioprofile.profiles.de_prompts.DEQuestionPrompt` (the one the benchmark asks
with) and keeps its label, which the ``answer`` reward (:mod:`bioprofile.train.rewards`) compares the parsed reply
with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.de_prompts import DEQuestionPrompt, get_de_template
from bioprofile.readers import csv_dict_rows, read_text_file

__all__ = ["DE_QUESTION_COLUMNS", "DEQuestion", "parse_label", "prompt_rows", "read_de_questions"]

#: The columns of a record file (``cell_line`` may be left to the file's name; ``split`` is optional).
DE_QUESTION_COLUMNS = ("pert", "cell_line", "gene", "label")

_YES = {"yes", "true", "1", "1.0"}
_NO = {"no", "false", "0", "0.0"}


@dataclass(frozen=True)
class DEQuestion:
    """One question: is ``gene`` differentially expressed after ``pert`` on ``cell_line``; ``label`` the truth."""

    pert: str
    cell_line: str
    gene: str
    label: bool
    split: str | None = None


def parse_label(value: Any, *, where: str = "") -> bool:
    """A yes/no, true/false or 1/0 label (any case) as a bool; anything else is one :class:`BioprofileInputError`."""
    text = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise BioprofileInputError(
        f"{where}label {value!r} is not yes/no, true/false or 1/0", argument="train_file"
    )


def _cell_line_from_name(path: Path) -> str:
    """VCWorld's file name gives its cell line: ``C32_DE.csv`` -> ``C32``."""
    stem = path.stem
    return stem[:-3] if stem.lower().endswith("_de") and len(stem) > 3 else stem


def _rows(path: Path) -> list[dict[str, Any]]:
    text = read_text_file(path, what="DE question file", argument="train_file")
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise BioprofileInputError(
                    f"DE question file {path}: line {number} is not JSON", argument="train_file"
                ) from None
            if not isinstance(row, dict):
                raise BioprofileInputError(
                    f"DE question file {path}: line {number} is not a JSON object", argument="train_file"
                )
            rows.append(row)
        return rows
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    return csv_dict_rows(
        text.splitlines(), delimiter=delimiter, path=path, what="DE question file", argument="train_file"
    )


def read_de_questions(path: str | Path, *, split: str | None = None) -> list[DEQuestion]:
    """The DE questions of a CSV/TSV/JSONL file, checked (columns, labels, empty fields) in one line each.

    Parameters
    ----------
    path
        The record file (see the module docstring).
    split
        Keep only records whose ``split`` is this (e.g. ``"train"``); records without a ``split`` are kept.
        ``None`` keeps all.

    Returns
    -------
    list of DEQuestion
        In file order; at least one.
    """
    path = Path(path)
    if not path.is_file():
        raise BioprofileInputError(f"DE question file {str(path)!r} does not exist", argument="train_file")
    rows = _rows(path)
    columns = set().union(*(row.keys() for row in rows)) if rows else set()
    named_line = _cell_line_from_name(path)
    missing = [c for c in DE_QUESTION_COLUMNS if c not in columns and c != "cell_line"]
    if missing:
        raise BioprofileInputError(
            f"DE question file {path} lacks the column(s) {', '.join(missing)}: it needs pert, gene and label "
            "(cell_line and split are optional; the file's name gives the cell line)",
            argument="train_file",
        )
    questions = []
    for number, row in enumerate(rows, start=1):
        where = f"DE question file {path}, record {number}: "
        fields = {}
        for column in ("pert", "cell_line", "gene"):
            value = row.get(column) if column in columns else named_line
            if not isinstance(value, str) or not value.strip():
                raise BioprofileInputError(f"{where}{column} is empty", argument="train_file")
            fields[column] = value.strip()
        row_split = row.get("split")
        row_split = str(row_split).strip() if row_split not in (None, "") else None
        question = DEQuestion(**fields, label=parse_label(row.get("label"), where=where), split=row_split)
        if split is None or question.split is None or question.split == split:
            questions.append(question)
    if not questions:
        kept = f" with split {split!r}" if split is not None else ""
        raise BioprofileInputError(f"DE question file {path} has no record{kept}", argument="train_file")
    return questions


def prompt_rows(questions: list[DEQuestion], template: str | DEQuestionPrompt) -> list[dict[str, Any]]:
    """TRL's conversational rows: ``prompt`` (the template's chat messages), ``label`` and the question's fields.

    Parameters
    ----------
    questions
        The records.
    template
        A DE-question template or its name (:func:`bioprofile.profiles.de_prompts.get_de_template`).

    Returns
    -------
    list of dict
        One row per question, for ``datasets.Dataset.from_list``.
    """
    template = get_de_template(template)
    return [
        {
            "prompt": template.messages(q),
            "label": q.label,
            "pert": q.pert,
            "cell_line": q.cell_line,
            "gene": q.gene,
        }
        for q in questions
    ]
