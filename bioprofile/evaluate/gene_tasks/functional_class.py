"""Gene functional class (Ensembl gene type): GenePT's multi-class gene task."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, read_csv_rows

__all__ = ["FUNCTIONAL_CLASSES", "load_gene_types"]

#: Gene types of the functional-class task: the Ensembl biotypes with >= 1,000 genes in GenePT's table that
#: are not catch-alls (TEC = "to be experimentally confirmed").
FUNCTIONAL_CLASSES = (
    "protein_coding",
    "lncRNA",
    "processed_pseudogene",
    "unprocessed_pseudogene",
    "misc_RNA",
    "snRNA",
    "miRNA",
    "snoRNA",
)


def load_gene_types(path: str | Path, classes: Sequence[str] = FUNCTIONAL_CLASSES) -> GeneLabels:
    """Gene functional class (Ensembl gene type) as a multi-class task.

    Parameters
    ----------
    path
        ``gene_info_table.csv`` with columns ``ensembl_id, gene_name, gene_type``.
    classes
        Gene types to keep; other genes are left out.

    Returns
    -------
    GeneLabels
        One row per Ensembl id of a kept type; label = position of its type in ``classes``.
    """
    rows = read_csv_rows(Path(path))
    position = {c: i for i, c in enumerate(classes)}
    kept = [r for r in rows if r.get("gene_type", "").strip() in position]
    if not kept:
        raise BioprofileInputError(
            f"{path} has no genes of types {', '.join(classes)}: expected column gene_type"
        )
    return GeneLabels(
        "functional_class",
        [r["ensembl_id"].strip() for r in kept],
        np.array([position[r["gene_type"].strip()] for r in kept]),
        list(classes),
        [r.get("gene_name", "").strip() for r in kept],
    )
