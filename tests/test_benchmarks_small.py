"""Every script in ``benchmarks/`` runs at its smallest size: it exits 0, prints its table and writes its JSON.

Each runs as a user would run it (``python benchmarks/NAME.py ...``), from a scratch folder, with its outputs, work
folders and the bioprofile cache under ``tmp_path``: a test never writes into ``benchmarks/results/`` (checked).
The sizes are the smallest each script accepts that still runs every part it has; the numbers are meaningless at
these sizes, only that the script works is tested. Scripts that load the real default models or real data are
``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SHARED_DATA

from bioprofile.cache import cache_dir

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"

# reproduce.py runs its whole chain at a tiny size in tests/test_reproduce.py (tiny in-process models, resume
# checked), also under the bench_smoke marker; its two helpers (held_out_gene_sets.py reads a reproduce run folder,
# gene_sets_compare.py two bench gene-sets results) are run through their main() there too.
NOT_HERE = {"reproduce.py", "held_out_gene_sets.py", "gene_sets_compare.py"}

# name -> (arguments, JSON files it writes relative to tmp_path, needs shared data, printed marker)
SMALLEST: dict[str, tuple[list[str], list[str], bool, str]] = {
    "citeseq_fixture.py": (
        ["--cells", "50", "--rna", "out/rna.h5ad", "--adt", "out/adt.h5ad"], [], False, "wrote out/adt.h5ad",
    ),
    "integration_scale.py": (
        ["--cells", "100", "--types", "3", "--dim", "8", "--repeats", "1", "--skip-pynndescent",
         "-o", "out/integration_scale.json"],
        ["out/integration_scale.json"], False, "repeat",
    ),
    "perturbation_state.py": (
        ["--seeds", "0", "--max-steps", "2", "--groups", "3", "--genes-per-group", "4", "--test-per-group", "1",
         "--cells", "4", "--output", "out/perturbation_state"],
        ["out/perturbation_state.json"], True, "control-mean",
    ),
    "train_step.py": (
        ["--batch", "1", "--seq", "32", "--prompt", "4", "--vocab", "256", "--hidden", "16", "--layers", "1",
         "--chunk-size", "16", "--warmup", "0", "--steps", "1", "--threads", "1", "--output", "out/train_step.json"],
        ["out/train_step.json"], False, "bft",
    ),
    "cells_scale.py": (
        ["--cells", "100", "--genes", "200", "--nnz", "10", "--dim", "8", "--chunk", "50", "--workdir", "work",
         "--out", "out/cells_scale.json"],
        ["out/cells_scale.json"], False, "same_result",
    ),
    "generation_throughput.py": (
        ["--genes", "2", "--batch-size", "2", "--max-new-tokens", "4", "--output", "out/generation.json"],
        ["out/generation.json"], False, "tokens / s",
    ),
    "embed_genes.py": (
        ["--genes", "2", "--batch-size", "2", "--max-new-tokens", "4", "--output", "out/embed_genes.json"],
        ["out/embed_genes.json"], False, "tokens / s",
    ),
    "vllm_throughput.py": (
        ["--genes", "2", "--batch-size", "2", "--max-new-tokens", "4", "--repeats", "1", "--transformers",
         "--output", "out/vllm.json"],
        ["out/vllm.json"], False, "tokens / s",
    ),
    "cost_sheet.py": (
        ["--genes", "100", "--openai-requests", "4", "--output", "out/cost_sheet.json"],
        ["out/cost_sheet.json"], False, "OpenAI Batch API",
    ),
    "finetune_refseq.py": (
        ["--methods", "sft", "bft", "--steps", "1", "--batch-size", "1", "--eval-batch-size", "2",
         "--train-genes", "2", "--eval-genes", "2", "--max-length", "256", "--work-dir", "work",
         "--out", "out/finetune_refseq.json"],
        ["out/finetune_refseq.json"], True, "bft",
    ),
    "gene_tasks_refseq.py": (
        ["--max-genes", "20", "--max-generated", "10", "--max-new-tokens", "4", "--batch-size", "10",
         "--work-dir", "work", "--out-dir", "out"],
        ["out/gene_tasks_refseq.json"], True, "dosage",
    ),
    "dosage_baselines.py": (
        ["--max-new-tokens", "1", "--max-genes", "40", "--store", "work/store.sqlite", "--out-dir", "out"],
        ["out/dosage_baselines.json"], True, "symbol-only",
    ),
    "ray_overhead.py": (
        ["--genes", "2", "--max-new-tokens", "4", "--repeats", "1", "--parts", "--output", "out/ray_overhead.json"],
        ["out/ray_overhead.json"], False, "a fresh Python importing",
    ),
    "shards_overhead.py": (
        ["--genes", "6", "--max-new-tokens", "4", "--repeats", "1", "--process-starts", "1",
         "--output", "out/shards_overhead.json"],
        ["out/shards_overhead.json"], False, "median overhead",
    ),
    "grpo_compare.py": (
        ["--starts", "base", "--grpo-steps", "1", "--num-generations", "2", "--max-completion-length", "4",
         "--eval-questions", "4", "--eval-tokens", "4", "--drugs", "2", "--cell-lines", "C32", "HOP62",
         "--cells-per-group", "10", "--negatives", "5", "--work-dir", "work", "--out", "out/grpo_compare.json"],
        ["out/grpo_compare.json"], True, "held-out drugs",
    ),
    "pbmc_cells.py": (
        ["--generated", "4", "--max-new-tokens", "4", "--store", "work/store.sqlite", "--out", "out/pbmc"],
        ["out/pbmc/pbmc_cells.json"], True, "GenePT-s",
    ),
}  # fmt: skip

# dosage_baselines.py has no size option: its smallest run still writes (one token each) for all 490 TFs.
TIMEOUT_S: dict[str, int] = {}


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


def test_every_benchmark_script_has_its_smallest_run_here():
    scripts = {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")} - NOT_HERE
    assert scripts == set(SMALLEST)


# Outside the suite's 15 minutes (addopts deselect the marker): `make bench-smoke`, which CI runs after the suite.
@pytest.mark.slow
@pytest.mark.bench_smoke
@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_benchmark_runs_at_its_smallest_size(name, tmp_path):
    arguments, outputs, needs_data, marker = SMALLEST[name]
    if needs_data and not SHARED_DATA.is_dir():
        pytest.skip(f"{name} reads the real data: not found at {SHARED_DATA}")
    if name == "vllm_throughput.py" and importlib.util.find_spec("vllm") is None:
        pytest.skip(
            "vllm_throughput.py needs the [vllm] extra (make install-vllm): vllm is not installed here"
        )
    (tmp_path / "out").mkdir()
    # the converted default model is shared: converting it again for each script would cost minutes
    models = cache_dir() / "models"
    if models.is_dir():
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "models").symlink_to(models, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOPROFILE_")}
    env.update(
        BIOPROFILE_CACHE_DIR=str(tmp_path / "cache"),
        BIOPROFILE_SHARED_DATA=str(SHARED_DATA),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=str(ROOT),
        MPLBACKEND="Agg",
    )
    before = _snapshot(RESULTS)
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S.get(name, 900),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert marker in result.stdout, result.stdout[-3000:]
    for output in outputs:
        assert json.loads((tmp_path / output).read_text()), output
    assert _snapshot(RESULTS) == before, "a benchmark run from a test wrote into benchmarks/results/"
