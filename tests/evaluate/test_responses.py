"""bioprofile.evaluate.responses: the response metrics on texts whose counts are known by hand, and bad input."""

from __future__ import annotations

import json

import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.report import BenchmarkResult
from bioprofile.evaluate.responses import (
    AS_GIVEN,
    RESPONSE_METRICS,
    Prompt,
    Response,
    analyze_responses,
    read_drug_names,
    read_prompts,
    read_responses,
)
from bioprofile.text import ner

SYMBOLS = frozenset({"KRAS", "TP53", "MDM2", "EGFR", "BRAF"})

# Counted by hand (words split on whitespace; entities among SYMBOLS; connectives of CAUSAL_CONNECTIVES):
BFT = [
    # 17 words; entities {KRAS}; connectives activates, because, therefore, blocks (4); drug sotorasib (the list);
    # mutation G12C
    "KRAS G12C activates MAPK signalling because the mutant protein stays bound to GTP; sotorasib therefore "
    "blocks KRAS.",
    # 9 words; entities {TP53, MDM2}; connective "leads to" (1); no drug; mutations p.Arg175His and c.524G>A
    "TP53 p.Arg175His (c.524G>A) leads to loss of MDM2 control.",
    # 7 words; entities {EGFR}; connective inhibits (1); drugs erlotinib, osimertinib (INN stem -tinib only);
    # mutation T790M
    "EGFR T790M resists erlotinib; osimertinib inhibits it.",
]
BASE = [
    # 10 words; entities {BRAF}; nothing else
    "BRAF is a gene. It is expressed in many tissues.",
    # 6 words; no entity; drugs aspirin and tamoxifen (the list)
    "Patients often take aspirin and tamoxifen.",
]


@pytest.fixture(autouse=True)
def _lexicon_only(monkeypatch):
    """No scispaCy model, wherever the tests run: the counts above are the lexicon's."""
    monkeypatch.setattr(ner, "default_ner_model", lambda: None)
    monkeypatch.setattr("bioprofile.evaluate.responses.default_ner_model", lambda: None)


def _answers() -> list[Response]:
    return [Response("bft", t) for t in BFT] + [Response("base", t) for t in BASE]


def test_metrics_on_texts_with_known_counts():
    result = analyze_responses(_answers(), symbols=SYMBOLS)
    assert isinstance(result, BenchmarkResult)
    table = result.to_frame()
    assert list(table.index) == ["bft", "base"] and list(table.columns) == list(RESPONSE_METRICS)
    bft, base = table.loc["bft"], table.loc["base"]
    assert bft["n_responses"] == 3 and base["n_responses"] == 2
    assert bft["words"] == pytest.approx((17 + 9 + 7) / 3) and base["words"] == pytest.approx((10 + 6) / 2)
    assert bft["entities"] == pytest.approx((1 + 2 + 1) / 3) and base["entities"] == pytest.approx(0.5)
    assert bft["entities_total"] == 4 and base["entities_total"] == 1
    assert bft["connectives"] == pytest.approx((4 + 1 + 1) / 3) and base["connectives"] == 0
    assert bft["connectives_per_100_words"] == pytest.approx(100 * 6 / 33)
    assert bft["drug_share"] == pytest.approx(2 / 3) and base["drug_share"] == pytest.approx(1 / 2)
    assert bft["mutation_share"] == 1 and base["mutation_share"] == 0
    first, second, third = result.responses[:3]
    assert (
        first["entities"] == ["KRAS"] and first["drugs"] == ["sotorasib"] and first["mutations"] == ["G12C"]
    )
    assert second["mutations"] == ["p.Arg175His", "c.524G>A"] and second["entities"] == ["MDM2", "TP53"]
    assert third["drugs"] == ["erlotinib", "osimertinib"]
    assert result.responses[4]["drugs"] == ["aspirin", "tamoxifen"]


def test_drug_list_and_stems_are_the_users_choice(tmp_path):
    listed = tmp_path / "drugs.txt"
    listed.write_text("# EGFR inhibitors\nErlotinib\n\nerlotinib\n")
    assert read_drug_names(listed) == ("Erlotinib", "erlotinib")
    result = analyze_responses(_answers(), drugs=listed, drug_stems=False, symbols=SYMBOLS)
    # only the third bft answer names erlotinib; the list's other spelling is the same drug (any case matches)
    assert result.to_frame()["drug_share"].tolist() == pytest.approx([1 / 3, 0.0])
    assert result.settings["drugs"] == {"list": str(listed), "n_names": 2, "inn_stems": False}
    stems_only = analyze_responses(_answers(), drugs=["nothing-like-it"], symbols=SYMBOLS)
    assert stems_only.to_frame()["drug_share"].tolist() == pytest.approx([1 / 3, 0.0])


def test_result_writes_markdown_and_json(tmp_path):
    result = analyze_responses(_answers(), symbols=SYMBOLS)
    md, js = result.write(tmp_path / "out")
    payload = json.loads(js.read_text())
    assert [row["model"] for row in payload["rows"]] == ["bft", "base"]
    assert len(payload["responses"]) == 5 and payload["settings"]["ner_model"] is None
    assert payload["settings"]["length_unit"].startswith("words")
    text = md.read_text()
    assert text.startswith("| model | n_responses | words |") and "5 responses" in text
    errors = result.standard_errors()
    assert errors.loc["bft", "mutation_share"] == 0 and errors.loc["bft", "words"] > 0
    with pytest.raises(BioprofileInputError, match="already exists"):
        result.write(tmp_path / "out")


def test_read_responses_keeps_files_lines_and_prompts(tmp_path):
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    one.write_text('{"model": "bft", "response": "TP53.", "prompt": "Tell me about TP53"}\n\n')
    two.write_text('{"model": "base", "response": "", "extra": 1}\n{"model": " bft ", "response": "x"}\n')
    answers = read_responses([one, two])
    assert [(a.model, a.line, a.source) for a in answers] == [
        ("bft", 1, str(one)),
        ("base", 1, str(two)),
        ("bft", 2, str(two)),
    ]
    assert answers[0].prompt == "Tell me about TP53" and answers[1].text == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no records"),
        ("\n  \n", "has no records"),
        ('{"model": "a", "response": "x"}\n{"model": "a"}\n', "line 2: has no 'response' field"),
        ('{"response": "x"}\n', "line 1: has no 'model' field"),
        ('{"model": "a", "response": 3}\n', "line 1: has a non-text 'response' field"),
        ('{"model": " ", "response": "x"}\n', "line 1: the 'model' field is empty"),
        ('{"model": "a", "response": "x"}\n\n{"model": "a", "response": \n', "line 3: not JSON"),
        ('["a", "x"]\n', "line 1: a JSON list, not an object"),
    ],
)
def test_bad_response_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(BioprofileInputError, match=message) as err:
        read_responses(path)
    assert err.value.argument == "responses"


def test_bad_drug_lists_and_missing_files(tmp_path):
    with pytest.raises(BioprofileInputError, match="cannot read drug list") as err:
        analyze_responses(_answers(), drugs=tmp_path / "none.txt", symbols=SYMBOLS)
    assert err.value.argument == "drugs"
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(BioprofileInputError, match="holds no drug names"):
        read_drug_names(tmp_path / "empty.txt")
    with pytest.raises(BioprofileInputError, match="cannot read response file"):
        read_responses(tmp_path / "none.jsonl")
    (tmp_path / "r.jsonl").write_text('{"model": "a", "response": "x"}\n')
    with pytest.raises(BioprofileInputError, match="r.jsonl is given twice"):
        read_responses([tmp_path / "r.jsonl", tmp_path / "." / "r.jsonl"])
    with pytest.raises(BioprofileInputError, match="no responses to analyze"):
        analyze_responses([])


def test_prompts_from_text_and_jsonl(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("What does TP53 do?\n\nWhat does TP53 do?\nHow does KRAS G12C signal?\n")
    prompts = read_prompts(text)
    assert [p.text for p in prompts] == ["What does TP53 do?", "How does KRAS G12C signal?"]
    assert prompts[0].key.startswith("prompt:") and prompts[0].key != prompts[1].key
    assert AS_GIVEN.messages(prompts[1]) == [{"role": "user", "content": "How does KRAS G12C signal?"}]
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "a {b} c"}\n{"id": 2}\n')
    with pytest.raises(BioprofileInputError, match="line 2: no 'prompt' text"):
        read_prompts(lines)
    lines.write_text('{"prompt": "a {b} c"}\n')
    assert AS_GIVEN.messages(read_prompts(lines)[0])[0]["content"] == "a {b} c"  # braces are text, not fields
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(BioprofileInputError, match="holds no prompts"):
        read_prompts(tmp_path / "empty.txt")
    assert Prompt("x" * 60).symbol.endswith("…") and len(Prompt("x" * 60).symbol) == 40
