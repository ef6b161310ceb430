"""Dosage-sensitive vs dosage-insensitive transcription factors (GenePT's dosage task)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, read_csv_rows

__all__ = ["load_dosage_labels"]


def load_dosage_labels(path: str | Path) -> GeneLabels:
    """Dosage-sensitive (1) vs dosage-insensitive (0) transcription factors.

    Parameters
    ----------
    path
        ``dosage_sens_tf_labels.csv`` with columns ``ensembl_id, gene_name, dosage_insensitive, dosage_sensitive``
        (``Yes`` marks the class).

    Returns
    -------
    GeneLabels
        122 sensitive and 368 insensitive TFs for the released file; Ensembl ids first, symbols as fallback.
    """
    rows = read_csv_rows(Path(path))
    genes, fallback, labels = [], [], []
    for row in rows:
        sensitive = row.get("dosage_sensitive", "").strip().lower() == "yes"
        insensitive = row.get("dosage_insensitive", "").strip().lower() == "yes"
        if sensitive == insensitive:  # neither or both: no usable label
            continue
        genes.append(row["ensembl_id"].strip())
        fallback.append(row.get("gene_name", "").strip())
        labels.append(int(sensitive))
    if not genes:
        raise BioprofileInputError(
            f"{path} has no dosage labels: expected columns dosage_sensitive/insensitive"
        )
    return GeneLabels("dosage", genes, np.array(labels), ["dosage_insensitive", "dosage_sensitive"], fallback)
