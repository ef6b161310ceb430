"""Getting started with bioprofile: a gene list -> profiles -> cell embeddings -> clustering -> a gene task.

Everything runs offline on the embedded default models (SmolLM2-135M-Instruct writes the profiles, all-MiniLM-L6-v2
embeds them) and on scanpy's bundled ``pbmc68k_reduced`` (700 PBMCs). The run shown in docs/tutorial.md took 28 min
of wall clock on a 2-core CPU shared with other jobs (5.5 min of CPU time); a second run reads every profile and
vector from the cache.

    python docs/tutorial.py                      # tables and figures into tutorial_output/ (git-ignored)
    python docs/tutorial.py --out /tmp/tutorial  # anywhere else
    python docs/tutorial.py --figures docs/tutorial   # redraw the figures docs/tutorial.md shows

``tests/test_tutorial.py`` runs this script in CI and checks what it prints and writes; docs/tutorial.md walks
through it with the output of a run.
"""

# %% [markdown]
# ## 0. Set-up
# Two options say where the tables (and the gene table) and the figures go.

# %%
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, not windows

import numpy as np
import scanpy as sc

import bioprofile
from bioprofile import GenerationSettings, pl
from bioprofile.cells import EmbedLimits, GeneptSOptions
from bioprofile.evaluate.clustering import benchmark_clustering
from bioprofile.evaluate.gene_tasks import GeneLabels, GeneTaskOptions, run_gene_tasks

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("tutorial_output"), help="tables and the gene table")
# The figures go beside the tables unless told: the page's own figures (docs/tutorial/) are tracked, so a run
# from a clean clone leaves `git status` clean.
parser.add_argument("--figures", type=Path, default=None, help="figures (default: the --out folder)")
parser.add_argument("--max-new-tokens", type=int, default=48, help="length of each written profile")
args = parser.parse_args()
args.figures = args.figures or args.out
args.out.mkdir(parents=True, exist_ok=True)
args.figures.mkdir(parents=True, exist_ok=True)
print(f"bioprofile {bioprofile.__version__}: tables into {args.out}, figures into {args.figures}")

# %% [markdown]
# ## 1. A gene list
# Twenty classic PBMC markers, as a biologist would type them (symbols; Ensembl or Entrez ids work too).

# %%
MARKERS = {
    "lymphoid": ["CD3D", "CD3E", "IL7R", "CCR7", "CD8A", "CD8B", "NKG7", "GNLY", "GZMB", "PRF1", "MS4A1", "CD79A",
                 "CD79B"],
    "myeloid": ["LYZ", "FCGR3A", "S100A8", "S100A9", "FCER1A", "CST3", "HLA-DRA"],
}  # fmt: skip
genes = [gene for group in MARKERS.values() for gene in group]
print(f"{len(genes)} marker genes")

# %% [markdown]
# ## 2. Profiles and gene embeddings
# `embed_genes` resolves the ids (HGNC), asks the default writer for a short profile of each gene, embeds the texts
# and caches both. `GenerationSettings` holds the decoding setup (greedy by default).

# %%
emb = bioprofile.embed_genes(
    genes, settings=GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=10)
)
print(f"gene embeddings: {len(emb.symbols)} genes x {emb.vectors.shape[1]} dims")
print(f"generator {emb.provenance['generator']}, encoder {emb.provenance['encoder']}")
for symbol, text in list(zip(emb.symbols, emb.texts, strict=True))[:2]:
    print(f"  {symbol}: {' '.join(text.split())[:160]}")
emb.write(args.out / "genes.parquet", overwrite=True)

# %% [markdown]
# ## 3. Cell embeddings
# GenePT-w: each cell is the expression-weighted mean of its genes' vectors, into `obsm["X_bioprofile"]` (scanpy's
# `key_added` contract; the provenance, with the gene coverage, goes to `uns`). Twenty genes cover under 3 % of the
# 765 measured genes, below the default floor of 5 %: for a marker panel that is the point, so the floor is lowered.
# GenePT-s writes each cell's 50 most expressed genes as a sentence and embeds it (no gene table needed).

# %%
adata = sc.datasets.pbmc68k_reduced()
adata = adata.raw.to_adata()  # .raw holds the log-normalised expression of all 765 genes (obs comes along)
panel = EmbedLimits(min_coverage=0.01, warn_coverage=0.0)  # a 20-marker panel: under the 5 % floor
bioprofile.tl.embed_cells(adata, emb, key_added="X_bioprofile", limits=panel)
coverage = adata.uns["X_bioprofile"]["gene_coverage"]
print(
    f"GenePT-w: {adata.obsm['X_bioprofile'].shape}, {coverage['n_matched']} of {coverage['n_vars']} genes matched"
)
bioprofile.tl.embed_cells(adata, method=GeneptSOptions(top_n=50), key_added="X_genept_s")
print(f"GenePT-s: {adata.obsm['X_genept_s'].shape}")

# %% [markdown]
# ## 4. Clustering against the cell-type labels
# `benchmark_clustering` scores each embedding (k-means and Leiden: ARI, AMI; silhouette) beside 50 principal
# components of the expression; `bioprofile.pl.clustering_umaps` draws a UMAP of each, coloured by label.

# %%
clustering = benchmark_clustering(adata, "bulk_labels", obsm_keys=["X_bioprofile", "X_genept_s"], n_pcs=50)
print(clustering.to_markdown())
clustering.write(args.out / "clustering", overwrite=True)
pl.clustering_umaps(clustering, args.figures, show=False)  # umap_<method>.png and umap_all.png there
print("UMAPs:", ", ".join(sorted(path.name for path in args.figures.glob("umap_*.png"))))

# %% [markdown]
# ## 5. A gene task
# Any labelled genes are a task: here, are the profile vectors enough to tell lymphoid from myeloid markers?
# `run_gene_tasks` scores it with GenePT's protocol (stratified 5-fold ROC-AUC, logistic regression and random
# forest) beside random vectors for the same genes. Twenty genes make a toy task; `bioprofile bench gene-tasks`
# runs GenePT's real ones (dosage, GGI, functional class, ...).

# %%
task = GeneLabels(
    name="lymphoid_vs_myeloid",
    genes=genes,
    labels=np.array([int(gene in MARKERS["myeloid"]) for gene in genes]),
    classes=["lymphoid", "myeloid"],
)
report = run_gene_tasks({"profiles": emb}, [task], options=GeneTaskOptions(random_baseline=True))
print(report.to_markdown())
report.write(args.out / "gene_task", overwrite=True)
pl.roc_panels(report, args.figures / "gene_task_roc.png")

summary = {
    "genes": len(emb.symbols),
    "gene_coverage": dict(coverage),
    "clustering": clustering.table.round(4).reset_index().to_dict(orient="records"),
    "gene_task": report.rows(),
}
(args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
print(f"wrote {args.out / 'summary.json'}")
