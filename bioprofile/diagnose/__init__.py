"""Teacher-forced confidence diagnostics: where a causal LM doubts its own reference answers.

The question behind Balanced Fine-Tuning is which low-confidence tokens carry the knowledge. Token-level
reweighting (DFT) scales every token's loss by its own probability ``p_t`` and so suppresses all low-``p``
tokens alike. This package measures, on a set of prompt/response pairs:

1. ``p_t`` of every response token under teacher forcing (:func:`token_confidences`);
2. sliding windows over each response, classified by how their low-confidence tokens are laid out
   (:func:`classify_windows`): Group A ``sparse-low`` (isolated dips in a confident context), Group B
   ``dense-low`` (long stretches of doubt), and ``neither``;
3. how often each group holds a gene/protein entity (HGNC symbols plus an optional spaCy NER pipeline,
   :func:`gene_entity_spans`) or a causal connective (:func:`connective_spans`);
4. for one response, each token's SFT/DFT/BFT weight side by side (:func:`token_weight_table`).

See ``docs/diagnose.md`` for the definitions and defaults; the plots are in :mod:`bioprofile.pl`
(:func:`~bioprofile.pl.plot_group_summary`, :func:`~bioprofile.pl.plot_token_weights`).

Modules
-------
One module per step; the public names of each are re-exported here.

- :mod:`.examples` -- reading prompt/response pairs (:class:`PromptResponse`) from chat records, JSONL or RefSeq
  synopses
- :mod:`.confidences` -- loading the causal LM (:func:`load_causal_lm`), teacher-forced ``p`` per response token
  (:class:`ResponseConfidence`, :func:`token_confidences`) and per-token tags (:func:`tag_response`)
- :mod:`.windows` -- window rules (:class:`WindowRule`): cutting a response into windows and classifying each
- :mod:`.tagging` -- gene/protein entity and causal-connective spans (:func:`gene_entity_spans`,
  :func:`ner_gene_spans`, :func:`connective_spans`, :func:`token_tags`): the pure text taggers of
  :mod:`bioprofile.text`, under the names the diagnosis exports
- :mod:`.weights` -- each token's SFT/DFT/BFT/BFT-v1 weight in one response (:func:`token_weight_table`)
- :mod:`.report` -- the whole diagnosis (:func:`diagnose`, :class:`Diagnosis`), its per-group tables and the
  writers
"""

from __future__ import annotations

from bioprofile.diagnose.confidences import (
    ResponseConfidence,
    load_causal_lm,
    tag_response,
    token_confidences,
)
from bioprofile.diagnose.examples import PromptResponse, examples_from_records, read_examples, refseq_examples
from bioprofile.diagnose.report import (
    DEFAULT_RULE,
    Diagnosis,
    check_output_dir,
    diagnose,
    rich_table,
    summarize_windows,
    window_table,
    write_diagnosis,
    write_token_weights,
)
from bioprofile.diagnose.tagging import (
    CAUSAL_CONNECTIVES,
    ENGLISH_WORD_SYMBOLS,
    GENE_ENTITY_LABELS,
    SCISPACY_MODELS,
    connective_spans,
    gene_entity_spans,
    load_ner_pipeline,
    ner_gene_spans,
    token_tags,
    tokens_in_spans,
)
from bioprofile.diagnose.weights import (
    WEIGHT_METHODS,
    check_weight_window,
    compact_weight_view,
    token_weight_table,
)
from bioprofile.diagnose.windows import (
    GROUPS,
    WindowRule,
    classify_window,
    classify_windows,
    longest_run,
    low_confidence_mask,
    window_bounds,
)

__all__ = [
    "CAUSAL_CONNECTIVES",
    "DEFAULT_RULE",
    "ENGLISH_WORD_SYMBOLS",
    "GENE_ENTITY_LABELS",
    "GROUPS",
    "SCISPACY_MODELS",
    "WEIGHT_METHODS",
    "Diagnosis",
    "PromptResponse",
    "ResponseConfidence",
    "WindowRule",
    "check_output_dir",
    "classify_window",
    "classify_windows",
    "compact_weight_view",
    "connective_spans",
    "diagnose",
    "examples_from_records",
    "gene_entity_spans",
    "load_causal_lm",
    "load_ner_pipeline",
    "longest_run",
    "low_confidence_mask",
    "ner_gene_spans",
    "read_examples",
    "refseq_examples",
    "rich_table",
    "summarize_windows",
    "tag_response",
    "token_confidences",
    "token_tags",
    "token_weight_table",
    "check_weight_window",
    "tokens_in_spans",
    "window_bounds",
    "window_table",
    "write_diagnosis",
    "write_token_weights",
]
