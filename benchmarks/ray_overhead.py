"""The Ray path (``embed_genes(ray=...)``, ``--ray``) beside the local path: same writer, same prompts, one run.

Both write the profiles of the same genes with the same writer (the bundled SmolLM2-135M-Instruct unless
``--model``), greedily, into a fresh store each time, on the same number of CPU threads. The local path runs in this
process (:func:`~bioprofile.profiles.generate.generate_profiles`, a new writer each time, so its model load counts;
the imports are paid once, untimed, before the runs). The Ray path runs over a pool of ``--actors`` actors with
``--threads`` CPUs each on a local Ray cluster (:class:`~bioprofile.profiles.ray_fanout.RayProfileWriter`: actor
processes started, each importing torch and loading the model, the driver storing each batch): all of that counts
against it. The cluster's start (``ray.init``) is paid once per cluster, not per job: it is timed on its own and
reported both apart and added to the first Ray run. The runs alternate (local, Ray, local, Ray...) ``--repeats``
times so that a change in the machine's load hits both; the table shows each pair and the median overhead.

    nice .venv/bin/python benchmarks/ray_overhead.py                      # 16 genes x 64 tokens, 1 actor
    nice .venv/bin/python benchmarks/ray_overhead.py --genes 2 --max-new-tokens 4 --repeats 1   # smoke

Target: the Ray path at most 10% slower than the local path (cluster start apart).
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generation_throughput import GENES  # noqa: E402  (the genes every generation benchmark uses)

RESULTS = HERE / "results" / "ray_overhead.json"


def _local_run(genes, template, settings, model, store_path: Path) -> tuple[float, list[str]]:
    from bioprofile.profiles.generate import generate_profiles
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.store import Store

    start = time.perf_counter()
    with Store(store_path) as store:
        writer = TransformersGenerator(model, settings=settings)
        texts = generate_profiles(genes, generator=writer, template=template, store=store)
    return time.perf_counter() - start, texts


def _ray_run(genes, template, settings, model, store_path: Path, actors: int, threads: int):
    from bioprofile.profiles.ray_fanout import GeneratorSpec, RayOptions, RayProfileWriter
    from bioprofile.store import Store

    start = time.perf_counter()
    with Store(store_path) as store:
        writer = RayProfileWriter(
            GeneratorSpec(model, "transformers", settings), RayOptions(actors=actors, cpus_per_actor=threads)
        )
        texts = writer.write_profiles(genes, template=template, store=store)
    return time.perf_counter() - start, texts, writer.last_run


class _EmptyActor:
    """A Ray Data actor that does nothing: what a job costs before any library or model."""

    def __call__(self, batch):
        return batch


class _ImportingActor(_EmptyActor):
    """The same actor importing what a transformers writer needs (the local path paid this once, untimed)."""

    def __init__(self):
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401


_IMPORTS = "import torch; from transformers import AutoModelForCausalLM, AutoTokenizer"


def _one_row_job(ray, actor) -> float:
    started = time.perf_counter()
    dataset = ray.data.from_items([{"x": 1}], override_num_blocks=1).map_batches(
        actor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1
    )
    for _ in dataset.iter_batches(batch_size=None, prefetch_batches=0):
        pass
    return time.perf_counter() - started


def _fresh_python(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def _time_parts(ray) -> dict[str, float]:
    """Median seconds of 3 runs: a one-row Ray Data job (empty actor, importing actor), a fresh Python's imports."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    _one_row_job(ray, _EmptyActor)  # the first job starts Ray Data's own helpers: untimed
    timers = {
        "ray_data_job_empty_actor_s": lambda: _one_row_job(ray, _EmptyActor),
        "ray_data_job_importing_actor_s": lambda: _one_row_job(ray, _ImportingActor),
        "fresh_python_imports_s": lambda: _fresh_python(_IMPORTS),
    }
    return {name: round(statistics.median(timer() for _ in range(3)), 2) for name, timer in timers.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=16, help=f"number of genes (at most {len(GENES)})")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--template", default="concise")
    parser.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads of each writer (local and per actor)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also time where the Ray path's per-job seconds go (Ray Data alone, the actor's imports), 3 runs each",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import ray
    import torch

    from bioprofile.genes import normalize_genes
    from bioprofile.profiles.generate import GenerationSettings
    from bioprofile.profiles.prompts import get_template

    genes = normalize_genes(GENES[: args.genes]).genes
    template = get_template(args.template)
    settings = GenerationSettings(
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, threads=args.threads
    )
    with (
        tempfile.TemporaryDirectory() as work
    ):  # untimed: the driver's imports and the file cache, for both sides
        _local_run(
            genes[:1], template, replace(settings, max_new_tokens=1), args.model, Path(work) / "warm.sqlite"
        )
    load_start = os.getloadavg()
    started = time.perf_counter()
    ray.init(
        num_cpus=args.actors * args.threads,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    cluster_start = time.perf_counter() - started
    pairs = []
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            local_s, local_texts = _local_run(
                genes, template, settings, args.model, Path(work) / f"local{repeat}.sqlite"
            )
            ray_s, ray_texts, last_run = _ray_run(
                genes,
                template,
                settings,
                args.model,
                Path(work) / f"ray{repeat}.sqlite",
                args.actors,
                args.threads,
            )
            pairs.append(
                {
                    "local_s": round(local_s, 2),
                    "ray_s": round(ray_s, 2),
                    "overhead": round(ray_s / local_s - 1, 4),
                    "extra_s": round(ray_s - local_s, 2),
                    "identical_texts": sum(a == b for a, b in zip(local_texts, ray_texts, strict=True)),
                    "ray_actors": last_run["actors"],
                    "ray_failed": len(last_run["failed"]),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                }
            )
    parts = _time_parts(ray) if args.parts else None
    ray.shutdown()
    load_end = os.getloadavg()
    overhead = statistics.median(pair["overhead"] for pair in pairs)
    # The Ray path's extra cost is mostly per job (the actor process, its imports, Ray Data's start; both paths load
    # the model), not per prompt: the seconds say from what job size the relative overhead is under the target.
    extra = statistics.median(pair["extra_s"] for pair in pairs)
    break_even_s = 10 * extra  # the job length at which the extra seconds are 10 %
    with_start = (pairs[0]["ray_s"] + cluster_start) / pairs[0]["local_s"] - 1

    print(
        f"{len(genes)} genes x {args.max_new_tokens} new tokens, batch {args.batch_size}, {args.threads} thread(s); "
        f"Ray: {args.actors} actor(s) on a local cluster; torch {torch.__version__}, ray {ray.__version__}"
    )
    print(
        f"{'run':>4}{'local s':>10}{'ray s':>10}{'extra s':>9}{'overhead':>10}{'same texts':>12}{'load':>7}"
    )
    for number, pair in enumerate(pairs, 1):
        print(
            f"{number:>4}{pair['local_s']:>10.2f}{pair['ray_s']:>10.2f}{pair['extra_s']:>9.2f}{pair['overhead']:>+10.1%}"
            f"{pair['identical_texts']:>8}/{len(genes):<3}{pair['load_average_1min']:>7.1f}"
        )
    print(
        f"median overhead {overhead:+.1%} (target <= +10%), {extra:.1f} s more per job (at or under 10% from jobs of "
        f"{break_even_s:.0f} s); cluster start {cluster_start:.1f} s, paid once per "
        f"cluster (run 1 with it: {with_start:+.1%}); load average {load_start[0]:.1f} -> {load_end[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    if parts is not None:
        print(
            f"per job: Ray Data with an empty actor {parts['ray_data_job_empty_actor_s']:.1f} s, with an actor "
            f"importing torch + transformers {parts['ray_data_job_importing_actor_s']:.1f} s; a fresh Python "
            f"importing them {parts['fresh_python_imports_s']:.1f} s"
        )
    result = {
        "benchmark": "ray_overhead",
        "genes": [gene.symbol for gene in genes],
        "model": args.model or "bundled SmolLM2-135M-Instruct",
        "template": template.name,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads,
        "actors": args.actors,
        "runs": pairs,
        "median_overhead": round(overhead, 4),
        "median_extra_s": round(extra, 2),
        "job_seconds_for_10_percent": round(break_even_s, 1),
        "cluster_start_s": round(cluster_start, 2),
        "parts": parts,
        "first_run_overhead_with_cluster_start": round(with_start, 4),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1min_start_end": [round(load_start[0], 2), round(load_end[0], 2)],
        "torch": torch.__version__,
        "ray": ray.__version__,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
