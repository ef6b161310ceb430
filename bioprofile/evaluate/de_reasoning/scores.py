"""Scores of yes/no predictions against labels: accuracy with its Wilson interval, balanced accuracy, F1, baselines.

A malformed answer (``None``) is scored wrong: it counts as the class opposite to the label, so it lowers accuracy,
balanced accuracy and F1 alike, and is counted apart in ``malformed``. The baselines answer every question of a cell
line the same way: ``majority`` with the class most of that cell line's scored records have (``no`` on a tie), and
``always-yes`` with yes; they need no model and bound what an uninformed answerer gets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["BASELINES", "Z_95", "baseline_predictions", "score_predictions", "wilson_interval"]

#: The normal quantile of a two-sided 95 % interval.
Z_95 = 1.959963984540054
#: The baselines' names, in table order.
BASELINES = ("majority", "always-yes")


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default).

    Parameters
    ----------
    successes
        Correct answers.
    n
        Answers in all.
    z
        Normal quantile of the interval's level.

    Returns
    -------
    tuple of float
        ``(low, high)`` in [0, 1]; ``(nan, nan)`` when ``n`` is 0.
    """
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def score_predictions(labels: Sequence[bool], predictions: Sequence[bool | None]) -> dict[str, Any]:
    """Accuracy (with its 95 % Wilson interval), balanced accuracy, F1 of yes, and the malformed share.

    Parameters
    ----------
    labels
        True classes (``True``: differentially expressed).
    predictions
        Parsed answers, ``None`` for malformed (scored as the wrong class).

    Returns
    -------
    dict
        ``n``, ``positives``, ``correct``, ``accuracy``, ``accuracy_low``, ``accuracy_high``, ``balanced_accuracy``
        (mean of the recalls of yes and no; the recall of a class with no records is left out), ``f1`` (of the
        yes class; 0 when undefined: no yes record and no yes answer), ``malformed``
        (count) and ``malformed_rate``.
    """
    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    effective = [(not y) if p is None else p for y, p in zip(labels, predictions, strict=True)]
    n = len(labels)
    tp = sum(1 for y, p in zip(labels, effective, strict=True) if y and p)
    tn = sum(1 for y, p in zip(labels, effective, strict=True) if not y and not p)
    positives = sum(1 for y in labels if y)
    negatives = n - positives
    predicted_yes = sum(1 for p in effective if p)
    recalls = [
        r
        for r in (tp / positives if positives else None, tn / negatives if negatives else None)
        if r is not None
    ]
    malformed = sum(1 for p in predictions if p is None)
    low, high = wilson_interval(tp + tn, n)
    return {
        "n": n,
        "positives": positives,
        "correct": tp + tn,
        "accuracy": (tp + tn) / n if n else math.nan,
        "accuracy_low": low,
        "accuracy_high": high,
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else math.nan,
        "f1": 2 * tp / (positives + predicted_yes) if positives + predicted_yes else 0.0,
        "malformed": malformed,
        "malformed_rate": malformed / n if n else math.nan,
    }


def baseline_predictions(labels: Sequence[bool], baseline: str) -> list[bool]:
    """A baseline's answers for the records of one cell line: the same class for every record.

    Parameters
    ----------
    labels
        The cell line's labels (the majority baseline's class is theirs).
    baseline
        ``"majority"`` (the more frequent class; ``no`` on a tie) or ``"always-yes"``.

    Returns
    -------
    list of bool
    """
    if baseline == "always-yes":
        answer = True
    elif baseline == "majority":
        answer = sum(1 for y in labels if y) * 2 > len(labels)
    else:
        raise ValueError(f"unknown baseline {baseline!r}: one of {', '.join(BASELINES)}")
    return [answer] * len(labels)
