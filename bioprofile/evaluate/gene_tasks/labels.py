"""Labelled genes and gene pairs, and the CSV / binary-label helpers the task loaders share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.readers import csv_dict_rows, read_text_file

__all__ = ["GeneLabels", "PairLabels", "binary_labels", "read_csv_rows"]


@dataclass
class GeneLabels:
    """Genes with a class each.

    Attributes
    ----------
    name
        Task name.
    genes
        Gene identifiers as the label file writes them (any kind :func:`~bioprofile.genes.normalize_genes` reads).
    labels
        Integer class per gene (``0``/``1`` for binary tasks, ``1`` the positive class).
    classes
        Class names, indexed by label.
    fallback
        Optional second identifier per gene (e.g. the symbol beside an Ensembl id), tried when the first fails.
    """

    name: str
    genes: list[str]
    labels: np.ndarray
    classes: list[str]
    fallback: list[str] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.genes) != len(self.labels):
            raise ValueError(f"{len(self.genes)} genes but {len(self.labels)} labels")


@dataclass
class PairLabels:
    """Gene pairs with a 0/1 label each, optionally split into train and test.

    Attributes
    ----------
    name
        Task name.
    pairs
        ``(gene_a, gene_b)`` identifiers.
    labels
        ``1`` for an interacting pair.
    is_test
        Boolean per pair, or ``None`` to cross-validate.
    """

    name: str
    pairs: list[tuple[str, str]]
    labels: np.ndarray
    is_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.pairs) != len(self.labels):
            raise ValueError(f"{len(self.pairs)} pairs but {len(self.labels)} labels")
        if self.is_test is not None:
            self.is_test = np.asarray(self.is_test, dtype=bool)


def read_csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """The rows of a label file as ``{column: value}`` dicts (a byte-order mark is dropped).

    Parameters
    ----------
    path
        The CSV/TSV file.
    delimiter
        Column separator.

    Returns
    -------
    list of dict

    Raises
    ------
    BioprofileInputError
        The file cannot be read.
    """
    text = read_text_file(path, what="label file")
    return csv_dict_rows(text.splitlines(), delimiter=delimiter, path=path, what="label file")


def binary_labels(values: Sequence[str], path: Path) -> np.ndarray:
    """0/1 from a label column: 0/1, true/false, yes/no, or exactly two other values (sorted, the last is 1).

    Parameters
    ----------
    values
        The label column as read.
    path
        The file it came from, named in errors.

    Returns
    -------
    numpy.ndarray
        int64 0/1 labels, both classes present.

    Raises
    ------
    BioprofileInputError
        More or fewer than two classes.
    """
    cleaned = [str(v).strip().lower() for v in values]
    distinct = sorted(set(cleaned))
    known = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "0.0": 0, "1.0": 1}
    if set(distinct) <= set(known):
        out = np.array([known[v] for v in cleaned])
    elif len(distinct) == 2:
        out = np.array([int(v == distinct[1]) for v in cleaned])
    else:
        raise BioprofileInputError(
            f"{path}: the label column must hold two classes (0/1), found {len(distinct)}: {', '.join(distinct[:5])}"
        )
    if len(set(out.tolist())) < 2:
        raise BioprofileInputError(f"{path}: every label is the same; a task needs both classes")
    return out
