"""Is the generated-profile dosage score biology, or something simpler? Baselines on the same 490 TFs.

Scores, on GenePT's dosage-sensitive vs insensitive TFs with the usual protocol (stratified 5-fold, logistic
regression and random forest, ROC-AUC):

- ``generated``: profiles written by the default generator (SmolLM2-135M, ``concise``, 128 new tokens, greedy),
  embedded with MiniLM, read back from the store of the CLI run (generated here if missing);
- ``length:generated``: one feature, log1p of each profile's word count (how much text the model wrote);
- ``symbol-only``: the bare gene symbol (e.g. ``ZNF154``) embedded with the same encoder, so gene-family naming
  (most dosage-insensitive TFs are KRAB zinc fingers) is scored on its own;
- ``go-popularity``: one feature, log1p of how many of GeneAgent's 1,000 GO biological-process gene sets hold the
  gene (a proxy for how well studied it is);
- ``random``: random vectors for the same genes.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dosage_baselines.py

Writes ``benchmarks/results/dosage_baselines.{md,json}``.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _paths import ROOT, SHARED

from bioprofile import pl
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.evaluate.gene_tasks import (
    GeneTaskOptions,
    load_task,
    random_embeddings,
    run_gene_tasks,
    symbol_embeddings,
    text_length_embeddings,
)
from bioprofile.pipeline import embed_genes
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.store import Store


def go_popularity(table: GeneEmbeddings, go_terms: Path) -> GeneEmbeddings:
    """log1p(number of GO gene sets that hold each gene), as a one-feature table over ``table``'s genes."""
    with go_terms.open(newline="", encoding="utf-8") as handle:
        counts = Counter(gene for row in csv.DictReader(handle) for gene in set(row["Genes"].split()))
    vectors = np.log1p([counts.get(s, 0) for s in table.symbols]).astype(np.float32)[:, None]
    return GeneEmbeddings(
        list(table.ids),
        list(table.symbols),
        [""] * len(table),
        vectors,
        {
            "source": "go_popularity",
            "feature": "log1p(GO gene sets holding the gene)",
            "encoder": "go_popularity",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--store", type=Path, default=ROOT / "benchmarks" / "work" / "store.sqlite")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument(
        "--max-genes", type=int, default=None, help="Score an evenly spaced subset of the TFs (a smoke run)."
    )
    args = parser.parse_args()

    dosage = load_task("dosage", data_dir=args.data_dir)
    genes = list(dosage.fallback)
    if args.max_genes is not None and args.max_genes < len(genes):
        # evenly spaced over the task's list, so both classes stay in a small run
        genes = [genes[int(i)] for i in np.linspace(0, len(genes) - 1, args.max_genes)]
    start = time.perf_counter()
    with Store(args.store) as store:
        generated = embed_genes(
            genes,
            store=store,
            settings=GenerationSettings(batch_size=16, max_new_tokens=args.max_new_tokens),
        )
        symbol_only = symbol_embeddings(generated, None, store=store)  # the profiles' own encoder
    tables = {
        "generated": generated,
        "symbol-only": symbol_only,
        "go-popularity": go_popularity(generated, args.data_dir / "geneagent" / "GO_terms.csv"),
        "length:generated": text_length_embeddings(generated),
        "random": random_embeddings(generated),
    }
    report = run_gene_tasks(tables, [dosage], options=GeneTaskOptions(random_baseline=False))
    report.settings["seconds"] = time.perf_counter() - start
    report.settings["words_mean"] = float(np.mean([len(t.split()) for t in generated.texts]))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    pl.write_result(report, args.out_dir / "dosage_baselines", plot=False, echo=print)  # .md and .json


if __name__ == "__main__":
    main()
