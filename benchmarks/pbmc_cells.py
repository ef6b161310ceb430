"""Cell embeddings on scanpy's pbmc68k_reduced (700 PBMCs, ``.raw``: 765 log-normalised genes, ``bulk_labels``).

1. Clustering (k-means with k = 10 labels, Leiden; ARI, AMI, ASW) of
   - GenePT-w from RefSeq-summary gene vectors (``shared/data/geneagent/gene_narrative_synopsis.txt``, MiniLM),
   - GenePT-w from generated profiles (default SmolLM2 generator) of the ``--generated`` most variable genes,
   - GenePT-s (each cell's top 50 genes as a sentence, MiniLM),
   beside PCA of the expression (50 PCs).
2. Integration (scib-metrics) on a *synthetic* batch split: cells are assigned at random (seed 0) to two batches
   and batch "b1" gets a per-gene shift, drawn once from N(0, ``--batch-shift``), added to its non-zero log
   expression. GenePT-w (RefSeq vectors) on the shifted expression vs unintegrated PCA, Harmony and BBKNN.

Usage::

    python benchmarks/pbmc_cells.py --generated 765 --out benchmarks/results/pbmc
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _paths import SHARED

SUMMARIES = SHARED / "geneagent" / "gene_narrative_synopsis.txt"


def load_pbmc():
    import anndata as ad
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    adata = ad.AnnData(
        X=pbmc.raw.X.copy(), obs=pbmc.obs[["bulk_labels", "phase"]].copy(), var=pbmc.raw.var.copy()
    )
    adata.var["dispersions_norm"] = pbmc.var["dispersions_norm"].reindex(adata.var_names).to_numpy()
    return adata


def synthetic_batches(adata, shift: float, seed: int):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    batched = adata.copy()
    batch = rng.permutation(np.repeat(["b0", "b1"], [adata.n_obs // 2, adata.n_obs - adata.n_obs // 2]))
    batched.obs["batch"] = batch
    X = batched.X.toarray() if sp.issparse(batched.X) else np.array(batched.X)
    gene_shift = rng.normal(scale=shift, size=adata.n_vars).astype(np.float32)
    rows = batch == "b1"
    X[rows] = np.where(X[rows] > 0, np.maximum(X[rows] + gene_shift, 0), 0)
    batched.X = X
    return batched


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--generated",
        type=int,
        default=765,
        help="most variable genes to write profiles for (0: skip; >= 765: all genes)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-shift", type=float, default=0.5)
    parser.add_argument(
        "--store",
        type=Path,
        default=Path("benchmarks/work/store.sqlite"),
        help="profile/vector cache, shared with the gene-task benchmarks (same generation settings)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pbmc"))
    parser.add_argument("--skip-integration", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from bioprofile import pl
    from bioprofile.cells import EmbedLimits, GeneptSOptions, embed_cells
    from bioprofile.evaluate.clustering import benchmark_clustering
    from bioprofile.evaluate.integration import benchmark_integration
    from bioprofile.evaluate.report import markdown_table, write_json
    from bioprofile.pipeline import embed_genes
    from bioprofile.profiles.generate import GenerationSettings
    from bioprofile.profiles.summaries import read_summaries
    from bioprofile.store import Store

    args.out.mkdir(parents=True, exist_ok=True)
    adata = load_pbmc()
    genes = list(adata.var_names)
    report: dict = {
        "dataset": "scanpy pbmc68k_reduced (.raw, bulk_labels)",
        "n_cells": adata.n_obs,
        "n_genes": adata.n_vars,
        "timings_s": {},
        "load_average_start": os.getloadavg(),
    }
    with Store(args.store) as store:
        t0 = time.perf_counter()
        # the synopsis file has a few stray non-"SYMBOL: text" lines; skip them rather than fail
        texts = read_summaries(SUMMARIES, errors="skip")
        refseq = embed_genes(genes, summaries=texts, store=store)
        report["timings_s"]["refseq_gene_vectors"] = time.perf_counter() - t0
        methods = {}
        # generated profiles may cover only the top variable genes (--generated 4 is 0.5 % of 765): accept any
        # coverage without a warning (a table matching no gene at all is still refused)
        low_coverage = EmbedLimits(min_coverage=0.0, warn_coverage=0.0)
        t0 = time.perf_counter()
        key = "GenePT-w (RefSeq summaries)"
        embed_cells(adata, refseq, key_added=key, limits=EmbedLimits(warn_coverage=0.0))
        report["coverage_refseq"] = dict(adata.uns[key]["gene_coverage"])
        report["timings_s"]["genept_w_refseq"] = time.perf_counter() - t0
        methods["GenePT-w (RefSeq summaries)"] = report["coverage_refseq"]
        if args.generated:
            order = adata.var["dispersions_norm"].fillna(-np.inf).sort_values(ascending=False).index
            top = list(order[: args.generated])
            t0 = time.perf_counter()
            generated = embed_genes(
                top,
                store=store,
                settings=GenerationSettings(batch_size=16, max_new_tokens=args.max_new_tokens),
            )
            report["timings_s"]["generated_gene_vectors"] = time.perf_counter() - t0
            report["generator"] = generated.provenance.get("generator")
            scope = "all genes" if len(top) == adata.n_vars else f"top {len(top)} variable genes"
            key = f"GenePT-w (generated, {scope})"
            embed_cells(adata, generated, key_added=key, limits=low_coverage)
            report["coverage_generated"] = dict(adata.uns[key]["gene_coverage"])
            methods[key] = report["coverage_generated"]
            # the same genes RefSeq covers, so text quality is compared apart from gene coverage
            both = sorted(set(generated.symbols) & set(refseq.symbols))
            same = generated.select(both)
            key = "GenePT-w (generated, RefSeq-covered genes only)"
            embed_cells(adata, same, key_added=key, limits=low_coverage)
            methods[key] = dict(adata.uns[key]["gene_coverage"])
        t0 = time.perf_counter()
        key = "GenePT-s (top 50 genes)"
        embed_cells(adata, None, method=GeneptSOptions(top_n=50, store=store), key_added=key)
        report["timings_s"]["genept_s"] = time.perf_counter() - t0
        methods[key] = dict(adata.uns[key]["gene_coverage"])

    t0 = time.perf_counter()
    clustering = benchmark_clustering(adata, "bulk_labels", obsm_keys=list(methods), n_pcs=50, seed=args.seed)
    report["timings_s"]["clustering"] = time.perf_counter() - t0
    table = clustering.table
    pl.clustering_umaps(clustering, args.out / "umap")
    rows = [{"method": m, **r} for m, r in table.to_dict(orient="index").items()]
    report["clustering"] = rows
    (args.out / "clustering.md").write_text(markdown_table(rows))
    print(markdown_table(rows), flush=True)

    if not args.skip_integration:
        batched = synthetic_batches(adata, args.batch_shift, args.seed)
        embed_cells(
            batched, refseq, key_added="GenePT-w (RefSeq summaries)", limits=EmbedLimits(warn_coverage=0.0)
        )
        t0 = time.perf_counter()
        integration = benchmark_integration(
            batched,
            "batch",
            "bulk_labels",
            obsm_keys=["GenePT-w (RefSeq summaries)"],
            n_pcs=50,
            seed=args.seed,
        )
        report["timings_s"]["integration"] = time.perf_counter() - t0
        integ = integration.table
        pl.integration_table(integration, args.out / "integration.png")
        irows = [{"method": m, **r} for m, r in integ.to_dict(orient="index").items()]
        report["integration"] = {
            "batch_split": f"synthetic: random halves (seed {args.seed}); b1 gets a per-gene "
            f"shift ~ N(0, {args.batch_shift}) on non-zero log expression",
            "rows": irows,
        }
        (args.out / "integration.md").write_text(markdown_table(irows))
        print(markdown_table(irows), flush=True)
    report["load_average_end"] = os.getloadavg()
    write_json(report, args.out / "pbmc_cells.json")


if __name__ == "__main__":
    main()
