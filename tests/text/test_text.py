"""bioprofile.text: the pure text taggers (entities, connectives, mutations, drugs) below every stage."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bioprofile.text import (
    DRUG_NAMES,
    DRUG_STEMS,
    connective_spans,
    drug_name_spans,
    drug_spans,
    lexicon_gene_spans,
    mutation_spans,
    token_tags,
)


def _found(text: str, spans) -> list[tuple[str, str]]:
    return [(text[start:end], label) for start, end, label in spans]


def test_the_diagnosis_exports_the_same_taggers():
    from bioprofile.diagnose import tagging
    from bioprofile.text import entities, tokens

    assert tagging.gene_entity_spans is entities.gene_entity_spans
    assert tagging.token_tags is tokens.token_tags


def test_lexicon_matches_symbols_case_sensitively_without_english_words():
    text = "TP53 binds MDM2; AT rest, the cat and Tp53 are not genes. SET is English, KIT a gene."
    symbols = frozenset({"TP53", "MDM2", "AT", "SET", "KIT"})
    assert _found(text, lexicon_gene_spans(text, symbols)) == [
        ("TP53", "TP53"),
        ("MDM2", "MDM2"),
        ("KIT", "KIT"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BRAF p.V600E", [("p.V600E", "protein")]),
        ("EGFR T790M and KRAS G12C", [("T790M", "protein"), ("G12C", "protein")]),
        ("KRAS p.Gly12Cys; p.Leu858Arg", [("p.Gly12Cys", "protein"), ("p.Leu858Arg", "protein")]),
        ("a frameshift p.L858fs", [("p.L858fs", "protein")]),
        ("c.1799T>A and c.35_36delGC", [("c.1799T>A", "cdna"), ("c.35_36delGC", "cdna")]),
        ("the splice variant c.2573+1G>A", [("c.2573+1G>A", "cdna")]),
        ("dbSNP rs113488022.", [("rs113488022", "snp")]),
        # gene names, a disease and a cell-cycle phase that look like one-letter changes are not mutations
        ("E2F1, S100A8, CD4, T1D and the G1S phase", []),
    ],
)
def test_mutation_notations(text, expected):
    assert _found(text, mutation_spans(text)) == expected


def test_drugs_by_inn_stem():
    text = "Imatinib, vemurafenib, olaparib and trastuzumab; cisplatin with paclitaxel. In April, the mab."
    assert _found(text, drug_spans(text)) == [
        ("Imatinib", "kinase inhibitor"),
        ("vemurafenib", "kinase inhibitor"),
        ("olaparib", "PARP inhibitor"),
        ("trastuzumab", "monoclonal antibody"),
        ("cisplatin", "platinum compound"),
        ("paclitaxel", "taxane"),
    ]
    assert set(DRUG_STEMS.values()) >= {"kinase inhibitor", "monoclonal antibody"}


def test_token_tags_flags_the_tokens_of_entities_and_connectives():
    text = "TP53 loss leads to growth"
    offsets = np.array([[0, 4], [5, 9], [10, 15], [16, 18], [19, 25]])
    entity, connective = token_tags(text, offsets, frozenset({"TP53"}), ner_model=None)
    assert entity.tolist() == [True, False, False, False, False]
    assert connective.tolist() == [False, False, True, True, False]
    assert _found(text, connective_spans(text)) == [("leads to", "leads to")]


def test_the_text_package_imports_no_model_library():
    code = (
        "import sys; import bioprofile.text; "
        "heavy = {'torch', 'transformers', 'spacy', 'matplotlib'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_issues_mutation_notations_are_all_found():
    text = "KRAS G12C, EGFR T790M, BRAF V600E, TP53 p.Arg175His and TP53 c.524G>A."
    assert [found for found, _ in _found(text, mutation_spans(text))] == [
        "G12C",
        "T790M",
        "V600E",
        "p.Arg175His",
        "c.524G>A",
    ]


def test_drug_names_from_a_list_whole_words_any_case():
    text = "Tamoxifen, 5-fluorouracil and all-trans  retinoic acid; nutlin-3a, metformin-like and JQ1 and ASPIRIN."
    assert _found(text, drug_name_spans(text)) == [
        ("Tamoxifen", "tamoxifen"),
        ("5-fluorouracil", "5-fluorouracil"),  # the longest name, not "fluorouracil" inside it
        ("all-trans  retinoic acid", "all-trans retinoic acid"),
        ("JQ1", "JQ1"),
        ("ASPIRIN", "aspirin"),
    ]
    assert _found(
        "Erlotinib and gefitinib", drug_name_spans("Erlotinib and gefitinib", ["erlotinib", " "])
    ) == [("Erlotinib", "erlotinib")]
    assert drug_name_spans("aspirin", []) == [] and "tamoxifen" in DRUG_NAMES
    assert not {name for name in DRUG_NAMES if drug_spans(name)}  # the list holds what the INN stems miss


def test_default_ner_model_is_an_installed_scispacy_model_or_none():
    from bioprofile.text import SCISPACY_MODELS, default_ner_model

    name = default_ner_model()
    assert name is None or name in SCISPACY_MODELS
