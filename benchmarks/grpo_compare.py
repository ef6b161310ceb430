"""GRPO at small scale (issue 22): the base model and sft / dft / bft adapters, before and after the same GRPO budget.

The paper's claim: under GRPO with a sparse binary reward, a BFT-tuned writer improves on held-out cell lines while
SFT and DFT degrade. Here, offline and small: a seeded Tahoe-shaped AnnData whose drugs act through real GO gene
sets (``bioprofile.evaluate.de_reasoning.tahoe_like_adata``) is labelled the VCWorld way (``vcworld_labels``); GRPO
trains on the train-split drugs of every cell line but one, and accuracy is measured (greedy, the ``de-reasoning``
template, malformed answers scored wrong) before and after on

- the held-out cell line (all its drugs), and
- the held-out drugs (the test split) of the training cell lines,

beside the majority-class baseline. Each start gets the same GRPO budget (steps, replies per question, reply length,
learning rate, seed). ``sft``, ``dft`` and ``bft`` starts are LoRA adapters trained first on RefSeq summaries with
that loss for ``--warmup-steps`` steps (or given with ``--adapter NAME=PATH``); GRPO trains that adapter further.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/grpo_compare.py --starts base bft --warmup-steps 20
        --grpo-steps 10 --num-generations 4 --max-completion-length 64 --eval-questions 24 --eval-tokens 96

(one command line). ``--preset h100`` sets the sizes of the same comparison for one H100 (five cell lines, four
starts, two seeds, 200 questions per held-out set; about 10 minutes by estimate: it has not run on a GPU yet);
options given beside it override its values. ``--grpo-vllm`` generates GRPO's replies with vLLM in the training
process (TRL's ``use_vllm=True, vllm_mode="colocate"``) and is refused where vLLM is not installed.

Writes ``benchmarks/results/grpo_compare.json`` and the reward curves beside it (``.png``); models go to
``--work-dir``. Sizes that finish on a laptop CPU say whether the pipeline works, not which start is better: read
the intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from _paths import ROOT, SHARED

from bioprofile.evaluate.de_reasoning import (
    DEQuestion,
    baseline_predictions,
    run_de_reasoning,
    sample_records,
    score_predictions,
    tahoe_like_adata,
    vcworld_labels,
)
from bioprofile.profiles.backends import make_generator
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.vllm import vllm_available
from bioprofile.store import Store
from bioprofile.train.config import DEFAULT_LORA, BFTConfig
from bioprofile.train.grpo import GRPOStageConfig
from bioprofile.train.grpo_log import GRPOLog
from bioprofile.train.stages import train_from_config

SYNOPSIS = SHARED / "geneagent" / "gene_narrative_synopsis.txt"
GO_TERMS = SHARED / "geneagent" / "GO_terms.csv"
WARMUP_METHODS = ("sft", "dft", "bft")
# The paper's held-out-cell-line accuracy (VCWorld, 70B backbone), before -> after GRPO.
PAPER = {"base": (0.40, None), "sft": (0.56, 0.49), "dft": (0.49, 0.42), "bft": (0.70, 0.74)}
#: Option values of a preset (argparse destinations); options given on the command line override them. The h100
#: sizes are an estimate for one H100 with SmolLM2-135M in bf16 (warm-ups ~1 min, 8 GRPO runs ~5 min, 12
#: evaluations of 400 short answers ~1 min), not a measurement: no GPU has been lent to this project yet.
PRESETS: dict[str, dict] = {
    "h100": {
        "starts": ["base", *WARMUP_METHODS],
        "seeds": [0, 1],
        "template": "de-direct",
        "cell_lines": ["C32", "HepG2C3A", "HOP62", "Hs766T", "PANC-1"],
        "drugs": 12,
        "cells_per_group": 60,
        "warmup_steps": 200,
        "warmup_genes": 3000,
        "warmup_batch_size": 16,
        "warmup_lr": 2e-4,
        "warmup_max_length": 512,
        "grpo_steps": 60,
        "num_generations": 8,
        "prompts_per_step": 4,
        "max_completion_length": 16,
        "lr": 2e-4,
        "eval_questions": 200,
        "eval_tokens": 16,
        "eval_batch_size": 64,
    },
}


def make_questions(args: argparse.Namespace) -> tuple[Path, dict[str, list[DEQuestion]], dict]:
    """The GRPO training file and the two held-out question sets."""
    adata = tahoe_like_adata(
        args.gene_sets,
        n_drugs=args.drugs,
        cell_lines=args.cell_lines,
        cells_per_group=args.cells_per_group,
        seed=args.data_seed,
    )
    frame = vcworld_labels(adata, n_negatives=args.negatives, seed=args.data_seed)
    held_line = args.cell_lines[-1]
    frame["label"] = frame["label"].astype(bool)
    training_lines = frame[frame["cell_line"] != held_line]
    train = training_lines[training_lines["split"] == "train"]
    train_file = args.work_dir / "grpo_train.csv"
    train[["cell_line", "pert", "gene", "label", "split"]].to_csv(train_file, index=False)

    def questions(part) -> list[DEQuestion]:
        return [
            DEQuestion(r.pert, r.cell_line, r.gene, bool(r.label), r.split)
            for r in part.itertuples(index=False)
        ]

    held_drugs = questions(training_lines[training_lines["split"] == "test"])
    held_cell = questions(frame[frame["cell_line"] == held_line])
    per_line = max(2, args.eval_questions // max(1, len(args.cell_lines) - 1))
    sets = {
        f"held-out line ({held_line})": sample_records(held_cell, args.eval_questions, seed=args.data_seed),
        "held-out drugs": sample_records(held_drugs, per_line, seed=args.data_seed),
    }
    data = {
        "n_records": len(frame),
        "n_train_questions": len(train),
        "train_positive_share": round(float(train["label"].mean()), 3),
        "held_out_cell_line": held_line,
        "eval_sizes": {name: len(qs) for name, qs in sets.items()},
    }
    return train_file, sets, data


def warm_up(method: str, args: argparse.Namespace) -> str:
    """A LoRA adapter trained on RefSeq summaries with ``method``'s loss (the sft stage)."""
    config = BFTConfig(
        model=args.model,
        refseq_file=str(args.synopsis),
        output_dir=str(args.work_dir / f"warmup-{method}"),
        max_train_samples=args.warmup_genes,
        loss_method=method,
        lora={**DEFAULT_LORA, "r": args.lora_r, "lora_alpha": 2 * args.lora_r, "lora_dropout": 0.0},
        merge_adapter=False,
        max_steps=args.warmup_steps,
        per_device_train_batch_size=args.warmup_batch_size,
        learning_rate=args.warmup_lr,
        max_length=args.warmup_max_length,
        seed=args.seed,
        **_device_options(),
    )
    return str(train_from_config(config, overwrite=True, progress=False))


def _device_options() -> dict:
    """Train on the GPU in bf16 where there is one, else on the CPU in float32."""
    return {"bf16": True} if torch.cuda.is_available() else {"use_cpu": True}


def accuracy(model: str, name: str, sets: dict[str, list[DEQuestion]], args: argparse.Namespace) -> dict:
    """Greedy answers of ``model`` to each held-out set, scored; answers are cached in the work folder's store."""
    settings = GenerationSettings(max_new_tokens=args.eval_tokens, batch_size=args.eval_batch_size)
    generator = make_generator(model, settings=settings)
    scores = {}
    with Store(args.work_dir / "answers.sqlite") as store:
        for set_name, questions in sets.items():
            result = run_de_reasoning(
                questions, generator=generator, template=args.template, store=store, name=name
            )
            labels = [row["label"] == "yes" for row in result.records]
            answers = [None if row["answer"] is None else row["answer"] == "yes" for row in result.records]
            score = score_predictions(labels, answers)
            scores[set_name] = {k: score[k] for k in ("n", "accuracy", "accuracy_low", "accuracy_high")}
            scores[set_name]["malformed_rate"] = score["malformed_rate"]
    del generator
    return scores


def majority(sets: dict[str, list[DEQuestion]]) -> dict[str, float]:
    """The majority-class baseline's accuracy on each set (the class of each cell line's majority)."""
    out = {}
    for set_name, questions in sets.items():
        correct = 0
        for line in dict.fromkeys(q.cell_line for q in questions):
            labels = [q.label for q in questions if q.cell_line == line]
            correct += sum(
                p == y for p, y in zip(baseline_predictions(labels, "majority"), labels, strict=True)
            )
        out[set_name] = correct / len(questions)
    return out


def run_grpo(start: str, model: str, seed: int, train_file: Path, args: argparse.Namespace) -> Path:
    config = GRPOStageConfig(
        model=model,
        train_file=str(train_file),
        output_dir=str(args.work_dir / f"grpo-{start}-seed{seed}"),
        rewards=list(args.rewards),
        template=args.template,
        num_generations=args.num_generations,
        per_device_train_batch_size=args.num_generations * args.prompts_per_step,
        max_completion_length=args.max_completion_length,
        max_steps=args.grpo_steps,
        learning_rate=args.lr,
        seed=seed,
        merge_adapter=False,
        **_device_options(),
        # vLLM in the training process: a small share of the GPU is plenty for a 135M model's replies, and
        # leaves room for the engines of the later runs if one is not freed before the next starts.
        **(
            {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.1}
            if args.grpo_vllm
            else {}
        ),
        **(
            {}
            if Path(model, "adapter_config.json").is_file()
            else {"lora": {**DEFAULT_LORA, "r": args.lora_r}}
        ),
    )
    return train_from_config(config, overwrite=True, progress=False)


def _fmt(score: dict) -> str:
    return f"{score['accuracy']:.2f} [{score['accuracy_low']:.2f}, {score['accuracy_high']:.2f}]"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="sizes of a GPU run (h100: one H100, about 10 minutes); options given beside it override its values",
    )
    parser.add_argument(
        "--starts", nargs="+", default=["base", "sft", "bft"], choices=["base", *WARMUP_METHODS]
    )
    parser.add_argument(
        "--adapter", action="append", default=[], help="NAME=PATH: use this adapter as a start"
    )
    parser.add_argument("--model", default="default", help="the base model (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--warmup-genes", type=int, default=400)
    parser.add_argument("--warmup-batch-size", type=int, default=4)
    parser.add_argument("--warmup-lr", type=float, default=1e-3)
    parser.add_argument(
        "--warmup-max-length",
        type=int,
        default=256,
        help="tokens per warm-up record (the served prompt alone is ~121: longer summaries are cut, and counted)",
    )
    parser.add_argument("--grpo-steps", type=int, default=10)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument(
        "--prompts-per-step",
        type=int,
        default=1,
        help="questions per GRPO step, each answered --num-generations times",
    )
    parser.add_argument(
        "--grpo-vllm",
        action="store_true",
        help="generate GRPO's replies with vLLM (colocated; a GPU and vllm)",
    )
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument(
        "--template",
        default="de-reasoning",
        help="DE-question template of GRPO and of the accuracy before and after (de-reasoning, de-direct)",
    )
    parser.add_argument(
        "--rewards",
        nargs="+",
        default=["answer"],
        choices=["answer", "answer_format"],
        help="GRPO rewards (answer: 1 for a right yes/no; answer_format: 1 for any well-formed answer line)",
    )
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the warm-up runs")
    parser.add_argument("--drugs", type=int, default=6)
    parser.add_argument("--cell-lines", nargs="+", default=["C32", "HOP62", "PANC-1"])
    parser.add_argument("--cells-per-group", type=int, default=30)
    parser.add_argument("--negatives", type=int, default=20)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--eval-questions", type=int, default=24)
    parser.add_argument("--eval-tokens", type=int, default=96)
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--gene-sets", type=Path, default=GO_TERMS)
    parser.add_argument("--synopsis", type=Path, default=SYNOPSIS)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bioprofile-grpo-compare"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grpo_compare.json")
    preset = parser.parse_known_args(argv)[0].preset
    if preset:
        parser.set_defaults(**PRESETS[preset])
    args = parser.parse_args(argv)
    if len(args.cell_lines) < 2:
        parser.error("give at least two cell lines: GRPO trains on all but the last, which is held out")
    if args.grpo_vllm and not vllm_available():
        parser.error(
            "--grpo-vllm needs vLLM in this environment (pip install vllm); leave it out to generate with transformers"
        )
    return args


def main() -> None:
    args = parse_args()
    given = dict(item.split("=", 1) for item in args.adapter)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    train_file, sets, data = make_questions(args)
    baseline = majority(sets)
    print(f"questions: {data}")
    rows, logs = [], {}
    for start in args.starts:
        model = given.get(start) or (args.model if start == "base" else warm_up(start, args))
        before = accuracy(model, start, sets, args)
        for seed in args.seeds:
            t0 = time.perf_counter()
            out = run_grpo(start, model, seed, train_file, args)
            grpo_seconds = time.perf_counter() - t0
            log = GRPOLog.read(out)
            logs[f"{start} (seed {seed})"] = log
            after = accuracy(str(out), f"{start}+grpo", sets, args)
            rows.append(
                {
                    "start": start,
                    "seed": seed,
                    "grpo_seconds": round(grpo_seconds, 1),
                    **{f"train_{k}": v for k, v in log.summary().items()},
                    "reward_curve": [row["reward"] for row in log.steps],
                    "before": before,
                    "after": after,
                    "paper_held_out_line": PAPER.get(start),
                }
            )
            print(f"\n{start} (seed {seed}): GRPO {grpo_seconds:.0f} s, {log.summary()}")
            for set_name in sets:
                print(
                    f"  {set_name:28s} before {_fmt(before[set_name])} (malformed "
                    f"{before[set_name]['malformed_rate']:.2f})  after {_fmt(after[set_name])} (malformed "
                    f"{after[set_name]['malformed_rate']:.2f})  majority {baseline[set_name]:.2f}"
                )

    print(
        "\n| start | seed | set | before | after | majority | malformed before -> after | groups all-equal |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for set_name in sets:
            b, a = row["before"][set_name], row["after"][set_name]
            print(
                f"| {row['start']} | {row['seed']} | {set_name} | {_fmt(b)} | {_fmt(a)} | {baseline[set_name]:.2f} | "
                f"{b['malformed_rate']:.2f} -> {a['malformed_rate']:.2f} | "
                f"{row['train_mean_frac_reward_zero_std']:.2f} |"
            )
    payload = {
        "benchmark": "grpo_compare",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": data,
        "majority": baseline,
        "runs": rows,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "loadavg": os.getloadavg(),
        },
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    import matplotlib

    matplotlib.use("Agg")
    from bioprofile import pl

    figure = args.out.with_suffix(".png")
    pl.grpo_rewards(logs, save=figure, show=False)
    print(f"wrote {figure}")


if __name__ == "__main__":
    main()
