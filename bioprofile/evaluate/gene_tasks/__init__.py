"""GenePT's gene-level benchmarks: score any gene embedding table on labelled genes and gene pairs.

Protocol (as GenePT, Chen & Zou 2024)
-------------------------------------
- Gene classification (dosage-sensitive TFs, bivalent promoters, TF range, functional class): stratified 5-fold
  cross-validation over the labelled genes that have a vector, logistic regression and random forest, ROC-AUC
  mean ± std over folds, fixed seeds. Functional class is multi-class: macro one-vs-rest ROC-AUC.
- Gene pairs (Gene2vec GGI, PPI): the pair feature is the sum of the two gene vectors; with a given train/test
  split (GGI) the model is fit on covered train pairs and scored on covered test pairs, otherwise 5-fold CV over
  gene-disjoint folds (no gene of a test pair in any training pair; ``pair_split="pairs"`` folds over pairs).
- A random-vector baseline: the same genes, standard-normal vectors of the same dimension, fixed seed.
- Coverage: how many labelled genes (or pairs) had vectors is reported beside every score.

Labels are matched to embedding rows through :func:`bioprofile.genes.normalize_genes`, so Ensembl-labelled tasks
score symbol-keyed tables and vice versa.

An opt-in text-length baseline (:func:`text_length_embeddings`) scores ``log1p`` of each gene's profile-text word
count, one feature, under the same protocol: how much of a score text length alone could explain. An opt-in
symbol-only baseline (:func:`symbol_embeddings`) embeds each gene's bare symbol with the table's encoder: how much
of a score the gene's name alone could explain.

Modules
-------
One module per task family, one for the protocol and one orchestrator:

- :mod:`.labels` -- :class:`GeneLabels`, :class:`PairLabels` and the shared CSV / binary-label readers
- :mod:`.dosage`, :mod:`.functional_class`, :mod:`.geneformer_classes` (bivalent / Lys4-only / non-methylated
  promoters, TF range), :mod:`.interaction` (Gene2vec GGI, PPI), :mod:`.user_labels` -- the task loaders
- :mod:`.tasks` -- the registry of built-in tasks (:data:`TASKS`) and :func:`load_task`
- :mod:`.matching` -- labelled gene ids (and gene pairs) to embedding rows
- :mod:`.splits` -- folds of a pair task: over pairs, or gene-disjoint (:func:`gene_disjoint_folds`)
- :mod:`.protocol` -- classifiers, cross-validated / train-test ROC-AUC, :func:`evaluate_task`
- :mod:`.baselines` -- random vectors, text length and the bare symbol
- :mod:`.benchmark` -- :func:`run_gene_tasks`, its :class:`GeneTaskOptions`, the :class:`GeneTaskReport` it
  returns (``write(prefix)``: PREFIX.md and PREFIX.json), :func:`load_embedding_table`

The report's ROC curves are drawn by :func:`bioprofile.pl.roc_panels`.
"""

from bioprofile.evaluate.gene_tasks.baselines import (
    random_embeddings,
    symbol_embeddings,
    text_length_embeddings,
)
from bioprofile.evaluate.gene_tasks.benchmark import (
    GeneTaskOptions,
    GeneTaskReport,
    load_embedding_table,
    run_gene_tasks,
)
from bioprofile.evaluate.gene_tasks.dosage import load_dosage_labels
from bioprofile.evaluate.gene_tasks.functional_class import FUNCTIONAL_CLASSES, load_gene_types
from bioprofile.evaluate.gene_tasks.geneformer_classes import load_gene_class_pickle
from bioprofile.evaluate.gene_tasks.interaction import load_gene2vec_pairs, load_pair_table, pair_features
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, PairLabels
from bioprofile.evaluate.gene_tasks.matching import match_genes, match_pairs
from bioprofile.evaluate.gene_tasks.protocol import (
    GENE_MODELS,
    PAIR_MODELS,
    TaskScore,
    cross_validated_auc,
    evaluate_task,
    folds_auc,
    make_classifier,
    train_test_auc,
)
from bioprofile.evaluate.gene_tasks.splits import PAIR_SPLITS, PairFold, gene_disjoint_folds, pair_folds
from bioprofile.evaluate.gene_tasks.tasks import DEFAULT_TASKS, TASKS, load_task
from bioprofile.evaluate.gene_tasks.user_labels import load_user_labels

__all__ = [
    "DEFAULT_TASKS",
    "FUNCTIONAL_CLASSES",
    "GENE_MODELS",
    "PAIR_MODELS",
    "PAIR_SPLITS",
    "TASKS",
    "GeneLabels",
    "GeneTaskOptions",
    "GeneTaskReport",
    "PairFold",
    "PairLabels",
    "TaskScore",
    "cross_validated_auc",
    "evaluate_task",
    "folds_auc",
    "gene_disjoint_folds",
    "load_dosage_labels",
    "load_embedding_table",
    "load_gene2vec_pairs",
    "load_gene_class_pickle",
    "load_gene_types",
    "load_pair_table",
    "load_task",
    "load_user_labels",
    "make_classifier",
    "match_genes",
    "match_pairs",
    "pair_features",
    "pair_folds",
    "random_embeddings",
    "run_gene_tasks",
    "symbol_embeddings",
    "text_length_embeddings",
    "train_test_auc",
]
