"""embed-genes --summaries with texts for some genes: one warning line (counts, first names); --strict refuses."""

from __future__ import annotations

from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CD4", "CD8A"]


def _run(tmp_path, tiny_bert_dir, *extra: str):
    summaries = tmp_path / "summaries.tsv"
    summaries.write_text("symbol\ttext\nTP53\tbinds DNA\nEGFR\ta receptor\n", encoding="utf-8")
    args = ["embed-genes", *GENES, "--summaries", str(summaries), "--encoder", str(tiny_bert_dir)]
    args += ["--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out.parquet"), *extra]
    return CliRunner().invoke(app, args)


def test_genes_without_a_text_are_said_on_stderr(tmp_path, tiny_bert_dir):
    result = _run(tmp_path, tiny_bert_dir, "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "warning: 5 of 7 resolved genes have no text in summaries.tsv (first: BRCA1, KRAS, MYC, CD4, CD8A): "
        "left out (--strict refuses instead)"
    )
    table = GeneEmbeddings.read(tmp_path / "out.parquet")
    assert table.symbols == ["TP53", "EGFR"]
    assert table.provenance["genes_without_text"] == ["BRCA1", "KRAS", "MYC", "CD4", "CD8A"]


def test_strict_refuses_in_one_line(tmp_path, tiny_bert_dir):
    result = _run(tmp_path, tiny_bert_dir, "--strict")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: 5 of 7 genes have no text in summaries.tsv (first: BRCA1, KRAS, MYC, CD4, CD8A): add their "
        "texts, or drop --strict to embed the other 2"
    ]
    assert not (tmp_path / "out.parquet").exists()
