"""Plots of a teacher-forced confidence diagnosis (:mod:`bioprofile.diagnose`): group bars and per-token weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bioprofile.diagnose.weights import WEIGHT_METHODS
from bioprofile.pl._figure import finish, new_figure, save_target

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_group_summary", "plot_token_weights"]


def plot_group_summary(
    summary: pd.DataFrame,
    path: str | Path | None = None,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """Bar plot: per group, the fraction of windows holding an entity and holding a connective.

    Parameters
    ----------
    summary
        The per-group table of a diagnosis (:attr:`bioprofile.diagnose.Diagnosis.summary`).
    path
        If given, the figure is saved there (the same as ``save=path``).
    ax
        The Axes to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path, or ``True`` for ``figures/plot_group_summary.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the Axes.
    """
    save = save_target(path, save)
    positions = np.arange(len(summary))
    fig, (ax,), own = new_figure(ax, figsize=(6, 4))
    bar = 0.38
    ax.bar(positions - bar / 2, summary["frac_with_entity"].fillna(0), bar, label="holds a gene entity")
    ax.bar(
        positions + bar / 2, summary["frac_with_connective"].fillna(0), bar, label="holds a causal connective"
    )
    ax.set_xticks(
        positions, [f"{g}\n(n={n})" for g, n in zip(summary["group"], summary["windows"], strict=False)]
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of windows")
    ax.set_title(f"What low-confidence windows hold (n={int(summary['windows'].sum())} windows)")
    ax.legend(loc="upper right", fontsize="small")
    if own:
        fig.tight_layout()
    return finish(fig, ax, name="plot_group_summary", show=show, save=save, return_fig=return_fig)


def plot_token_weights(
    table: pd.DataFrame,
    path: str | Path | None = None,
    *,
    methods: Sequence[str] | None = None,
    ax: Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """Line plot of each method's per-token weight over positions, with ``p`` beneath and entities marked.

    Parameters
    ----------
    table
        A :func:`bioprofile.diagnose.token_weight_table`.
    path
        If given, the PNG is saved there.
    methods
        Which method columns to draw (default: every one of :data:`bioprofile.diagnose.WEIGHT_METHODS` in
        ``table``).
    ax
        Two Axes to draw on, the weights then ``p`` (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/plot_token_weights.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    list of matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the two Axes.
    """
    save = save_target(path, save)
    methods = [m for m in (methods or WEIGHT_METHODS) if m in table.columns]
    fig, (top, bottom), own = new_figure(
        ax,
        figsize=(max(8, len(table) / 12), 5.5),
        n_panels=2,
        nrows=2,
        sharex=True,
        gridspec_kw={"height_ratios": [2, 1]},
    )
    for method in methods:
        top.plot(table["position"], table[method], label=method, linewidth=1.2, drawstyle="steps-mid")
    top.set_ylabel("token weight")
    top.legend(loc="upper right", fontsize="small", ncol=len(methods))
    bottom.bar(table["position"], table["p"], width=1.0, color="0.55", label="p")
    # tagged tokens are shaded across both panels: their p is often too small to see as a bar
    for column, color, label in (
        ("entity", "tab:red", "gene entity"),
        ("connective", "tab:blue", "causal connective"),
    ):
        positions = table["position"][table[column].to_numpy(dtype=bool)]
        for axis in (top, bottom):
            for position in positions:
                axis.axvspan(position - 0.5, position + 0.5, color=color, alpha=0.18, linewidth=0)
        if len(positions):
            bottom.axvspan(np.nan, np.nan, color=color, alpha=0.18, label=label)  # a legend entry only
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("p (teacher-forced)")
    bottom.set_xlabel(f"response token position (n={len(table)} tokens)")
    bottom.legend(loc="upper right", fontsize="small", ncol=3)
    if own:
        fig.tight_layout()
    return finish(fig, [top, bottom], name="plot_token_weights", show=show, save=save, return_fig=return_fig)
