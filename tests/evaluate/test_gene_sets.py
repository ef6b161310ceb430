"""The gene-set task: reading sets, ROUGE on fixed answers computed by hand, the baseline, caching, the command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.encoders import get_encoder
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_sets import (
    GeneSet,
    GeneSetOptions,
    clean_answer,
    most_frequent_term,
    read_gene_sets,
    rouge,
    run_gene_sets,
    score_answers,
)
from bioprofile.profiles.gene_set_prompts import PROCESS, get_gene_set_template
from bioprofile.store import Store

SETS_TSV = (
    "set_id\tgene_list\treference\n"
    "s1\tLDLRAP1, SCP2D1,ANXA2 SCP2\tpositive regulation of intracellular cholesterol transport\n"
    "s2\tOGG1 ERCC5 XPA ERCC4 NTHL1\tnucleotide-excision repair, DNA incision\n"
    "s3\tCD3E CD28 LCK ZAP70\tpositive regulation of T cell activation\n"
    "s4\t\tno genes, left out\n"
)


class FixedAnswers:
    """A generator backend that answers each gene set with a fixed text (chosen by the set's first gene)."""

    id = "fixed-answers"
    params: dict = {}

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.calls = 0

    def generate(self, messages_list):
        self.calls += 1
        out = []
        for messages in messages_list:
            genes = messages[-1]["content"].split("\n")[0].removeprefix("Genes: ")
            out.append(self.answers[genes.split(", ")[0]])
        return out


def test_rouge_on_fixed_answers_matches_hand_computation():
    # Tokens: lower-cased runs of letters/digits (rouge-score's tokenizer). F = 2PR / (P + R).
    # 4 answer tokens, all in the 5 reference tokens: P=1, R=4/5, F=8/9. Bigrams: 3 of 3 in the reference's 4:
    # F=2*(3/4)/(7/4)=6/7. LCS = the 4 answer tokens: F=8/9.
    got = rouge("regulation of cell migration", "positive regulation of cell migration")
    assert got == pytest.approx({"rouge1": 8 / 9, "rouge2": 6 / 7, "rougeL": 8 / 9})
    # Reference: nucleotide excision repair dna incision (5). Answer: dna repair (2), both in it: P=1, R=2/5,
    # F=4/7. Bigram "dna repair" is not a reference bigram: 0. The words come in the other order, so the LCS is 1:
    # P=1/2, R=1/5, F=2*(1/10)/(7/10)=2/7.
    got = rouge("DNA repair", "nucleotide-excision repair, DNA incision")
    assert got == pytest.approx({"rouge1": 4 / 7, "rouge2": 0.0, "rougeL": 2 / 7})
    # 3 answer tokens of 6: P=1, R=1/2, F=2/3; 2 answer bigrams, both among the 5: P=1, R=2/5, F=4/7; LCS 3: 2/3.
    got = rouge("T cell activation", "positive regulation of T cell activation")
    assert got == pytest.approx({"rouge1": 2 / 3, "rouge2": 4 / 7, "rougeL": 2 / 3})
    # Counts are clipped: "regulation" twice in the answer matches once. Overlap 2 of 3 each way: 2/3. Bigrams:
    # "regulation of" matches, "of regulation" does not: 1/2. LCS "regulation of": 2/3.
    got = rouge("regulation of regulation", "regulation of transport")
    assert got == pytest.approx({"rouge1": 2 / 3, "rouge2": 1 / 2, "rougeL": 2 / 3})
    # Stemming: regulating/regulation -> regul, transports -> transport; both words match (1), in reversed order
    # (no bigram, LCS 1: P=R=1/2, F=1/2). Unstemmed nothing matches.
    stemmed = rouge("regulating transports", "transport regulation", use_stemmer=True)
    assert stemmed == pytest.approx({"rouge1": 1.0, "rouge2": 0.0, "rougeL": 0.5})
    assert rouge("regulating transports", "transport regulation") == {"rouge1": 0, "rouge2": 0, "rougeL": 0}
    assert rouge("", "DNA repair") == {"rouge1": 0, "rouge2": 0, "rougeL": 0}


def test_clean_answer_keeps_the_process_name():
    assert clean_answer("**Process:** Cholesterol transport.\nThese genes all ...") == "Cholesterol transport"
    assert clean_answer("\n  Biological process: DNA repair  ") == "DNA repair"
    assert clean_answer('"Tie signaling pathway"') == "Tie signaling pathway"
    assert clean_answer("Answer - regulation of T cell activation.") == "regulation of T cell activation"
    assert clean_answer("") == ""


def test_read_gene_sets_geneagent_csv(shared_data):
    path = shared_data / "geneagent/GO_terms.csv"
    sets = read_gene_sets(path)
    assert len(sets) == 1000
    assert sets[0] == GeneSet(
        "GO:0032385",
        ("LDLRAP1", "SCP2D1", "ANXA2", "SCP2"),
        "positive regulation of intracellular cholesterol transport",
    )
    assert sets[2].term == "nucleotide-excision repair, DNA incision"  # a quoted term with a comma
    import csv

    counts = [int(row["Gene_Count"]) for row in csv.DictReader(path.open())]
    assert [len(s.genes) for s in sets] == counts
    assert [s.name for s in read_gene_sets(path, limit=3)] == [s.name for s in sets[:3]]


def test_read_gene_sets_own_columns_and_errors(tmp_path):
    path = tmp_path / "sets.tsv"
    path.write_text(SETS_TSV)
    sets = read_gene_sets(path, genes_col="gene_list", term_col="reference", name_col="set_id")
    assert [s.name for s in sets] == ["s1", "s2", "s3"]  # the row without genes is left out
    assert sets[0].genes == ("LDLRAP1", "SCP2D1", "ANXA2", "SCP2")  # commas and spaces both separate
    # The store key is the set, not its order.
    assert sets[0].key == GeneSet("x", ("SCP2", "ANXA2", "SCP2D1", "LDLRAP1"), "t").key
    assert sets[0].key.startswith("geneset:") and len(sets[0].key) == len("geneset:") + 64
    assert sets[0].key != sets[1].key
    with pytest.raises(BioprofileInputError, match="cannot tell which column holds the genes") as err:
        read_gene_sets(path)
    assert err.value.argument == "genes_col"
    with pytest.raises(BioprofileInputError, match="no column 'terms'") as err:
        read_gene_sets(path, genes_col="gene_list", term_col="terms")
    assert err.value.argument == "term_col"
    with pytest.raises(BioprofileInputError, match="cannot read gene-set file"):
        read_gene_sets(tmp_path / "missing.csv")


def test_most_frequent_term_and_its_tie_rule():
    assert most_frequent_term(["DNA repair", "cell cycle", "dna  Repair"]) == ("DNA repair", 2)
    # All once: the term of the most common words wins. Terms containing each word: regulation 2, of 2,
    # transport 2, cell 1, cycle 1, dna 1, repair 1. "regulation of transport": (2+2+2)/3 = 2;
    # "regulation of cell cycle": (2+2+1+1)/4 = 1.5; "DNA repair": 1; "ion transport": (1+2)/2 = 1.5.
    terms = ["DNA repair", "regulation of cell cycle", "regulation of transport", "ion transport"]
    assert most_frequent_term(terms) == ("regulation of transport", 1)
    assert most_frequent_term(["b c", "a c"]) == ("a c", 1)  # equally common: alphabetical
    with pytest.raises(BioprofileInputError):
        most_frequent_term([])


def test_score_answers_cosine_is_cached(tmp_path, tiny_bert_dir):
    with Store(tmp_path / "store.sqlite") as store:
        scores = score_answers(
            ["DNA repair", "", "cell cycle"],
            ["DNA repair", "cell cycle", "mitotic cell cycle"],
            encoder=f"hf:{tiny_bert_dir}",
            store=store,
        )
        assert scores[0]["cosine"] == pytest.approx(1.0, abs=1e-5) and scores[0]["rouge1"] == 1.0
        assert scores[1] == {"rouge1": 0, "rouge2": 0, "rougeL": 0, "cosine": 0.0}  # no answer, no credit
        assert -1.0 <= scores[2]["cosine"] <= 1.0
        assert (
            store.counts()["vectors"] == 4
        )  # distinct texts: DNA repair, "", cell cycle, mitotic cell cycle


def test_run_gene_sets_on_fixed_answers(tmp_path, tiny_bert_dir):
    path = tmp_path / "sets.tsv"
    path.write_text(SETS_TSV)
    sets = read_gene_sets(path, genes_col="gene_list", term_col="reference", name_col="set_id")
    generator = FixedAnswers(
        {"LDLRAP1": "**Process:** cholesterol transport.", "OGG1": "DNA repair", "CD3E": "T cell activation"}
    )
    options = GeneSetOptions(encoder=f"hf:{tiny_bert_dir}")
    with Store(tmp_path / "store.sqlite") as store:
        result = run_gene_sets(sets, generator=generator, options=options, store=store, name="fixed")
        again = run_gene_sets(sets, generator=generator, options=options, store=store, name="fixed")
        assert generator.calls == 1  # the second run read every answer from the store
        assert store.counts()["profiles"] == 3
        cached = store.get_profiles(
            [s.key for s in sets], template=PROCESS.key, generator="fixed-answers", params={}
        )
        assert cached[sets[1].key] == "DNA repair"
    assert again.sets == result.sets
    assert result.methods == ["fixed", "baseline"]
    by_name = {s["name"]: s for s in result.sets}
    assert by_name["s1"]["answers"]["fixed"] == "cholesterol transport"
    assert by_name["s1"]["raw_answer"] == "**Process:** cholesterol transport."
    # s1: 2 answer tokens, both among the 6 reference tokens: P=1, R=1/3, F=1/2; its bigram matches: P=1,
    # R=1/5, F=1/3. s2 and s3 as in the hand-computed ROUGE test above.
    rouge1 = [1 / 2, 4 / 7, 2 / 3]
    rouge2 = [1 / 3, 0.0, 4 / 7]
    assert [s["scores"]["fixed"]["rouge1"] for s in result.sets] == pytest.approx(rouge1)
    assert [s["scores"]["fixed"]["rouge2"] for s in result.sets] == pytest.approx(rouge2)
    summary = {row["method"]: row for row in result.summary()}
    assert summary["fixed"]["rouge1"]["mean"] == pytest.approx(sum(rouge1) / 3)
    assert summary["fixed"]["n_sets"] == 3
    # Baseline: every term once. "positive", "regulation" and "of" are in two terms, the other words in one: the
    # cholesterol term and the T-cell term both average (2+2+2+1+1+1)/6 = 1.5 over their 6 distinct tokens, the
    # excision term 1. The tie goes to the alphabetically first: "...of intracellular..." before "...of t cell...".
    baseline = "positive regulation of intracellular cholesterol transport"
    assert result.settings["baseline_term"] == baseline
    assert by_name["s1"]["scores"]["baseline"]["rougeL"] == pytest.approx(1.0)
    assert by_name["s1"]["scores"]["baseline"]["cosine"] == pytest.approx(1.0, abs=1e-5)
    # On s3 it shares "positive regulation of" (3 of 6 tokens each way: F=1/2) and its 2 bigrams of 5: F=2/5.
    assert by_name["s3"]["scores"]["baseline"]["rouge1"] == pytest.approx(1 / 2)
    assert by_name["s3"]["scores"]["baseline"]["rouge2"] == pytest.approx(2 / 5)
    assert result.settings["template"] == PROCESS.key
    assert result.settings["encoder"] == get_encoder(f"hf:{tiny_bert_dir}").id

    written = result.write(tmp_path / "out")
    assert written == [tmp_path / "out.md", tmp_path / "out.json"]
    payload = json.loads((tmp_path / "out.json").read_text())
    assert [s["answers"]["fixed"] for s in payload["sets"]] == [
        "cholesterol transport",
        "DNA repair",
        "T cell activation",
    ]
    assert payload["provenance"]["libraries"]["rouge-score"] == "0.1.2"
    markdown = (tmp_path / "out.md").read_text()
    assert "| fixed |" in markdown and "| baseline |" in markdown and "fixed answer" in markdown
    with pytest.raises(BioprofileInputError, match="'baseline' names the baseline's row"):
        run_gene_sets(sets, generator=generator, options=options, name="baseline")


def test_gene_set_prompt_lists_the_genes():
    messages = PROCESS.messages(GeneSet("s", ("TP53", "MDM2"), "t"))
    assert messages[0]["role"] == "system" and messages[1]["content"].startswith("Genes: TP53, MDM2\n")
    assert "these 2 genes" in messages[1]["content"]
    assert PROCESS.key.startswith("process@") and get_gene_set_template("Process") is PROCESS
    with pytest.raises(BioprofileInputError, match="unknown gene-set prompt 'go'"):
        GeneSetOptions(template="go")


def test_bench_gene_sets_command_with_the_tiny_model(tmp_path, tiny_llama_dir, tiny_bert_dir):
    path = tmp_path / "sets.tsv"
    path.write_text(SETS_TSV)
    args = [
        "bench",
        "gene-sets",
        str(path),
        "--genes-col",
        "gene_list",
        "--term-col",
        "reference",
        "--model",
        str(tiny_llama_dir),
        "--encoder",
        f"hf:{tiny_bert_dir}",
        "--max-new-tokens",
        "8",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "sets")])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "sets.json").read_text())
    assert len(payload["sets"]) == 3 and [row["method"] for row in payload["summary"]][1] == "baseline"
    # a local model is named by its folder in the table, not by its whole path
    assert [row["method"] for row in payload["summary"]][0] == tiny_llama_dir.name
    assert all(0.0 <= s["scores"][tiny_llama_dir.name]["rougeL"] <= 1.0 for s in payload["sets"])
    assert payload["settings"]["params"]["max_new_tokens"] == 8
    assert (tmp_path / "sets.md").read_text().startswith("| method |")
    with Store(tmp_path / "cache" / "store.sqlite") as store:
        assert store.counts()["profiles"] >= 1  # non-empty answers are cached like profiles

    # A second run refuses to replace the first's results unless --force (answers then come from the store).
    first = (tmp_path / "sets.json").read_bytes()
    again = runner.invoke(app, [*args, "-o", str(tmp_path / "sets")])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert (tmp_path / "sets.json").read_bytes() == first
    forced = runner.invoke(app, [*args, "-o", str(tmp_path / "sets"), "--force"])
    assert forced.exit_code == 0, forced.output

    # The output folder is checked before the file is read or a model loaded.
    missing = runner.invoke(
        app, ["bench", "gene-sets", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "x" / "o")]
    )
    assert missing.exit_code == 2 and "output directory" in missing.stderr
    # Library errors come back in the command's flags.
    bad = runner.invoke(app, ["bench", "gene-sets", str(path), "-o", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "name it with --genes-col" in bad.stderr
    bad_col = runner.invoke(app, [*args[:5], "--term-col", "terms", "-o", str(tmp_path / "o")])
    assert bad_col.exit_code == 2 and "no column 'terms'" in bad_col.stderr
