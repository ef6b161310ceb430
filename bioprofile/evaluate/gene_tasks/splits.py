"""Folds of a gene-pair task: over pairs, or over genes so that no test gene is seen in training.

Folds over pairs let a classifier learn which genes tend to interact from any fixed per-gene vector (random ones
included), because a gene of a test pair recurs in training pairs. Gene-disjoint folds (Park & Marcotte's C3
class) split the genes instead: the test pairs of a fold have both genes in that fold's gene group, its training
pairs have neither, and pairs with one gene on each side are left out of that fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bioprofile.errors import BioprofileInputError

__all__ = ["PAIR_SPLITS", "PairFold", "gene_disjoint_folds", "pair_folds"]

#: How a pair task without a given train/test split is cut into folds.
PAIR_SPLITS = ("gene-disjoint", "pairs")


@dataclass(frozen=True)
class PairFold:
    """One fold of a pair task: the rows (into the scored pairs) it trains and tests on.

    Attributes
    ----------
    train, test
        Indices of the training and test pairs.
    dropped
        How many scored pairs the fold uses neither for training nor for testing (a gene-disjoint fold leaves
        out every pair with one gene in its test group and one outside it).
    """

    train: np.ndarray
    test: np.ndarray
    dropped: int

    def counts(self) -> dict[str, int]:
        """``{"train": n, "test": n, "dropped": n}``: how many pairs the fold keeps and leaves out."""
        return {"train": len(self.train), "test": len(self.test), "dropped": self.dropped}


def pair_folds(y: np.ndarray, *, n_splits: int = 5, seed: int = 0) -> list[PairFold]:
    """Stratified k-fold over the pairs themselves (genes recur between train and test).

    Parameters
    ----------
    y
        The 0/1 label of each pair.
    n_splits, seed
        Folds and the seed of their shuffle.

    Returns
    -------
    list of PairFold
        ``n_splits`` folds that together test every pair once and drop none.
    """
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [PairFold(train, test, 0) for train, test in folds.split(np.zeros(len(y)), y)]


def gene_disjoint_folds(
    gene_a: np.ndarray, gene_b: np.ndarray, *, n_splits: int = 5, seed: int = 0
) -> list[PairFold]:
    """Folds in which no gene of a test pair is in any training pair.

    The distinct genes are shuffled with ``seed`` and dealt into ``n_splits`` groups of (nearly) equal size. Fold
    ``k`` tests on the pairs with both genes in group ``k`` and trains on the pairs with neither gene in it; the
    pairs with exactly one gene in group ``k`` are dropped from that fold. Each pair is tested at most once (the
    pairs across two groups never are), so out-of-fold scores can be pooled.

    Parameters
    ----------
    gene_a, gene_b
        An identifier of each pair's two genes (embedding rows, say): equal values are the same gene.
    n_splits, seed
        Gene groups (folds) and the seed of the gene shuffle.

    Returns
    -------
    list of PairFold
        One per gene group, in group order.

    Raises
    ------
    BioprofileInputError
        Fewer distinct genes than folds.
    """
    gene_a, gene_b = np.asarray(gene_a), np.asarray(gene_b)
    genes, inverse = np.unique(np.concatenate([gene_a, gene_b]), return_inverse=True)
    if len(genes) < n_splits:
        raise BioprofileInputError(
            f"{len(genes)} distinct genes cannot be split into {n_splits} gene-disjoint folds",
            argument="n_splits",
        )
    group_of_gene = np.empty(len(genes), dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(genes))
    group_of_gene[order] = np.arange(len(genes)) % n_splits
    group_a, group_b = group_of_gene[inverse[: len(gene_a)]], group_of_gene[inverse[len(gene_a) :]]
    folds = []
    for k in range(n_splits):
        in_a, in_b = group_a == k, group_b == k
        test = np.flatnonzero(in_a & in_b)
        train = np.flatnonzero(~in_a & ~in_b)
        folds.append(PairFold(train, test, len(gene_a) - len(train) - len(test)))
    return folds
