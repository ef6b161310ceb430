"""Semi-synthetic CITE-seq from real cells: scanpy's ``pbmc68k_reduced`` RNA and cell types, with ADT counts.

The RNA is the dataset's ``.raw`` (log expression of 765 genes, 700 PBMCs) and the labels its ``bulk_labels`` (real
cell types, so scores on the fixture are not circular). Each antibody of a TotalSeq-style panel gets counts from
the RNA of its target gene: the protein is a slow, time-integrated readout, so its signal is the gene's log
expression averaged with the mean over the cell's 15 nearest neighbours in the dataset's own kNN graph (which
smooths dropouts), put through a saturating Hill curve, and drawn as negative-binomial counts over an ambient
background. Three targets (:data:`DISCORDANT`) do not follow their RNA: their signal comes from another cell's RNA
(a seeded permutation), as for proteins whose level is set after transcription. Everything is seeded.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from bioprofile.embeddings import EntityEmbeddings
from bioprofile.proteins import normalize_proteins

#: Antibody target -> the gene its RNA comes from (TotalSeq-C style names, genes present in pbmc68k_reduced).
PANEL = {
    "CD3": "CD3E",
    "CD4": "CD4",
    "CD8a": "CD8A",
    "CD16": "FCGR3A",
    "CD20": "MS4A1",
    "CD45RA": "PTPRC",
    "CD45RO": "PTPRC",
    "HLA-DR": "HLA-DRA",
    "CD127": "IL7R",
    "CD27": "CD27",
    "CD33": "CD33",
    "CD197": "CCR7",
    "CD161": "KLRB1",
    "CD79b": "CD79B",
    "FceRIa": "FCER1A",
    "CD7": "CD7",
    "CD2": "CD2",
    "CD28": "CD28",
    "CD40": "CD40",
    "CD47": "CD47",
    "CD52": "CD52",
}
#: Targets whose protein does not follow their RNA.
DISCORDANT = ("CD45RO", "CD47", "CD28")


def citeseq_fixture(n_cells: int | None = 300, *, seed: int = 0) -> tuple[ad.AnnData, ad.AnnData]:
    """The RNA and ADT AnnData of the same cells (same ``obs_names``), with ``obs["cell_type"]``.

    Parameters
    ----------
    n_cells
        Cells kept (a seeded sample of the 700; ``None``: all).
    seed
        Seed of the sample, the counts and the discordant targets' permutation.

    Returns
    -------
    tuple of AnnData
        RNA: log expression of 765 genes (sparse ``X``). ADT: raw counts, ``var_names`` the targets of
        :data:`PANEL`, ``var["gene"]`` the gene each follows.
    """
    rng = np.random.default_rng(seed)
    full = sc.datasets.pbmc68k_reduced()
    X = full.raw.X.toarray() if sp.issparse(full.raw.X) else np.asarray(full.raw.X)
    genes = list(full.raw.var_names)
    # neighbour-smoothed RNA: the dataset's own kNN graph (built from expression, not from the labels)
    graph = full.obsp["connectivities"].tocsr()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    smoothed = 0.5 * X + 0.5 * (graph @ X) / np.maximum(degree, 1e-9)[:, None]
    columns = []
    for target, gene in PANEL.items():
        signal = smoothed[:, genes.index(gene)]
        if target in DISCORDANT:
            signal = signal[rng.permutation(len(signal))]
        half = np.quantile(signal[signal > 0], 0.5) if (signal > 0).any() else 1.0
        saturating = signal**2 / (half**2 + signal**2)
        mean = 5.0 + rng.uniform(150, 600) * saturating  # ambient background + target-specific brightness
        columns.append(rng.negative_binomial(5, 5 / (5 + mean)))
    counts = np.stack(columns, axis=1).astype(np.float32)
    obs = pd.DataFrame({"cell_type": full.obs["bulk_labels"].astype(str).to_numpy()}, index=full.obs_names)
    rna = ad.AnnData(sp.csr_matrix(X.astype(np.float32)), obs=obs.copy(), var=pd.DataFrame(index=genes))
    adt = ad.AnnData(
        counts, obs=obs.copy(), var=pd.DataFrame({"gene": list(PANEL.values())}, index=list(PANEL))
    )
    if n_cells is not None and n_cells < full.n_obs:
        keep = np.sort(rng.choice(full.n_obs, size=n_cells, replace=False))
        rna, adt = rna[keep].copy(), adt[keep].copy()
    return rna, adt


def citeseq_tables(
    rna: ad.AnnData, *, dim: int = 32, noise: float = 0.5, seed: int = 0
) -> tuple[EntityEmbeddings, EntityEmbeddings]:
    """Deterministic gene and protein tables in one space, standing in for one encoder's text vectors.

    Gene vectors are seeded normal vectors; a target's vector is its gene's plus ``noise`` times its own normal
    vector (a target's profile is close to, not equal to, its gene's; CD45RA and CD45RO differ). The protein
    table is built like :func:`bioprofile.embed_proteins` builds one: keys ``"adt:<target>"``, kind
    ``"protein"``, ``provenance["protein_targets"]`` from :func:`bioprofile.proteins.normalize_proteins`.

    Returns
    -------
    tuple of EntityEmbeddings
        The gene table (one row per RNA gene) and the protein table (one row per :data:`PANEL` target).
    """
    rng = np.random.default_rng(seed)
    genes = list(map(str, rna.var_names))
    gene_vectors = rng.normal(size=(len(genes), dim)).astype(np.float32)
    gene_table = EntityEmbeddings(
        genes,
        genes,
        [f"profile of {g}" for g in genes],
        gene_vectors,
        {"entity_kind": "gene", "encoder": "toy"},
    )
    resolution = normalize_proteins(list(PANEL))
    row = {g: i for i, g in enumerate(genes)}
    proteins = resolution.proteins
    vectors = np.stack(
        [gene_vectors[row[PANEL[p.target]]] + noise * rng.normal(size=dim) for p in proteins]
    ).astype(np.float32)
    protein_table = EntityEmbeddings(
        [p.key for p in proteins],
        [p.symbol for p in proteins],
        [f"profile of {p.target}" for p in proteins],
        vectors,
        {"entity_kind": "protein", "encoder": "toy", "protein_targets": resolution.mapping()},
    )
    return gene_table, protein_table


def cite_seq_fixture(n_per_type: int = 30, seed: int = 0):
    """Synthetic CITE-seq: three cell types; RNA and ADT counts driven by the same marker programme."""
    rng = np.random.default_rng(seed)
    types = {"T4": ["CD3E", "CD4"], "T8": ["CD3E", "CD8A"], "Mono": ["CD14", "LYZ"], "B": ["MS4A1", "CD19"]}
    rna_genes = ["CD3E", "CD4", "CD8A", "CD14", "LYZ", "MS4A1", "CD19", "GAPDH", "ACTB"]
    adt_targets = ["CD3E", "CD4", "CD8A", "CD14", "MS4A1", "CD19"]
    labels = np.repeat(list(types), n_per_type)
    cells = [f"cell{i}" for i in range(len(labels))]

    def counts(features, scale):
        base = rng.poisson(0.3, size=(len(labels), len(features))).astype(np.float32)
        for i, label in enumerate(labels):
            for j, f in enumerate(features):
                if f in types[label]:
                    base[i, j] += rng.poisson(scale)
        return base

    rna = ad.AnnData(
        sp.csr_matrix(counts(rna_genes, 8)),
        obs=pd.DataFrame({"cell_type": labels}, index=cells),
        var=pd.DataFrame(index=rna_genes),
    )
    adt = ad.AnnData(
        counts(adt_targets, 40),
        obs=pd.DataFrame({"cell_type": labels}, index=cells),
        var=pd.DataFrame({"target": adt_targets}, index=[f"ADT_{t}" for t in adt_targets]),
    )
    vocab = sorted(set(rna_genes) | set(adt_targets))
    vectors = {g: rng.normal(size=8).astype(np.float32) for g in vocab}
    return rna, adt, vectors
