"""The model you train is the model you serve: `embed-genes --model OUT` asks what `bioprofile train` taught."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.profiles.models import TRAIN_RECORD_FILE
from bioprofile.profiles.prompts import get_template

SYNOPSES = (
    "TP53: Tumor protein p53 binds DNA and activates genes that arrest the cell cycle.\n"
    "BRCA1: Breast cancer type 1 susceptibility protein repairs double-strand breaks.\n"
    "EGFR: Epidermal growth factor receptor is a receptor tyrosine kinase.\n"
)


@pytest.mark.parametrize(
    ("template", "lora", "merge"),
    [("genept", "null", True), ("concise", "{r: 4, lora_alpha: 8}", True), ("genept", "{r: 4}", False)],
    ids=["full", "merged-lora", "adapter"],
)
def test_embed_genes_uses_the_template_a_trained_model_learned(
    tiny_llama_dir, tmp_path, template, lora, merge
):
    synopses = tmp_path / "synopses.txt"
    synopses.write_text(SYNOPSES)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_llama_dir}\nrefseq_file: {synopses}\ntemplate: {template}\nlora: {lora}\n"
        "max_steps: 1\nper_device_train_batch_size: 2\nmax_length: 1024\nloss_method: bft\n"
        f"merge_adapter: {str(merge).lower()}\n"
    )
    runner = CliRunner()
    trained = tmp_path / "trained"
    result = runner.invoke(app, ["train", str(config), "-o", str(trained)])
    assert result.exit_code == 0, result.output
    record = json.loads((trained / TRAIN_RECORD_FILE).read_text())
    assert record["template"] == template and record["template_key"] == get_template(template).key

    out = tmp_path / "genes.parquet"
    args = ["embed-genes", "TP53", "--model", str(trained), "--max-new-tokens", "4", "-o", str(out), "-q"]
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")])  # no --template given
    assert result.exit_code == 0, result.output
    provenance = GeneEmbeddings.read(out).provenance
    assert provenance["template"] == get_template(template).key
    assert provenance["template_source"] == "model"
