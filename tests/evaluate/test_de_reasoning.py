"""The DE-reasoning task: the answer rule, the records, the labels and the offline data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import SHARED_DATA

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.de_reasoning import (
    DE_ANSWER_RULE,
    DEQuestion,
    baseline_predictions,
    parse_answer,
    read_de_records,
    run_de_reasoning,
    sample_records,
    score_predictions,
    tahoe_like_adata,
    vcworld_labels,
    wilson_interval,
    write_record_files,
)
from bioprofile.evaluate.gene_sets import read_gene_sets
from bioprofile.profiles.de_prompts import get_de_template
from bioprofile.store import Store


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
        ("yes", True),
        ("No.", False),
        ("The pathway is not touched.\n  NO  \n", False),
    ],
)
def test_parse_answer_reads_the_final_line_or_the_tag(text, expected):
    assert parse_answer(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "The answer is yes.",
        "Yes, it is.",
        "<answer>yes</answer>\nno",
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


# --- records -------------------------------------------------------------------------------------------------

C32_CSV = (
    "pert,gene,label,split\nTrametinib,DUSP6,1,test\nTrametinib,ACTB,0,test\nBortezomib,HSPA1A,yes,train\n"
)


def test_read_de_records_takes_the_cell_line_from_the_file_name(tmp_path):
    path = tmp_path / "C32_DE.csv"
    path.write_text(C32_CSV)
    records = read_de_records(path)
    assert [(r.cell_line, r.pert, r.gene, r.label, r.split) for r in records] == [
        ("C32", "Trametinib", "DUSP6", True, "test"),
        ("C32", "Trametinib", "ACTB", False, "test"),
        ("C32", "Bortezomib", "HSPA1A", True, "train"),
    ]
    assert records[0].kind == "de_question" and records[0].key.startswith("de_question:")
    assert records[0].key != records[1].key
    # the key is the question's: the label and the split are not part of it
    assert DEQuestion("Trametinib", "C32", "DUSP6", False, "train").key == records[0].key
    assert len(read_de_records(path, split="test")) == 2


def test_read_de_records_one_table_with_cell_lines(tmp_path):
    path = tmp_path / "all.tsv"
    path.write_text(
        "Cell_Line\tPERT\tgene\tlabel\tsplit\tpval\n"
        "HOP62\td1\tG1\tNo\ttest\t0.5\nHOP62\td1\tG2\t1\ttest\t0\nPANC-1\td1\tG1\t0\ttest\t1\n"
        "PANC-1\td1\tG2\tYES\ttest\t0\nPANC-1\td1\tG2\t1\ttest\t0\n"
    )
    records = read_de_records(path)
    assert [r.cell_line for r in records] == ["HOP62", "HOP62", "PANC-1", "PANC-1"]  # the repeat kept once
    assert [r.label for r in records] == [False, True, False, True]
    assert [r.cell_line for r in read_de_records(path, cell_lines=["PANC-1"])] == ["PANC-1", "PANC-1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("pert,gene,label\nd,G,1\n", "lacks the column split"),
        ("pert,gene,label,split\n", "holds no records"),
        ("pert,gene,label,split\nd,G,maybe,test\nd,H,0,test\n", "line 2: label 'maybe' is not yes/no or 1/0"),
        ("pert,gene,label,split\nd,G,1,test\nd,H,1,test\n", r"C32 \(all yes\)"),
        ("pert,gene,label,split\nd,G,1,test\nd,G,0,test\n", "labelled both yes and no"),
        ("pert,gene,label,split\nd,,1,test\n", "line 2: no gene"),
    ],
)
def test_bad_record_files_are_one_line(tmp_path, text, message):
    path = tmp_path / "C32_DE.csv"
    path.write_text(text)
    with pytest.raises(BioprofileInputError, match=message) as err:
        read_de_records(path)
    assert "\n" not in str(err.value)


def test_sample_records_keeps_both_classes_and_is_seeded():
    records = [DEQuestion("d", "C32", f"G{i}", i < 3, "test") for i in range(40)]
    sample = sample_records(records, 6, seed=1)
    assert len(sample) == 6 and {r.label for r in sample} == {True, False}
    assert sample == sample_records(records, 6, seed=1)
    assert sample_records(records, 100) == records
    with pytest.raises(BioprofileInputError, match="at least 2"):
        sample_records(records, 1)


# --- scores --------------------------------------------------------------------------------------------------


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(8, 10)
    # (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = 0.8, z = 1.96: [0.490, 0.943]
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_scores_count_a_malformed_answer_wrong():
    labels = [True, True, False, False, False]
    scores = score_predictions(labels, [True, None, False, None, True])
    # effective answers: yes, no (wrong), no, yes (wrong), yes: tp 1, tn 1, predicted yes 3
    assert scores["correct"] == 2 and scores["accuracy"] == pytest.approx(0.4)
    assert scores["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert scores["f1"] == pytest.approx(2 * 1 / (2 + 3))
    assert scores["malformed"] == 2 and scores["malformed_rate"] == pytest.approx(0.4)
    majority = score_predictions(labels, baseline_predictions(labels, "majority"))
    assert majority["accuracy"] == pytest.approx(0.6) and majority["balanced_accuracy"] == 0.5
    always = score_predictions(labels, baseline_predictions(labels, "always-yes"))
    assert always["accuracy"] == pytest.approx(0.4) and always["f1"] == pytest.approx(2 * 2 / (2 + 5))


# --- the benchmark on fixed answers ---------------------------------------------------------------------------


class FixedAnswers:
    """A backend that answers each question from a table keyed by gene (the gene is in the prompt)."""

    id = "fixed-de-answers"
    params: dict = {}

    def __init__(self, answers: dict[str, str]):
        self.answers, self.calls, self.prompts = answers, 0, 0

    def generate(self, messages_list):
        self.calls += 1
        self.prompts += len(messages_list)
        out = []
        for messages in messages_list:
            gene = messages[-1]["content"].split("Is the gene ")[1].split(" ")[0]
            out.append(self.answers[gene])
        return out


def test_run_de_reasoning_scores_parses_and_caches(tmp_path):
    records = [
        DEQuestion("MTOR inhibitor", "C32", "RPS6", True, "test"),
        DEQuestion("MTOR inhibitor", "C32", "ACTB", False, "test"),
        DEQuestion("MTOR inhibitor", "C32", "GAPDH", False, "test"),
        DEQuestion("MTOR inhibitor", "HOP62", "RPS6", True, "test"),
        DEQuestion("MTOR inhibitor", "HOP62", "EIF4E", True, "test"),
        DEQuestion("MTOR inhibitor", "HOP62", "ACTB", False, "test"),
    ]
    generator = FixedAnswers(
        {
            "RPS6": "mTORC1 phosphorylates S6K.\nAnswer: yes",
            "ACTB": "<answer>no</answer>",
            "GAPDH": "It depends.",  # malformed
            "EIF4E": "Answer: no",
        }
    )
    with Store(tmp_path / "store.sqlite") as store:
        result = run_de_reasoning(records, generator=generator, store=store, name="fixed")
        again = run_de_reasoning(records, generator=generator, store=store, name="fixed")
        assert generator.prompts == 6  # the second run asked nothing: every reply came from the store
    assert again.records == result.records
    assert [r["answer"] for r in result.records] == ["yes", "no", None, "yes", "no", "no"]
    frame = result.to_frame()
    assert frame.loc[("C32", "fixed"), "accuracy"] == pytest.approx(2 / 3)
    assert frame.loc[("C32", "fixed"), "malformed"] == 1
    assert frame.loc[("HOP62", "fixed"), "balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert frame.loc[("C32", "majority"), "accuracy"] == pytest.approx(2 / 3)  # always no
    assert frame.loc[("HOP62", "majority"), "accuracy"] == pytest.approx(2 / 3)  # always yes
    assert frame.loc[("all", "fixed"), "n"] == 6
    assert frame.loc[("all", "fixed"), "accuracy"] == pytest.approx(4 / 6)
    assert frame.loc[("all", "always-yes"), "accuracy"] == pytest.approx(3 / 6)
    assert frame.loc[("all", "fixed"), "malformed_rate"] == pytest.approx(1 / 6)
    assert result.settings["template"] == get_de_template("de-reasoning").key

    written = result.write(tmp_path / "de")
    assert written == [tmp_path / "de.md", tmp_path / "de.json"]
    payload = json.loads((tmp_path / "de.json").read_text())
    assert payload["records"][2]["raw_answer"] == "It depends." and payload["records"][2]["answer"] is None
    markdown = (tmp_path / "de.md").read_text()
    assert "95% CI (Wilson)" in markdown and "| all | always-yes |" in markdown and "malformed" in markdown
    with pytest.raises(BioprofileInputError, match="names a baseline's row"):
        run_de_reasoning(records, generator=generator, store=None, name="majority")
    with pytest.raises(BioprofileInputError, match="one class only"):
        run_de_reasoning(records[:1], generator=generator, store=None)


def test_the_prompt_asks_about_the_question_and_states_the_rule():
    messages = get_de_template("De-Reasoning").messages(
        DEQuestion("Trametinib", "C32", "DUSP6", True, "test")
    )
    user = messages[-1]["content"]
    assert "C32" in user and "Trametinib" in user and "DUSP6" in user and DE_ANSWER_RULE in user
    assert get_de_template("de-reasoning").entity == "de_question"
    with pytest.raises(BioprofileInputError, match="unknown DE-question prompt"):
        get_de_template("nope")


# --- labels from an AnnData, and the offline data ------------------------------------------------------------


def _planted_adata():
    """Two cell lines, a control and two drugs; drug A moves genes G0-G3 in line X only, drug B moves nothing.

    Two planted genes go down to 0.3 times, two up to 1.7 times, so a cell's total count stays the same and
    normalising to 1e4 moves no other gene.
    """
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(0)
    n_genes, n_cells = 60, 25
    blocks, obs = [], []
    for line in ("X", "Y"):
        for drug in ("DMSO_TF", "A", "B"):
            log_mean = np.full(n_genes, 3.0)
            if line == "X" and drug == "A":
                log_mean[:4] += np.log([0.3, 0.3, 1.7, 1.7])
            blocks.append(rng.poisson(np.exp(log_mean), size=(n_cells, n_genes)).astype(np.float32))
            obs += [(line, drug)] * n_cells
    frame = pd.DataFrame(obs, columns=["cell_line_id", "drug"], index=[f"c{i}" for i in range(len(obs))])
    return ad.AnnData(np.vstack(blocks), obs=frame, var=pd.DataFrame(index=[f"G{j}" for j in range(n_genes)]))


def test_vcworld_labels_find_the_planted_genes(tmp_path):
    records = vcworld_labels(_planted_adata(), n_negatives=10, train_fraction=0.5, seed=0)
    positives = records[records["label"] == 1]
    assert sorted(zip(positives["cell_line"], positives["pert"], positives["gene"], strict=True)) == [
        ("X", "A", f"G{j}") for j in range(4)
    ]
    assert (positives["pval_adj"] < 0.05).all() and (positives["logfoldchange"].abs() > 0.25).all()
    negatives = records[records["label"] == 0]
    # 10 drawn per drug and cell line, none of them planted, all with p > 0.1
    assert negatives.groupby(["cell_line", "pert"]).size().tolist() == [10, 10, 10, 10]
    assert not set(negatives["gene"][negatives["cell_line"] == "X"][negatives["pert"] == "A"]) & {
        f"G{j}" for j in range(4)
    }
    assert (negatives["pval"] > 0.1).all()
    # split by drug: one drug trains, the other is held out, the same in both cell lines
    splits = records.groupby("pert")["split"].unique()
    assert sorted(s[0] for s in splits) == ["test", "train"] and all(len(s) == 1 for s in splits)
    assert records.equals(vcworld_labels(_planted_adata(), n_negatives=10, train_fraction=0.5, seed=0))

    written = write_record_files(records, tmp_path)
    assert [p.name for p in written] == ["X_DE.csv", "Y_DE.csv"]
    assert written[0].read_text().splitlines()[0] == "pert,gene,label,split"
    with pytest.raises(BioprofileInputError, match="one class only"):  # line Y has no positive
        read_de_records(written)
    assert {r.cell_line for r in read_de_records(written[0])} == {"X"}
    with pytest.raises(BioprofileInputError, match="no obs column pert_key='perturbation'"):
        vcworld_labels(_planted_adata(), pert_key="perturbation")
    with pytest.raises(BioprofileInputError, match="no control cells"):
        vcworld_labels(_planted_adata(), control="DMSO")


@pytest.fixture(scope="module")
def tahoe_like():
    return tahoe_like_adata(
        SHARED_DATA / "geneagent" / "GO_terms.csv",
        n_drugs=3,
        cell_lines=("C32", "PANC-1"),
        cells_per_group=20,
        n_background=40,
        seed=3,
    )


def test_the_tahoe_like_data_has_tahoe_s_shape_and_planted_gene_sets(tahoe_like):
    adata = tahoe_like
    assert list(adata.obs.columns) == ["cell_line_id", "drug", "sample", "plate", "moa-fine"]
    assert adata.n_obs == 2 * 4 * 20 and "DMSO_TF" in set(adata.obs["drug"])
    assert set(adata.obs["cell_line_id"]) == {"C32", "PANC-1"}
    counts = adata.X.toarray()
    assert (counts == np.round(counts)).all() and counts.min() >= 0
    sets = {s.name: set(s.genes) for s in read_gene_sets(SHARED_DATA / "geneagent" / "GO_terms.csv")}
    planted = adata.uns["planted_de"]
    assert len(planted) > 0
    for drug, target in adata.uns["drug_targets"].items():
        assert drug == f"{target} inhibitor"
        go_id = adata.uns["drug_gene_sets"][drug].split(" ")[0]
        assert target in sets[go_id] and set(planted["gene"][planted["drug"] == drug]) <= sets[go_id]
    again = tahoe_like_adata(
        SHARED_DATA / "geneagent" / "GO_terms.csv",
        n_drugs=3,
        cell_lines=("C32", "PANC-1"),
        cells_per_group=20,
        n_background=40,
        seed=3,
    )
    assert (again.X != adata.X).nnz == 0 and list(again.var_names) == list(adata.var_names)


def test_vcworld_labels_on_the_tahoe_like_data_recover_the_gene_sets(tahoe_like):
    records = vcworld_labels(tahoe_like, n_negatives=15)
    planted = tahoe_like.uns["planted_de"]
    planted = set(zip(planted["cell_line"], planted["drug"], planted["gene"], strict=True))
    labelled = {
        label: set(zip(part["cell_line"], part["pert"], part["gene"], strict=True))
        for label, part in records.groupby("label")
    }
    assert len(labelled[1] & planted) >= 0.7 * len(planted)  # most planted effects are found
    assert len(labelled[1] & planted) >= 0.8 * len(labelled[1])  # and most positives are planted ones
    assert len(labelled[0] & planted) <= 0.05 * len(labelled[0])
