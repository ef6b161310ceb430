"""The foundation benchmark: batched vs one-at-a-time generation, and a cold vs a warm `embed-genes` run.

Both parts run in one process, one after the other, on the default models (SmolLM2-135M-Instruct writes,
all-MiniLM-L6-v2 embeds), so their ratios are measured under the same machine load.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_genes.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_genes.py --genes 16 --max-new-tokens 64   # quicker

Targets: batched generation at least 3x the tokens/s of one-at-a-time at batch 16; a warm `embed-genes` (every
profile and vector cached) at least 20x faster than a cold one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "embed_genes.json"
CLI_GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC"]


def time_cli(args: list[str]) -> float:
    """Wall seconds of one `bioprofile` command in a fresh process (imports and model loading included)."""
    command = [str(Path(sys.executable).parent / "bioprofile"), *args]
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def cold_vs_warm() -> dict:
    """`embed-genes` on five genes with every CLI default (the README's main job), cold and then warm.

    First into an empty store, then again with everything cached.
    """
    from bioprofile.profiles.models import default_generator_path

    default_generator_path()  # the one-time GGUF -> dense conversion is set-up, not part of a cold run
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "genes.parquet"
        args = ["embed-genes", *CLI_GENES, "-o", str(out), "--cache-dir", tmp, "--quiet"]
        cold = time_cli(args)
        warm = time_cli([*args, "--force"])
    return {
        "genes": CLI_GENES,
        "cli_defaults": True,
        "cold_seconds": round(cold, 2),
        "warm_seconds": round(warm, 2),
        "speedup": round(cold / warm, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=32, help="genes in the throughput part")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128, help="throughput part only")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import generation_throughput

    with tempfile.TemporaryDirectory() as tmp:
        throughput = generation_throughput.main(
            [
                "--genes",
                str(args.genes),
                "--batch-size",
                str(args.batch_size),
                "--max-new-tokens",
                str(args.max_new_tokens),
                "--output",
                str(Path(tmp) / "throughput.json"),
            ]
        )
    cache = cold_vs_warm()

    print()
    print(f"{'':34}{'value':>10}{'target':>10}")
    print(
        f"{'generation speed-up, batch ' + str(args.batch_size):34}{throughput['speedup_tokens_per_second']:>9.2f}x"
        f"{'>= 3x':>10}"
    )
    print(f"{'embed-genes cold (s)':34}{cache['cold_seconds']:>10}")
    print(f"{'embed-genes warm (s)':34}{cache['warm_seconds']:>10}")
    print(f"{'embed-genes cold / warm':34}{cache['speedup']:>9.1f}x{'>= 20x':>10}")

    result = {"benchmark": "embed_genes", "generation_throughput": throughput, "cold_vs_warm": cache}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
