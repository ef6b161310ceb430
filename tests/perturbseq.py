"""A semi-synthetic Perturb-seq AnnData whose effects follow GO gene sets, for the STATE perturbation bench.

The rule a text embedding could know: the perturbed genes come from a few GO gene sets of GeneAgent's
``GO_terms.csv`` (disjoint sets, genes with a RefSeq summary in ``gene_narrative_synopsis.txt``), and every gene
of a set shifts the same block of expression features in the same direction (plus a small effect of its own).
A perturbation held out of training therefore resembles the training perturbations of its gene set: features
that place a gene near the others of its set (RefSeq summaries say what a gene does) can predict it, one-hot
features cannot.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONTROL = "non-targeting"


@dataclass
class PerturbSeq:
    """The data and what was planted in it.

    Attributes
    ----------
    adata
        Cells x expression features; ``obs``: ``gene`` (perturbation or the control), ``cell_type``,
        ``gem_group``; ``obsm["X_hvg"]`` is ``X`` (every feature is a highly variable gene).
    groups
        GO term -> the perturbed genes drawn from it.
    summaries
        Each perturbed gene -> its RefSeq summary.
    test_perturbations
        The held-out perturbations: some genes of every group.
    """

    adata: object
    groups: dict[str, list[str]]
    summaries: dict[str, str]
    test_perturbations: list[str] = field(default_factory=list)


def read_refseq_summaries(path: Path) -> dict[str, str]:
    """The first non-empty summary of each gene of a ``SYMBOL: text`` file."""
    summaries: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        symbol, _, text = line.partition(":")
        if symbol.strip() and " " not in symbol.strip() and text.strip():
            summaries.setdefault(symbol.strip(), text.strip())
    return summaries


def pick_go_groups(
    go_csv: Path, summaries: dict[str, str], *, n_groups: int, genes_per_group: int, seed: int = 0
) -> dict[str, list[str]]:
    """``n_groups`` disjoint GO gene sets of ``genes_per_group`` genes that all have a summary, drawn with ``seed``."""
    with open(go_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(seed).permutation(len(rows))
    groups: dict[str, list[str]] = {}
    used: set[str] = set()
    for i in order:
        genes = [g for g in dict.fromkeys(rows[i]["Genes"].split()) if g in summaries and g not in used]
        if len(genes) >= genes_per_group:
            chosen = sorted(genes)[:genes_per_group]
            groups[rows[i]["GO"]] = chosen
            used.update(chosen)
        if len(groups) == n_groups:
            return groups
    raise ValueError(f"only {len(groups)} disjoint GO sets of {genes_per_group} summarised genes found")


def build_perturbseq(
    shared_data: Path,
    *,
    n_groups: int = 5,
    genes_per_group: int = 6,
    n_test_per_group: int = 1,
    cells_per_perturbation: int = 4,
    n_control: int = 24,
    cell_types: tuple[str, ...] = ("K562", "RPE1", "HepG2"),
    n_features: int = 40,
    effect: float = 1.5,
    seed: int = 0,
) -> PerturbSeq:
    """A Perturb-seq AnnData with effects planted by GO gene set (see the module docstring).

    Parameters
    ----------
    shared_data
        The real data folder (``geneagent/GO_terms.csv`` and ``geneagent/gene_narrative_synopsis.txt``).
    n_groups, genes_per_group
        How many GO sets, and how many perturbed genes from each.
    n_test_per_group
        Genes of each set held out of training (the zero-shot perturbations).
    cells_per_perturbation, n_control
        Cells per perturbation and control cells, in each cell type.
    cell_types
        The cell types; each has its own baseline expression.
    n_features
        Expression features; each set shifts its own block of them.
    effect
        The size of a set's shift (in log1p units); a gene's own effect is a fifth of it.
    seed
        The seed of every draw.
    """
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    summaries_all = read_refseq_summaries(shared_data / "geneagent" / "gene_narrative_synopsis.txt")
    groups = pick_go_groups(
        shared_data / "geneagent" / "GO_terms.csv",
        summaries_all,
        n_groups=n_groups,
        genes_per_group=genes_per_group,
        seed=seed,
    )
    block = n_features // n_groups
    directions = {}
    for k, term in enumerate(groups):
        d = np.zeros(n_features)
        d[k * block : (k + 1) * block] = effect * rng.choice([-1.0, 1.0], size=block)
        directions[term] = d
    gene_effect = {
        g: directions[term] + 0.2 * effect * rng.standard_normal(n_features)
        for term, genes in groups.items()
        for g in genes
    }
    rows, labels, types = [], [], []
    for ct in cell_types:
        baseline = rng.uniform(2.0, 4.0, n_features)
        for label, n in [(CONTROL, n_control), *((g, cells_per_perturbation) for g in gene_effect)]:
            shift = 0.0 if label == CONTROL else gene_effect[label]
            rows.append(baseline + shift + 0.3 * rng.standard_normal((n, n_features)))
            labels += [label] * n
            types += [ct] * n
    x = np.clip(np.vstack(rows), 0.0, None).astype(np.float32)
    obs = pd.DataFrame(
        {
            "gene": pd.Categorical(labels),
            "cell_type": pd.Categorical(types),
            "gem_group": pd.Categorical(rng.choice(["g1", "g2"], size=len(labels))),
        },
        index=[f"cell{i}" for i in range(len(labels))],
    )
    var = pd.DataFrame(index=[f"HVG{j:03d}" for j in range(n_features)])
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.obsm["X_hvg"] = x.copy()
    test = sorted(g for genes in groups.values() for g in genes[:n_test_per_group])
    return PerturbSeq(adata, groups, {g: summaries_all[g] for g in gene_effect}, test)
