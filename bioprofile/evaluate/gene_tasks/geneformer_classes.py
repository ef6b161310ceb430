"""Binary gene-class tasks from Geneformer's pickles.

Bivalent vs non-methylated and bivalent vs Lys4-only promoters, long- vs short-range transcription factors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.labels import GeneLabels
from bioprofile.safe_pickle import safe_load_pickle

__all__ = ["load_gene_class_pickle"]


def load_gene_class_pickle(path: str | Path, name: str, positive: str, negative: str) -> GeneLabels:
    """A binary task from a Geneformer-style pickle ``{class name: [gene ids]}``, read with the safe unpickler.

    Parameters
    ----------
    path
        The pickle (e.g. ``bivalent_vs_lys4_only.pickle``).
    name
        Task name.
    positive, negative
        Text that identifies the positive / negative class key (case-insensitive substring, ``_`` and ``-``
        ignored), e.g. ``"bivalent"`` and ``"lys4"``.

    Returns
    -------
    GeneLabels
        The genes of both classes, the positive class labelled 1.
    """
    table = safe_load_pickle(path)
    if not isinstance(table, dict):
        raise BioprofileInputError(f"{path} is not a {{class: [genes]}} dict")

    def squash(text: str) -> str:
        return str(text).lower().replace("_", "").replace("-", "").replace(" ", "")

    def pick(token: str) -> str:
        hits = [k for k in table if squash(token) in squash(k)]
        if len(hits) != 1:
            raise BioprofileInputError(
                f"{path}: cannot tell which key is {token!r} among {', '.join(map(str, table))}"
            )
        return hits[0]

    pos, neg = pick(positive), pick(negative)
    genes = [str(g) for g in table[pos]] + [str(g) for g in table[neg]]
    labels = [1] * len(table[pos]) + [0] * len(table[neg])
    return GeneLabels(name, genes, np.array(labels), [str(neg), str(pos)])
