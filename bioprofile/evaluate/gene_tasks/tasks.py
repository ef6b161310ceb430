"""The registry of built-in gene tasks: name -> data manifest and loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bioprofile.data import data_cache_dir, fetch_dataset, load_manifest
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.dosage import load_dosage_labels
from bioprofile.evaluate.gene_tasks.functional_class import load_gene_types
from bioprofile.evaluate.gene_tasks.geneformer_classes import load_gene_class_pickle
from bioprofile.evaluate.gene_tasks.interaction import load_gene2vec_pairs, load_pair_table
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, PairLabels

__all__ = ["DEFAULT_TASKS", "TASKS", "load_task"]

# name -> (manifest, loader of the fetched files). Paths are relative to the data directory.
TASKS: dict[str, tuple[str, Any]] = {
    "dosage": ("genept_dosage_tf", lambda d: load_dosage_labels(d / "genept/dosage_sens_tf_labels.csv")),
    "bivalent_vs_no_methyl": (
        "geneformer_chromatin",
        lambda d: load_gene_class_pickle(
            d / "geneformer/bivalent_vs_no_methyl.pickle", "bivalent_vs_no_methyl", "bivalent", "methyl"
        ),
    ),
    "bivalent_vs_lys4_only": (
        "geneformer_chromatin",
        lambda d: load_gene_class_pickle(
            d / "geneformer/bivalent_vs_lys4_only.pickle", "bivalent_vs_lys4_only", "bivalent", "lys4"
        ),
    ),
    "tf_range": (
        "geneformer_tf_range",
        lambda d: load_gene_class_pickle(
            d / "geneformer/tf_regulatory_range.pickle", "tf_range", "long", "short"
        ),
    ),
    "ggi": ("gene2vec_ggi", lambda d: load_gene2vec_pairs(d / "gene2vec")),
    "ppi": ("ppi_pairs", lambda d: load_pair_table(d / "ppi/HuRI.tsv", "ppi")),
    "functional_class": ("genept_gene_info", lambda d: load_gene_types(d / "genept/gene_info_table.csv")),
}
#: Tasks whose data have recorded hashes (the others need ``trust_unverified`` on first download).
DEFAULT_TASKS = ("dosage", "ggi", "functional_class")


def load_task(
    name: str, *, data_dir: str | Path | None = None, trust_unverified: bool = False
) -> GeneLabels | PairLabels:
    """Load a built-in task's labels, from ``data_dir`` when it holds a verified copy, else the download cache.

    Parameters
    ----------
    name
        One of :data:`TASKS`.
    data_dir
        A directory laid out like the project's ``shared/data`` (checked by sha256 before use).
    trust_unverified
        Allow downloading data whose hash is not yet recorded.

    Returns
    -------
    GeneLabels or PairLabels
        The task's labels.
    """
    if name not in TASKS:
        raise BioprofileInputError(f"unknown gene task {name!r}: choose from {', '.join(TASKS)}")
    manifest_name, loader = TASKS[name]
    manifest = load_manifest(manifest_name)
    fetched = fetch_dataset(manifest, data_dir=data_dir, trust_unverified=trust_unverified)
    # All files of a manifest share one root: the fetched path minus the manifest's relative path.
    root = Path(str(fetched[0].path)[: -len(manifest.files[0].path)]) if fetched else data_cache_dir()
    return loader(root)
