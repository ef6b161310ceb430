"""Progress bars: on stderr without -q, absent with -q, never on stdout; third-party bars off; shell completion."""

from __future__ import annotations

import json
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.progress import progress_bars, working

BAR = "━"  # rich draws its bars with this character (and its tables' header rules)


def _bars(text: str) -> list[str]:
    """The lines of ``text`` that are progress bars: the bar character and an elapsed time or a count."""
    return [line for line in text.splitlines() if re.search(rf"{BAR}.*(\d+/\d+|\d:\d\d:\d\d)", line)]


def _invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_library_bars_write_to_stderr_only(capsys):
    with progress_bars() as progress:
        task = progress.add_task("counting", total=3)
        for _ in range(3):
            progress.advance(task)
    with working("thinking"):
        pass
    with progress_bars(enabled=False) as nothing, working("silent", enabled=False):
        assert nothing is None
    out, err = capsys.readouterr()
    assert out == ""
    assert "counting" in err and "3/3" in err and "thinking" in err and BAR in err and "silent" not in err
    # A failed block leaves no bar behind: the error is the one line a user sees.
    for bars in (working("failing"), progress_bars()):
        with pytest.raises(ValueError), bars:
            raise ValueError("boom")
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == ""


@pytest.fixture
def summaries_table(tmp_path, tiny_bert_dir):
    """A gene table from --summaries (no model needed), and the arguments that made it."""
    summaries = tmp_path / "summaries.txt"
    summaries.write_text("TP53: guards the genome.\nEGFR: a receptor kinase.\nCD3E: a T cell marker.\n")
    return ["embed-genes", "TP53", "EGFR", "CD3E", "--summaries", str(summaries), "-e", f"hf:{tiny_bert_dir}"]


def test_embed_genes_bar_on_stderr_not_stdout(summaries_table, tmp_path):
    shown = _invoke(
        [*summaries_table, "-o", str(tmp_path / "a.parquet"), "--cache-dir", str(tmp_path / "c1")]
    )
    assert any("encoding" in line for line in _bars(shown.stderr))
    assert not _bars(shown.stdout) and "encoding" not in shown.stdout and "wrote 3 genes" in shown.stdout
    assert "Loading weights" not in shown.stderr and "it/s" not in shown.stderr  # no third-party (tqdm) bar
    quiet = _invoke(
        [*summaries_table, "-o", str(tmp_path / "b.parquet"), "--cache-dir", str(tmp_path / "c2"), "-q"]
    )
    assert quiet.stderr == "" and quiet.stdout == ""


def test_embed_cells_and_clustering_bars(summaries_table, tmp_path):
    genes = tmp_path / "genes.parquet"
    _invoke([*summaries_table, "-o", str(genes), "--cache-dir", str(tmp_path), "-q"])
    rng = np.random.default_rng(0)
    cells = ad.AnnData(
        X=rng.poisson(2.0, size=(40, 3)).astype(np.float32),
        obs=pd.DataFrame({"cell_type": ["a", "b"] * 20}, index=[f"c{i}" for i in range(40)]),
        var=pd.DataFrame(index=["TP53", "EGFR", "CD3E"]),
    )
    cells.write_h5ad(tmp_path / "cells.h5ad")
    args = ["embed-cells", str(tmp_path / "cells.h5ad"), "-e", str(genes)]
    shown = _invoke([*args, "-o", str(tmp_path / "out1.h5ad")])
    assert any("embedding the cells of cells.h5ad" in line for line in _bars(shown.stderr))
    assert not _bars(shown.stdout)
    quiet = _invoke([*args, "-o", str(tmp_path / "out2.h5ad"), "-q"])
    assert "embedding the cells" not in quiet.stderr and not _bars(quiet.stderr)
    bench = ["bench", "clustering", str(tmp_path / "out1.h5ad"), "--label-key", "cell_type", "--no-pca"]
    shown = _invoke([*bench, "-o", str(tmp_path / "clu1")])
    assert any("scoring clustering of 40 cells" in line for line in _bars(shown.stderr))
    assert not _bars(shown.stdout)
    quiet = _invoke([*bench, "-o", str(tmp_path / "clu2"), "-q"])
    assert "scoring clustering" not in quiet.stderr


def test_train_bar_on_stderr_and_no_log_lines_on_stdout(tiny_llama_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    record = {
        "messages": [{"role": "user", "content": "gene A?"}, {"role": "assistant", "content": "a kinase."}]
    }
    data.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_llama_dir}\ntrain_file: {data}\nlora: null\nper_device_train_batch_size: 2\nmax_steps: 2\n"
        "logging_steps: 1\nloss_method: sft\n"
    )
    shown = _invoke(["train", str(config), "-o", str(tmp_path / "a")])
    assert any("training (loss" in line and "2/2" in line for line in _bars(shown.stderr))
    assert shown.stdout.strip() == f"wrote {tmp_path / 'a'}"  # no log dicts, no bar
    quiet = _invoke(["train", str(config), "-o", str(tmp_path / "b"), "-q"])
    assert "training" not in quiet.stderr and not _bars(quiet.stderr)
    assert quiet.stdout.strip() == f"wrote {tmp_path / 'b'}"


@pytest.mark.parametrize(
    "command",
    [
        ["embed-genes"],
        ["embed-proteins"],
        ["embed-cells"],
        ["train"],
        ["data", "fetch"],
        ["diagnose", "windows"],
        ["diagnose", "weights"],
        ["bench", "gene-tasks"],
        ["bench", "gene-sets"],
        ["bench", "clustering"],
        ["bench", "integration"],
    ],
)
def test_every_long_command_takes_quiet(command):
    import typer.main

    group = typer.main.get_command(app)
    for name in command:
        group = group.commands[name]
    (quiet,) = [param for param in group.params if param.name == "quiet"]
    assert set(quiet.opts) == {"--quiet", "-q"}


def test_shell_completion_is_offered():
    result = CliRunner().invoke(app, ["--help"])
    assert (
        result.exit_code == 0
        and "--install-completion" in result.output
        and "--show-completion" in result.output
    )
