"""Files that are not what they claim, and text that should not reach a terminal: one line each, nothing run.

Through the CLI: a truncated or foreign ``.h5ad``, a binary gene-set file, CSV fields over Python's 128 kB default,
a model folder with a damaged ``config.json``, weights that would run code when unpickled, a chat template Jinja's
sandbox stops, and ANSI/OSC escapes or rich markup in ids and texts.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.display import terminal_safe
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.readers import read_h5ad

ESCAPE = "\x1b]0;owned\x07\x1b[31m"


def _one_line(result, needle: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    return lines[0]


@pytest.fixture
def embeddings(tmp_path) -> Path:
    path = tmp_path / "genes.parquet"
    GeneEmbeddings(
        ids=["HGNC:11998", "HGNC:1100"],
        symbols=["TP53", "BRCA1"],
        texts=["a", "b"],
        vectors=np.eye(2, 4, dtype=np.float32),
        provenance={"kind": "gene"},
    ).write(path)
    return path


@pytest.fixture
def bad_h5ads(tmp_path) -> dict[str, Path]:
    real = tmp_path / "real.h5ad"
    obs = pd.DataFrame({"pert": ["TP53", "control"] * 20}, index=[f"c{i}" for i in range(40)])
    ad.AnnData(np.ones((40, 5), dtype=np.float32), obs=obs).write_h5ad(real)
    truncated = tmp_path / "truncated.h5ad"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 3])
    foreign = tmp_path / "foreign.h5ad"
    foreign.write_text("pert,cell\nTP53,c1\n")
    return {"truncated": truncated, "foreign": foreign}


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_export_state_on_a_damaged_h5ad(kind, bad_h5ads, embeddings, tmp_path):
    out = tmp_path / "pert.pt"
    result = CliRunner().invoke(
        app,
        ["export-state", "-e", str(embeddings), "--adata", str(bad_h5ads[kind]), "--pert-col", "pert"]
        + ["--control", "control", "-o", str(out)],
    )
    _one_line(result, "not a readable .h5ad")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_bench_perturbation_on_a_damaged_h5ad(kind, bad_h5ads, embeddings, tmp_path):
    result = CliRunner().invoke(
        app,
        ["bench", "perturbation", str(bad_h5ads[kind]), "-e", str(embeddings), "--pert-col", "pert"]
        + ["--control", "control", "-o", str(tmp_path / "bench")],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: "), result.stderr


def test_the_h5ad_reader_names_the_file_and_argument(bad_h5ads):
    with pytest.raises(Exception, match="truncated.h5ad: it is not a readable .h5ad") as err:
        read_h5ad(bad_h5ads["truncated"], argument="adata")
    assert err.value.argument == "adata"


def test_a_binary_gene_set_file_is_one_line(tmp_path):
    path = tmp_path / "sets.csv"
    path.write_bytes(bytes(range(256)) * 50)
    result = CliRunner().invoke(app, ["bench", "gene-sets", str(path), "-o", str(tmp_path / "gs")])
    _one_line(result, "cannot read gene-set file")


def test_csv_fields_over_128_kb_are_read(tmp_path):
    big = "x" * 200_000
    genes = tmp_path / "genes.csv"
    genes.write_text(f"symbol,note\nTP53,{big}\n")
    summaries = tmp_path / "summaries.tsv"
    summaries.write_text(f"symbol\tsummary\nTP53\tGuardian {big[:150_000]}\n")
    result = CliRunner().invoke(
        app,
        [
            "embed-genes",
            "--genes-file",
            str(genes),
            "--summaries",
            str(summaries),
            "-o",
            str(tmp_path / "g.parquet"),
        ]
        + ["--cache-dir", str(tmp_path), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert GeneEmbeddings.read(tmp_path / "g.parquet").symbols == ["TP53"]
    targets = tmp_path / "targets.csv"
    targets.write_text(f"target,note\nCD3,{big}\n")
    from bioprofile.proteins import read_target_list

    assert read_target_list(targets) == ["CD3"]
    sets = tmp_path / "sets.csv"
    sets.write_text(f"GO,Genes,Term_Description\nGO:1,TP53 MDM2,{big}\n")
    from bioprofile.evaluate.gene_sets import read_gene_sets

    assert len(read_gene_sets(sets)) == 1


@pytest.fixture
def model_copy(tiny_llama_dir, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, folder)
    return folder


def _embed_with(model: Path, tmp_path: Path):
    return CliRunner().invoke(
        app,
        [
            "embed-genes",
            "TP53",
            "--model",
            str(model),
            "-o",
            str(tmp_path / "g.parquet"),
            "--max-new-tokens",
            "2",
        ]
        + ["--cache-dir", str(tmp_path), "--quiet"],
    )


def test_a_damaged_config_json_is_one_line(model_copy, tmp_path):
    (model_copy / "config.json").write_text("{not json")
    _one_line(_embed_with(model_copy, tmp_path), "config.json is damaged")


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_weights_that_would_run_code_are_refused_in_one_line(model_copy, tmp_path):
    marker = tmp_path / "code-ran"
    for weights in model_copy.glob("*.safetensors"):
        weights.unlink()
    (model_copy / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": _RunsCode(marker)}))
    result = _embed_with(model_copy, tmp_path)
    _one_line(result, "cannot load the model")
    assert not marker.exists()


def test_a_chat_template_the_sandbox_stops_is_one_line(model_copy, tmp_path):
    config_path = model_copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    config_path.write_text(json.dumps(config))
    (model_copy / "chat_template.jinja").unlink(missing_ok=True)
    _one_line(_embed_with(model_copy, tmp_path), "chat template")


def test_escapes_and_markup_from_data_never_reach_the_terminal(tmp_path):
    summaries = tmp_path / "summaries.tsv"
    summaries.write_text(f"symbol\tsummary\nTP53\tGuardian [/bogus] {ESCAPE} text.\n")
    result = CliRunner().invoke(
        app,
        [
            "embed-genes",
            "TP53",
            f"NOTAGENE{ESCAPE}",
            "--summaries",
            str(summaries),
            "-o",
            str(tmp_path / "g.parquet"),
        ]
        + ["--cache-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "[/bogus]" in result.stdout  # shown as text, not read as markup
    assert "\\x1b" in result.output  # the escape shown as an escape


def test_terminal_safe_is_linear_and_keeps_plain_text():
    assert terminal_safe("TP53 guards") == "TP53 guards"
    assert terminal_safe("a\x1b[31mb") == "a\\x1b[31mb"
    assert len(terminal_safe("\x07" * 100_000)) == 400_000


def test_an_even_loss_window_is_refused_before_any_record_is_read(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text('{"prompt": "x", "response": "y"}\n')
    result = CliRunner().invoke(
        app,
        ["diagnose", "weights", str(records), "--loss-window", "8", "-o", str(tmp_path / "d"), "-m", "/none"],
    )
    _one_line(result, "loss window must be odd")
    assert not (tmp_path / "d").exists()
