"""Prompt templates: lookup and the messages they build."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.prompts import TEMPLATES, PromptTemplate, get_template, template_names


@dataclass
class FakeGeneRecord:
    symbol: str
    name: str | None


def test_genept_is_user_only():
    messages = get_template("genept").messages("TP53")
    assert messages == [{"role": "user", "content": "Tell me about gene TP53"}]


def test_concise_has_system_and_name():
    gene = FakeGeneRecord("TP53", "tumor protein p53")
    messages = get_template("concise").messages(gene)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "2,000 characters" in messages[0]["content"]
    for topic in ("function", "pathways", "interact", "disease"):
        assert topic in messages[0]["content"]
    assert messages[1]["content"] == "Tell me about gene TP53 (tumor protein p53)."


def test_missing_name_falls_back_to_symbol():
    assert get_template("concise").messages(FakeGeneRecord("BRCA1", None))[1]["content"] == (
        "Tell me about gene BRCA1 (BRCA1)."
    )
    assert get_template("concise").messages("BRCA1")[1]["content"].endswith("(BRCA1).")


def test_gene_without_symbol_is_a_programming_error():
    with pytest.raises(ValueError, match="no symbol"):
        get_template("genept").messages(FakeGeneRecord("", "x"))


def test_lookup_is_case_insensitive_and_passes_templates_through():
    assert get_template(" Concise ") is TEMPLATES["concise"]
    custom = PromptTemplate("mine", None, "Describe {symbol}")
    assert get_template(custom) is custom
    assert custom.messages("EGFR") == [{"role": "user", "content": "Describe EGFR"}]


def test_unknown_template_lists_names():
    with pytest.raises(BioprofileInputError) as err:
        get_template("verbose")
    message = str(err.value)
    assert "verbose" in message and "concise" in message and "genept" in message
    assert "\n" not in message


def test_template_names_by_entity():
    assert template_names() == ["concise", "genept", "protein-concise", "protein-plain"]
    assert template_names("gene") == ["concise", "genept"]
    assert template_names("protein") == ["protein-concise", "protein-plain"]


def test_every_template_renders_with_the_tiny_chat_template(tiny_tokenizer):
    for template in TEMPLATES.values():
        text = tiny_tokenizer.apply_chat_template(
            template.messages("KRAS"), add_generation_prompt=True, tokenize=False
        )
        assert "KRAS" in text and text.endswith("<|im_start|>assistant\n")
