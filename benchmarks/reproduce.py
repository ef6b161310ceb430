"""The whole chain, resumable: fine-tune the writer under each loss, then score its profiles, embeddings and answers.

1. Split the genes with RefSeq summaries into train and held-out: no held-out gene, no dosage-task TF, no gene of the
   held-out GO sets and no clustering gene is trained on (checked in code, :func:`check_no_leak`).
2. Fine-tune the writer (SmolLM2-135M by default) with LoRA under each of sft, dft, bft, bft-token, bft-sample and
   bft-v1: same records, steps, seeds, optimiser and prompt template, through ``bioprofile.train``.
3. For the base model and every tuned one: profiles of the held-out genes (ROUGE-L and embedding cosine against the
   true RefSeq summary), of the dosage TFs and of the clustering genes; their embeddings (default encoder) on the
   gene tasks beside the symbol-only and random baselines (pairs gene-disjoint) and on pbmc68k_reduced clustering;
   the gene-set task on the held-out GO slice; the ``diagnose`` taggers on the profiles (entities, causal
   connectives, length); teacher-forced confidence on the held-out summaries (window groups, NLL by base-model
   confidence).
4. One table, model x metric, mean ± std over seeds, every method beside SFT (a difference within the seed spread
   is a tie), as ``PREFIX.md``, ``PREFIX.json`` and ``PREFIX_*.png``.

Every stage is keyed and cached: adapters under the run folder (a folder with its run record is done), profiles
and vectors in the run's store, scores as JSON under the run folder. A killed run goes on where it stopped; a rerun
with more seeds trains and scores only the new ones.

    nice -n 10 env HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/reproduce.py --small

``--small`` sizes it for a 2-core CPU; the flags scale it (``--model``, ``--steps``, ``--train-genes``,
``--seeds``, ``--backend vllm``...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _paths import ROOT, SHARED
from _reproduce_split import TEMPLATE, GeneSplit, SplitSizes, cached_split, check_no_leak, write_split
from _reproduce_table import build_table, write_table
from finetune_refseq import nll_by_base_confidence

from bioprofile.train.losses import METHODS

SYNOPSIS = SHARED / "geneagent" / "gene_narrative_synopsis.txt"
BASE = "base"


@dataclass(frozen=True)
class TrainSettings:
    """What every fine-tune shares (the method and the seed vary)."""

    model: str = "default"
    steps: int = 40
    batch_size: int = 4
    # the concise prompt is ~121 tokens: 192 would cut 64 % of RefSeq summaries, 384 cuts 1 %
    max_length: int = 384
    lr: float = 1e-3
    lora_r: int = 16


@dataclass(frozen=True)
class EvalSettings:
    """How every model is scored."""

    backend: str = "transformers"
    max_new_tokens: int = 96
    gen_batch_size: int = 16
    encoder: str | None = None
    tasks: tuple[str, ...] = ("dosage",)
    n_splits: int = 5


@dataclass(frozen=True)
class Chain:
    """A whole run: data, split sizes, training and evaluation settings, the methods and seeds, where it writes."""

    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    sizes: SplitSizes
    train: TrainSettings
    evaluation: EvalSettings
    run_dir: Path
    out: Path
    synopsis: Path = SYNOPSIS
    data_dir: Path = SHARED
    extra: dict[str, Any] = field(default_factory=dict)


def _file_name(name: str) -> str:
    """A model's row name as a file name part (``sft/0`` -> ``sft-seed0``)."""
    return name.replace("/", "-seed")


def _key(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)  # a killed run never leaves half a score file


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value)}")


# ---------------------------------------------------------------- training


def adapter_dir(chain: Chain, split: GeneSplit, method: str, seed: int) -> Path:
    """Where the adapter of one (method, seed) lives, keyed by the training settings and the split."""
    key = _key({"train": asdict(chain.train), "split": split.key(), "template": TEMPLATE})
    return chain.run_dir / "adapters" / f"{method}-seed{seed}-{key}"


def train_one(chain: Chain, split: GeneSplit, method: str, seed: int) -> tuple[Path, bool]:
    """Fine-tune one (method, seed) unless its finished adapter is there; ``(folder, trained now)``."""
    import torch

    from bioprofile.train.card import RUN_RECORD
    from bioprofile.train.config import DEFAULT_LORA, BFTConfig
    from bioprofile.train.stages import train_from_config

    out = adapter_dir(chain, split, method, seed)
    if (out / RUN_RECORD).is_file():
        return out, False
    data = chain.run_dir / "data" / split.key()
    files = {}
    for name, records in (("train", split.train), ("held_out", split.held_out)):
        files[name] = data / f"{name}.jsonl"
        if not files[name].is_file():
            data.mkdir(parents=True, exist_ok=True)
            lines = "".join(json.dumps({"messages": r["messages"]}) + "\n" for r in records)
            files[name].write_text(lines)
    t = chain.train
    config = BFTConfig(
        model=t.model,
        train_file=str(files["train"]),
        eval_file=str(files["held_out"]),
        output_dir=str(out),
        loss_method=method,
        lora={**DEFAULT_LORA, "r": t.lora_r, "lora_alpha": 2 * t.lora_r, "lora_dropout": 0.0},
        merge_adapter=False,
        max_steps=t.steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=16,
        learning_rate=t.lr,
        warmup_steps=0.05,
        max_length=t.max_length,
        logging_steps=max(1, t.steps // 20),
        seed=seed,
        use_cpu=not torch.cuda.is_available(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    # overwrite: a folder without its run record is what a killed run left behind
    train_from_config(config, overwrite=True)
    return out, True


# ---------------------------------------------------------------- scoring one model


def _generator(chain: Chain, model_path: str):
    from bioprofile.profiles.backends import make_generator
    from bioprofile.profiles.generate import GenerationSettings

    e = chain.evaluation
    settings = GenerationSettings(batch_size=e.gen_batch_size, max_new_tokens=e.max_new_tokens)
    return make_generator(model_path, backend=e.backend, settings=settings)


def _profile_metrics(split: GeneSplit, emb, encoder, store) -> dict[str, float]:
    """ROUGE-L and cosine of held-out profiles vs the true summaries; the diagnose taggers over every profile."""
    from bioprofile.diagnose.tagging import connective_spans, gene_entity_spans
    from bioprofile.encoders.cached import encode_texts
    from bioprofile.evaluate.gene_sets import rouge
    from bioprofile.genes import hgnc_symbols

    rows = {s: i for i, s in enumerate(emb.symbols)}
    truth = {r["approved"]: r["messages"][-1]["content"] for r in split.held_out}
    held = [g for g in split.held_out_genes if g in rows]
    rouge_l = [rouge(emb.texts[rows[g]], truth[g])["rougeL"] for g in held]
    true_vectors = encode_texts([truth[g] for g in held], encoder, store)
    profile_vectors = emb.vectors[[rows[g] for g in held]]

    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    cosine = (unit(true_vectors) * unit(profile_vectors)).sum(axis=1)
    symbols = hgnc_symbols()
    entities = [len({e[2] for e in gene_entity_spans(t, symbols)}) for t in emb.texts]
    connectives = [len(connective_spans(t)) for t in emb.texts]
    words = [len(t.split()) for t in emb.texts]
    return {
        "heldout_rougeL": float(np.mean(rouge_l)),
        "heldout_cosine": float(np.mean(cosine)),
        "n_heldout_scored": len(held),
        "entities": float(np.mean(entities)),
        "connectives": float(np.mean(connectives)),
        "words": float(np.mean(words)),
    }


def _confidence(chain: Chain, model_path: str, split: GeneSplit) -> dict[str, Any]:
    """Teacher-forced diagnosis of the held-out true summaries: window groups and per-token probabilities."""
    from bioprofile.diagnose import diagnose, examples_from_records, load_causal_lm

    model, tokenizer = load_causal_lm(model_path)
    examples = examples_from_records(split.held_out)
    diagnosis = diagnose(model, tokenizer, examples, batch_size=8, max_length=chain.train.max_length)
    p = np.concatenate([r.p for r in diagnosis.responses])
    groups = diagnosis.summary.set_index("group")
    n_windows = max(int(groups["windows"].sum()), 1)
    return {
        "token_nll": float(-np.log(np.maximum(p, 1e-12)).mean()),
        "mean_p": float(p.mean()),
        "windows": {g: int(row["windows"]) for g, row in groups.iterrows()},
        "dense_low_share": float(groups.loc["dense-low", "windows"] / n_windows)
        if "dense-low" in groups.index
        else 0.0,
        "sparse_low_share": float(groups.loc["sparse-low", "windows"] / n_windows)
        if "sparse-low" in groups.index
        else 0.0,
        "p": p,
    }


def model_scores(
    chain: Chain, split: GeneSplit, name: str, model_path: str, store, encoder
) -> dict[str, Any]:
    """The seed-independent scores of one model (its profiles, answers and confidences), cached as JSON."""
    from bioprofile.evaluate.gene_sets import GeneSetOptions, run_gene_sets
    from bioprofile.pipeline import embed_genes

    # max_length: the held-out summaries are scored in the window training saw
    key = _key(
        {
            "eval": asdict(chain.evaluation),
            "split": split.key(),
            "model": model_path,
            "max_length": chain.train.max_length,
        }
    )
    path = chain.run_dir / "scores" / f"{_file_name(name)}-model-{key}.json"
    p_path = path.with_suffix(".p.npy")
    cached = _read_json(path)
    if cached is not None and p_path.is_file():
        return cached
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name}: profiles of {len(split.profile_genes)} genes", flush=True)
    generator = _generator(chain, model_path)
    emb = embed_genes(
        split.profile_genes, generator=generator, template=TEMPLATE, encoder=encoder, store=store
    )
    scores: dict[str, Any] = {
        "model": name,
        "path": model_path,
        "n_profiles": len(emb),
        "p_file": p_path.name,
    }
    scores.update(_profile_metrics(split, emb, encoder, store))
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {len(split.go_sets)} gene sets", flush=True)
    gene_sets = run_gene_sets(
        split.go_sets, generator=generator, options=GeneSetOptions(encoder=encoder), store=store, name=name
    )
    summary = {row["method"]: row for row in gene_sets.summary()}
    scores["geneset_rougeL"] = summary[name]["rougeL"]["mean"]
    scores["geneset_cosine"] = summary[name]["cosine"]["mean"]
    scores["geneset_baseline_rougeL"] = summary["baseline"]["rougeL"]["mean"]
    scores["geneset_baseline_cosine"] = summary["baseline"]["cosine"]["mean"]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: teacher-forced diagnosis", flush=True)
    confidence = _confidence(chain, model_path, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(p_path, confidence.pop("p"))
    scores.update(confidence)
    scores["examples"] = {g: emb.texts[i][:300] for i, g in enumerate(emb.symbols[:3])}
    scores["seconds"] = round(time.perf_counter() - started, 1)
    (chain.run_dir / "gene_sets").mkdir(parents=True, exist_ok=True)
    gene_sets.write(chain.run_dir / "gene_sets" / f"{_file_name(name)}-{key}", overwrite=True)
    _write_json(path, scores)
    return scores


def seed_scores(
    chain: Chain, split: GeneSplit, name: str, model_path: str, seed: int, store, encoder, adata
) -> dict[str, Any]:
    """The fold-seeded scores of one model's embeddings: gene tasks (with baselines) and clustering, cached."""
    from bioprofile.cells import EmbedLimits, embed_cells
    from bioprofile.evaluate.clustering import benchmark_clustering
    from bioprofile.evaluate.gene_tasks import GeneTaskOptions, run_gene_tasks
    from bioprofile.pipeline import embed_genes

    key = _key({"eval": asdict(chain.evaluation), "split": split.key(), "model": model_path, "seed": seed})
    path = chain.run_dir / "scores" / f"{_file_name(name)}-fold{seed}-{key}.json"
    cached = _read_json(path)
    if cached is not None:
        return cached
    # every profile is in the store already (model_scores wrote them): this only looks them up
    emb = embed_genes(
        split.profile_genes,
        generator=_generator(chain, model_path),
        template=TEMPLATE,
        encoder=encoder,
        store=store,
    )
    e = chain.evaluation
    options = GeneTaskOptions(
        models=("logreg",), n_splits=e.n_splits, seed=seed, symbol_baseline=True, encoder=encoder
    )
    # the named tasks, then the split's own functional-class genes and gene-disjoint pairs (when it has them)
    tasks = [*e.tasks, *split.extra_tasks()]
    report = run_gene_tasks({name: emb}, tasks, options=options, data_dir=chain.data_dir, store=store)
    scores: dict[str, Any] = {"model": name, "seed": seed, "gene_tasks": {}}
    for s in report.scores:
        who = "model" if s.embedding == name else s.embedding.split(":")[0]
        scores["gene_tasks"].setdefault(s.task, {})[who] = {
            "auc": s.auc_mean,
            "auc_std": s.auc_std,
            "n_covered": s.n_covered,
            "n_labelled": s.n_labelled,
            "folds": s.details.get("folds"),
        }
    scores["gene_tasks_skipped"] = report.skipped
    cells = adata.copy()
    cluster = emb.select([g for g in split.cluster_genes if g in set(emb.symbols)])
    embed_cells(
        cells, cluster, key_added="X_profiles", limits=EmbedLimits(min_coverage=0.01, warn_coverage=0.0)
    )
    # the PCA baseline depends on the seed only: the base model's rows carry it
    result = benchmark_clustering(
        cells, "bulk_labels", obsm_keys=["X_profiles"], pca_baseline=name == BASE, n_pcs=50, seed=seed
    )
    table = result.table.to_dict(orient="index")
    pca = [v for k, v in table.items() if k != "X_profiles"]
    scores["clustering"] = {"model": table["X_profiles"], "pca": pca[0] if pca else None}
    scores["cluster_gene_coverage"] = dict(cells.uns["X_profiles"]["gene_coverage"])
    _write_json(path, scores)
    return scores


def load_pbmc():
    """The pbmc68k_reduced cells of scanpy: the log-normalised ``.raw`` genes as ``X``, ``bulk_labels`` in ``obs``."""
    import anndata as ad
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    return ad.AnnData(X=pbmc.raw.X.copy(), obs=pbmc.obs[["bulk_labels"]].copy(), var=pbmc.raw.var.copy())


# ---------------------------------------------------------------- the chain


def run_chain(chain: Chain, *, log=print) -> dict[str, Any]:
    """Run (or resume) the whole chain and write the table; returns what it wrote and what it did.

    Returns
    -------
    dict
        ``trained``: the (method, seed) pairs trained in this call; ``table``: the table rows; ``paths``.
    """
    chain.run_dir.mkdir(parents=True, exist_ok=True)
    _finish_timing(chain)  # a call that was killed left its time as this_call_s: count it
    try:
        return _run_chain(chain, log)
    finally:
        _finish_timing(chain)


def _run_chain(chain: Chain, log) -> dict[str, Any]:
    from bioprofile.encoders import get_encoder
    from bioprofile.store import Store

    started = time.perf_counter()
    split = cached_split(chain.synopsis, chain.data_dir, chain.sizes, chain.run_dir)
    check_no_leak(split)
    write_split(split, chain.run_dir / "split.json", chain.sizes)
    log(f"split {split.summary()}")
    encoder = get_encoder(chain.evaluation.encoder)
    adata = load_pbmc()
    base_path = _base_path(chain.train.model)
    trained, results = [], {"models": {}, "seeds": {}, "train": {}}
    with Store(chain.run_dir / "store.sqlite") as store:

        def score(name: str, path: str, seeds) -> None:
            t0 = time.perf_counter()
            results["models"][name] = model_scores(chain, split, name, path, store, encoder)
            for seed in seeds:
                results["seeds"][f"{name}/{seed}"] = seed_scores(
                    chain, split, name, path, seed, store, encoder, adata
                )
            log(f"scored {name} ({time.perf_counter() - t0:.0f} s)")

        score(BASE, base_path, chain.seeds)
        _write_results(chain, split, results, started)
        for seed in chain.seeds:  # seed-major: a cut-short run has every method at the first seeds
            for method in chain.methods:
                t0 = time.perf_counter()
                folder, now = train_one(chain, split, method, seed)
                if now:
                    trained.append((method, seed))
                    log(f"trained {method} seed {seed} ({time.perf_counter() - t0:.0f} s)")
                results["train"][f"{method}/{seed}"] = _train_record(folder)
                score(f"{method}/{seed}", str(folder), [seed])
                _write_results(chain, split, results, started)
    paths, table = _write_results(chain, split, results, started)
    return {"trained": trained, "table": table, "paths": paths, "split": split}


def _base_path(model: str) -> str:
    from bioprofile.train.run import resolve_training_model

    return resolve_training_model(model)


def _train_record(folder: Path) -> dict[str, Any]:
    from bioprofile.train.card import RUN_RECORD

    record = json.loads((folder / RUN_RECORD).read_text())
    curve = record["metrics"]["train_loss_curve"]
    return {
        "train_seconds": record["train_seconds"],
        "steps": record["global_steps"],
        "train_loss_first": curve[0]["loss"] if curve else None,
        "train_loss_last": curve[-1]["loss"] if curve else None,
        "eval": record["metrics"]["eval"],
    }


def _write_results(chain: Chain, split: GeneSplit, results: dict, started: float):
    buckets = {}
    if BASE in results["models"]:
        base_p = np.load(chain.run_dir / "scores" / results["models"][BASE]["p_file"])
        for name, scores in results["models"].items():
            if name == BASE:
                continue
            p = np.load(chain.run_dir / "scores" / scores["p_file"])
            if p.shape == base_p.shape:
                buckets[name] = nll_by_base_confidence(base_p, p)
    table = build_table(results, buckets, methods=chain.methods, base=BASE)
    elapsed = _elapsed(chain, started)
    meta = {
        "command": chain.extra.get("command"),
        "settings": {
            "methods": list(chain.methods),
            "seeds": list(chain.seeds),
            "sizes": asdict(chain.sizes),
            "train": asdict(chain.train),
            "evaluation": asdict(chain.evaluation),
            "template": TEMPLATE,
        },
        "split": split.summary(),
        "run_seconds_total": elapsed,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "load": os.getloadavg()},
    }
    paths = write_table(table, meta, chain.out)
    return paths, table


def _elapsed(chain: Chain, started: float) -> float:
    """Wall seconds of every call of this run folder together (resumed runs add up)."""
    path = chain.run_dir / "timing.json"
    record = _read_json(path) or {"previous_calls_s": 0.0}
    now = time.perf_counter() - started
    record["this_call_s"] = round(now, 1)
    _write_json(path, record)
    return round(record["previous_calls_s"] + now, 1)


def _finish_timing(chain: Chain) -> None:
    path = chain.run_dir / "timing.json"
    record = _read_json(path)
    if record:
        record["previous_calls_s"] = round(record["previous_calls_s"] + record.pop("this_call_s", 0.0), 1)
        _write_json(path, record)


# ---------------------------------------------------------------- command line

SMALL = {
    "steps": 30,
    "batch_size": 4,
    "max_length": 256,
    "train_genes": 120,
    "held_out_genes": 24,
    "dosage_tfs": 40,
    "go_sets": 20,
    "cluster_genes": 40,
    # off: 100 class genes and the 1,000 pair genes that give ~500 pairs would double the profiles per model
    "class_genes": 0,
    "pair_genes": 0,
    "max_new_tokens": 80,
    "seeds": 2,  # 3 would not fit 3 hours on a 2-core machine (about 7 min per method and seed when idle)
    "n_splits": 5,
}
FULL = {
    "steps": 300,
    "batch_size": 8,
    "max_length": 384,  # whole summaries under the served prompt (256 cuts 20 % of them; --small keeps its 256)
    "train_genes": 0,
    "held_out_genes": 200,
    "dosage_tfs": 0,
    "go_sets": 100,
    "cluster_genes": 765,
    "class_genes": 500,
    "pair_genes": 1000,
    "max_new_tokens": 256,
    "seeds": 3,
    "n_splits": 5,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--small`` fills every size flag not given)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="sizes for a 2-core CPU (2 seeds; 150.7 min measured here)"
    )
    parser.add_argument(
        "--model", default="default", help="writer to fine-tune (default: bundled SmolLM2-135M)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (a rerun with more reuses finished ones)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--train-genes", type=int, help="0: every gene the split allows")
    parser.add_argument("--held-out-genes", type=int)
    parser.add_argument("--dosage-tfs", type=int, help="0: all 490")
    parser.add_argument("--go-sets", type=int, help="held-out GO sets of the gene-set task")
    parser.add_argument("--cluster-genes", type=int, help="most variable pbmc genes to profile (765: all)")
    parser.add_argument(
        "--class-genes", type=int, help="functional-class genes to profile and score (kept out of training)"
    )
    parser.add_argument(
        "--pair-genes",
        type=int,
        help="Gene2vec genes to profile; their pairs scored gene-disjoint (1,000: ~500)",
    )
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--gen-batch-size", type=int, default=16)
    parser.add_argument("--backend", default="transformers", choices=("transformers", "vllm"))
    parser.add_argument("--encoder", default=None, help="text encoder spec (default: the library default)")
    parser.add_argument("--tasks", nargs="+", default=["dosage"], help="gene tasks (dosage, ggi, ...)")
    parser.add_argument("--n-splits", type=int)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--synopsis", type=Path, default=SYNOPSIS)
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "benchmarks" / "work" / "reproduce")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reproduce")
    args = parser.parse_args(argv)
    for key, value in (SMALL if args.small else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def chain_from_args(args: argparse.Namespace, command: str | None = None) -> Chain:
    """The :class:`Chain` a command line describes."""
    return Chain(
        methods=tuple(args.methods),
        seeds=tuple(range(args.seeds)),
        sizes=SplitSizes(
            train_genes=args.train_genes,
            held_out_genes=args.held_out_genes,
            dosage_tfs=args.dosage_tfs,
            go_sets=args.go_sets,
            cluster_genes=args.cluster_genes,
            seed=args.split_seed,
            class_genes=args.class_genes,
            pair_genes=args.pair_genes,
        ),
        train=TrainSettings(
            model=args.model,
            steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lr=args.lr,
            lora_r=args.lora_r,
        ),
        evaluation=EvalSettings(
            backend=args.backend,
            max_new_tokens=args.max_new_tokens,
            gen_batch_size=args.gen_batch_size,
            encoder=args.encoder,
            tasks=tuple(args.tasks),
            n_splits=args.n_splits,
        ),
        run_dir=args.run_dir,
        out=args.out,
        synopsis=args.synopsis,
        data_dir=args.data_dir,
        extra={"command": command},
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the chain from the command line; returns :func:`run_chain`'s result."""
    import sys

    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = " ".join(["benchmarks/reproduce.py", *(sys.argv[1:] if argv is None else argv)])
    chain = chain_from_args(args, command)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    return run_chain(chain, log=log)


if __name__ == "__main__":
    main()
