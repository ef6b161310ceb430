"""benchmarks/reproduce.py: the split has no leak, the chain runs end to end, resumes, and writes its table."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _reproduce_split import (  # noqa: E402
    LeakError,
    SplitSizes,
    check_no_leak,
    held_out_gene_sets,
    make_split,
)
from reproduce import chain_from_args, parse_args, run_chain  # noqa: E402


def test_split_keeps_every_evaluation_gene_out_of_training(shared_data):
    sizes = SplitSizes(train_genes=0, held_out_genes=30, dosage_tfs=60, go_sets=20, cluster_genes=60)
    split = make_split(shared_data / "geneagent" / "gene_narrative_synopsis.txt", shared_data, sizes)
    trained = {r["approved"] for r in split.train}
    assert len(split.held_out) == 30 and len(split.dosage_tfs) == 60 and len(split.go_sets) == 20
    assert not trained & set(split.held_out_genes)
    assert not trained & set(split.cluster_genes)
    assert not trained & {g.upper() for s in split.go_sets for g in s.genes}
    # every dosage TF, not only the sampled ones, is out of training
    dosage = (shared_data / "genept" / "dosage_sens_tf_labels.csv").read_text().splitlines()[1:]
    assert not trained & {line.split(",")[1].upper() for line in dosage}
    assert len(trained) > 3000  # the rest of the RefSeq genes that resolve
    # a leak is refused
    split.train.append(split.held_out[0])
    with pytest.raises(LeakError, match=split.held_out_genes[0]):
        check_no_leak(split)


def test_class_and_pair_genes_are_never_trainable_and_leave_the_rest_of_the_split_alone(shared_data):
    synopsis = shared_data / "geneagent" / "gene_narrative_synopsis.txt"
    sizes = SplitSizes(train_genes=100, held_out_genes=10, dosage_tfs=10, go_sets=3, cluster_genes=0)
    plain = make_split(synopsis, shared_data, sizes)
    both = make_split(synopsis, shared_data, replace(sizes, class_genes=30, pair_genes=600))
    # the same training and held-out genes: the new genes come from a second generator, among untrainable genes
    assert [r["approved"] for r in both.train] == [r["approved"] for r in plain.train]
    assert both.held_out_genes == plain.held_out_genes and plain.key() != both.key()
    assert not plain.class_labels and not plain.pairs and "n_pairs" not in plain.summary()
    refseq = {r["approved"] for r in both.train + both.held_out}
    assert len(both.class_labels) == 30 and not refseq & set(both.class_labels)
    pair_genes = {g for a, b, _ in both.pairs for g in (a, b)}
    assert both.pairs and not refseq & pair_genes and {y for *_, y in both.pairs} == {0, 1}
    assert set(both.class_labels) | pair_genes <= set(both.profile_genes)
    names = [t.name for t in both.extra_tasks()]
    assert (
        names == ["functional_class", "ggi"] and both.extra_tasks()[1].is_test is None
    )  # gene-disjoint folds
    both.train.append({"approved": next(iter(both.class_labels)), "gene": "X"})
    with pytest.raises(LeakError):
        check_no_leak(both)


def test_held_out_gene_sets_hold_no_training_gene(shared_data):
    from bioprofile.evaluate.gene_sets import GeneSet, read_gene_sets

    sizes = SplitSizes(train_genes=400, held_out_genes=10, dosage_tfs=10, go_sets=5, cluster_genes=0)
    split = make_split(shared_data / "geneagent" / "gene_narrative_synopsis.txt", shared_data, sizes)
    all_sets = read_gene_sets(shared_data / "geneagent" / "GO_terms.csv")
    chosen = held_out_gene_sets(split, all_sets, 60, seed=1)
    assert len(chosen) == len({s.name for s in chosen}) == 60
    assert chosen[:5] == split.go_sets  # the split's own held-out sets first
    trained = {r["approved"] for r in split.train} | {r["gene"].upper() for r in split.train}
    assert not trained & {g.upper() for s in chosen for g in s.genes}
    # the file does have sets with training genes: the choice left them out, it did not just get lucky
    touched = [s for s in all_sets if trained & {g.upper() for g in s.genes}]
    assert len(touched) > 100
    assert held_out_gene_sets(split, all_sets, 60, seed=1) == chosen  # seeded
    # a training gene inside one of the split's own sets is refused, not passed on
    bad = GeneSet("bad", (split.train[0]["approved"],), "leak")
    split.go_sets = [bad]
    with pytest.raises(LeakError):
        held_out_gene_sets(split, all_sets, 10)
    with pytest.raises(LeakError, match="only"):
        held_out_gene_sets(split, touched, 5)


def _chain(tmp_path, model, encoder, seeds):
    argv = [
        "--model", str(model), "--encoder", f"hf:{encoder}", "--methods", "sft", "bft",
        "--seeds", str(seeds), "--steps", "2", "--batch-size", "2", "--max-length", "1024",
        "--train-genes", "6", "--held-out-genes", "4", "--dosage-tfs", "8", "--go-sets", "2",
        "--cluster-genes", "20", "--max-new-tokens", "6", "--n-splits", "2", "--class-genes", "16",
        "--pair-genes", "400",
        "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out" / "reproduce"),
    ]  # fmt: skip
    return chain_from_args(parse_args(argv), "test")


# about 2 min on an idle 2-core machine (4 trainings, 9 model scorings): a benchmark script's smallest run, so it
# runs with the others in `make bench-smoke` (CI), outside the suite's 15 minutes
@pytest.mark.slow
@pytest.mark.bench_smoke
@pytest.mark.filterwarnings("ignore")
def test_chain_runs_resumes_and_writes_the_table(tmp_path, tiny_llama_dir, tiny_bert_dir, shared_data):
    first = run_chain(_chain(tmp_path, tiny_llama_dir, tiny_bert_dir, seeds=1), log=lambda _: None)
    assert sorted(first["trained"]) == [("bft", 0), ("sft", 0)]
    # a rerun with more seeds trains only the new seed; a rerun of the same chain trains nothing
    second = run_chain(_chain(tmp_path, tiny_llama_dir, tiny_bert_dir, seeds=2), log=lambda _: None)
    assert sorted(second["trained"]) == [("bft", 1), ("sft", 1)]
    third = run_chain(_chain(tmp_path, tiny_llama_dir, tiny_bert_dir, seeds=2), log=lambda _: None)
    assert third["trained"] == []
    adapters = sorted(p.name.split("-seed")[0] for p in (tmp_path / "run" / "adapters").iterdir())
    assert adapters == ["bft", "bft", "sft", "sft"]

    paths = third["paths"]
    for key in ("md", "json", "metrics_png", "nll_png"):
        assert paths[key].is_file(), key
    table = json.loads(paths["json"].read_text())
    rows = table["rows"]
    assert list(rows)[:3] == ["base", "sft", "bft"]
    assert {"symbol-only", "random", "PCA of expression", "most-frequent term"} <= set(rows)
    for name in ("base", "sft", "bft"):
        for metric in ("heldout_rougeL", "heldout_cosine", "geneset_rougeL", "leiden_ari", "dosage_auc"):
            assert rows[name][metric]["mean"] is not None, (name, metric)
        assert rows[name]["dosage_auc"]["n"] == 2  # two fold seeds for the base model, two trained seeds else
    assert rows["sft"]["heldout_token_acc"]["n"] == 2
    assert table["vs_sft"]["bft"]["heldout_rougeL"] in {"tie", "better", "worse"}
    assert set(table["nll_by_base_confidence"]) == {"sft", "bft"}
    markdown = paths["md"].read_text()
    for name in rows:
        assert name in markdown
    assert "Against SFT" in markdown
    assert table["split"]["n_train"] == 6 and table["split"]["n_held_out"] == 4
    # the split's own functional-class genes and gene-disjoint pairs are scored beside the symbol-only bar
    assert table["split"]["n_class_genes"] == 16 and table["split"]["n_pairs"] > 0
    assert {"dosage", "functional_class", "ggi"} <= set(table["tasks"]), table["tasks"]


def _fake_results(values: dict[str, list[float]]) -> dict:
    """Results of a chain whose held-out ROUGE-L per (method, seed) is given; other metrics fixed."""
    results = {"models": {}, "seeds": {}, "train": {}}
    clustering = {
        "model": {"leiden_ari": 0.1, "kmeans_ari": 0.2},
        "pca": {"leiden_ari": 0.5, "kmeans_ari": 0.4},
    }
    tasks = {"dosage": {"model": {"auc": 0.6}, "symbol": {"auc": 0.55}, "random": {"auc": 0.5}}}
    for method, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            name = method if method == "base" else f"{method}/{seed}"
            results["models"][name] = {"heldout_rougeL": value, "geneset_baseline_rougeL": 0.3}
            results["seeds"][f"{name}/{seed}"] = {"gene_tasks": tasks, "clustering": clustering}
            if method != "base":
                results["train"][f"{method}/{seed}"] = {"eval": {"token_accuracy": 0.5}}
    return results


def test_table_calls_ties_within_the_seed_spread():
    from _reproduce_table import build_table, to_markdown

    results = _fake_results(
        {"base": [0.10], "sft": [0.20, 0.22, 0.24], "bft": [0.21, 0.25, 0.23], "dft": [0.10, 0.11, 0.12]}
    )
    table = build_table(results, {}, methods=("sft", "dft", "bft"), base="base")
    rows = table["rows"]
    assert list(rows) == [
        "base",
        "sft",
        "dft",
        "bft",
        "symbol-only",
        "random",
        "PCA of expression",
        "most-frequent term",
    ]
    assert rows["sft"]["heldout_rougeL"]["mean"] == pytest.approx(0.22)
    assert rows["sft"]["heldout_rougeL"]["std"] == pytest.approx(0.02)  # sample std over the 3 seeds
    assert table["vs_sft"]["bft"]["heldout_rougeL"] == "tie"  # +0.01, within the std of 0.02
    assert table["vs_sft"]["dft"]["heldout_rougeL"] == "worse"  # -0.11, outside it
    assert rows["symbol-only"]["dosage_auc"]["mean"] == pytest.approx(0.55)
    markdown = to_markdown(table, {"run_seconds_total": 60.0, "command": "x"})
    assert "| held-out profile ROUGE-L vs RefSeq | 0.100 | 0.220 ± 0.020 |" in markdown


def test_gene_set_comparison_is_paired_and_calls_ties():
    from gene_sets_compare import compare

    def payload(name, values, answer="cell cycle arrest in the nucleus of the cell"):
        sets = [
            {"key": f"s{i}", "term": "cell cycle", "answers": {name: answer},
             "scores": {name: dict.fromkeys(("rouge1", "rouge2", "rougeL", "cosine"), v),
                        "baseline": dict.fromkeys(("rouge1", "rouge2", "rougeL", "cosine"), 0.5)}}
            for i, v in enumerate(values)
        ]  # fmt: skip
        return {"summary": [{"method": name}, {"method": "baseline"}], "sets": sets}

    base = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.6, 0.4]
    # every set a little higher: the paired interval excludes 0, though the two spreads overlap widely
    higher = compare(payload("base", base), payload("tuned", [v + 0.02 for v in base]))["metrics"]["rougeL"]
    assert higher["reading"] == "tuned higher" and higher["tuned_higher"] == 8
    assert abs(higher["difference"] - 0.02) < 1e-12 and higher["baseline"] == 0.5
    # up on half the sets, down on the other half: a tie
    mixed = [v + (0.1 if i % 2 else -0.1) for i, v in enumerate(base)]
    tie = compare(payload("base", base), payload("tuned", mixed))["metrics"]["rougeL"]
    assert tie["reading"] == "tie" and tie["tuned_higher"] == tie["tuned_lower"] == 4
    # the length control: the base answer cut to the tuned one's 2 words is "cell cycle", the term itself
    short = compare(payload("base", base), payload("tuned", base, answer="cell division"))["metrics"]
    assert short["rougeL"]["base_at_tuned_length"] == 1.0 and short["cosine"]["base_at_tuned_length"] is None
    with pytest.raises(SystemExit, match="different gene sets"):
        compare(payload("base", base), payload("tuned", base[:-1]))


def test_the_gene_set_scripts_run_as_a_user_runs_them(shared_data, tmp_path, capsys, monkeypatch):
    import gene_sets_compare
    import held_out_gene_sets
    from _reproduce_split import cached_split

    from bioprofile.evaluate.gene_sets import read_gene_sets, rouge

    synopsis = shared_data / "geneagent" / "gene_narrative_synopsis.txt"
    sizes = SplitSizes(train_genes=50, held_out_genes=5, dosage_tfs=4, go_sets=3, cluster_genes=0)
    split = cached_split(synopsis, shared_data, sizes, tmp_path / "run")
    monkeypatch.setattr(held_out_gene_sets, "SHARED", shared_data)
    out = tmp_path / "sets.csv"
    argv = ["--run-dir", str(tmp_path / "run"), "--sets", "12", "-o", str(out)]
    assert held_out_gene_sets.main(argv) == 0
    sets = read_gene_sets(out)
    assert len(sets) == 12 and [s.name for s in sets[:3]] == [s.name for s in split.go_sets]
    assert "12 gene sets (3 from the split)" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # an existing output is kept without --force
        held_out_gene_sets.main(argv)

    def result(name, answers):
        return {
            "summary": [{"method": name}, {"method": "baseline"}],
            "sets": [
                {"key": s.name, "term": s.term, "answers": {name: answers(s)},
                 "scores": {name: {**rouge(answers(s), s.term), "cosine": 0.5},
                            "baseline": {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "cosine": 0.1}}}
                for s in sets
            ],
        }  # fmt: skip

    (tmp_path / "a.json").write_text(json.dumps(result("base", lambda s: "a process of the cell " + s.term)))
    (tmp_path / "b.json").write_text(json.dumps(result("tuned", lambda s: s.term)))
    args = [str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(tmp_path / "cmp")]
    assert gene_sets_compare.main(args) == 0
    compared = json.loads((tmp_path / "cmp.json").read_text())
    assert compared["n_sets"] == 12 and compared["metrics"]["rougeL"]["tuned"] == 1.0
    assert "| rougeL |" in (tmp_path / "cmp.md").read_text()
    with pytest.raises(SystemExit):
        gene_sets_compare.main(args)
