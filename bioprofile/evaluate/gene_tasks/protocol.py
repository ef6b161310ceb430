"""The scoring protocol (as GenePT): classifiers, stratified k-fold and train/test ROC-AUC.

And :func:`evaluate_task`, the score of one embedding table on one gene or gene-pair task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.interaction import pair_features
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, PairLabels
from bioprofile.evaluate.gene_tasks.matching import match_genes, match_pairs
from bioprofile.evaluate.gene_tasks.splits import PAIR_SPLITS, PairFold, gene_disjoint_folds, pair_folds
from bioprofile.evaluate.report import RocCurve, format_mean_std

__all__ = [
    "GENE_MODELS",
    "PAIR_MODELS",
    "TaskScore",
    "cross_validated_auc",
    "evaluate_task",
    "folds_auc",
    "make_classifier",
    "train_test_auc",
]

GENE_MODELS = ("logreg", "rf")
PAIR_MODELS = (
    "logreg",
)  # a forest on ~10^5 pairs takes far longer than the rest together; opt in with models=


def make_classifier(name: str, *, seed: int = 0, n_jobs: int = 1):
    """A fresh scikit-learn classifier.

    Parameters
    ----------
    name
        ``"logreg"`` (standardised features, L2 logistic regression) or ``"rf"`` (random forest, 100 trees, as
        scikit-learn's default).
    seed
        Random state of the model.
    n_jobs
        Parallel jobs of the forest.

    Returns
    -------
    sklearn estimator
        Unfitted.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    if name == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=n_jobs)
    raise BioprofileInputError(f"unknown model {name!r}: choose logreg or rf")


def _auc(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import roc_auc_score

    if n_classes == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=np.arange(n_classes)))


def cross_validated_auc(
    X: np.ndarray, y: np.ndarray, *, model: str = "logreg", n_splits: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified k-fold ROC-AUC.

    Parameters
    ----------
    X
        ``(n, d)`` features.
    y
        Integer classes ``0..k-1``; binary → ROC-AUC, more → macro one-vs-rest ROC-AUC.
    model
        See :func:`make_classifier`.
    n_splits, seed
        Folds and the seed of both the fold shuffle and the model.

    Returns
    -------
    fold_aucs : numpy.ndarray
        One AUC per fold.
    out_of_fold : numpy.ndarray
        ``(n, k)`` predicted class probabilities, each from the model that did not see that row.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    n_classes = int(y.max()) + 1
    if np.bincount(y, minlength=n_classes).min() < n_splits:
        raise ValueError(f"every class needs at least {n_splits} examples for {n_splits}-fold CV")
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return folds_auc(X, y, list(folds.split(X, y)), model=model, seed=seed)


def folds_auc(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    model: str = "logreg",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC on given folds: fit on each fold's training rows, score its test rows.

    Parameters
    ----------
    X, y
        Features and integer classes ``0..k-1`` (see :func:`cross_validated_auc`).
    folds
        ``(train, test)`` row indices per fold; every fold's train and test rows must hold every class. Rows no
        fold tests (as in gene-disjoint pair folds) keep zero probabilities in ``out_of_fold``.
    model, seed
        See :func:`make_classifier`.

    Returns
    -------
    fold_aucs : numpy.ndarray
        One AUC per fold.
    out_of_fold : numpy.ndarray
        ``(n, k)`` predicted class probabilities of the tested rows, each from the model that did not see it.
    """
    n_classes = int(np.max(y)) + 1
    out_of_fold = np.zeros((len(y), n_classes))
    aucs = []
    for train, test in folds:
        clf = make_classifier(model, seed=seed).fit(X[train], y[train])
        proba = clf.predict_proba(X[test])
        out_of_fold[test] = proba
        aucs.append(_auc(y[test], proba, n_classes))
    return np.array(aucs), out_of_fold


def train_test_auc(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    model: str = "logreg",
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Fit on the train split, ROC-AUC on the test split (binary). Returns the AUC and the test scores."""
    clf = make_classifier(model, seed=seed).fit(X_train, y_train)
    scores = clf.predict_proba(X_test)[:, 1]
    return _auc(y_test, np.column_stack([1 - scores, scores]), 2), scores


@dataclass
class TaskScore:
    """One score: an embedding table on a task with a model.

    ``n_labelled`` counts labelled genes (or scored pairs) in the task, ``n_covered`` those with vectors.
    ``auc_std`` is NaN for a single train/test split. ``roc`` is pooled over out-of-fold predictions (binary
    tasks only). A pair task's ``details["folds"]`` holds ``{"train", "test", "dropped"}`` pair counts per fold.
    """

    embedding: str
    task: str
    model: str
    metric: str
    auc_mean: float
    auc_std: float
    protocol: str
    n_labelled: int
    n_covered: int
    fold_aucs: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    roc: RocCurve | None = None

    @property
    def coverage(self) -> float:
        """The fraction of labelled genes (or pairs) that had vectors; NaN for an empty task."""
        return self.n_covered / self.n_labelled if self.n_labelled else float("nan")

    def row(self) -> dict[str, Any]:
        """The table row: embedding, task, model, AUC, protocol, coverage (and pairs per fold for pair tasks)."""
        row = {
            "embedding": self.embedding,
            "task": self.task,
            "model": self.model,
            "metric": self.metric,
            "ROC-AUC": format_mean_std(self.auc_mean, self.auc_std),
            "protocol": self.protocol,
            "coverage": f"{self.n_covered}/{self.n_labelled} ({100 * self.coverage:.1f}%)",
        }
        if "folds" in self.details:
            row["pairs per fold (train/test)"] = " · ".join(
                f"{fold['train']}/{fold['test']}" for fold in self.details["folds"]
            )
        return row


def _roc(y: np.ndarray, scores: np.ndarray, auc: float) -> RocCurve:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, scores)
    return RocCurve(fpr=fpr, tpr=tpr, auc=auc)


def _score_genes(emb, emb_name, task: GeneLabels, models, n_splits, seed) -> list[TaskScore]:
    rows = match_genes(emb, task.genes, task.fallback)
    covered = rows >= 0
    # One gene may be labelled twice (two Ensembl ids of one HGNC gene): keep its first label only.
    _, first = np.unique(rows[covered], return_index=True)
    keep = np.flatnonzero(covered)[np.sort(first)]
    X, y = emb.vectors[rows[keep]], task.labels[keep]
    counts = np.bincount(y, minlength=len(task.classes))
    usable = [c for c in range(len(task.classes)) if counts[c] >= n_splits]
    dropped = [task.classes[c] for c in range(len(task.classes)) if c not in usable]
    if len(usable) < 2:
        raise BioprofileInputError(
            f"task {task.name}: only {int(covered.sum())} of {len(task.genes)} labelled genes have vectors in "
            f"{emb_name}, too few per class for {n_splits}-fold CV; embed more of the labelled genes"
        )
    mask = np.isin(y, usable)
    X, y = X[mask], np.searchsorted(usable, y[mask])
    binary = len(usable) == 2
    scores = []
    for model in models:
        aucs, oof = cross_validated_auc(X, y, model=model, n_splits=n_splits, seed=seed)
        details = {"classes": [task.classes[c] for c in usable], "class_counts": np.bincount(y).tolist()}
        if dropped:
            details["classes_dropped_too_few_genes"] = dropped
        scores.append(
            TaskScore(
                embedding=emb_name,
                task=task.name,
                model=model,
                metric="roc_auc" if binary else "macro_ovr_roc_auc",
                auc_mean=float(aucs.mean()),
                auc_std=float(aucs.std()),
                protocol=f"stratified {n_splits}-fold",
                n_labelled=len(task.genes),
                n_covered=int(covered.sum()),
                fold_aucs=aucs.tolist(),
                details=details,
                roc=_roc(y, oof[:, 1], float(aucs.mean())) if binary else None,
            )
        )
    return scores


def _score_pairs(emb, emb_name, task: PairLabels, models, n_splits, seed, pair_split) -> list[TaskScore]:
    rows_a, rows_b = match_pairs(emb, task.pairs)
    covered = (rows_a >= 0) & (rows_b >= 0)
    if task.is_test is not None:  # a given split wins over pair_split
        return [
            _score_split_pairs(emb, emb_name, task, rows_a, rows_b, covered, model, seed) for model in models
        ]
    y = task.labels[covered]
    X = pair_features(emb.vectors, rows_a[covered], rows_b[covered])
    if len(y) == 0 or np.bincount(y, minlength=2).min() < n_splits:
        raise BioprofileInputError(
            f"task {task.name}: only {int(covered.sum())} pairs have both vectors in {emb_name}; too few"
        )
    if pair_split == "pairs":
        folds, protocol = pair_folds(y, n_splits=n_splits, seed=seed), f"stratified {n_splits}-fold"
    else:
        folds = gene_disjoint_folds(rows_a[covered], rows_b[covered], n_splits=n_splits, seed=seed)
        protocol = f"gene-disjoint {n_splits}-fold"
        _check_pair_folds(folds, y, task.name, emb_name)
    tested = np.concatenate([fold.test for fold in folds])
    scores = []
    for model in models:
        aucs, oof = folds_auc(X, y, [(f.train, f.test) for f in folds], model=model, seed=seed)
        scores.append(
            TaskScore(
                embedding=emb_name,
                task=task.name,
                model=model,
                metric="roc_auc",
                auc_mean=float(aucs.mean()),
                auc_std=float(aucs.std()),
                protocol=protocol,
                n_labelled=len(task.pairs),
                n_covered=int(covered.sum()),
                fold_aucs=aucs.tolist(),
                details={
                    "pair_split": pair_split,
                    "folds": [fold.counts() for fold in folds],
                    "pairs_tested": len(tested),
                },
                roc=_roc(y[tested], oof[tested, 1], float(aucs.mean())),
            )
        )
    return scores


def _check_pair_folds(folds: list[PairFold], y: np.ndarray, task: str, emb_name: str) -> None:
    """Every gene-disjoint fold must train and test on both classes."""
    for k, fold in enumerate(folds):
        if len(set(y[fold.train].tolist())) < 2 or len(set(y[fold.test].tolist())) < 2:
            raise BioprofileInputError(
                f"task {task}: gene-disjoint fold {k + 1} of {emb_name} has {len(fold.train)} train and "
                f"{len(fold.test)} test pairs, not both classes in each; embed more of the task's genes, lower "
                "n_splits, or score with pair_split 'pairs' (genes then recur between train and test)",
                argument="pair_split",
            )


def _score_split_pairs(emb, emb_name, task: PairLabels, rows_a, rows_b, covered, model, seed) -> TaskScore:
    train, test = covered & ~task.is_test, covered & task.is_test
    if len(set(task.labels[train])) < 2 or len(set(task.labels[test])) < 2:
        raise BioprofileInputError(
            f"task {task.name}: too few pairs with both vectors in {emb_name} ({int(train.sum())} train, "
            f"{int(test.sum())} test); embed more of the task's genes"
        )
    X_train = pair_features(emb.vectors, rows_a[train], rows_b[train])
    X_test = pair_features(emb.vectors, rows_a[test], rows_b[test])
    auc, test_scores = train_test_auc(
        X_train, task.labels[train], X_test, task.labels[test], model=model, seed=seed
    )
    return TaskScore(
        embedding=emb_name,
        task=task.name,
        model=model,
        metric="roc_auc",
        auc_mean=auc,
        auc_std=float("nan"),
        protocol="given train/test split",
        n_labelled=int(task.is_test.sum()),
        n_covered=int(test.sum()),
        fold_aucs=[auc],
        details={
            "train_pairs": int((~task.is_test).sum()),
            "train_pairs_covered": int(train.sum()),
            "pair_split": "given",
            "folds": [{"train": int(train.sum()), "test": int(test.sum()), "dropped": 0}],
        },
        roc=_roc(task.labels[test], test_scores, auc),
    )


def evaluate_task(
    emb: GeneEmbeddings,
    task: GeneLabels | PairLabels,
    *,
    name: str = "embeddings",
    models: Sequence[str] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    pair_split: str = "gene-disjoint",
) -> list[TaskScore]:
    """Score one embedding table on one task.

    Parameters
    ----------
    emb
        The embedding table.
    task
        Labels from a ``load_*`` function or :func:`load_user_labels`.
    name
        What to call the table in the results.
    models
        Classifiers (``logreg``, ``rf``); default both for gene tasks, ``logreg`` for pair tasks.
    n_splits, seed
        Cross-validation folds and the seed of folds and models.
    pair_split
        Folds of a pair task without a given split: ``"gene-disjoint"`` (no gene of a test pair is in a training
        pair, see :func:`~bioprofile.evaluate.gene_tasks.splits.gene_disjoint_folds`) or ``"pairs"`` (stratified
        folds over pairs, genes recur). A task's own train/test split always wins.

    Returns
    -------
    list of TaskScore
        One per model.

    Raises
    ------
    BioprofileInputError
        Too few covered genes or pairs, an unknown ``pair_split``, or a gene-disjoint fold without both classes.
    """
    if pair_split not in PAIR_SPLITS:
        raise BioprofileInputError(
            f"unknown pair_split {pair_split!r}: choose {' or '.join(PAIR_SPLITS)}", argument="pair_split"
        )
    if isinstance(task, PairLabels):
        return _score_pairs(emb, name, task, tuple(models or PAIR_MODELS), n_splits, seed, pair_split)
    return _score_genes(emb, name, task, tuple(models or GENE_MODELS), n_splits, seed)
