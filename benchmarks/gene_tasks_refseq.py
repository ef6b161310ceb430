"""GenePT gene tasks on real text: RefSeq summaries vs profiles written by the default generator.

1. RefSeq summaries (``shared/data/geneagent/gene_narrative_synopsis.txt``, ~6.5k genes) embedded with the default
   encoder (all-MiniLM-L6-v2) through ``bioprofile.embed_genes(..., summaries=...)``; scored on dosage, GGI and
   functional class, beside a random-vector baseline on the same genes.
2. The dosage-task genes that have a RefSeq summary, with profiles written by the default generator (SmolLM2-135M,
   ``concise`` template, greedy); scored on dosage beside the RefSeq vectors of exactly the same genes.
3. ``--same-genes N``: the first N RefSeq genes of a seeded random order (all of them when N >= their number), with
   generated profiles; scored on dosage, GGI and functional class beside the RefSeq vectors of exactly those genes,
   with random-vector and text-length baselines for both. Results go to ``gene_tasks_same_genes.{md,json,png}``.
4. ``--functional-class N``: RefSeq summaries cover protein-coding genes only, so functional class cannot be scored on
   RefSeq genes. This takes N seeded-random HGNC genes of each of the eight gene types, generates their profiles and
   scores functional class on them, beside the symbol-only, text-length and random baselines, with RefSeq's
   coverage of the same sample reported. Results go to ``gene_tasks_functional_class.{md,json}``.

Run from the repository root (writes ``benchmarks/results/gene_tasks_refseq.{md,json,png}``)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/gene_tasks_refseq.py --max-generated 490
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/gene_tasks_refseq.py --same-genes 4037 --max-new-tokens 128
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/gene_tasks_refseq.py --functional-class 64 --max-new-tokens 128

Everything is cached in a store under ``--work-dir``, so a rerun after a kill resumes.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from _paths import ROOT, SHARED

from bioprofile import pl
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks import (
    GeneTaskOptions,
    GeneTaskReport,
    load_task,
    match_genes,
    run_gene_tasks,
    symbol_embeddings,
)
from bioprofile.evaluate.report import write_json
from bioprofile.genes import normalize_genes
from bioprofile.pipeline import embed_genes
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.store import Store


def read_refseq(path: Path) -> dict[str, str]:
    """``SYMBOL: text`` lines → {approved symbol: text} (aliases resolved; the first text of a gene wins)."""
    raw: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        symbol, sep, text = line.partition(":")
        if sep and symbol.strip() and text.strip():
            raw.setdefault(symbol.strip(), text.strip())
    resolution = normalize_genes(list(raw))
    out: dict[str, str] = {}
    for key, text in raw.items():
        approved = resolution.inputs.get(key)
        if approved is not None:
            out.setdefault(approved, text)
    return out


def random_order(symbols: list[str], seed: int = 0) -> list[str]:
    """A seeded permutation, so a run cut short has generated a random subset of the genes, not a biased one."""
    return [symbols[i] for i in np.random.default_rng(seed).permutation(len(symbols))]


def same_genes(refseq: GeneEmbeddings, store: Store, args: argparse.Namespace) -> None:
    """RefSeq vs generated profiles on the same random sample of RefSeq genes, all three tasks, with baselines.

    Every dosage TF with a RefSeq summary is added to the sample (39 genes), so the smallest task stays scorable.
    """
    dosage = load_task("dosage", data_dir=args.data_dir)
    rows = match_genes(refseq, dosage.genes, dosage.fallback)
    tfs = {refseq.symbols[r] for r in rows if r >= 0}
    sample = random_order(refseq.symbols)[: args.same_genes]
    genes = sample + sorted(tfs - set(sample))
    start = time.perf_counter()
    generated = embed_genes(
        genes,
        store=store,
        settings=GenerationSettings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens),
        show_progress=True,
    )
    seconds = time.perf_counter() - start
    with_summary = set(refseq.symbols)
    both = [s for s in generated.symbols if s in with_summary]
    # the bare symbol as text: what gene naming alone gives the same encoder (see benchmarks/dosage_baselines.py)
    symbol_only = symbol_embeddings(generated.select(both), None, store=store)
    tables = {
        "refseq-minilm": refseq.select(both),
        "smollm2-concise-minilm": generated.select(both),
        "symbol-only-minilm": symbol_only,
    }
    report = run_gene_tasks(
        tables,
        ["dosage", "ggi", "functional_class"],
        options=GeneTaskOptions(text_length_baseline=True),
        data_dir=args.data_dir,
    )
    report.settings["same_genes"] = {
        "random_sample": len(sample),
        "dosage_tfs_added": len(genes) - len(sample),
        "scored": len(both),
        "seconds": seconds,
        "generated_words_mean": float(np.mean([len(t.split()) for t in generated.texts])),
        "refseq_words_mean": float(np.mean([len(t.split()) for t in tables["refseq-minilm"].texts])),
    }
    print(report.to_markdown(), flush=True)
    write_json(report.to_dict(), args.out_dir / "gene_tasks_same_genes.json")
    (args.out_dir / "gene_tasks_same_genes.md").write_text(
        f"## RefSeq vs generated profiles, the same {len(both)} genes\n\n"
        + report.to_markdown()
        + "\n```\n"
        + json.dumps(report.settings["same_genes"], indent=2)
        + "\n```\n"
    )
    pl.roc_panels(report, args.out_dir / "gene_tasks_same_genes.png")


def functional_class_sample(
    labels_genes: list[str], labels: np.ndarray, n_classes: int, per_class: int, seed: int = 0
) -> list[str]:
    """``per_class`` seeded-random approved symbols of each class, drawn among the labelled ids HGNC resolves."""
    resolved = normalize_genes(labels_genes).inputs
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for k in range(n_classes):
        pool = sorted(
            {resolved[g] for g, y in zip(labels_genes, labels, strict=False) if y == k and resolved.get(g)}
        )
        chosen += [pool[i] for i in rng.permutation(len(pool))[:per_class]]
    return list(dict.fromkeys(chosen))


def functional_class(refseq: GeneEmbeddings, store: Store, args: argparse.Namespace) -> None:
    """Functional class on a gene-type-stratified sample: generated profiles, baselines, RefSeq coverage."""
    task = load_task("functional_class", data_dir=args.data_dir)
    genes = functional_class_sample(task.genes, task.labels, len(task.classes), args.functional_class)
    start = time.perf_counter()
    generated = embed_genes(
        genes,
        store=store,
        settings=GenerationSettings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens),
        show_progress=True,
    )
    seconds = time.perf_counter() - start
    with_summary = set(refseq.symbols)
    covered = [s for s in generated.symbols if s in with_summary]
    tables = {
        "smollm2-concise-minilm": generated,
        "symbol-only-minilm": symbol_embeddings(generated, None, store=store),
    }
    report = run_gene_tasks(
        tables, [task], options=GeneTaskOptions(text_length_baseline=True), data_dir=args.data_dir
    )
    # RefSeq on the part of the sample it covers: with protein-coding genes only it is unscorable, and says why
    refseq_report, refseq_unscorable = None, None
    try:
        refseq_report = run_gene_tasks(
            {"refseq-minilm": refseq.select(covered)},
            [task],
            options=GeneTaskOptions(random_baseline=False),
            data_dir=args.data_dir,
        )
    except BioprofileInputError as err:
        refseq_unscorable = str(err)
    rows = match_genes(refseq.select(covered), task.genes, task.fallback) if covered else np.array([], int)
    refseq_types = {
        task.classes[int(y)]: int(n)
        for y, n in zip(*np.unique(task.labels[rows >= 0], return_counts=True), strict=False)
    }
    settings = {
        "per_class": args.functional_class,
        "sampled": len(genes),
        "generated": len(generated),
        "refseq_covered": len(covered),
        "refseq_covered_gene_types": refseq_types,
        "refseq_unscorable": refseq_unscorable,
        "seconds": seconds,
        "generated_words_mean": float(np.mean([len(t.split()) for t in generated.texts])),
    }
    report.settings["functional_class_sample"] = settings
    markdown = report.to_markdown() + ("\n" + refseq_report.to_markdown() if refseq_report else "")
    print(markdown, flush=True)
    payload = report.to_dict()
    payload["refseq"] = refseq_report.to_dict() if refseq_report else None
    write_json(payload, args.out_dir / "gene_tasks_functional_class.json")
    (args.out_dir / "gene_tasks_functional_class.md").write_text(
        f"## Functional class, {args.functional_class} genes per gene type\n\n"
        + markdown
        + "\n```\n"
        + json.dumps(settings, indent=2)
        + "\n```\n"
    )
    # functional class is multi-class (macro one-vs-rest): no single ROC curve to draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--max-generated", type=int, default=490, help="Cap on genes given generated profiles."
    )
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument(
        "--max-genes",
        type=int,
        default=None,
        help="Embed only the first N RefSeq genes (file order), for a slow machine.",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument(
        "--same-genes",
        type=int,
        default=None,
        help="Only part 3: RefSeq vs generated profiles on the first N genes of a seeded random order.",
    )
    parser.add_argument(
        "--functional-class",
        type=int,
        default=None,
        metavar="N",
        help="Only part 4: functional class on N generated profiles per gene type.",
    )
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    summaries = read_refseq(args.data_dir / "geneagent" / "gene_narrative_synopsis.txt")
    if args.max_genes is not None:
        # The first N genes, plus every dosage TF with a summary so the smallest task stays scorable.
        dosage = load_task("dosage", data_dir=args.data_dir)
        tfs = set(normalize_genes(dosage.genes + dosage.fallback).inputs.values())
        order = list(summaries)
        keep = set(order[: args.max_genes]) | (tfs & set(order))
        summaries = {s: summaries[s] for s in order if s in keep}
    with Store(args.work_dir / "store.sqlite") as store:
        start = time.perf_counter()
        refseq = embed_genes(list(summaries), summaries=summaries, store=store)
        timings["embed_refseq_s"] = time.perf_counter() - start
        refseq.provenance["source"] = "summaries:gene_narrative_synopsis.txt (RefSeq)"
        print(f"RefSeq: {len(refseq)} genes x {refseq.dim} in {timings['embed_refseq_s']:.1f}s", flush=True)
        if args.same_genes is not None:
            same_genes(refseq, store, args)
            return
        if args.functional_class is not None:
            functional_class(refseq, store, args)
            return

        start = time.perf_counter()
        report = run_gene_tasks(
            {"refseq-minilm": refseq}, ["dosage", "ggi", "functional_class"], data_dir=args.data_dir
        )
        timings["score_refseq_s"] = time.perf_counter() - start
        print(report.to_markdown(), flush=True)

        generated_report = None
        if not args.skip_generated:
            dosage = load_task("dosage", data_dir=args.data_dir)
            rows = match_genes(refseq, dosage.genes, dosage.fallback)
            genes = list(dict.fromkeys(refseq.symbols[r] for r in rows if r >= 0))
            # A subset as balanced as the labels allow, so each CV fold holds both classes even when small.
            label_of = {
                refseq.symbols[r]: int(y) for r, y in zip(rows, dosage.labels, strict=False) if r >= 0
            }
            pos = [g for g in genes if label_of[g] == 1]
            neg = [g for g in genes if label_of[g] == 0]
            take = min(args.max_generated, len(genes))
            n_pos = min(len(pos), take // 2)
            chosen = pos[:n_pos] + neg[: take - n_pos]
            start = time.perf_counter()
            generated = embed_genes(
                chosen,
                store=store,
                settings=GenerationSettings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens),
                show_progress=True,
            )
            timings["generate_and_embed_s"] = time.perf_counter() - start
            timings["n_generated"] = len(generated)
            print(
                f"generated {len(generated)} profiles in {timings['generate_and_embed_s']:.1f}s", flush=True
            )
            generated.write(args.work_dir / "generated_dosage.parquet", overwrite=True)
            same = refseq.select(generated.symbols)
            generated_report = run_gene_tasks(
                {"refseq-minilm (same genes)": same, "smollm2-concise-minilm": generated},
                ["dosage"],
                data_dir=args.data_dir,
            )
            print(generated_report.to_markdown(), flush=True)
            lengths = [len(t.split()) for t in generated.texts]
            timings["generated_words_mean"] = float(np.mean(lengths))
            (args.out_dir / "gene_tasks_generated_examples.json").write_text(
                json.dumps(dict(list(zip(generated.symbols, generated.texts, strict=False))[:5]), indent=2)
                + "\n"
            )

    refseq.write(args.work_dir / "refseq_minilm.parquet", overwrite=True)
    all_scores = report.scores + (generated_report.scores if generated_report else [])
    combined = GeneTaskReport(
        all_scores,
        {
            "main": report.settings,
            "generated": generated_report.settings if generated_report else None,
            "timings": timings,
            "machine": platform.platform(),
        },
        provenance=report.provenance,
    )
    write_json(combined.to_dict(), args.out_dir / "gene_tasks_refseq.json")
    (args.out_dir / "gene_tasks_refseq.md").write_text(
        "## RefSeq summaries, all genes\n\n"
        + report.to_markdown()
        + (
            "\n## Dosage genes: generated profiles vs RefSeq, same genes\n\n" + generated_report.to_markdown()
            if generated_report
            else ""
        )
        + "\n```\n"
        + json.dumps(timings, indent=2)
        + "\n```\n"
    )
    panels = report.roc_panels()
    if generated_report:
        panels["dosage (generated vs RefSeq, same genes)"] = generated_report.roc_panels()["dosage"]
    pl.roc_panels(panels, args.out_dir / "gene_tasks_refseq.png")
    print(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
