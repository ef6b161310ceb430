"""embed_genes and the embed-genes command, end to end on tiny random models (real code paths, seconds)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC"]


@pytest.fixture
def tiny_args(tiny_llama_dir, tiny_bert_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    return [
        "--model",
        str(tiny_llama_dir),
        "--encoder",
        f"hf:{tiny_bert_dir}",
        "--cache-dir",
        str(cache),
        "--max-new-tokens",
        "12",
        "--quiet",
    ]


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_embed_genes_python_api(tiny_llama_dir, tiny_bert_dir, tmp_path):
    from bioprofile import embed_genes
    from bioprofile.encoders import get_encoder
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.store import Store

    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_genes(
            GENES + ["ENSG00000141510", "not-a-gene"],  # TP53 again by Ensembl id, and an unknown id
            generator=TransformersGenerator(tiny_llama_dir, max_new_tokens=12),
            encoder=get_encoder(f"hf:{tiny_bert_dir}"),
            store=store,
        )
    assert emb.symbols == GENES
    assert all(i.startswith("HGNC:") for i in emb.ids)
    assert all(isinstance(t, str) and t for t in emb.texts)
    assert np.isfinite(emb.vectors).all()
    assert len({v.tobytes() for v in emb.vectors}) == len(GENES), "vectors must be distinct"
    assert emb.provenance["unknown_ids"] == ["not-a-gene"]
    assert emb.provenance["template"].startswith("concise@")


def test_cli_writes_output_and_second_run_is_cached(tmp_path, tiny_args):
    out = tmp_path / "genes.parquet"
    first = run_cli("embed-genes", *GENES, "-o", str(out), *tiny_args)
    assert first.exit_code == 0, first.output
    emb = GeneEmbeddings.read(out)
    assert emb.symbols == GENES and emb.vectors.shape[0] == 5

    store = Path(tiny_args[tiny_args.index("--cache-dir") + 1]) / "store.sqlite"
    with sqlite3.connect(store) as conn:
        rows_before = conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    second = run_cli("embed-genes", *GENES, "-o", str(out), "--force", *tiny_args)
    assert second.exit_code == 0, second.output
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0] == rows_before == 5
    again = GeneEmbeddings.read(out)
    assert again.texts == emb.texts
    np.testing.assert_array_equal(again.vectors, emb.vectors)


@pytest.mark.parametrize("fmt", ["npz", "h5ad", "pt"])
def test_cli_formats(tmp_path, tiny_args, fmt):
    out = tmp_path / f"genes.{fmt}"
    result = run_cli("embed-genes", "TP53", "MYC", "-o", str(out), *tiny_args)
    assert result.exit_code == 0, result.output
    assert GeneEmbeddings.read(out).symbols == ["TP53", "MYC"]


def test_cli_bad_input_one_line_exit_2(tmp_path, tiny_args):
    existing = tmp_path / "existing.parquet"
    existing.write_bytes(b"keep me")
    not_a_model = tmp_path / "empty-dir"
    not_a_model.mkdir()
    cases = {
        "no genes": (["embed-genes", "-o", str(tmp_path / "a.parquet")], "no genes"),
        "only unknown": (
            ["embed-genes", "NOTAGENE1", "NOTAGENE2", "-o", str(tmp_path / "b.parquet")],
            "not found",
        ),
        "unreadable file": (
            ["embed-genes", "-f", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "c.parquet")],
            "missing.txt",
        ),
        "missing output dir": (
            ["embed-genes", "TP53", "-o", str(tmp_path / "nope" / "d.parquet")],
            "does not exist",
        ),
        "existing output": (["embed-genes", "TP53", "-o", str(existing)], "--force"),
        "not a model": (
            ["embed-genes", "TP53", "-o", str(tmp_path / "e.parquet"), "--model", str(not_a_model)],
            "not a model",
        ),
        "unknown backend": (
            ["embed-genes", "TP53", "-o", str(tmp_path / "f.parquet"), "--backend", "onnx"],
            "unknown backend",
        ),
    }
    for name, (args, needle) in cases.items():
        if name != "not a model":
            args = args + tiny_args
        else:
            args = args + [a for a in tiny_args if a not in ("--model", tiny_args[1])]
        result = run_cli(*args)
        assert result.exit_code == 2, (name, result.output)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], (name, result.stderr)
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "e.parquet").exists()


def _profile_rows(store: Path) -> int:
    try:
        with sqlite3.connect(store, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_midway_then_rerun_gives_identical_output(
    tmp_path, tiny_llama_dir, tiny_bert_dir, shared_data
):
    import pandas as pd

    table = pd.read_csv(shared_data / "genept" / "dosage_sens_tf_labels.csv")
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(table["gene_name"].head(100)) + "\n")

    def command(cache: Path, out: Path) -> list[str]:
        return [
            str(Path(sys.executable).parent / "bioprofile"),
            "embed-genes",
            "-f",
            str(genes_file),
            "-o",
            str(out),
            "--model",
            str(tiny_llama_dir),
            "--encoder",
            f"hf:{tiny_bert_dir}",
            "--cache-dir",
            str(cache),
            "--batch-size",
            "8",
            "--max-new-tokens",
            "24",
            "--quiet",
        ]

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    clean_cache, killed_cache = tmp_path / "clean", tmp_path / "killed"
    clean_cache.mkdir(), killed_cache.mkdir()
    subprocess.run(command(clean_cache, tmp_path / "clean.parquet"), check=True, env=env, timeout=600)
    n_genes = _profile_rows(clean_cache / "store.sqlite")
    assert n_genes >= 95

    proc = subprocess.Popen(command(killed_cache, tmp_path / "killed.parquet"), env=env)
    deadline = time.time() + 300
    while (
        _profile_rows(killed_cache / "store.sqlite") < 16 and time.time() < deadline and proc.poll() is None
    ):
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make the test workload bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _profile_rows(killed_cache / "store.sqlite")
    assert 0 < partial < n_genes
    assert not (tmp_path / "killed.parquet").exists()

    subprocess.run(command(killed_cache, tmp_path / "killed.parquet"), check=True, env=env, timeout=600)
    assert _profile_rows(killed_cache / "store.sqlite") == n_genes  # nothing lost, nothing duplicated
    clean, resumed = (
        GeneEmbeddings.read(tmp_path / "clean.parquet"),
        GeneEmbeddings.read(tmp_path / "killed.parquet"),
    )
    assert resumed.symbols == clean.symbols and resumed.texts == clean.texts
    np.testing.assert_array_equal(resumed.vectors, clean.vectors)
    assert (tmp_path / "killed.parquet").read_bytes() == (tmp_path / "clean.parquet").read_bytes()


@pytest.mark.slow
def test_default_models_end_to_end(tmp_path):
    """The real default generator and encoder on five genes; the second run comes from the cache."""
    cache = tmp_path / "cache"
    cache.mkdir()
    out = tmp_path / "genes.parquet"
    args = [
        "embed-genes",
        *GENES,
        "-o",
        str(out),
        "--cache-dir",
        str(cache),
        "--max-new-tokens",
        "64",
        "--quiet",
    ]
    start = time.perf_counter()
    assert run_cli(*args).exit_code == 0
    cold = time.perf_counter() - start
    emb = GeneEmbeddings.read(out)
    assert emb.symbols == GENES and emb.dim == 384
    assert np.isfinite(emb.vectors).all() and len({v.tobytes() for v in emb.vectors}) == 5
    assert all(len(t.split()) >= 5 for t in emb.texts), emb.texts
    assert emb.provenance["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    start = time.perf_counter()
    assert run_cli(*args, "--force").exit_code == 0
    warm = time.perf_counter() - start
    np.testing.assert_array_equal(GeneEmbeddings.read(out).vectors, emb.vectors)
    assert warm < cold  # the 20x target is measured in benchmarks/embed_cold_warm.py, not asserted here
