"""Training-step time and peak memory of SFT / DFT / BFT on the full-logit and the chunked path.

One model (a small random Llama with SmolLM2's 49,152-token vocabulary and tied embeddings) and one
batch (``--batch`` x ``--seq`` tokens, the first ``--prompt`` tokens of each sample ignored) for every
configuration; a step is forward + backward (no optimizer).

* Time: one process per path runs the methods round-robin (sft, dft, bft, sft, ...) so that load from
  other processes hits all methods alike; after ``--warmup`` rounds the median of ``--steps`` is reported,
  for the whole step and for the loss alone (forward + backward from fixed logits or hidden states; the
  methods differ only there). The load average is recorded, as other processes make CPU timings noisy.
* Peak memory: torch keeps no allocator statistics on CPU, so each configuration runs in a fresh
  subprocess and reports peak RSS (``resource.getrusage(...).ru_maxrss``) during its steps minus the RSS
  after the model and batch were built. On CUDA the allocator's peak is reported instead.

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_step.py            # writes benchmarks/results/train_step.json
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_step.py --steps 3 --seq 256   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("sft", "dft", "bft")
PATHS = ("full", "chunked")
RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"


def build_model_and_batch(args):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=args.seq,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).to(args.device).train()
    input_ids = torch.randint(0, args.vocab, (args.batch, args.seq), device=args.device)
    labels = input_ids.clone()
    labels[:, : args.prompt] = -100
    return model, input_ids, labels


def training_step(model, input_ids, labels, path: str, method: str, chunk_size: int) -> float:
    """One forward + backward; returns the loss value."""
    from bioprofile.train.chunked import ChunkSettings, causal_lm_loss_from_hidden
    from bioprofile.train.losses import causal_lm_loss

    model.zero_grad(set_to_none=True)
    if path == "full":
        logits = model(input_ids=input_ids).logits
        loss = causal_lm_loss(logits, labels, method=method)
    else:
        hidden = model.model(input_ids=input_ids).last_hidden_state
        loss = causal_lm_loss_from_hidden(
            hidden, model.lm_head.weight, labels, method=method, chunks=ChunkSettings(chunk_size=chunk_size)
        )
    loss.backward()
    return loss.item()


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rss_mib() -> float:
    """Current resident set size (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def worker_timing(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    model, input_ids, labels = build_model_and_batch(args)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    losses: dict[str, float] = {}
    for round_index in range(args.warmup + args.steps):
        for method in METHODS:
            _sync(args.device)
            start = time.perf_counter()
            losses[method] = training_step(model, input_ids, labels, args.path, method, args.chunk_size)
            _sync(args.device)
            if round_index >= args.warmup:
                times[method].append(time.perf_counter() - start)
    return {
        "times_s": times,
        "loss": losses,
        "loss_only_times_s": loss_only_times(args, model, input_ids, labels),
    }


def loss_only_times(args, model, input_ids, labels) -> dict[str, list[float]]:
    """Forward + backward of the loss alone, from fixed logits (full) or hidden states (chunked).

    The methods differ only here, so this isolates the reweighting overhead from the model's noise.
    """
    import torch

    from bioprofile.train.chunked import ChunkSettings, causal_lm_loss_from_hidden
    from bioprofile.train.losses import causal_lm_loss

    with torch.no_grad():
        if args.path == "full":
            source = model(input_ids=input_ids).logits
        else:
            source = model.model(input_ids=input_ids).last_hidden_state
    source.requires_grad_(True)
    weight = model.lm_head.weight.detach().requires_grad_(True)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for round_index in range(args.warmup + args.steps):
        for method in METHODS:
            source.grad = weight.grad = None
            _sync(args.device)
            start = time.perf_counter()
            if args.path == "full":
                loss = causal_lm_loss(source, labels, method=method)
            else:
                loss = causal_lm_loss_from_hidden(
                    source, weight, labels, method=method, chunks=ChunkSettings(chunk_size=args.chunk_size)
                )
            loss.backward()
            _sync(args.device)
            if round_index >= args.warmup:
                times[method].append(time.perf_counter() - start)
    return times


def worker_memory(args) -> dict:
    import gc
    import resource

    import torch

    torch.set_num_threads(args.threads)
    model, input_ids, labels = build_model_and_batch(args)
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
        for _ in range(2):
            training_step(model, input_ids, labels, args.path, args.method, args.chunk_size)
        torch.cuda.synchronize()
        return {
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20 - base,
            "measure": "cuda max_memory_allocated",
        }
    base = _rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(2):
        training_step(model, input_ids, labels, args.path, args.method, args.chunk_size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_mib": peak - base,
        "rss_after_load_mib": base,
        "peak_rss_before_steps_mib": peak_before,
        "peak_rss_mib": peak,
        "measure": "peak RSS (ru_maxrss) minus RSS after model+batch load, fresh process",
    }


def run_worker(args, mode: str, **overrides) -> dict:
    argv = [sys.executable, __file__, "--worker", mode]
    for key, value in {**vars(args), **overrides}.items():
        if key in ("worker", "output") or value is None:
            continue
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--prompt", type=int, default=64, help="leading tokens per sample with label -100")
    parser.add_argument("--vocab", type=int, default=49152, help="SmolLM2's vocabulary size")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=["timing", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker == "timing":
        print(json.dumps(worker_timing(args)))
        return
    if args.worker == "memory":
        print(json.dumps(worker_memory(args)))
        return

    import torch

    load_before = os.getloadavg()
    rows = []
    for path in PATHS:
        timing = run_worker(args, "timing", path=path)
        for method in METHODS:
            memory = run_worker(args, "memory", path=path, method=method)
            step_times = timing["times_s"][method]
            loss_times = timing["loss_only_times_s"][method]
            rows.append(
                {
                    "path": path,
                    "method": method,
                    "median_step_s": statistics.median(step_times),
                    "step_times_s": step_times,
                    "median_loss_only_s": statistics.median(loss_times),
                    "loss_only_times_s": loss_times,
                    "peak_mib": memory["peak_mib"],
                    "loss": timing["loss"][method],
                    "memory_detail": memory,
                }
            )
            print(f"  measured {path:8s} {method}", file=sys.stderr)

    by = {(r["path"], r["method"]): r for r in rows}
    summary = {
        f"{path}_bft_over_sft_time": by[(path, "bft")]["median_step_s"] / by[(path, "sft")]["median_step_s"]
        for path in PATHS
    }
    summary.update(
        {
            f"{path}_bft_over_sft_loss_only_time": by[(path, "bft")]["median_loss_only_s"]
            / by[(path, "sft")]["median_loss_only_s"]
            for path in PATHS
        }
    )
    summary.update(
        {
            f"{method}_full_over_chunked_peak": by[("full", method)]["peak_mib"]
            / by[("chunked", method)]["peak_mib"]
            for method in METHODS
        }
    )
    memory_measure = rows[0]["memory_detail"]["measure"]
    result = {
        "config": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("worker", "path", "method")
        },
        "model": f"random LlamaForCausalLM, hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}, tied embeddings, fp32",
        "step": "forward + backward, no optimizer; methods timed round-robin in one process per path",
        "loss_only": "forward + backward of the loss alone from fixed logits (full) or hidden states (chunked)",
        "memory_measure": memory_measure,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "device": args.device,
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15_before": load_before,
            "load_average_1_5_15_after": os.getloadavg(),
        },
        "targets": {"bft_over_sft_time": "<= 1.05", "full_over_chunked_peak": ">= 2"},
        "rows": rows,
        "summary": summary,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    print(f"batch {args.batch} x seq {args.seq}, vocab {args.vocab}, {result['model']}")
    print(f"memory: {memory_measure}")
    print(f"load average before/after: {load_before} / {result['environment']['load_average_1_5_15_after']}")
    print(f"{'path':8s} {'method':6s} {'median step s':>14s} {'median loss-only s':>19s} {'peak MiB':>10s}")
    for r in rows:
        print(
            f"{r['path']:8s} {r['method']:6s} {r['median_step_s']:14.3f} {r['median_loss_only_s']:19.3f}"
            f" {r['peak_mib']:10.1f}"
        )
    for key, value in summary.items():
        print(f"{key}: {value:.3f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
