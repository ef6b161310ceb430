"""Plots, apart from the scoring that feeds them (scanpy's ``pl``; scib-metrics' ``plot_results_table``).

Every function takes a result object or table that a scoring function in :mod:`bioprofile.evaluate`,
:mod:`bioprofile.cells` or :mod:`bioprofile.diagnose` returned, draws it with matplotlib (imported on first use) and
returns the figure or axes; those that take ``path`` also save a PNG there.

Modules
-------
One private module per area, its public functions re-exported here.
"""

from __future__ import annotations

from bioprofile.pl._diagnose import plot_group_summary, plot_token_weights

__all__: list[str] = ["plot_group_summary", "plot_token_weights"]
