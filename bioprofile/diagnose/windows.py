"""Window rules: cut one response's teacher-forced confidences into windows and classify each window.

Pure numpy on a ``(n,)`` array of token probabilities; no model is involved, so the same rules classify
confidences from any scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bioprofile.errors import BioprofileInputError

GROUPS: tuple[str, ...] = ("sparse-low", "dense-low", "neither")

__all__ = [
    "GROUPS",
    "WindowRule",
    "classify_window",
    "classify_windows",
    "longest_run",
    "low_confidence_mask",
    "window_bounds",
]


@dataclass(frozen=True)
class WindowRule:
    """How windows are cut and classified.

    Attributes
    ----------
    window
        Tokens per window.
    stride
        Tokens between window starts; ``None`` means ``window`` (no overlap).
    low_quantile
        A token is low-confidence when its ``p`` is below this quantile of its response's ``p`` (0.5: the median).
    low_threshold
        If set, an absolute ``p`` threshold used instead of ``low_quantile``.
    sparse_max_frac, sparse_max_run
        Group A (``sparse-low``): at least one low token, low fraction ``<= sparse_max_frac`` and longest run of
        consecutive low tokens ``<= sparse_max_run``.
    dense_min_frac, dense_min_run
        Group B (``dense-low``): low fraction ``>= dense_min_frac`` or longest low run ``>= dense_min_run``.

    Raises
    ------
    BioprofileInputError
        A value out of range, or thresholds under which a window could qualify for both groups; the message
        names the field.
    """

    window: int = 16
    stride: int | None = None
    low_quantile: float = 0.5
    low_threshold: float | None = None
    sparse_max_frac: float = 0.25
    sparse_max_run: int = 2
    dense_min_frac: float = 0.75
    dense_min_run: int = 6

    def __post_init__(self) -> None:
        if self.window < 1:
            raise BioprofileInputError(
                f"window must be at least 1 token, got {self.window}", argument="window"
            )
        if self.stride is not None and self.stride < 1:
            raise BioprofileInputError(
                f"stride must be at least 1 token, got {self.stride}", argument="stride"
            )
        if not 0.0 < self.low_quantile < 1.0:
            raise BioprofileInputError(
                f"low_quantile must lie in (0, 1), got {self.low_quantile}", argument="low_quantile"
            )
        if self.low_threshold is not None and not 0.0 < self.low_threshold < 1.0:
            raise BioprofileInputError(
                f"low_threshold is a probability in (0, 1), got {self.low_threshold}",
                argument="low_threshold",
            )
        # the two groups must not overlap, so a window never qualifies for both
        if not (0.0 <= self.sparse_max_frac < self.dense_min_frac <= 1.0):
            raise BioprofileInputError(
                f"need 0 <= sparse_max_frac ({self.sparse_max_frac}) < dense_min_frac "
                f"({self.dense_min_frac}) <= 1"
            )
        if not (0 <= self.sparse_max_run < self.dense_min_run):
            raise BioprofileInputError(
                f"need sparse_max_run ({self.sparse_max_run}) < dense_min_run ({self.dense_min_run})"
            )

    @property
    def step(self) -> int:
        """Tokens between window starts: ``stride``, or ``window`` when no stride is set."""
        return self.window if self.stride is None else self.stride


def low_confidence_mask(p: np.ndarray, rule: WindowRule = WindowRule()) -> np.ndarray:
    """Which tokens of one response are low-confidence: ``p`` below the rule's quantile or absolute threshold."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = rule.low_threshold if rule.low_threshold is not None else np.quantile(p, rule.low_quantile)
    return p < threshold


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest stretch of consecutive ``True`` values."""
    best = current = 0
    for value in np.asarray(mask, dtype=bool):
        current = current + 1 if value else 0
        best = max(best, current)
    return best


def window_bounds(n_tokens: int, rule: WindowRule = WindowRule()) -> list[tuple[int, int]]:
    """``[start, end)`` of each window over a response of ``n_tokens``.

    Windows start every ``rule.step`` tokens while a full window fits; a response shorter than one window
    yields a single window over all of it; an empty response yields none.
    """
    if n_tokens == 0:
        return []
    last_start = max(n_tokens - rule.window, 0)
    return [(start, min(start + rule.window, n_tokens)) for start in range(0, last_start + 1, rule.step)]


def classify_window(low: np.ndarray, rule: WindowRule = WindowRule()) -> str:
    """Group of one window from its low-confidence mask: ``sparse-low``, ``dense-low`` or ``neither``."""
    low = np.asarray(low, dtype=bool)
    fraction = float(low.mean()) if low.size else 0.0
    run = longest_run(low)
    if fraction >= rule.dense_min_frac or run >= rule.dense_min_run:
        return "dense-low"
    if low.any() and fraction <= rule.sparse_max_frac and run <= rule.sparse_max_run:
        return "sparse-low"
    return "neither"


def classify_windows(p: np.ndarray, rule: WindowRule = WindowRule()) -> pd.DataFrame:
    """Cut one response's confidences into windows and classify each.

    Parameters
    ----------
    p
        ``(n,)`` teacher-forced probabilities of the response tokens.
    rule
        Window size, stride and thresholds.

    Returns
    -------
    One row per window: ``start``, ``end``, ``low_fraction``, ``longest_low_run``, ``mean_p``, ``group``.
    """
    p = np.asarray(p, dtype=np.float64)
    low = low_confidence_mask(p, rule)
    rows = []
    for start, end in window_bounds(p.size, rule):
        rows.append(
            {
                "start": start,
                "end": end,
                "low_fraction": float(low[start:end].mean()),
                "longest_low_run": longest_run(low[start:end]),
                "mean_p": float(p[start:end].mean()),
                "group": classify_window(low[start:end], rule),
            }
        )
    columns = ["start", "end", "low_fraction", "longest_low_run", "mean_p", "group"]
    return pd.DataFrame(rows, columns=columns)
