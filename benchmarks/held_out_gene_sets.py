r"""Write a held-out slice of GeneAgent's ``GO_terms.csv`` for a ``reproduce.py`` run: sets no tuned model has seen.

The run's own held-out GO sets come first, then sets drawn (seeded) from the rest of the file among those with no
gene of the run's training split (by approved and by written symbol; checked again after the choice). The file
keeps GeneAgent's layout, so ``bioprofile bench gene-sets`` reads it as it is::

    python benchmarks/held_out_gene_sets.py --sets 100 -o benchmarks/work/reproduce/held_out_go_100.csv
    bioprofile bench gene-sets benchmarks/work/reproduce/held_out_go_100.csv -o base \
        --cache-dir benchmarks/work/reproduce/gene_sets_cache
    bioprofile bench gene-sets benchmarks/work/reproduce/held_out_go_100.csv -o tuned \
        -m benchmarks/work/reproduce/adapters/bft-seed0-KEY --cache-dir benchmarks/work/reproduce/gene_sets_cache
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from _paths import ROOT, SHARED
from _reproduce_split import held_out_gene_sets, read_split

from bioprofile.atomic import atomic_path
from bioprofile.evaluate.gene_sets import read_gene_sets


def main(argv: list[str] | None = None) -> int:
    """Choose the sets, write the CSV, print how many sets and genes it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "benchmarks" / "work" / "reproduce")
    parser.add_argument("--go-terms", type=Path, default=SHARED / "geneagent" / "GO_terms.csv")
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        parser.error(f"{args.output} exists; pass --force to replace it")
    # a split is kept once per input state (file mtimes): copies of the data make equal splits under new names
    splits = {split.key(): split for split in map(read_split, sorted(args.run_dir.glob("split-*.json")))}
    if len(splits) != 1:
        parser.error(
            f"{args.run_dir} holds {len(splits)} different kept splits (split-*.json); one is needed"
        )
    (split,) = splits.values()
    chosen = held_out_gene_sets(split, read_gene_sets(args.go_terms), args.sets, seed=args.seed)
    with atomic_path(args.output) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["GO", "Genes", "Gene_Count", "Term_Description"])
        for s in chosen:
            writer.writerow([s.name, " ".join(s.genes), len(s.genes), s.term])
    genes = {g for s in chosen for g in s.genes}
    print(
        f"{len(chosen)} gene sets ({len(split.go_sets)} from the split), {len(genes)} genes, none trained on"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
