"""Plot of the perturbation bench (:mod:`bioprofile.evaluate.perturbation`): one bar panel per metric.

Built with :class:`matplotlib.figure.Figure`, not pyplot, so nothing is left open in a global figure registry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bioprofile.evaluate.perturbation import CONTROL_MEAN, METRIC_DIRECTIONS, PerturbationBenchResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["perturbation_metrics"]


def perturbation_metrics(
    result: PerturbationBenchResult,
    path: str | Path | None = None,
    *,
    metrics: Sequence[str] | None = None,
    ncols: int = 3,
) -> Figure:
    """One panel per metric: a bar per method (mean over seeds, the spread as an error bar).

    The control-mean ("no change") bar is grey, and a dashed line at its height shows what a method must beat.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.perturbation.benchmark_perturbation` returned.
    path
        Also save the figure there (PNG by suffix).
    metrics
        The metrics to draw (default: those of :data:`~bioprofile.evaluate.perturbation.METRIC_DIRECTIONS` in
        the table).
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    table = result.table
    metrics = [m for m in (metrics or METRIC_DIRECTIONS) if m in table.columns]
    if not metrics:
        metrics = list(table.columns)
    ncols = max(1, min(ncols, len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.0 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    methods = list(table.index)
    colors = ["0.6" if m == CONTROL_MEAN else f"C{i}" for i, m in enumerate(methods)]
    for ax, metric in zip(axes, metrics, strict=False):
        values = table[metric].to_numpy(dtype=float)
        spread = None if result.std is None else result.std[metric].to_numpy(dtype=float)
        if spread is not None:
            spread = np.nan_to_num(spread)
        ax.bar(range(len(methods)), values, yerr=spread, color=colors, capsize=3)
        if CONTROL_MEAN in methods:
            ax.axhline(values[methods.index(CONTROL_MEAN)], color="0.4", ls="--", lw=1)
        arrow = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(
            METRIC_DIRECTIONS.get(metric), ""
        )
        ax.set_title(metric + arrow, fontsize=9)
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig
