"""Plot of the response metrics (:mod:`bioprofile.evaluate.responses`): one bar panel per metric, a bar per model.

Drawn on scanpy's ``sc.pl`` contract (``ax``, ``show``, ``save``, ``return_fig``; see :mod:`bioprofile.pl._figure`).
Registered with :func:`~bioprofile.pl.write_result`, which writes it as ``PREFIX.png`` atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.atomic import atomic_path
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.responses import METRIC_NAMES, RESPONSE_METRICS, ResponseMetrics
from bioprofile.pl._figure import finish, new_figure, save_target
from bioprofile.pl._results import register_plot

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["response_metrics"]

# Drawn by default: every metric but the response count, which each bar's label states instead.
_DRAWN = tuple(m for m in RESPONSE_METRICS if m != "n_responses")


def response_metrics(
    result: ResponseMetrics,
    path: str | Path | None = None,
    *,
    metrics: Sequence[str] | None = None,
    ncols: int = 4,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """One panel per metric, a bar per model; per-response means carry their standard error as an error bar.

    Each bar is labelled with its model and the number of responses it is computed from (``n=``).

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.responses.analyze_responses` returned.
    path
        Also save the figure there (format by suffix).
    metrics
        The metrics to draw (default: those of :data:`~bioprofile.evaluate.responses.RESPONSE_METRICS` but the
        response count).
    ncols
        Panels per row.
    ax
        One Axes per metric to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/response_metrics.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, list of them, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else one Axes per metric (one Axes for one).
    """
    save = save_target(path, save)
    table = result.table
    metrics = list(metrics or _DRAWN)
    unknown = [m for m in metrics if m not in table.columns]
    if unknown or not metrics:
        raise BioprofileInputError(
            f"no metric {', '.join(map(repr, unknown)) or 'given'}: choose among {', '.join(table.columns)}",
            argument="metrics",
        )
    ncols = max(1, min(ncols, len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes, own = new_figure(
        ax, figsize=(3.2 * ncols, 3.0 * nrows), n_panels=len(metrics), nrows=nrows, ncols=ncols
    )
    errors = result.standard_errors()
    models = list(table.index)
    labels = [f"{model}\n(n={int(table.loc[model, 'n_responses'])})" for model in models]
    colors = [f"C{i % 10}" for i in range(len(models))]
    for panel, metric in zip(axes, metrics, strict=False):
        values = table[metric].to_numpy(dtype=float)
        spread = np.nan_to_num(errors[metric].to_numpy(dtype=float)) if metric in errors.columns else None
        panel.bar(range(len(models)), values, yerr=spread, color=colors, capsize=3)
        if metric.endswith("_share"):
            panel.set_ylim(0, 1)
        panel.set_title(METRIC_NAMES.get(metric, metric), fontsize=9)
        panel.set_xticks(range(len(models)), labels, fontsize=8)
    for panel in axes[len(metrics) :]:
        panel.set_visible(False)
    if own:
        counts = ", ".join(f"{model} n={int(n)}" for model, n in table["n_responses"].items())
        fig.suptitle(f"Response metrics ({counts} responses)", fontsize=10)
        fig.tight_layout()
    drawn = list(axes[: len(metrics)])
    return finish(
        fig,
        drawn[0] if len(drawn) == 1 else drawn,
        name="response_metrics",
        show=show,
        save=save,
        return_fig=return_fig,
        dpi=130,
    )


def _write_response_metrics(result: ResponseMetrics, path: Path) -> Any:
    """The figure as :func:`~bioprofile.pl.write_result` writes it: into ``path`` atomically, never shown, closed."""
    import matplotlib.pyplot as plt

    figure = response_metrics(result, show=False, return_fig=True)
    try:
        with atomic_path(path) as tmp:  # a half-written PNG is never left under the final name
            figure.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=130)
    finally:
        plt.close(figure)
    return figure


register_plot(ResponseMetrics, _write_response_metrics)
