"""Plots of a teacher-forced confidence diagnosis (:mod:`bioprofile.diagnose`): group bars and per-token weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bioprofile.diagnose.weights import WEIGHT_METHODS

__all__ = ["plot_group_summary", "plot_token_weights"]


def plot_group_summary(summary: pd.DataFrame, path: str | Path | None = None):
    """Bar plot: per group, the fraction of windows holding an entity and holding a connective.

    Parameters
    ----------
    summary
        The per-group table of a diagnosis (:attr:`bioprofile.diagnose.Diagnosis.summary`).
    path
        If given, the PNG is saved there.

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    # a bare Figure, not pyplot: no backend or global figure state, so it draws the same headless or in a notebook
    from matplotlib.figure import Figure

    positions = np.arange(len(summary))
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
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
    ax.set_title("What low-confidence windows hold")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_token_weights(
    table: pd.DataFrame, path: str | Path | None = None, *, methods: Sequence[str] | None = None
):
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

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    # a bare Figure, not pyplot: no backend or global figure state, so it draws the same headless or in a notebook
    from matplotlib.figure import Figure

    methods = [m for m in (methods or WEIGHT_METHODS) if m in table.columns]
    fig = Figure(figsize=(max(8, len(table) / 12), 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
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
    bottom.set_xlabel("response token position")
    bottom.legend(loc="upper right", fontsize="small", ncol=3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
