"""Plots of the benchmarks in :mod:`bioprofile.evaluate`: ROC panels, gene-set scores, UMAPs, integration table.

Each function draws a result the scoring returned, on scanpy's ``sc.pl`` contract (``ax``, ``show``, ``save``,
``return_fig``; see :mod:`bioprofile.pl._figure`); the older ``path`` argument still saves there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.evaluate.clustering import ClusteringResult
from bioprofile.evaluate.gene_sets import METRIC_NAMES, METRICS, GeneSetResult
from bioprofile.evaluate.gene_tasks import GeneTaskReport
from bioprofile.evaluate.integration import BIO_COLUMNS, LOWER_IS_BETTER, IntegrationResult
from bioprofile.evaluate.report import RocCurve
from bioprofile.pl._figure import finish, new_figure, save_target

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["clustering_umaps", "gene_set_scores", "integration_table", "roc_panels"]


def roc_panels(
    panels: GeneTaskReport | Mapping[str, Mapping[str, RocCurve]],
    path: str | Path | None = None,
    *,
    ncols: int = 3,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """One ROC panel per task, one line per curve (an embedding and model), the area under the drawn curve in each label.

    A gene task's curve pools the out-of-fold scores of every fold, so its legend gives that curve's own area
    (``pooled AUC``), which differs a little from the mean of the folds' AUCs in the report's table. A panel's title
    gives the number of genes scored (from a report) or of curves drawn.

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
    ax
        One Axes per panel to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/roc_panels.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, list of them, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the panels' Axes (one Axes for one panel).

    Raises
    ------
    ValueError
        No panel has a curve (a report of multi-class tasks only has none).
    """
    from sklearn.metrics import RocCurveDisplay, auc

    save = save_target(path, save)
    n_genes: dict[str, int] = {}
    if isinstance(panels, GeneTaskReport):
        for score in panels.scores:
            n_genes[score.task] = max(n_genes.get(score.task, 0), score.n_covered)
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
    fig, axes, own = new_figure(
        ax,
        figsize=((4.2 + (3.0 if outside else 0.0)) * ncols, 4.0 * nrows),
        n_panels=len(titles),
        nrows=nrows,
        ncols=ncols,
    )
    styles = ["-", "--", ":", "-."]
    for panel, title in zip(axes, titles, strict=False):
        # the area under the curve drawn (out-of-fold scores pooled), not the mean fold AUC of the table
        drawn = {label: float(auc(curve.fpr, curve.tpr)) for label, curve in panels[title].items()}
        ranked = sorted(panels[title].items(), key=lambda item: -drawn[item[0]])  # best first in the legend
        for i, (label, curve) in enumerate(ranked):
            display = RocCurveDisplay(fpr=curve.fpr, tpr=curve.tpr, roc_auc=drawn[label], name=label)
            display.plot(
                ax=panel,
                curve_kwargs={"lw": 1.3, "color": f"C{i % 10}", "ls": styles[(i // 10) % len(styles)]},
                plot_chance_level=i == len(ranked) - 1,
                chance_level_kw={"color": "grey", "lw": 0.8, "ls": "--"},
            )
        n = f"n={n_genes[title]} genes" if title in n_genes else f"n={len(ranked)} curves"
        panel.set(
            title=f"{title} ({n})",
            xlabel="false positive rate",
            ylabel="true positive rate",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        legend = {"title": "pooled AUC: area under the curve drawn", "title_fontsize": 6}
        if outside:
            panel.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, **legend)
        else:
            panel.legend(fontsize=7, loc="lower right", **legend)
    for panel in axes[len(titles) :]:
        panel.axis("off")
    if own:
        fig.tight_layout()
    drawn_axes = axes[: len(titles)]
    return finish(
        fig,
        drawn_axes[0] if len(drawn_axes) == 1 else drawn_axes,
        name="roc_panels",
        show=show,
        save=save,
        return_fig=return_fig,
    )


#: Curves per panel up to which the legend sits inside the axes (lower right).
LEGEND_INSIDE_MAX = 6


def gene_set_scores(
    result: GeneSetResult,
    path: str | Path | None = None,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """A bar per method and metric of a gene-set run: the mean over sets, the std over sets as an error bar.

    The baseline (every set given the most frequent term) is grey, so a model's bars read against it.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.gene_sets.run_gene_sets` returned.
    path
        Also save the figure there (PNG by suffix).
    ax
        The Axes to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/gene_set_scores.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the Axes.
    """
    save = save_target(path, save)
    table = result.to_frame()
    methods = list(table.index)
    width = 0.8 / max(len(methods), 1)
    fig, (ax,), own = new_figure(ax, figsize=(1.4 * len(METRICS) + 2.5, 3.6))
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
    ax.set_title(f"Gene-set naming (n={len(result.sets)} sets)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    if own:
        fig.tight_layout()
    return finish(fig, ax, name="gene_set_scores", show=show, save=save, return_fig=return_fig)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def clustering_umaps(
    result: ClusteringResult,
    out_dir: str | Path | None = None,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """The UMAP of each embedding of a clustering benchmark side by side, coloured by label.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.clustering.benchmark_clustering` returned; the UMAPs are computed with
        its ``n_neighbors`` and seed (:meth:`~bioprofile.evaluate.clustering.ClusteringResult.umap_coordinates`).
    out_dir
        Also save each UMAP alone there as ``umap_<method>.png`` (the name lower-cased, non-alphanumerics as
        ``_``) and the panels side by side as ``umap_all.png`` (the folder is created).
    ax
        One Axes per embedding to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the side-by-side figure: a path, or ``True`` for ``figures/clustering_umaps.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, list of them, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else one Axes per embedding (one Axes for one).
    """
    import matplotlib
    from matplotlib.figure import Figure

    labels = np.asarray([str(v) for v in result.labels])
    categories = sorted(set(labels))
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(categories), 2)))
    coords = result.umap_coordinates()

    def draw(panel: Any, xy: np.ndarray, title: str) -> None:
        for color, cat in zip(colors, categories, strict=False):
            sel = labels == cat
            panel.scatter(xy[sel, 0], xy[sel, 1], s=4, color=color, label=cat, rasterized=True)
        panel.set_title(f"{title} (n={len(labels)} cells)", fontsize=9)
        panel.set_xticks([])
        panel.set_yticks([])

    def legend(panel: Any) -> None:
        panel.legend(markerscale=3, fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)

    fig, axes, own = new_figure(
        ax, figsize=(4 * len(coords) + 1.5, 4), n_panels=len(coords), ncols=len(coords)
    )
    for panel, (name, xy) in zip(axes, coords.items(), strict=False):
        draw(panel, xy, name)
    legend(axes[-1])
    if own:
        fig.tight_layout()
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, xy in coords.items():
            # a bare Figure, not pyplot: a file only, never shown, so none is left open in pyplot's registry
            alone = Figure(figsize=(5.5, 4.5))
            panel = alone.subplots()
            draw(panel, xy, name)
            legend(panel)
            alone.tight_layout()
            alone.savefig(out_dir / f"umap_{_slug(name)}.png", dpi=120)
        fig.savefig(out_dir / "umap_all.png", dpi=120)
    return finish(
        fig,
        axes[0] if len(axes) == 1 else axes,
        name="clustering_umaps",
        show=show,
        save=save,
        return_fig=return_fig,
    )


def integration_table(
    result: IntegrationResult | pd.DataFrame,
    path: str | Path | None = None,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """Heatmap of an integration table (methods × metrics, values printed), sorted by Total.

    Every column is coloured on 0-1 with green for good: columns where lower is better
    (:data:`~bioprofile.evaluate.integration.LOWER_IS_BETTER`, FOSCTTM) on the inverted scale, and marked ``(↓)``.

    Parameters
    ----------
    result
        What :func:`~bioprofile.evaluate.integration.benchmark_integration` returned, or its ``.table``.
    path
        Also save the figure there (PNG by suffix).
    ax
        The Axes to draw on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/integration_table.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the Axes.
    """
    save = save_target(path, save)
    table = result.table if isinstance(result, IntegrationResult) else result
    table = table.sort_values("Total", ascending=False) if "Total" in table else table
    values = table.to_numpy(dtype=float)
    fig, (ax,), own = new_figure(ax, figsize=(1.0 * values.shape[1] + 3, 0.5 * values.shape[0] + 1.8))
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
    ax.set_title(f"Integration scores (n={values.shape[0]} methods)", fontsize=9)
    if own:
        fig.tight_layout()
    return finish(fig, ax, name="integration_table", show=show, save=save, return_fig=return_fig, dpi=130)


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
