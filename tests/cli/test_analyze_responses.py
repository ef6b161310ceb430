"""`bioprofile analyze-responses`: response files, models asked the same prompts (the tiny model), bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.store import Store
from bioprofile.text import ner

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ANSWERS = (
    '{"model": "bft", "response": "KRAS G12C activates MAPK because of sotorasib."}\n'
    '{"model": "base", "response": "TP53 is a gene."}\n'
)


@pytest.fixture(autouse=True)
def _lexicon_only(monkeypatch):
    """No scispaCy model, wherever the tests run."""
    monkeypatch.setattr(ner, "default_ner_model", lambda: None)
    monkeypatch.setattr("bioprofile.evaluate.responses.default_ner_model", lambda: None)


def _outputs(prefix) -> list[str]:
    return sorted(p.name for p in prefix.parent.glob(prefix.name + ".*"))


def test_response_files_give_the_table_json_and_plot(tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text(ANSWERS)
    more = tmp_path / "more.jsonl"
    more.write_text('{"model": "base", "response": "EGFR T790M."}\n')
    prefix = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["analyze-responses", str(answers), str(more), "-o", str(prefix)])
    assert result.exit_code == 0, result.output
    assert "| bft | 1 | 7.000 |" in result.stdout  # the table is printed
    payload = json.loads((tmp_path / "out.json").read_text())
    rows = {row["model"]: row for row in payload["rows"]}
    assert rows["bft"]["drug_share"] == 1 and rows["bft"]["connectives"] == 2  # activates, because of
    assert rows["base"]["n_responses"] == 2 and rows["base"]["mutation_share"] == 0.5
    assert payload["settings"]["response_files"] == [str(answers), str(more)]
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "out.md").read_text().startswith("| model |")

    # an existing output is refused without --force, and left as it was
    before = (tmp_path / "out.json").read_bytes()
    again = runner.invoke(app, ["analyze-responses", str(answers), "-o", str(prefix)])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert (tmp_path / "out.json").read_bytes() == before
    forced = runner.invoke(app, ["analyze-responses", str(answers), "-o", str(prefix), "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "out.json").read_text())["settings"]["n_responses"] == 2


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("", [], "has no records"),
        ('{"model": "a"}\n', [], "line 1: has no 'response' field"),
        ('{"model": "a", "response": "x"}\n{"model": "a", "response": "y"\n', [], "line 2: not JSON"),
        (ANSWERS, ["--drugs", "MISSING"], "cannot read drug list"),
        (ANSWERS, ["--prompts", "PROMPTS", "--max-new-tokens", "4"], "--prompts needs --temperature"),
        (ANSWERS, ["--model", "m"], "--model needs --prompts"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, content, extra, message):
    answers = tmp_path / "answers.jsonl"
    answers.write_text(content)
    (tmp_path / "prompts.txt").write_text("What does TP53 do?\n")
    extra = [
        str(tmp_path / "none.txt")
        if a == "MISSING"
        else str(tmp_path / "prompts.txt")
        if a == "PROMPTS"
        else a
        for a in extra
    ]
    prefix = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze-responses", str(answers), *extra, "-o", str(prefix)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert _outputs(prefix) == []


def test_no_input_at_all_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["analyze-responses", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "give response files" in result.stderr
    assert _outputs(tmp_path / "out") == []


def test_models_asked_the_same_prompts_with_the_tiny_model(tmp_path, tiny_llama_dir):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Tell me about TP53.\nWhat does KRAS G12C do?\n")
    answers = tmp_path / "answers.jsonl"
    answers.write_text(ANSWERS)
    args = [
        "analyze-responses",
        str(answers),
        "--prompts",
        str(prompts),
        "--model",
        f"tiny={tiny_llama_dir}",
        "--temperature",
        "0",
        "--max-new-tokens",
        "6",
        "--cache-dir",
        str(tmp_path / "cache"),
        "-o",
        str(tmp_path / "out"),
    ]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "out.json").read_text())
    assert [row["model"] for row in payload["rows"]] == ["bft", "base", "tiny"]
    asked = [r for r in payload["responses"] if r["model"] == "tiny"]
    assert [r["prompt"] for r in asked] == ["Tell me about TP53.", "What does KRAS G12C do?"]
    generation = payload["settings"]["generation"]["tiny"]
    assert generation["params"]["max_new_tokens"] == 6 and generation["params"]["do_sample"] is False
    with Store(tmp_path / "cache" / "store.sqlite") as store:
        assert store.counts()["profiles"] >= 1  # non-empty answers are cached like profiles

    # a name given both in a response file and by --model is refused before any model loads
    clash = runner.invoke(app, [*args[:4], "--model", f"bft={tiny_llama_dir}", *args[6:], "--force"])
    assert clash.exit_code == 2 and "'bft' is named both" in clash.stderr


def test_a_spacy_pipeline_adds_the_names_the_lexicon_misses(tmp_path):
    """--ner-model: a real spaCy pipeline on disk (an entity ruler) tags protein names that are no HGNC symbol."""
    spacy = pytest.importorskip("spacy", reason="the [ner] extra (spaCy) is not installed")
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [{"label": "GENE_OR_GENE_PRODUCT", "pattern": "p53"}, {"label": "CELL_TYPE", "pattern": "neurons"}]
    )
    pipeline = tmp_path / "ruler"
    nlp.to_disk(pipeline)
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"model": "a", "response": "TP53 encodes p53, which protects neurons."}\n')
    runner = CliRunner()
    plain = runner.invoke(app, ["analyze-responses", str(answers), "-o", str(tmp_path / "plain")])
    tagged = runner.invoke(
        app, ["analyze-responses", str(answers), "-o", str(tmp_path / "ner"), "--ner-model", str(pipeline)]
    )
    assert plain.exit_code == 0 and tagged.exit_code == 0, plain.output + tagged.output
    plain_json = json.loads((tmp_path / "plain.json").read_text())
    tagged_json = json.loads((tmp_path / "ner.json").read_text())
    assert plain_json["rows"][0]["entities"] == 1  # TP53, from the lexicon
    assert tagged_json["rows"][0]["entities"] == 2  # and p53 from the pipeline; "neurons" is not a gene label
    assert (
        tagged_json["settings"]["ner_model"] == str(pipeline) and plain_json["settings"]["ner_model"] is None
    )
