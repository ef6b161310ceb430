"""VCWorld-style perturbation reasoning: is gene G differentially expressed after drug D in cell line C.

The task (VCWorld, Wei et al. 2026; its GeneTAK benchmark from Tahoe-100M): a question per ``(drug, cell line,
gene)``, labelled from single-cell data by a Wilcoxon test against the vehicle control; a chat model answers yes or
no by a fixed rule, and is scored per cell line (held-out cell lines, held-out drugs) beside the majority-class and
always-yes baselines.

Modules
-------
- :mod:`.answers` -- the answer rule (:data:`DE_ANSWER_RULE`) and :func:`parse_answer` (defined beside the
  template in :mod:`bioprofile.profiles.de_prompts`, so a training stage reads replies the same way)
- :mod:`.records` -- :class:`DEQuestion` and :func:`read_de_records` (VCWorld's per-cell-line CSVs, or one table)
- :mod:`.labels` -- :func:`vcworld_labels`: records from any perturbation AnnData, the VCWorld way;
  :func:`write_record_files`
- :mod:`.synthetic` -- :func:`tahoe_like_adata`: a seeded Tahoe-shaped AnnData whose drugs act through GO gene sets
- :mod:`.scores` -- accuracy with its Wilson interval, balanced accuracy, F1, the baselines
- :mod:`.benchmark` -- :func:`run_de_reasoning` and the :class:`DEReasoningResult` it returns
"""

from bioprofile.evaluate.de_reasoning.answers import DE_ANSWER_RULE, parse_answer
from bioprofile.evaluate.de_reasoning.benchmark import ALL_CELL_LINES, DEReasoningResult, run_de_reasoning
from bioprofile.evaluate.de_reasoning.labels import (
    VCWORLD_CELL_LINES,
    drug_splits,
    vcworld_labels,
    write_record_files,
)
from bioprofile.evaluate.de_reasoning.records import (
    RECORD_COLUMNS,
    DEQuestion,
    check_both_classes,
    read_de_records,
    sample_records,
)
from bioprofile.evaluate.de_reasoning.scores import (
    BASELINES,
    baseline_predictions,
    score_predictions,
    wilson_interval,
)
from bioprofile.evaluate.de_reasoning.synthetic import (
    CONTROL,
    TAHOE_LIKE_CELL_LINES,
    default_gene_sets_path,
    tahoe_like_adata,
)

__all__ = [
    "ALL_CELL_LINES",
    "BASELINES",
    "CONTROL",
    "DE_ANSWER_RULE",
    "RECORD_COLUMNS",
    "TAHOE_LIKE_CELL_LINES",
    "VCWORLD_CELL_LINES",
    "DEQuestion",
    "DEReasoningResult",
    "baseline_predictions",
    "check_both_classes",
    "default_gene_sets_path",
    "drug_splits",
    "parse_answer",
    "read_de_records",
    "run_de_reasoning",
    "sample_records",
    "score_predictions",
    "tahoe_like_adata",
    "vcworld_labels",
    "wilson_interval",
    "write_record_files",
]
