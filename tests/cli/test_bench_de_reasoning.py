"""`bioprofile bench de-reasoning`: end to end with the tiny model, cached answers, and bad input."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.store import Store

C32 = "pert,gene,label,split\nMTOR inhibitor,RPS6,1,test\nMTOR inhibitor,ACTB,0,test\nEGFR inhibitor,DUSP6,1,train\n"
HOP62 = "pert,gene,label,split\nMTOR inhibitor,EIF4E,yes,test\nMTOR inhibitor,GAPDH,no,test\n"


@pytest.fixture
def record_files(tmp_path):
    paths = [tmp_path / "C32_DE.csv", tmp_path / "HOP62_DE.csv"]
    for path, text in zip(paths, (C32, HOP62), strict=True):
        path.write_text(text)
    return paths


def test_bench_de_reasoning_with_the_tiny_model(tmp_path, tiny_llama_dir, record_files):
    args = [
        "bench",
        "de-reasoning",
        *map(str, record_files),
        "--model",
        str(tiny_llama_dir),
        "--max-new-tokens",
        "4",
        "--cache-dir",
        str(tmp_path / "cache"),
        "-q",
    ]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "de")])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "de.json").read_text())
    assert payload["settings"]["records"] == [str(p) for p in record_files]
    assert payload["settings"]["split"] is None and payload["settings"]["seed"] == 0
    assert payload["settings"]["params"]["max_new_tokens"] == 4
    assert len(payload["records"]) == 5
    summary = {(row["cell_line"], row["method"]): row for row in payload["summary"]}
    model = tiny_llama_dir.name
    assert set(summary) == {
        (line, m) for line in ("C32", "HOP62", "all") for m in (model, "majority", "always-yes")
    }
    # four random tokens follow no answer rule: every answer is malformed, counted and scored wrong
    assert summary[("all", model)]["malformed_rate"] == 1.0 and summary[("all", model)]["accuracy"] == 0.0
    assert summary[("C32", "always-yes")]["accuracy"] == pytest.approx(2 / 3)
    assert summary[("HOP62", "majority")]["accuracy"] == pytest.approx(1 / 2)
    assert "95% CI (Wilson)" in result.output and "| all | always-yes |" in result.output
    with Store(tmp_path / "cache" / "store.sqlite") as store:
        stored = store.counts()["profiles"]
    assert stored >= 1  # non-empty replies are cached like profiles

    # --per-cell-line and --split narrow the questions; the replies come from the store
    again = runner.invoke(app, [*args, "--split", "test", "-o", str(tmp_path / "test_only")])
    assert again.exit_code == 0, again.output
    assert len(json.loads((tmp_path / "test_only.json").read_text())["records"]) == 4
    with Store(tmp_path / "cache" / "store.sqlite") as store:
        assert store.counts()["profiles"] == stored


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("pert,gene,split\nd,G,test\n", "lacks the column label"),
        ("pert,gene,label,split\nd,G,up,test\nd,H,0,test\n", "label 'up' is not yes/no or 1/0"),
        ("pert,gene,label,split\nd,G,1,test\nd,H,yes,test\n", r"one class only: C32 \(all yes\)"),
    ],
)
def test_bad_record_files_stop_before_any_model(tmp_path, text, message):
    path = tmp_path / "C32_DE.csv"
    path.write_text(text)
    # a model that cannot load: the record file is refused before it is tried
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "de-reasoning",
            str(path),
            "--model",
            str(tmp_path / "no-model"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.search(message, result.stderr), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C32_DE.csv"]  # nothing written, not even a store


def test_options_are_checked_in_flags(tmp_path, record_files):
    runner = CliRunner()
    base = ["bench", "de-reasoning", *map(str, record_files), "--cache-dir", str(tmp_path / "c")]
    split = runner.invoke(app, [*base, "--split", "validation", "-o", str(tmp_path / "o")])
    assert split.exit_code == 2 and "no records left in --split 'validation'" in split.stderr
    line = runner.invoke(app, [*base, "--cell-line", "A549", "-o", str(tmp_path / "o")])
    assert line.exit_code == 2 and "no records for cell line A549" in line.stderr
    template = runner.invoke(app, [*base, "--template", "nope", "-o", str(tmp_path / "o")])
    assert template.exit_code == 2 and "unknown DE-question prompt 'nope'" in template.stderr
    url = runner.invoke(app, [*base, "--base-url", "http://127.0.0.1:9/v1", "-o", str(tmp_path / "o")])
    assert url.exit_code == 2 and "--base-url is not an option of --backend transformers" in url.stderr
    missing = runner.invoke(app, [*base, "-o", str(tmp_path / "nowhere" / "o")])
    assert missing.exit_code == 2 and "output directory" in missing.stderr
    assert not (tmp_path / "c").exists()
