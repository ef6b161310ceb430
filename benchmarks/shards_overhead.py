"""Shards for job arrays beside one run: N shards of the same genes run one after the other, merged, vs one run.

Each side writes the profiles of the same genes (the bundled SmolLM2-135M-Instruct unless ``--model``, greedy) and
encodes them (all-MiniLM-L6-v2 unless ``--encoder``) into fresh stores, as a job does: every shard builds its own
writer and encoder, so each pays its model loads (:func:`~bioprofile.pipeline.embed_genes` with ``shard=(i, N)``),
and the N tables are joined with :func:`~bioprofile.shards.merge_tables`. What a job array adds beyond that, a
fresh Python process per shard (interpreter, imports), is timed on its own (a subprocess importing what a job
imports) and reported apart and added; this process pays those imports once, untimed, before the runs. The two sides alternate (one run first, then the shards; then the
other way round) ``--repeats`` times, so that a change in the machine's load hits both; the table shows each pair.

    nice .venv/bin/python benchmarks/shards_overhead.py                    # 40 genes x 64 tokens, N = 2
    nice .venv/bin/python benchmarks/shards_overhead.py --genes 6 --max-new-tokens 4 --repeats 1 --process-starts 1

Target: N = 2 shards at most 5% slower than one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generation_throughput import GENES  # noqa: E402  (the genes every generation benchmark uses)

RESULTS = HERE / "results" / "shards_overhead.json"
# What a fresh job process imports before it embeds anything (the CLI and the model libraries).
_JOB_IMPORTS = "import bioprofile.cli, bioprofile.pipeline, torch, transformers, sentence_transformers"


def _embed(genes, settings, args, store_path: Path, shard=None):
    """One job: a new writer and encoder (their loads counted), a fresh store; the table and its seconds."""
    from bioprofile.pipeline import embed_genes
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.store import Store

    start = time.perf_counter()
    with Store(store_path) as store:
        table = embed_genes(
            genes,
            generator=TransformersGenerator(args.model, settings=settings),
            template=args.template,
            encoder=args.encoder,
            store=store,
            shard=shard,
        )
    return table, time.perf_counter() - start


def _process_start(times_run: int) -> float:
    """Seconds a fresh Python process takes to import what a job imports (median of ``times_run``)."""
    times = []
    for _ in range(times_run):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _JOB_IMPORTS], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # all 40: split 24 / 16 into two shards, 5 batches of 8 either way (32 would split 21 / 11: 5 batches vs 4)
    parser.add_argument("--genes", type=int, default=40, help=f"number of genes (at most {len(GENES)})")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--template", default="concise")
    parser.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    parser.add_argument("--encoder", default=None, help="default: all-MiniLM-L6-v2")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the writer")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--process-starts", type=int, default=3, help="fresh processes timed (median)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    from bioprofile.profiles.generate import GenerationSettings
    from bioprofile.shards import merge_tables

    genes = GENES[: args.genes]
    settings = GenerationSettings(
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, threads=args.threads
    )
    load_start = os.getloadavg()
    process_start = _process_start(args.process_starts)
    pairs = []
    with tempfile.TemporaryDirectory() as work:
        # untimed: the libraries' imports (paid once per process, timed above) and the file cache, for both sides
        _embed(genes[:1], replace(settings, max_new_tokens=1), args, Path(work) / "warm.sqlite")
        for repeat in range(args.repeats):
            timings = {}
            # alternate which side runs first: the first run of a process also warms the file cache
            for side in ("whole", "shards") if repeat % 2 == 0 else ("shards", "whole"):
                if side == "whole":
                    whole, timings["whole"] = _embed(
                        genes, settings, args, Path(work) / f"whole{repeat}.sqlite"
                    )
                    continue
                shard_tables, shard_s = [], []
                for i in range(args.shards):
                    path = Path(work) / f"shard{repeat}-{i}.sqlite"
                    table, seconds = _embed(genes, settings, args, path, shard=(i, args.shards))
                    shard_tables.append(table)
                    shard_s.append(seconds)
                start = time.perf_counter()
                merged = merge_tables(shard_tables)
                timings.update(shards=shard_s, merge=time.perf_counter() - start)
            sharded = sum(timings["shards"]) + timings["merge"]
            n = args.shards
            pairs.append(
                {
                    "whole_s": round(timings["whole"], 2),
                    "shard_s": [round(s, 2) for s in timings["shards"]],
                    "shard_rows": [len(t) for t in shard_tables],
                    "merge_s": round(timings["merge"], 3),
                    "overhead": round(sharded / timings["whole"] - 1, 4),
                    # each shard a fresh process, as in a job array
                    "overhead_with_process_start": round(
                        (sharded + n * process_start) / (timings["whole"] + process_start) - 1, 4
                    ),
                    "same_rows": merged.ids == whole.ids,
                    "identical_texts": sum(a == b for a, b in zip(merged.texts, whole.texts, strict=True)),
                    "max_vector_difference": float(np.abs(merged.vectors - whole.vectors).max()),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "first": "whole" if repeat % 2 == 0 else "shards",
                }
            )
    load_end = os.getloadavg()
    overhead = statistics.median(pair["overhead"] for pair in pairs)
    with_start = statistics.median(pair["overhead_with_process_start"] for pair in pairs)

    print(
        f"{len(genes)} genes x {args.max_new_tokens} new tokens, batch {args.batch_size}, {args.threads} thread(s); "
        f"N = {args.shards} shards one after the other vs one run; torch {torch.__version__}"
    )
    print(
        f"{'run':>4}{'one run s':>11}{'shards s':>18}{'merge s':>9}{'overhead':>10}{'same texts':>12}{'load':>7}"
    )
    for number, pair in enumerate(pairs, 1):
        shards = " + ".join(f"{s:.1f}" for s in pair["shard_s"])
        print(
            f"{number:>4}{pair['whole_s']:>11.2f}{shards:>18}{pair['merge_s']:>9.3f}{pair['overhead']:>+10.1%}"
            f"{pair['identical_texts']:>8}/{len(genes):<3}{pair['load_average_1min']:>7.1f}"
        )
    print(
        f"median overhead {overhead:+.1%} (target <= +5%); a fresh process per shard adds {process_start:.1f} s "
        f"each: {with_start:+.1%} with it; load average {load_start[0]:.1f} -> {load_end[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    result = {
        "benchmark": "shards_overhead",
        "genes": genes,
        "shards": args.shards,
        "model": args.model or "bundled SmolLM2-135M-Instruct",
        "encoder": args.encoder or "default (all-MiniLM-L6-v2)",
        "template": args.template,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads,
        "runs": pairs,
        "median_overhead": round(overhead, 4),
        "process_start_s": round(process_start, 2),
        "median_overhead_with_process_start": round(with_start, 4),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1min_start_end": [round(load_start[0], 2), round(load_end[0], 2)],
        "torch": torch.__version__,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
