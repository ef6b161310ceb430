"""A seeded, Tahoe-shaped perturbation AnnData whose drugs act through real gene sets: offline data for the task.

Tahoe-100M and VCWorld's files are too large to ship or fetch in a test, and no package carries them, so this
builds a small stand-in with their shape (obs columns ``cell_line_id``, ``drug``, ``sample``, ``plate``,
``moa-fine``; raw counts in ``X``; the control ``DMSO_TF``; VCWorld's five held-out cell lines among several) in
which knowledge of gene function is what predicts the label:

- each drug inhibits one gene of a GO biological-process set from GeneAgent's ``GO_terms.csv`` (it is named
  ``"<TARGET> inhibitor"``), and the genes of that set move (mostly down, some up) in the cell lines that respond;
- the other genes (background genes from other GO sets) do not move, whatever the drug;
- not every cell line responds to every drug, and not every gene of a set moves in a responding line, so the
  labels are not a copy of the gene sets: a model that knows which process the target belongs to does well,
  one that does not is at the base rate.

The planted effects are kept in ``uns["planted_de"]`` (cell line, drug, gene, log fold change), so a test can check
that :func:`~bioprofile.evaluate.de_reasoning.labels.vcworld_labels` finds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.data import data_cache_dir
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.de_reasoning.labels import VCWORLD_CELL_LINES
from bioprofile.evaluate.gene_sets import GeneSet, read_gene_sets

__all__ = ["CONTROL", "TAHOE_LIKE_CELL_LINES", "default_gene_sets_path", "tahoe_like_adata"]

#: The vehicle control of Tahoe-100M.
CONTROL = "DMSO_TF"
#: Cell lines of the generated data: VCWorld's five held-out lines, then three more to train on (names only).
TAHOE_LIKE_CELL_LINES = (*VCWORLD_CELL_LINES, "A549", "HT-29", "SK-MEL-2")
# Gene sets a drug can act through: big enough to move a visible share of genes, small enough to stay specific.
_SET_SIZES = (10, 25)
# The chance a cell line responds to a drug, and that a gene of a responding set moves.
_LINE_RESPONDS = 0.8
_GENE_MOVES = 0.75
# Share of moving genes that go down (an inhibitor mostly switches its pathway's genes off).
_DOWN = 0.7
# Log (natural) fold changes of a moving gene, and the spread of baseline expression.
_FOLD = (0.9, 1.6)
_BASE_LOG_MEAN, _BASE_LOG_SD, _LINE_LOG_SD = 1.0, 0.8, 0.3
# Plates the drugs are spread over (Tahoe-100M: each plate holds a panel of drugs on every cell line).
_N_PLATES = 3


def default_gene_sets_path() -> Path:
    """GeneAgent's ``GO_terms.csv`` under the data root (dataset ``geneagent_go_terms``)."""
    return data_cache_dir() / "geneagent" / "GO_terms.csv"


def _drug_sets(sets: list[GeneSet], n_drugs: int, rng: np.random.Generator) -> list[GeneSet]:
    """``n_drugs`` gene sets of a suitable size that share no gene, drawn with ``rng``."""
    fitting = [s for s in sets if _SET_SIZES[0] <= len(set(s.genes)) <= _SET_SIZES[1]]
    chosen: list[GeneSet] = []
    used: set[str] = set()
    for index in rng.permutation(len(fitting)):
        genes = set(fitting[index].genes)
        if genes & used:
            continue
        chosen.append(fitting[index])
        used |= genes
        if len(chosen) == n_drugs:
            return chosen
    raise BioprofileInputError(
        f"the gene-set file has only {len(chosen)} disjoint sets of {_SET_SIZES[0]}-{_SET_SIZES[1]} genes, "
        f"{n_drugs} drugs asked",
        argument="n_drugs",
    )


def tahoe_like_adata(
    gene_sets_path: str | Path | None = None,
    *,
    n_drugs: int = 6,
    cell_lines: Sequence[str] = TAHOE_LIKE_CELL_LINES,
    cells_per_group: int = 30,
    n_background: int = 150,
    seed: int = 0,
) -> Any:
    """A small Tahoe-100M-shaped AnnData whose drugs move the genes of real GO sets (see the module's notes).

    Parameters
    ----------
    gene_sets_path
        GeneAgent's ``GO_terms.csv`` or any file :func:`~bioprofile.evaluate.gene_sets.read_gene_sets` reads;
        ``None``: :func:`default_gene_sets_path` (the data root).
    n_drugs
        Drugs, each acting through its own gene set.
    cell_lines
        Cell line names (at least one).
    cells_per_group
        Cells per drug (and of the control) in each cell line.
    n_background
        Genes outside every drug's set (from other GO sets), which no drug moves.
    seed
        Seed of everything drawn.

    Returns
    -------
    anndata.AnnData
        Counts (float32, sparse CSR) of ``len(cell_lines) * (n_drugs + 1) * cells_per_group`` cells; obs
        ``cell_line_id``, ``drug``, ``sample``, ``plate``, ``moa-fine``; ``uns["planted_de"]`` (the planted
        effects), ``uns["drug_targets"]`` (drug -> target gene) and ``uns["drug_gene_sets"]`` (drug -> GO term).

    Raises
    ------
    BioprofileInputError
        The gene-set file cannot be read, or has too few suitable sets or background genes.
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    if n_drugs < 1 or cells_per_group < 2 or n_background < 0 or not cell_lines:
        raise BioprofileInputError(
            "n_drugs must be at least 1, cells_per_group at least 2, n_background at least 0, and one cell line "
            f"given (got {n_drugs}, {cells_per_group}, {n_background}, {len(cell_lines)})",
            argument="n_drugs",
        )
    path = Path(gene_sets_path) if gene_sets_path is not None else default_gene_sets_path()
    rng = np.random.default_rng(seed)
    sets = read_gene_sets(path)
    acting = _drug_sets(sets, n_drugs, rng)
    in_sets = sorted({g for s in acting for g in s.genes})
    others = sorted({g for s in sets for g in s.genes} - set(in_sets))
    if len(others) < n_background:
        raise BioprofileInputError(
            f"only {len(others)} background genes outside the drugs' sets, {n_background} asked",
            argument="n_background",
        )
    genes = np.array(in_sets + sorted(rng.choice(others, size=n_background, replace=False).tolist()))
    genes = genes[rng.permutation(len(genes))]
    column = {gene: j for j, gene in enumerate(genes)}
    targets = {f"{rng.choice(sorted(set(s.genes)))} inhibitor": s for s in acting}
    drugs = list(targets)

    base = rng.normal(_BASE_LOG_MEAN, _BASE_LOG_SD, size=len(genes))
    blocks, obs, planted = [], [], []
    for line in cell_lines:
        line_mean = base + rng.normal(0.0, _LINE_LOG_SD, size=len(genes))
        for group, drug in enumerate([CONTROL, *drugs]):
            log_mean = line_mean.copy()
            if drug != CONTROL and rng.random() < _LINE_RESPONDS:
                for gene in sorted(set(targets[drug].genes)):
                    if rng.random() < _GENE_MOVES:
                        fold = rng.uniform(*_FOLD) * (-1.0 if rng.random() < _DOWN else 1.0)
                        log_mean[column[gene]] += fold
                        planted.append((line, drug, gene, fold))
            size_factors = rng.lognormal(0.0, 0.2, size=(cells_per_group, 1))
            blocks.append(rng.poisson(np.exp(log_mean)[None, :] * size_factors).astype(np.float32))
            plate = "plate1" if drug == CONTROL else f"plate{1 + (group - 1) % _N_PLATES}"
            sample = f"smp_{len(obs) // cells_per_group:04d}"
            moa = "vehicle" if drug == CONTROL else f"{drug.removesuffix(' inhibitor')} inhibitor"
            obs += [(line, drug, sample, plate, moa)] * cells_per_group
    frame = pd.DataFrame(obs, columns=["cell_line_id", "drug", "sample", "plate", "moa-fine"])
    frame.index = [f"cell_{i:06d}" for i in range(len(frame))]
    for name in frame.columns:
        frame[name] = frame[name].astype("category")
    adata = ad.AnnData(X=sp.csr_matrix(np.vstack(blocks)), obs=frame, var=pd.DataFrame(index=genes.tolist()))
    adata.uns["planted_de"] = pd.DataFrame(planted, columns=["cell_line", "drug", "gene", "log_fold"])
    adata.uns["drug_targets"] = {drug: drug.removesuffix(" inhibitor") for drug in drugs}
    adata.uns["drug_gene_sets"] = {drug: f"{s.name} {s.term}" for drug, s in targets.items()}
    return adata
