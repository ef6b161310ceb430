"""Plots of the benchmarks in :mod:`bioprofile.evaluate`: ROC panels, gene-set scores, UMAPs, integration table.

Each function draws a result the scoring returned and returns the matplotlib figure(s); given a path it also saves
a PNG there. Figures are built with :class:`matplotlib.figure.Figure`, not pyplot, so nothing is left open in a
global figure registry and no backend has to be chosen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.evaluate.clustering import ClusteringResult
from bioprofile.evaluate.gene_sets import METRIC_NAMES, METRICS, GeneSetResult
from bioprofile.evaluate.gene_tasks import GeneTaskReport
from bioprofile.evaluate.integration import BIO_COLUMNS, LOWER_IS_BETTER, IntegrationResult
from bioprofile.evaluate.report import RocCurve

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["clustering_umaps", "gene_set_scores", "integration_table", "roc_panels"]


def roc_panels(
    panels: GeneTaskReport | Mapping[str, Mapping[str, RocCurve]],
    path: str | Path | None = None,
    *,
    ncols: int = 3,
) -> Figure:
    """One ROC panel per task, one line per curve (an embedding and model), the AUC in each label.

    Drawn with scikit-learn's :class:`~sklearn.metrics.RocCurveDisplay`; legends list the curves best first and move
    beside the panel when it holds more than :data:`LEGEND_INSIDE_MAX` curves.

    Parameters
    ----------
    panels
        A :class:`~bioprofile.evaluate.gene_tasks.GeneTaskReport` (its :meth:`roc_panels`), or
        ``{panel title: {line label: RocCurve}}``.
    path
        Also save the figure there (PNG by suffix).
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        No panel has a curve (a report of multi-class tasks only has none).
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import RocCurveDisplay

    if isinstance(panels, GeneTaskReport):
        panels = panels.roc_panels()
    titles = [t for t, curves in panels.items() if curves]
    if not titles:
        raise ValueError("roc_panels needs at least one curve")
    ncols = min(ncols, len(titles))
    nrows = math.ceil(len(titles) / ncols)
    most = max(len(panels[t]) for t in titles)
    # Past a handful of curves the legend goes beside each panel (it would hide the curves inside it), and lines
    # cycle line styles as well as colours so that the 11th curve is not a twin of the 1st.
    outside = most > LEGEND_INSIDE_MAX
    fig = Figure(figsize=((4.2 + (3.0 if outside else 0.0)) * ncols, 4.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, title in zip(axes.flat, titles, strict=False):
        ranked = sorted(panels[title].items(), key=lambda item: -item[1].auc)  # best first in the legend
        for i, (label, curve) in enumerate(ranked):
            display = RocCurveDisplay(fpr=curve.fpr, tpr=curve.tpr, roc_auc=curve.auc, name=label)
            display.plot(
                ax=ax,
                curve_kwargs={"lw": 1.3, "color": f"C{i % 10}", "ls": styles[(i // 10) % len(styles)]},
                plot_chance_level=i == len(ranked) - 1,
                chance_level_kw={"color": "grey", "lw": 0.8, "ls": "--"},
            )
        ax.set(
            title=title, xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1)
        )
        if outside:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        else:
            ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(titles) :]:
        ax.axis("off")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


#: Curves per panel up to which the legend sits inside the axes (lower right).
LEGEND_INSIDE_MAX = 6


def gene_set_scores(result: GeneSetResult, path: str | Path | None = None) -> Figure:
    """A bar per method and metric of a gene-set run: the mean over sets, the std over sets as an error bar.

    The baseline (every set given the most frequent term) is grey, so a model's bars read against it.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.gene_sets.run_gene_sets` returned.
    path
        Also save the figure there (PNG by suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    table = result.to_frame()
    methods = list(table.index)
    width = 0.8 / max(len(methods), 1)
    fig = Figure(figsize=(1.4 * len(METRICS) + 2.5, 3.6))
    ax = fig.subplots()
    x = np.arange(len(METRICS))
    for i, method in enumerate(methods):
        row = table.loc[method]
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            [row[m] for m in METRICS],
            width,
            yerr=[row[f"{m}_std"] for m in METRICS],
            capsize=3,
            color="0.6" if method == "baseline" else f"C{i}",
            label=method,
        )
    ax.set_xticks(x, [METRIC_NAMES[m] for m in METRICS])
    ax.set_ylabel(f"mean over {len(result.sets)} sets")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def clustering_umaps(result: ClusteringResult, out_dir: str | Path | None = None) -> dict[str, Figure]:
    """A UMAP per embedding of a clustering benchmark, coloured by label, and all of them side by side.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.clustering.benchmark_clustering` returned; the UMAPs are computed with
        its ``n_neighbors`` and seed (:meth:`~bioprofile.evaluate.clustering.ClusteringResult.umap_coordinates`).
    out_dir
        Also save each figure there as ``<name>.png`` (the folder is created).

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``umap_<method>`` per method (the name lower-cased, non-alphanumerics as ``_``), then ``umap_all``.
    """
    import matplotlib
    from matplotlib.figure import Figure

    labels = np.asarray([str(v) for v in result.labels])
    categories = sorted(set(labels))
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(categories), 2)))
    coords = result.umap_coordinates()

    def draw(ax: Any, xy: np.ndarray, title: str) -> None:
        for color, cat in zip(colors, categories, strict=False):
            sel = labels == cat
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=color, label=cat, rasterized=True)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    def legend(ax: Any) -> None:
        ax.legend(markerscale=3, fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)

    figures: dict[str, Figure] = {}
    for name, xy in coords.items():
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.subplots()
        draw(ax, xy, name)
        legend(ax)
        fig.tight_layout()
        figures[f"umap_{_slug(name)}"] = fig
    fig = Figure(figsize=(4 * len(coords) + 1.5, 4))
    axes = fig.subplots(1, len(coords), squeeze=False)
    for ax, (name, xy) in zip(axes[0], coords.items(), strict=False):
        draw(ax, xy, name)
    legend(axes[0][-1])
    fig.tight_layout()
    figures["umap_all"] = fig
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, figure in figures.items():
            figure.savefig(out_dir / f"{name}.png", dpi=120)
    return figures


def integration_table(result: IntegrationResult | pd.DataFrame, path: str | Path | None = None) -> Figure:
    """Heatmap of an integration table (methods × metrics, values printed), sorted by Total.

    Every column is coloured on 0-1 with green for good: columns where lower is better
    (:data:`~bioprofile.evaluate.integration.LOWER_IS_BETTER`, FOSCTTM) on the inverted scale, and marked ``(↓)``.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.integration.benchmark_integration` returned, or its ``.table``.
    path
        Also save the figure there (PNG by suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    table = result.table if isinstance(result, IntegrationResult) else result
    table = table.sort_values("Total", ascending=False) if "Total" in table else table
    values = table.to_numpy(dtype=float)
    fig = Figure(figsize=(1.0 * values.shape[1] + 3, 0.5 * values.shape[0] + 1.8))
    ax = fig.subplots()
    ax.imshow(_integration_colors(table), aspect="auto")
    names = [f"{c} (↓)" if c in LOWER_IS_BETTER else c for c in table.columns]
    ax.set_xticks(range(values.shape[1]), names, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), table.index, fontsize=8)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    n_bio = sum(c in BIO_COLUMNS for c in table.columns)
    ax.axvline(n_bio - 0.5, color="black", lw=1)
    ax.axvline(values.shape[1] - 3.5, color="black", lw=1)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig


def _integration_colors(table: pd.DataFrame, cmap: str = "PRGn") -> np.ndarray:
    """The RGBA colour of each cell of an integration table: ``cmap`` on 0-1, inverted where lower is better.

    Parameters
    ----------
    table
        Methods × metrics (an :class:`~bioprofile.evaluate.integration.IntegrationResult`'s ``.table``).
    cmap
        A diverging matplotlib colormap whose high end means good (default purple-green).

    Returns
    -------
    numpy.ndarray
        ``(n_methods, n_metrics, 4)`` floats; a missing score is light grey.
    """
    import matplotlib

    colormap = matplotlib.colormaps[cmap]
    values = np.clip(table.to_numpy(dtype=float), 0.0, 1.0)
    lower = np.asarray([c in LOWER_IS_BETTER for c in table.columns])
    goodness = np.where(lower[None, :], 1.0 - values, values)
    colors = colormap(np.nan_to_num(goodness, nan=0.5))
    colors[np.isnan(values)] = (0.9, 0.9, 0.9, 1.0)
    return colors
