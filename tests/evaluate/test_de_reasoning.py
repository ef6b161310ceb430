"""The DE-reasoning task: the answer rule, the records, the labels and the offline data."""

from __future__ import annotations

import pytest

from bioprofile.evaluate.de_reasoning import DE_ANSWER_RULE, parse_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: yes", True),
        ("answer: NO", False),
        ("The drug inhibits MTOR.\nAnswer: Yes.\n\n", True),
        ("Reasoning...\n  ANSWER :  no  ", False),
        ("<answer>yes</answer>", True),
        ("I think so. <answer> No </answer> done", False),
        ("<ANSWER>\nyes.\n</ANSWER>\nAnswer: yes", True),
    ],
)
def test_parse_answer_reads_the_final_line_or_the_tag(text, expected):
    assert parse_answer(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "yes",
        "Answer: maybe",
        "Answer: yes, because the pathway is hit",
        "Answer: yes\nI hope that helps.",
        "Answer: y",
        "<answer>perhaps</answer>",
        "<answer>yes</answer> <answer>no</answer>",
        "<answer>yes</answer>\nAnswer: no",
        "<answer>yes",
    ],
)
def test_parse_answer_calls_everything_else_malformed(text):
    assert parse_answer(text) is None


def test_parse_answer_never_raises_on_non_text():
    assert parse_answer(None) is None  # type: ignore[arg-type]


def test_the_rule_names_both_forms():
    assert "Answer: yes" in DE_ANSWER_RULE and "<answer>" in DE_ANSWER_RULE
