"""Generation throughput of the transformers backend: real batches vs one prompt at a time.

Runs the default generator (dense SmolLM2-135M-Instruct) greedily over the same genes twice, once with
``batch_size=1`` and once batched, counts the tokens each profile really got (up to its end-of-turn token), and
prints both side by side. Also reports how many profiles came out identical both ways.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generation_throughput.py            # 32 genes, batch 16
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generation_throughput.py --genes 8 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

# Well-studied genes with symbols of different token lengths, so batches carry realistic padding.
GENES = [
    "TP53",
    "BRCA1",
    "EGFR",
    "KRAS",
    "MYC",
    "PTEN",
    "CDKN2A",
    "APOE",
    "TNF",
    "IL6",
    "VEGFA",
    "ESR1",
    "AKT1",
    "MTOR",
    "STAT3",
    "JAK2",
    "HLA-DRB1",
    "CFTR",
    "HBB",
    "INS",
    "GAPDH",
    "ACTB",
    "SOX2",
    "POU5F1",
    "NANOG",
    "FOXP3",
    "CD4",
    "CD8A",
    "PAX6",
    "SHH",
    "NOTCH1",
    "WNT3A",
    "CTNNB1",
    "SMAD4",
    "TGFB1",
    "BCL2",
    "CASP3",
    "ATM",
    "RB1",
    "ERBB2",
]

RESULTS = Path(__file__).resolve().parent / "results" / "generation_throughput.json"


def run_once(generator, messages: list, batch_size: int) -> dict:
    """Generate all prompts at ``batch_size``; return tokens, wall time and the token ids."""
    generator.settings = replace(generator.settings, batch_size=batch_size)
    start = time.perf_counter()
    token_ids = generator.generate_token_ids(messages)
    seconds = time.perf_counter() - start
    tokens = sum(len(t) for t in token_ids)
    return {
        "batch_size": batch_size,
        "profiles": len(messages),
        "generated_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 2),
        "profiles_per_minute": round(60 * len(messages) / seconds, 2),
        "_token_ids": token_ids,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=32, help=f"number of genes (at most {len(GENES)})")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--template", default="genept")
    parser.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice); on a shared machine 1 avoids "
        "threads spinning against other processes",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)

    from bioprofile.profiles.generate import GenerationSettings
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.prompts import get_template

    template = get_template(args.template)
    genes = GENES[: args.genes]
    messages = [template.messages(gene) for gene in genes]
    generator = TransformersGenerator(
        args.model, settings=GenerationSettings(max_new_tokens=args.max_new_tokens)
    ).load()
    # Warm-up (first-call allocations, lazy kernels) so neither timed run pays it.
    settings = generator.settings
    generator.settings = replace(settings, batch_size=2, max_new_tokens=4)
    generator.generate_token_ids(messages[:2])
    generator.settings = settings

    load_before = os.getloadavg()
    single = run_once(generator, messages, 1)
    batched = run_once(generator, messages, args.batch_size)
    load_after = os.getloadavg()
    identical = sum(a == b for a, b in zip(single.pop("_token_ids"), batched.pop("_token_ids"), strict=False))
    speedup = batched["tokens_per_second"] / single["tokens_per_second"]

    print(
        f"generator {generator.id}  template {template.name}  {len(genes)} genes  "
        f"max_new_tokens {args.max_new_tokens}  greedy  device {generator.device}  "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'':22}{'one at a time':>16}{'batch ' + str(args.batch_size):>16}")
    for key, label in [
        ("generated_tokens", "generated tokens"),
        ("seconds", "wall seconds"),
        ("tokens_per_second", "tokens / s"),
        ("profiles_per_minute", "profiles / min"),
    ]:
        print(f"{label:22}{single[key]:>16}{batched[key]:>16}")
    print(
        f"speed-up (tokens/s): {speedup:.2f}x   identical profiles both ways: {identical}/{len(genes)}   "
        f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs"
    )

    result = {
        "benchmark": "generation_throughput",
        "generator": generator.id,
        "template": template.name,
        "genes": genes,
        "max_new_tokens": args.max_new_tokens,
        "do_sample": False,
        "dtype": generator.params["dtype"],
        "device": generator.device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        # Other work on the machine skews both timings; the 1-minute load average before and after says how much.
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "one_at_a_time": single,
        "batched": batched,
        "speedup_tokens_per_second": round(speedup, 2),
        "identical_profiles": identical,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
