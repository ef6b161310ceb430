"""Plot of the perturbation bench (:mod:`bioprofile.evaluate.perturbation`): one bar panel per metric.

Drawn on scanpy's ``sc.pl`` contract (``ax``, ``show``, ``save``, ``return_fig``; see :mod:`bioprofile.pl._figure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.evaluate.perturbation import CONTROL_MEAN, METRIC_DIRECTIONS, PerturbationBenchResult
from bioprofile.pl._figure import finish, new_figure, save_target

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["perturbation_metrics"]


def perturbation_metrics(
    result: PerturbationBenchResult,
    path: str | Path | None = None,
    *,
    metrics: Sequence[str] | None = None,
    ncols: int = 3,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """One panel per metric: a bar per method (mean over seeds, the spread as an error bar).

    The control-mean ("no change") bar is grey, and a dashed line at its height shows what a method must beat; each
    title gives the number of held-out perturbations the metric is averaged over.

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
    ax
        One Axes per metric to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/perturbation_metrics.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, list of them, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else one Axes per metric (one Axes for one).
    """
    save = save_target(path, save)
    table = result.table
    metrics = [m for m in (metrics or METRIC_DIRECTIONS) if m in table.columns]
    if not metrics:
        metrics = list(table.columns)
    ncols = max(1, min(ncols, len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes, own = new_figure(
        ax, figsize=(3.6 * ncols, 3.0 * nrows), n_panels=len(metrics), nrows=nrows, ncols=ncols
    )
    n_held = len(result.settings.get("held_out_perturbations", []))
    held = f", n={n_held} perturbations" if n_held else ""
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
        ax.set_title(f"{metric}{arrow}{held}", fontsize=9)
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if own:
        fig.tight_layout()
    drawn = list(axes[: len(metrics)])
    return finish(
        fig,
        drawn[0] if len(drawn) == 1 else drawn,
        name="perturbation_metrics",
        show=show,
        save=save,
        return_fig=return_fig,
        dpi=130,
    )
