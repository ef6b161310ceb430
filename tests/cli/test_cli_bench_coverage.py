"""bench gene-tasks on a table covering a fraction of a task's genes says the coverage beside every score."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.genes import hgnc_symbols


def test_summary_lines_say_the_coverage(tmp_path):
    symbols = sorted(s for s in hgnc_symbols() if s.isalnum() and s.isupper())[2000:2120]
    labels = np.arange(len(symbols)) % 2
    covered = symbols[:40]  # a third of the labelled genes, as a --summaries table of a few genes would be
    rng = np.random.default_rng(0)
    GeneEmbeddings(covered, covered, [""] * 40, rng.normal(size=(40, 8))).write(tmp_path / "few.parquet")
    (tmp_path / "toy.csv").write_text(
        "gene,label\n" + "".join(f"{g},{y}\n" for g, y in zip(symbols, labels, strict=True))
    )
    result = CliRunner().invoke(
        app,
        ["bench", "gene-tasks", "-e", str(tmp_path / "few.parquet"), "--labels", str(tmp_path / "toy.csv")]
        + ["--models", "logreg", "--no-random", "-q", "-o", str(tmp_path / "out")],
    )
    assert result.exit_code == 0, result.output
    header, _, row = result.stdout.splitlines()[:3]
    assert "ROC-AUC" in header and "coverage" in header
    assert "| 40/120 (33.3%) |" in row  # next to the score, on stdout, not only in the JSON
