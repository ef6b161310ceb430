"""Gene-pair tasks and the pair feature they are scored on.

Gene2vec's gene-gene interactions (GGI) and protein-protein interaction tables (PPI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.labels import PairLabels, binary_labels
from bioprofile.readers import csv_rows, read_text_file

__all__ = ["load_gene2vec_pairs", "load_pair_table", "pair_features"]


def load_gene2vec_pairs(directory: str | Path) -> PairLabels:
    """Gene2vec's gene-gene interaction pairs with its train/test split.

    Parameters
    ----------
    directory
        Holds ``{train,test}_{text,label}.txt``: ``GENE_A GENE_B`` per line and the 0/1 label on the same line.

    Returns
    -------
    PairLabels
        263,016 train and 21,448 test pairs for the released files.
    """
    directory = Path(directory)
    pairs, labels, is_test = [], [], []
    for split in ("train", "test"):
        try:
            texts = (directory / f"{split}_text.txt").read_text().splitlines()
            values = (directory / f"{split}_label.txt").read_text().split()
        except OSError as err:
            raise BioprofileInputError(
                f"cannot read Gene2vec {split} files in {directory}: {err.strerror}"
            ) from None
        texts = [t for t in texts if t.strip()]
        if len(texts) != len(values):
            raise BioprofileInputError(
                f"{directory}: {split}_text.txt has {len(texts)} pairs but {split}_label.txt {len(values)} labels"
            )
        for text, value in zip(texts, values, strict=False):
            a, b = text.split()[:2]
            pairs.append((a, b))
            labels.append(int(value))
            is_test.append(split == "test")
    return PairLabels("ggi", pairs, np.array(labels), np.array(is_test))


def load_pair_table(path: str | Path, name: str = "ppi", *, seed: int = 0) -> PairLabels:
    """Gene pairs from a tab/comma table: ``gene_a, gene_b[, label[, split]]``.

    Without a label column every pair is a positive (an interactome such as HuRI); as many negatives are then
    drawn uniformly from pairs of the same genes that are not positives, with ``seed``. Self-pairs are dropped.
    A ``split`` column with ``train``/``test`` values gives a fixed split; otherwise the task is cross-validated.
    """
    path = Path(path)
    text = read_text_file(path, what="pair file")
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    read = csv_rows(text.splitlines(), delimiter=delimiter, path=path, what="pair file")
    rows = [r for r in read if r and not r[0].startswith("#")]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if {"gene_a", "gene_b"} <= set(header):
        ia, ib = header.index("gene_a"), header.index("gene_b")
        il = header.index("label") if "label" in header else None
        isplit = header.index("split") if "split" in header else None
        rows = rows[1:]
    else:
        ia, ib, il, isplit = 0, 1, None, None
    if not rows or min(len(r) for r in rows) < 2:
        raise BioprofileInputError(f"{path} needs two gene columns (gene_a, gene_b) per line")
    pairs = [(r[ia].strip(), r[ib].strip()) for r in rows]
    keep = [a != b for a, b in pairs]
    rows = [r for r, k in zip(rows, keep, strict=False) if k]
    pairs = [p for p, k in zip(pairs, keep, strict=False) if k]
    is_test = None
    if isplit is not None:
        splits = [r[isplit].strip().lower() for r in rows]
        if set(splits) - {"train", "test"}:
            raise BioprofileInputError(f"{path}: the split column may only hold 'train' or 'test'")
        is_test = np.array([s == "test" for s in splits])
    if il is not None:
        labels = binary_labels([r[il] for r in rows], path)
        return PairLabels(name, pairs, labels, is_test)
    positives = {frozenset(p) for p in pairs}
    pairs = [tuple(sorted(p)) for p in positives]
    pairs.sort()
    genes = sorted({g for p in pairs for g in p})
    rng = np.random.default_rng(seed)
    negatives: set[frozenset] = set()
    max_negatives = len(genes) * (len(genes) - 1) // 2 - len(positives)
    target = min(len(pairs), max_negatives)
    while len(negatives) < target:
        a, b = rng.choice(len(genes), size=2, replace=False)
        candidate = frozenset((genes[a], genes[b]))
        if candidate not in positives:
            negatives.add(candidate)
    negative_pairs = sorted(tuple(sorted(p)) for p in negatives)
    return PairLabels(name, pairs + negative_pairs, np.array([1] * len(pairs) + [0] * len(negative_pairs)))


def pair_features(vectors: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Feature of a gene pair: the sum of its two vectors (symmetric in the pair, as GenePT)."""
    return vectors[rows_a] + vectors[rows_b]
