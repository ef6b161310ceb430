"""Fine-tune SmolLM2-135M-Instruct (dense copy, LoRA) on RefSeq gene summaries with each loss method.

Every method trains on the same genes in the same order from the same initial weights, and is scored on the same
held-out genes (never seen in training): held-out token accuracy (argmax == label over response tokens) and mean
token NLL, before and after. LoRA starts as the identity (B = 0), so "before" is the base model and is measured once.

Where the NLL moves: held-out response tokens are bucketed by the probability the *base* model gives them, and
each bucket's mean NLL is reported before and after each method (teacher-forced, ``bioprofile.diagnose``).
p-weighted losses (dft, bft, bft-v1) give little gradient to tokens the model finds unlikely, so this shows
whether their held-out NLL rises on those tokens while it falls on confident ones.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune_refseq.py --steps 24 --batch-size 4 --max-length 384 --eval-genes 64

(the concise prompt, system turn included, is about 121 SmolLM2 tokens: a max_length under ~250 leaves
most summaries cut short, which the trainer says and records)

Writes ``benchmarks/results/finetune_refseq.json``; models go to ``--work-dir`` (not kept in the repository).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _paths import ROOT, SHARED

from bioprofile.diagnose import examples_from_records, load_causal_lm, token_confidences
from bioprofile.train.card import RUN_RECORD
from bioprofile.train.config import DEFAULT_LORA, BFTConfig
from bioprofile.train.losses import METHODS
from bioprofile.train.run import load_records
from bioprofile.train.stages import train_from_config

SYNOPSIS = SHARED / "geneagent" / "gene_narrative_synopsis.txt"


def method_config(method: str, args: argparse.Namespace, *, eval_before: bool = False) -> BFTConfig:
    return BFTConfig(
        model="default",
        refseq_file=str(args.synopsis),
        output_dir=str(Path(args.work_dir) / method),
        eval_size=args.eval_genes,
        max_train_samples=args.train_genes,
        loss_method=method,
        lora={**DEFAULT_LORA, "r": args.lora_r, "lora_alpha": 2 * args.lora_r, "lora_dropout": 0.0},
        merge_adapter=False,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.lr,
        warmup_steps=0.05,
        max_length=args.max_length,
        logging_steps=max(1, args.steps // 20),
        seed=args.seed,
        eval_before_training=eval_before,
        use_cpu=not torch.cuda.is_available(),
    )


def run_method(method: str, args: argparse.Namespace, *, eval_before: bool) -> dict:
    config = method_config(method, args, eval_before=eval_before)
    started = time.perf_counter()
    out = train_from_config(config)
    record = json.loads((out / RUN_RECORD).read_text())
    curve = record["metrics"]["train_loss_curve"]
    return {
        "method": method,
        "window": record["window"],
        "steps": record["global_steps"],
        "train_seconds": record["train_seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "train_loss_first": curve[0]["loss"],
        "train_loss_last": curve[-1]["loss"],
        "train_loss_curve": curve,
        "eval_before": record["metrics"]["eval_before"],
        "eval_after": record["metrics"]["eval"],
        "n_train_genes": record["n_train"],
        "n_eval_genes": record["n_eval"],
    }


#: Bucket edges on the base model's probability of each held-out response token.
P_EDGES = (0.0, 0.01, 0.1, 0.5, 0.9, 1.0)


def held_out_examples(args: argparse.Namespace):
    """The held-out chats the trainer scores (the split does not depend on the method)."""
    _, held_out = load_records(method_config("sft", args))
    return examples_from_records(held_out)


def token_p(model: str, examples, max_length: int) -> np.ndarray:
    """Teacher-forced probability of every held-out response token, concatenated over examples."""
    causal_lm, tokenizer = load_causal_lm(model)
    rows = token_confidences(causal_lm, tokenizer, examples, batch_size=16, max_length=max_length)
    return np.concatenate([r.p for r in rows])


def nll_by_base_confidence(base_p: np.ndarray, p: np.ndarray) -> list[dict]:
    """Mean NLL per bucket of base-model probability, before (base) and after (tuned)."""
    nll_base, nll = -np.log(np.maximum(base_p, 1e-12)), -np.log(np.maximum(p, 1e-12))
    rows = []
    for lo, hi in itertools.pairwise(P_EDGES):
        sel = (base_p >= lo) & ((base_p < hi) if hi < 1.0 else (base_p <= hi))
        rows.append(
            {
                "base_p": f"[{lo}, {hi}{']' if hi == 1.0 else ')'}",
                "n_tokens": int(sel.sum()),
                "nll_before": float(nll_base[sel].mean()) if sel.any() else None,
                "nll_after": float(nll[sel].mean()) if sel.any() else None,
                # this bucket's share of the total change in summed NLL
                "share_of_nll_change": float((nll[sel] - nll_base[sel]).sum() / (nll - nll_base).sum()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--train-genes", type=int, default=3000)
    parser.add_argument("--eval-genes", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy shared CPU)"
    )
    parser.add_argument("--synopsis", type=Path, default=SYNOPSIS)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bioprofile-finetune-refseq"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "finetune_refseq.json")
    parser.add_argument("--no-buckets", action="store_true", help="skip NLL by base-model confidence")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # train_from_config writes each method's model into WORK_DIR/METHOD and wants the parent to exist
    args.work_dir.mkdir(parents=True, exist_ok=True)

    results, before = [], None
    examples = base_p = None
    if not args.no_buckets:
        examples = held_out_examples(args)
        base_p = token_p("default", examples, args.max_length)
    for method in args.methods:
        row = run_method(method, args, eval_before=before is None)
        before = before or row.pop("eval_before")
        row.pop("eval_before", None)
        if base_p is not None:
            row["nll_by_base_confidence"] = nll_by_base_confidence(
                base_p, token_p(str(Path(args.work_dir) / method), examples, args.max_length)
            )
        results.append(row)
        after = row["eval_after"]
        print(
            f"{method:>10}: loss {row['train_loss_first']:.3f} -> {row['train_loss_last']:.3f}, held-out token acc "
            f"{before['token_accuracy']:.4f} -> {after['token_accuracy']:.4f}, nll {before['token_nll']:.3f} -> "
            f"{after['token_nll']:.3f} ({row['train_seconds']:.0f} s)",
            flush=True,
        )
        _write(args, before, results)


def _write(args: argparse.Namespace, before: dict, results: list[dict]) -> None:
    payload = {
        "what": "SmolLM2-135M-Instruct dense copy + LoRA on RefSeq summaries ('Tell me about gene X.' -> summary)",
        "settings": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
            if key not in ("out", "work_dir")
        },
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch": torch.__version__,
        },
        "held_out_before": before,
        "methods": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
