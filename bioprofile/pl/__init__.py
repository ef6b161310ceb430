"""Plots, apart from the scoring that feeds them (scanpy's ``pl``; scib-metrics' ``plot_results_table``).

Every plot takes a result object or table that a scoring function in :mod:`bioprofile.evaluate`,
:mod:`bioprofile.cells` or :mod:`bioprofile.diagnose` returned and draws it with matplotlib (imported on first use)
on scanpy's ``sc.pl`` contract (:mod:`._figure`): ``ax=None`` draws on a new pyplot figure (so a notebook shows
it), ``show=None`` shows it when matplotlib is interactive (a notebook, ``plt.ion()``), ``save`` writes it (a path,
or ``True`` for ``figures/<plot>.png``), and the Figure is returned with ``return_fig=True``, else the Axes (``None``
when shown). Those that take ``path`` still save there. Titles or labels give the number of cells, genes, sets or
windows drawn.

Modules
-------
One private module per area, its public functions re-exported here.

- :mod:`._cells` -- cells on AnnData (:mod:`bioprofile.cells`, :mod:`bioprofile.tl`): :func:`cell_embedding` (an
  ``obsm`` basis coloured by ``obs``, colours from ``uns[f"{key}_colors"]``), :func:`category_colors`
- :mod:`._diagnose` -- :mod:`bioprofile.diagnose`: :func:`plot_group_summary` (window groups),
  :func:`plot_token_weights` (per-token SFT/DFT/BFT weights of one response)
- :mod:`._evaluate` -- the benchmarks of :mod:`bioprofile.evaluate`: :func:`roc_panels` (gene tasks),
  :func:`gene_set_scores`, :func:`clustering_umaps`, :func:`integration_table`
- :mod:`._perturbation` -- the perturbation bench of :mod:`bioprofile.evaluate.perturbation`:
  :func:`perturbation_metrics` (one bar panel per cell-eval metric)
- :mod:`._responses` -- the response metrics of :mod:`bioprofile.evaluate.responses`: :func:`response_metrics` (one
  bar panel per metric, a bar per model)
- :mod:`._train` -- training runs of :mod:`bioprofile.train`: :func:`grpo_rewards` (a GRPO run's mean reward,
  malformed rate, all-equal groups and KL per step)
- :mod:`._results` -- :func:`write_result`: a benchmark result's PREFIX.md, PREFIX.json and figure in one call
  (the ending of every ``bench`` command); :func:`register_plot` gives a result type its figure,
  :func:`figure_path` says where it goes
- :mod:`._figure` -- the contract the plots share: ``ax``, ``show``, ``save``, ``return_fig``
"""

from bioprofile.pl._cells import category_colors, cell_embedding
from bioprofile.pl._diagnose import plot_group_summary, plot_token_weights
from bioprofile.pl._evaluate import clustering_umaps, gene_set_scores, integration_table, roc_panels
from bioprofile.pl._perturbation import perturbation_metrics
from bioprofile.pl._responses import response_metrics
from bioprofile.pl._results import figure_path, register_plot, write_result
from bioprofile.pl._train import grpo_rewards

__all__: list[str] = [
    "category_colors",
    "cell_embedding",
    "clustering_umaps",
    "figure_path",
    "gene_set_scores",
    "grpo_rewards",
    "integration_table",
    "perturbation_metrics",
    "plot_group_summary",
    "plot_token_weights",
    "register_plot",
    "response_metrics",
    "roc_panels",
    "write_result",
]
