"""A benchmark result written whole: its tables (PREFIX.md, PREFIX.json), then its figure, in one call.

Each result type of :mod:`bioprofile.evaluate` has its plot registered here with where the plot goes under the
prefix (``PREFIX.png``, or a folder such as ``PREFIX_umap/``); a new benchmark adds one :func:`register_plot`
line. :func:`write_result` is the ending every ``bench`` command and the ``benchmarks/`` scripts share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import is_dataclass, replace
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.clustering import ClusteringResult
from bioprofile.evaluate.gene_sets import GeneSetResult
from bioprofile.evaluate.gene_tasks import GeneTaskReport
from bioprofile.evaluate.integration import IntegrationResult
from bioprofile.evaluate.perturbation import PerturbationBenchResult
from bioprofile.evaluate.report import BenchmarkResult, check_output_prefix
from bioprofile.pl._evaluate import clustering_umaps, gene_set_scores, integration_table, roc_panels
from bioprofile.pl._perturbation import perturbation_metrics

__all__ = ["figure_path", "register_plot", "write_result"]

#: Result type -> (plot taking the result and a path, where it goes under the prefix).
_PLOTS: dict[type, tuple[Callable[[Any, Path], Any], str]] = {}


def register_plot(result_type: type, plot: Callable[[Any, Path], Any], *, output: str = ".png") -> None:
    """Make ``plot`` the figure :func:`write_result` draws for results of ``result_type`` (and its subclasses).

    Parameters
    ----------
    result_type
        A result class (a :class:`~bioprofile.evaluate.report.BenchmarkResult`).
    plot
        Called as ``plot(result, path)``; it saves there and returns the figure(s), or ``None`` when the result
        has nothing to draw (then no file is written).
    output
        Where the figure goes under the prefix: a suffix (``".png"``: ``PREFIX.png``), or the end of a folder
        name the plot fills (``"_umap"``: ``PREFIX_umap/``).
    """
    _PLOTS[result_type] = (plot, output)


def _plot_of(result: Any) -> tuple[Callable[[Any, Path], Any], str] | None:
    return next((_PLOTS[kind] for kind in type(result).__mro__ if kind in _PLOTS), None)


def figure_path(result: BenchmarkResult, prefix: str | Path) -> Path | None:
    """Where :func:`write_result` puts the figure of ``result`` under ``prefix``; ``None`` if its type has none.

    Parameters
    ----------
    result
        A benchmark result.
    prefix
        The output prefix.

    Returns
    -------
    Path or None
        ``PREFIX.png`` (or the registered suffix), or the folder ``PREFIX_<name>`` a plot of several figures fills.
    """
    found = _plot_of(result)
    if found is None:
        return None
    prefix = Path(prefix)
    output = found[1]
    return prefix.with_suffix(output) if output.startswith(".") else prefix.parent / f"{prefix.name}{output}"


def write_result(
    result: BenchmarkResult,
    prefix: str | Path,
    *,
    overwrite: bool = False,
    plot: bool = True,
    settings: Mapping[str, Any] | None = None,
    echo: Callable[[str], Any] | None = None,
) -> list[Path]:
    """Write a benchmark result's ``PREFIX.md`` and ``PREFIX.json``, then draw its figure (see :func:`figure_path`).

    Every output is checked before anything is written.

    Parameters
    ----------
    result
        What a benchmark returned (gene tasks, gene sets, clustering, integration, perturbation).
    prefix
        The output prefix.
    overwrite
        Replace existing outputs; without it an existing one is refused.
    plot
        Also draw the figure registered for the result's type (:func:`register_plot`); a result with nothing to
        draw (gene tasks without a binary task have no ROC curve) writes none.
    settings
        Recorded first in the JSON's settings (e.g. ``{"input": path}``); the result must be a dataclass.
    echo
        Called with the result's :meth:`~bioprofile.evaluate.report.BenchmarkResult.summary_markdown` once the
        tables are written, and with a ``"wrote ..."`` line at the end (a command passes its printer).

    Returns
    -------
    list of Path
        The files written (markdown, JSON), then the figure's file or folder.

    Raises
    ------
    BioprofileInputError
        An output exists and ``overwrite`` is false, or its folder cannot be written.
    """
    figure = figure_path(result, prefix) if plot else None
    in_folder = figure is not None and not _plot_of(result)[1].startswith(".")
    check_output_prefix(
        prefix,
        overwrite=overwrite,
        suffixes=(".md", ".json") if figure is None or in_folder else (".md", ".json", figure.suffix),
        folders=[figure] if in_folder else [],
    )
    if settings:
        if not is_dataclass(result):
            raise BioprofileInputError(
                f"extra settings need a dataclass result, not a {type(result).__name__}", argument="settings"
            )
        result = replace(result, settings={**settings, **result.settings})
    written = result.write(prefix, overwrite=overwrite)
    if echo is not None:
        echo(result.summary_markdown())
    if figure is not None:
        drawn = _plot_of(result)[0](result, figure)
        if drawn is not None:
            written.append(figure)
    if echo is not None:
        echo("wrote " + ", ".join(map(str, written)))
    return written


def _to_file(plot: Callable[..., Any]) -> Callable[[Any, Path], Any]:
    """``plot`` as ``write_result`` calls it: drawn into the file only, never shown, closed once written.

    The plots draw on pyplot figures (so a notebook shows them); a command writing a result must leave none open.
    """

    def draw(result: Any, path: Path) -> Any:
        import matplotlib.pyplot as plt

        figure = plot(result, path, show=False, return_fig=True)
        plt.close(figure)
        return figure

    return draw


def _roc_panels_if_any(report: GeneTaskReport, path: Path) -> Any:
    """The ROC panels of a gene-task run; ``None`` when no task is binary (nothing to draw)."""
    return _to_file(roc_panels)(report, path) if report.roc_panels() else None


register_plot(GeneTaskReport, _roc_panels_if_any)
register_plot(GeneSetResult, _to_file(gene_set_scores))
register_plot(ClusteringResult, _to_file(clustering_umaps), output="_umap")
register_plot(IntegrationResult, _to_file(integration_table))
register_plot(PerturbationBenchResult, _to_file(perturbation_metrics))
