"""Gene tasks: loaders on the real files and on synthetic files of the download-only formats, id matching,
coverage accounting, the CV protocol, and a real text embedding beating the random baseline."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from bioprofile import pl
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks import (
    GeneLabels,
    GeneTaskOptions,
    PairLabels,
    cross_validated_auc,
    evaluate_task,
    gene_disjoint_folds,
    load_dosage_labels,
    load_gene2vec_pairs,
    load_gene_class_pickle,
    load_gene_types,
    load_pair_table,
    load_task,
    load_user_labels,
    match_genes,
    pair_features,
    pair_folds,
    random_embeddings,
    run_gene_tasks,
    symbol_embeddings,
    text_length_embeddings,
)
from bioprofile.evaluate.report import RocCurve, markdown_table
from bioprofile.genes import hgnc_symbols, normalize_genes


@pytest.fixture(scope="module")
def genes():
    """200 real HGNC genes that have Ensembl ids (deterministic choice)."""
    symbols = sorted(s for s in hgnc_symbols() if s.isalnum() and s.isupper())[1000:1600]
    resolved = [g for g in normalize_genes(symbols).genes if g.ensembl_id]
    return resolved[:200]


def _table(genes, vectors, key="hgnc"):
    ids = [g.hgnc_id if key == "hgnc" else g.symbol for g in genes]
    return GeneEmbeddings(ids, [g.symbol for g in genes], [""] * len(genes), vectors)


def _signal_vectors(labels, dim=16, strength=2.0, seed=1):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(labels), dim))
    vectors[:, 0] += strength * np.asarray(labels)  # one informative dimension
    return vectors


# --------------------------------------------------------------------------- real files


def test_real_dosage_and_ggi_counts(shared_data):
    dosage = load_dosage_labels(shared_data / "genept/dosage_sens_tf_labels.csv")
    assert np.bincount(dosage.labels).tolist() == [368, 122]
    assert dosage.genes[0].startswith("ENSG") and dosage.fallback[0] == "ZNF200"
    ggi = load_gene2vec_pairs(shared_data / "gene2vec")
    assert int((~ggi.is_test).sum()) == 263_016 and int(ggi.is_test.sum()) == 21_448
    assert int(ggi.labels[ggi.is_test].sum()) == 10_848


def test_real_functional_classes(shared_data):
    task = load_gene_types(shared_data / "genept/gene_info_table.csv")
    counts = dict(zip(task.classes, np.bincount(task.labels).tolist(), strict=False))
    assert counts["protein_coding"] == 22_907 and counts["lncRNA"] == 20_057 and min(counts.values()) >= 1000


def test_load_task_uses_verified_local_copy(shared_data):
    task = load_task("dosage", data_dir=shared_data)
    assert len(task.genes) == 490


# --------------------------------------------------------------------------- synthetic files, download-only formats


def test_chromatin_pickle_format(tmp_path, genes):
    path = tmp_path / "bivalent_vs_lys4_only.pickle"
    table = {
        "bivalent": [g.ensembl_id for g in genes[:30]],
        "lys4_only": [g.ensembl_id for g in genes[30:80]],
    }
    path.write_bytes(pickle.dumps(table))
    task = load_gene_class_pickle(path, "bivalent_vs_lys4_only", "bivalent", "lys4")
    assert np.bincount(task.labels).tolist() == [50, 30] and task.classes == ["lys4_only", "bivalent"]
    with pytest.raises(BioprofileInputError, match="cannot tell which key"):
        load_gene_class_pickle(path, "x", "bivalent", "nomethyl")


def test_chromatin_pickle_is_read_with_the_restricted_unpickler(tmp_path):
    import collections

    path = tmp_path / "hostile.pickle"
    path.write_bytes(pickle.dumps(collections.OrderedDict(bivalent=["TP53"], lys4_only=["GAPDH"])))
    with pytest.raises(BioprofileInputError, match="refusing to load collections.OrderedDict"):
        load_gene_class_pickle(path, "x", "bivalent", "lys4")


def test_interactome_without_labels_gets_seeded_negatives(tmp_path, genes):
    path = tmp_path / "HuRI.tsv"
    positives = [(genes[i].ensembl_id, genes[i + 1].ensembl_id) for i in range(60)]
    path.write_text(
        "".join(f"{a}\t{b}\n" for a, b in positives + [(genes[0].ensembl_id, genes[0].ensembl_id)])
    )
    task = load_pair_table(path, seed=3)
    assert int(task.labels.sum()) == 60 and len(task.labels) == 120  # self-pair dropped, balanced negatives
    positive_set = {frozenset(p) for p in positives}
    assert not any(
        frozenset(p) in positive_set for p, y in zip(task.pairs, task.labels, strict=False) if y == 0
    )
    assert load_pair_table(path, seed=3).pairs == task.pairs  # same seed, same negatives


def test_user_labels_gene_and_pair(tmp_path, genes):
    gene_file = tmp_path / "mine.csv"
    gene_file.write_text("gene,label\n" + "".join(f"{g.symbol},{i % 2}\n" for i, g in enumerate(genes[:40])))
    task = load_user_labels(gene_file)
    assert isinstance(task, GeneLabels) and task.name == "mine" and task.labels.sum() == 20
    pair_file = tmp_path / "pairs.csv"
    pair_file.write_text(
        "gene_a,gene_b,label,split\n"
        + "".join(
            f"{genes[i].symbol},{genes[i + 1].symbol},{i % 2},{'test' if i % 5 == 0 else 'train'}\n"
            for i in range(50)
        )
    )
    pairs = load_user_labels(pair_file)
    assert isinstance(pairs, PairLabels) and pairs.is_test.sum() == 10
    bad = tmp_path / "bad.csv"
    bad.write_text("gene,label\nTP53,a\nGAPDH,b\nMYC,c\n")
    with pytest.raises(BioprofileInputError, match="two classes"):
        load_user_labels(bad)


# --------------------------------------------------------------------------- matching and coverage


def test_matching_across_id_types_and_coverage(genes):
    emb = _table(genes[:150], np.eye(150, 8, dtype=np.float32), key="symbol")
    ensembl = [g.ensembl_id for g in genes]  # labels by Ensembl id, table by symbol
    rows = match_genes(emb, ensembl)
    assert (rows[:150] == np.arange(150)).all() and (rows[150:] == -1).all()

    labels = np.arange(200) % 2
    task = GeneLabels("toy", ensembl, labels, ["neg", "pos"])
    vectors = np.zeros((150, 8))
    vectors[:, :] = _signal_vectors(labels[:150], dim=8)
    (score,) = evaluate_task(_table(genes[:150], vectors), task, models=["logreg"])
    assert (score.n_labelled, score.n_covered) == (200, 150)
    assert score.coverage == pytest.approx(0.75)


def test_signal_beats_random_and_protocol_is_seeded(genes):
    labels = np.arange(200) % 2
    task = GeneLabels("toy", [g.symbol for g in genes], labels, ["neg", "pos"])
    emb = _table(genes, _signal_vectors(labels))
    report = run_gene_tasks({"signal": emb}, [task], options=GeneTaskOptions(n_splits=5, seed=0))
    by = {(s.embedding, s.model): s for s in report.scores}
    assert set(by) == {
        ("signal", "logreg"),
        ("signal", "rf"),
        ("random:signal", "logreg"),
        ("random:signal", "rf"),
    }
    for model in ("logreg", "rf"):
        assert by[("signal", model)].auc_mean > 0.85
        assert abs(by[("random:signal", model)].auc_mean - 0.5) < 0.15
        assert len(by[("signal", model)].fold_aucs) == 5
    again = run_gene_tasks(
        {"signal": emb}, [task], options=GeneTaskOptions(n_splits=5, seed=0, random_baseline=False)
    )
    assert again.scores[0].fold_aucs == by[("signal", "logreg")].fold_aucs


def test_multiclass_macro_auc_and_small_class_dropped(genes):
    labels = np.array([0] * 90 + [1] * 90 + [2] * 17 + [3] * 3)  # class 3 too small for 5 folds
    task = GeneLabels("fc", [g.symbol for g in genes], labels, ["a", "b", "c", "d"])
    vectors = np.random.default_rng(0).standard_normal((200, 8))
    vectors[np.arange(200), labels % 8] += 3.0
    (score,) = evaluate_task(_table(genes, vectors), task, models=["logreg"])
    assert score.metric == "macro_ovr_roc_auc" and score.auc_mean > 0.9 and score.roc is None
    assert score.details["classes_dropped_too_few_genes"] == ["d"]


def test_pair_task_with_split(genes):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    emb = _table(genes[:180], vectors[:180])
    pairs, labels = [], []
    for _ in range(600):
        a, b = rng.choice(200, 2, replace=False)
        pairs.append((genes[a].symbol, genes[b].symbol))
        labels.append(int(vectors[a, 0] + vectors[b, 0] > 0))  # learnable from the summed vector
    is_test = np.arange(600) >= 450
    task = PairLabels("pairs", pairs, np.array(labels), is_test)
    (score,) = evaluate_task(emb, task)
    covered_test = sum(
        1 for (a, b), t in zip(pairs, is_test, strict=False) if t and a in emb.symbols and b in emb.symbols
    )
    assert score.n_labelled == 150 and score.n_covered == covered_test and score.auc_mean > 0.9
    assert score.details["train_pairs"] == 450
    np.testing.assert_allclose(
        pair_features(vectors, np.array([1]), np.array([2])), vectors[[1]] + vectors[[2]]
    )


def _hub_pairs(genes, n_genes=100, n_each=400, seed=0):
    """Positives among a random half of the genes ("hubs"), negatives among all: a per-gene, not per-pair, signal."""
    rng = np.random.default_rng(seed)
    hubs = np.flatnonzero(rng.random(n_genes) < 0.5)
    positives: set[tuple[int, int]] = set()
    negatives: set[tuple[int, int]] = set()
    while len(positives) < n_each:
        positives.add(tuple(sorted(int(g) for g in rng.choice(hubs, 2, replace=False))))
    while len(negatives) < n_each:
        pair = tuple(sorted(int(g) for g in rng.choice(n_genes, 2, replace=False)))
        if pair not in positives:
            negatives.add(pair)
    pairs = sorted(positives) + sorted(negatives)
    labels = np.array([1] * n_each + [0] * n_each)
    return PairLabels("hubs", [(genes[a].symbol, genes[b].symbol) for a, b in pairs], labels), pairs


def test_gene_disjoint_folds_share_no_gene_and_count_their_pairs():
    rng = np.random.default_rng(4)
    gene_a, gene_b = rng.integers(0, 60, 500), rng.integers(60, 120, 500)
    gene_b[:100] = gene_a[:100] + 1  # some pairs within the first genes, so the groups mix
    folds = gene_disjoint_folds(gene_a, gene_b, n_splits=5, seed=0)
    assert len(folds) == 5
    tested = np.concatenate([f.test for f in folds])
    assert len(tested) == len(set(tested.tolist()))  # each pair tested at most once: out-of-fold scores pool
    for fold in folds:
        train_genes = set(gene_a[fold.train]) | set(gene_b[fold.train])
        test_genes = set(gene_a[fold.test]) | set(gene_b[fold.test])
        assert test_genes and not train_genes & test_genes
        assert fold.counts() == {"train": len(fold.train), "test": len(fold.test), "dropped": fold.dropped}
        assert len(fold.train) + len(fold.test) + fold.dropped == 500
    again = gene_disjoint_folds(gene_a, gene_b, n_splits=5, seed=0)
    assert all(
        (f.test == g.test).all() and (f.train == g.train).all() for f, g in zip(folds, again, strict=True)
    )
    other = gene_disjoint_folds(gene_a, gene_b, n_splits=5, seed=1)
    assert any(
        len(f.test) != len(g.test) or (f.test != g.test).any() for f, g in zip(folds, other, strict=True)
    )
    # Folds over pairs keep every pair and test each once.
    y = np.arange(500) % 2
    assert sorted(np.concatenate([f.test for f in pair_folds(y)]).tolist()) == list(range(500))
    with pytest.raises(BioprofileInputError, match="3 distinct genes cannot be split into 5"):
        gene_disjoint_folds(np.array([0, 1]), np.array([1, 2]))


def test_random_vectors_leak_under_pair_folds_not_under_gene_disjoint_folds(genes):
    task, pairs = _hub_pairs(genes)
    emb = random_embeddings(_table(genes[:100], np.zeros((100, 64))), seed=1)  # 64 random dims per gene
    (leaky,) = evaluate_task(emb, task, pair_split="pairs")
    (disjoint,) = evaluate_task(emb, task)  # gene-disjoint is the default
    # Genes recur between train and test pairs: a model learns which genes are hubs from random vectors.
    assert leaky.protocol == "stratified 5-fold" and leaky.auc_mean > 0.8
    # No test gene was seen in training: random vectors are at chance.
    assert disjoint.protocol == "gene-disjoint 5-fold" and abs(disjoint.auc_mean - 0.5) < 0.15
    folds = disjoint.details["folds"]
    assert len(folds) == 5 and all(f["train"] + f["test"] + f["dropped"] == 800 for f in folds)
    assert disjoint.details["pairs_tested"] == sum(f["test"] for f in folds) < 800
    assert [f["test"] for f in leaky.details["folds"]] == [160] * 5
    row = disjoint.row()["pairs per fold (train/test)"]
    assert row == " · ".join(f"{f['train']}/{f['test']}" for f in folds)
    # No gene of a fold's test pairs is in its training pairs, checked on the gene symbols.
    symbols = np.array([[genes[a].symbol, genes[b].symbol] for a, b in pairs])
    for fold in gene_disjoint_folds(*np.array(pairs).T, n_splits=5, seed=0):
        assert not set(symbols[fold.train].ravel()) & set(symbols[fold.test].ravel())
    assert [f.counts() for f in gene_disjoint_folds(*np.array(pairs).T, n_splits=5, seed=0)] == folds


def test_given_split_wins_and_run_gene_tasks_reports_the_pair_split(genes):
    task, _ = _hub_pairs(genes)
    emb = _table(genes[:100], np.random.default_rng(2).standard_normal((100, 8)))
    report = run_gene_tasks({"t": emb}, [task], options=GeneTaskOptions(random_baseline=False))
    (score,) = report.scores
    assert score.protocol == "gene-disjoint 5-fold" and report.settings["pair_split"] == "gene-disjoint"
    assert "pairs per fold (train/test)" in report.to_markdown()
    pairs_report = run_gene_tasks(
        {"t": emb}, [task], options=GeneTaskOptions(random_baseline=False, pair_split="pairs")
    )
    assert pairs_report.scores[0].protocol == "stratified 5-fold"
    split = PairLabels("split", task.pairs, task.labels, np.arange(800) % 4 == 0)
    for pair_split in ("gene-disjoint", "pairs"):
        (given,) = evaluate_task(emb, split, pair_split=pair_split)
        assert given.protocol == "given train/test split" and given.details["pair_split"] == "given"
        assert given.details["folds"] == [{"train": 600, "test": 200, "dropped": 0}]
    with pytest.raises(BioprofileInputError, match="unknown pair_split 'genes'") as err:
        GeneTaskOptions(pair_split="genes")
    assert err.value.argument == "pair_split"
    # Too few genes for every gene-disjoint fold to hold both classes: a clear error naming the way out.
    few = PairLabels("few", task.pairs[:12] + task.pairs[-12:], np.array([1] * 12 + [0] * 12))
    with pytest.raises(BioprofileInputError, match="gene-disjoint fold") as err:
        evaluate_task(emb, few, n_splits=5)
    assert err.value.argument == "pair_split"


def test_too_little_coverage_is_a_clear_error(genes):
    task = GeneLabels("toy", [g.symbol for g in genes], np.arange(200) % 2, ["neg", "pos"])
    emb = _table(genes[:6], np.ones((6, 4)))
    with pytest.raises(BioprofileInputError, match="only 6 of 200 labelled genes"):
        evaluate_task(emb, task)
    # In a multi-table run the table that cannot be scored is reported, the others scored.
    full = _table(genes, _signal_vectors(task.labels))
    report = run_gene_tasks(
        {"small": emb, "full": full},
        [task],
        options=GeneTaskOptions(models=["logreg"], random_baseline=False),
    )
    assert [s.embedding for s in report.scores] == ["full"]
    assert report.skipped[0]["embedding"] == "small" and "not scored: toy on small" in report.to_markdown()


def test_cross_validation_rejects_tiny_class():
    with pytest.raises(ValueError, match="at least 5"):
        cross_validated_auc(np.zeros((10, 2)), np.array([0] * 8 + [1] * 2))


def test_random_embeddings_same_genes_fixed_seed(genes):
    emb = _table(genes[:10], np.ones((10, 6)))
    a, b = random_embeddings(emb, seed=4), random_embeddings(emb, seed=4)
    assert a.symbols == emb.symbols and a.vectors.shape == (10, 6)
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_text_length_feature_values(genes):
    texts = ["one", "two words", "", "a b c d e f g", "  spaced   out\ttext\n"]
    emb = GeneEmbeddings(
        [g.hgnc_id for g in genes[:5]],
        [g.symbol for g in genes[:5]],
        texts,
        np.ones((5, 3)),
        provenance={"encoder": "mini"},
    )
    length = text_length_embeddings(emb)
    assert length.symbols == [genes[i].symbol for i in (0, 1, 3, 4)]  # the gene without a text is left out
    np.testing.assert_allclose(length.vectors[:, 0], np.log1p([1, 2, 7, 3]), rtol=1e-6)
    assert length.dim == 1 and length.provenance["source"] == "text_length"
    assert length.provenance["n_genes_without_text"] == 1 and length.provenance["like"] == "mini"
    with pytest.raises(BioprofileInputError, match="no profile texts"):
        text_length_embeddings(_table(genes[:5], np.ones((5, 3))))


def test_text_length_baseline_scores_length_labels_only(genes):
    rng = np.random.default_rng(0)
    long = np.arange(200) % 2  # label 1: long texts, label 0: short ones
    words = np.where(long == 1, rng.integers(40, 80, 200), rng.integers(5, 30, 200))
    emb = GeneEmbeddings(
        [g.hgnc_id for g in genes],
        [g.symbol for g in genes],
        [" ".join(["word"] * n) for n in words],
        rng.standard_normal((200, 8)),
    )
    symbols = [g.symbol for g in genes]
    by_length = GeneLabels("by_length", symbols, long, ["short", "long"])
    unrelated = GeneLabels("unrelated", symbols, rng.permutation(long), ["neg", "pos"])
    no_text = _table(genes, rng.standard_normal((200, 8)))  # like a GenePT pickle
    report = run_gene_tasks(
        {"profiles": emb, "genept": no_text},
        [by_length, unrelated],
        options=GeneTaskOptions(models=["logreg"], random_baseline=False, text_length_baseline=True),
    )
    auc = {(s.embedding, s.task): s.auc_mean for s in report.scores}
    assert set(auc) == {
        (e, t) for e in ("profiles", "genept", "length:profiles") for t in ("by_length", "unrelated")
    }
    assert auc[("length:profiles", "by_length")] == 1.0
    assert abs(auc[("length:profiles", "unrelated")] - 0.5) < 0.2
    assert [(s["embedding"], s["task"]) for s in report.skipped] == [
        ("length:genept", "by_length"),
        ("length:genept", "unrelated"),
    ]
    assert report.settings["embeddings"]["length:profiles"]["dim"] == 1


class _CountingEncoder:
    """Wraps an encoder and records every text it is asked to encode."""

    def __init__(self, encoder):
        self.inner, self.id, self.dim, self.seen = encoder, encoder.id, encoder.dim, []

    def encode(self, texts):
        self.seen.extend(texts)
        return self.inner.encode(texts)


def test_symbol_embeddings_encode_the_bare_symbols(tmp_path, genes, tiny_bert_dir):
    from bioprofile.encoders import get_encoder
    from bioprofile.store import Store

    encoder = get_encoder(f"hf:{tiny_bert_dir}")
    emb = GeneEmbeddings(
        [g.hgnc_id for g in genes[:12]],
        [g.symbol for g in genes[:12]],
        ["a profile"] * 12,
        np.ones((12, 3)),
        provenance={"encoder": "some-profile-encoder"},
    )
    with Store(tmp_path / "store.sqlite") as store:
        sym = symbol_embeddings(emb, encoder, store=store)
        again = symbol_embeddings(
            emb, f"hf:{tiny_bert_dir}", store=store
        )  # a spec works too, and hits the cache
    assert sym.texts == sym.symbols == emb.symbols and sym.ids == emb.ids
    np.testing.assert_allclose(sym.vectors, encoder.encode(emb.symbols), atol=1e-5)
    np.testing.assert_array_equal(again.vectors, sym.vectors)
    assert sym.provenance["source"] == "symbol" and sym.provenance["encoder"] == encoder.id
    assert sym.provenance["like"] == "some-profile-encoder"


def test_table_encoder_rebuilds_only_locatable_ids(genes, tiny_bert_dir):
    from bioprofile.encoders import DEFAULT_ENCODER_ID, get_encoder
    from bioprofile.evaluate.gene_tasks.baselines import table_encoder

    def table(encoder_id):
        return GeneEmbeddings(["HGNC:1"], ["A1BG"], [""], np.ones((1, 2)), provenance={"encoder": encoder_id})

    # The default encoder loads its model lazily, so rebuilding it here costs nothing.
    assert table_encoder(table(DEFAULT_ENCODER_ID)).id == DEFAULT_ENCODER_ID
    assert table_encoder(GeneEmbeddings(["HGNC:1"], ["A1BG"], [""], np.ones((1, 2)))).id == DEFAULT_ENCODER_ID
    local_id = get_encoder(f"hf:{tiny_bert_dir}").id  # "<dir>@<hash>:mean:512": the path is not in it
    for unresolvable in (local_id, "genept-released", "no-such-org/no-such-model:mean:512"):
        with pytest.raises(BioprofileInputError, match="pass encoder") as err:
            table_encoder(table(unresolvable))
        assert err.value.argument == "encoder"
    with pytest.raises(BioprofileInputError, match="pass encoder"):
        symbol_embeddings(table(local_id), None)


def test_run_gene_tasks_symbol_baseline(tmp_path, genes, tiny_bert_dir, monkeypatch):
    from bioprofile.encoders import get_encoder
    from bioprofile.evaluate.gene_tasks import benchmark
    from bioprofile.store import Store

    tiny = get_encoder(f"hf:{tiny_bert_dir}")
    genes = genes[:40]
    labels = np.arange(40) % 2
    task = GeneLabels("toy", [g.symbol for g in genes], labels, ["neg", "pos"])
    tables = {
        name: GeneEmbeddings(
            [g.hgnc_id for g in genes],
            [g.symbol for g in genes],
            [""] * 40,
            _signal_vectors(labels, seed=seed),
            provenance={"encoder": tiny.id},
        )
        for seed, name in enumerate(["a", "b"])
    }
    counting = _CountingEncoder(tiny)
    with Store(tmp_path / "store.sqlite") as store:
        report = run_gene_tasks(
            tables,
            [task],
            options=GeneTaskOptions(
                models=["logreg"], random_baseline=False, symbol_baseline=True, encoder=counting
            ),
            store=store,
        )
    auc = {s.embedding: s.auc_mean for s in report.scores}
    assert set(auc) == {"a", "b", "symbol:a", "symbol:b"} and auc["symbol:a"] == auc["symbol:b"]
    assert sorted(counting.seen) == sorted(tables["a"].symbols)  # two tables, one encoder: each symbol once
    assert report.settings["embeddings"]["symbol:a"]["provenance"]["source"] == "symbol"

    assert report.settings["baselines"] == {
        "random": False,
        "text_length": False,
        "symbol": True,
        "encoder": tiny.id,
    }

    # Without an encoder each table's recorded encoder is rebuilt, once per encoder id.
    symbol_only = GeneTaskOptions(models=["logreg"], random_baseline=False, symbol_baseline=True)
    rebuilt = []
    monkeypatch.setattr(benchmark, "table_encoder", lambda emb: rebuilt.append(emb) or tiny)
    with Store(tmp_path / "store.sqlite") as store:
        report = run_gene_tasks(tables, [task], options=symbol_only, store=store)
    assert len(rebuilt) == 1 and {"symbol:a", "symbol:b"} <= {s.embedding for s in report.scores}
    monkeypatch.undo()
    # A local model directory's id cannot be turned back into a path: the user is told to pass an encoder.
    with (
        Store(tmp_path / "store.sqlite") as store,
        pytest.raises(BioprofileInputError, match="symbol baseline for 'a'.*pass encoder") as err,
    ):
        run_gene_tasks(tables, [task], options=symbol_only, store=store)
    assert err.value.argument == "encoder"


def test_report_outputs(tmp_path, genes):
    labels = np.arange(200) % 2
    task = GeneLabels("toy", [g.symbol for g in genes], labels, ["neg", "pos"])
    report = run_gene_tasks(
        {"signal": _table(genes, _signal_vectors(labels))}, [task], options=GeneTaskOptions(models=["logreg"])
    )
    table = report.to_markdown()
    assert table.count("\n") == 4 and "200/200 (100.0%)" in table and "±" in table
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["scores"][0]["n_covered"] == 200
    pl.roc_panels(report.roc_panels(), tmp_path / "roc.png")
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert markdown_table([{"a": 1.0, "b": "x|y"}]).splitlines()[2] == "| 1.000 | x\\|y |"


def test_report_writes_itself_with_settings_and_provenance(tmp_path, genes):
    from bioprofile._version import __version__

    labels = np.arange(200) % 2
    task = GeneLabels("toy", [g.symbol for g in genes], labels, ["neg", "pos"])
    options = GeneTaskOptions(models=["logreg"], seed=3)
    report = run_gene_tasks({"signal": _table(genes, _signal_vectors(labels))}, [task], options=options)
    written = report.write(tmp_path / "run")
    assert written == [tmp_path / "run.md", tmp_path / "run.json"]
    assert (tmp_path / "run.md").read_text() == report.to_markdown()
    payload = json.loads((tmp_path / "run.json").read_text())
    assert payload["settings"]["seed"] == 3 and payload["settings"]["models"] == ["logreg"]
    assert payload["settings"]["tasks"] == ["toy"] and payload["settings"]["baselines"]["random"] is True
    assert payload["provenance"]["bioprofile"] == __version__
    assert payload["provenance"]["libraries"]["scikit-learn"]
    assert [s["auc_mean"] for s in payload["scores"]] == [s.auc_mean for s in report.scores]
    figure = pl.roc_panels(report, show=False, return_fig=True)  # a report is drawn as its roc_panels()
    assert len([ax for ax in figure.axes if ax.lines]) == 1
    with pytest.raises(BioprofileInputError, match="output directory .* does not exist"):
        report.write(tmp_path / "missing" / "run")


def test_roc_panels_stay_readable_with_many_curves():
    grid = np.linspace(0, 1, 11)
    curves = {f"table {i}": RocCurve(grid, grid ** (1 / (1 + i / 4)), 0.5 + i / 30) for i in range(14)}
    figure = pl.roc_panels({"dosage": curves}, show=False, return_fig=True)
    (ax,) = [ax for ax in figure.axes if ax.lines]
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[0].startswith("table 13") and labels[-2].startswith("table 0")  # best first, chance last
    assert (
        legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1
    )  # beside the panel, not over the curves
    drawn = [(line.get_color(), line.get_linestyle()) for line in ax.lines[:14]]
    assert len(set(drawn)) == 14  # no two curves look alike
    few = pl.roc_panels({"dosage": dict(list(curves.items())[:3])}, show=False, return_fig=True)
    assert [ax for ax in few.axes if ax.lines][0].get_legend()._loc == 4  # lower right, inside


def test_options_are_checked_when_made():
    with pytest.raises(BioprofileInputError, match="unknown models 'svm'") as err:
        GeneTaskOptions(models=["logreg", "svm"])
    assert err.value.argument == "models"
    with pytest.raises(BioprofileInputError, match="n_splits must be at least 2, got 1"):
        GeneTaskOptions(n_splits=1)
    with pytest.raises(
        BioprofileInputError, match="encoder only sets the model of the symbol_baseline"
    ) as err:
        GeneTaskOptions(encoder="minilm")
    assert err.value.argument == "encoder"
    assert GeneTaskOptions(models=[]).models is None and GeneTaskOptions(models=["rf"]).models == ("rf",)


def test_unknown_task_names_fail_before_any_baseline(genes):
    class _Refuses:
        id, dim = "refuses", 2

        def encode(self, texts):
            raise AssertionError("no symbol may be encoded before the task names are checked")

    options = GeneTaskOptions(symbol_baseline=True, encoder=_Refuses())
    with pytest.raises(BioprofileInputError, match="unknown gene tasks 'dosge'") as err:
        run_gene_tasks(_table(genes[:10], np.ones((10, 2))), ["dosage", "dosge"], options=options)
    assert err.value.argument == "tasks"


def test_bench_gene_tasks_command(tmp_path, genes):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    labels = np.arange(200) % 2
    _table(genes, _signal_vectors(labels)).write(tmp_path / "signal.parquet")
    (tmp_path / "toy.csv").write_text(
        "gene,label\n" + "".join(f"{g.symbol},{y}\n" for g, y in zip(genes, labels, strict=True))
    )
    runner = CliRunner()
    base = [
        "bench",
        "gene-tasks",
        "-e",
        str(tmp_path / "signal.parquet"),
        "--labels",
        str(tmp_path / "toy.csv"),
    ]
    result = runner.invoke(app, [*base, "--models", "logreg", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for suffix in (".md", ".json", ".png"):
        assert (tmp_path / f"out{suffix}").stat().st_size > 0
    payload = json.loads((tmp_path / "out.json").read_text())
    assert {s["embedding"] for s in payload["scores"]} == {"signal", "random:signal"}

    # The output folder is checked before anything is loaded: a missing table is not even looked at.
    missing = runner.invoke(
        app, ["bench", "gene-tasks", "-e", str(tmp_path / "none.parquet"), "-o", str(tmp_path / "no" / "out")]
    )
    assert missing.exit_code == 2 and "output directory" in missing.stderr
    # Bad options fail before any scoring, through the CLI's one error boundary.
    encoder = runner.invoke(app, [*base, "--encoder", "minilm", "-o", str(tmp_path / "out")])
    assert encoder.exit_code == 2 and "only sets the model of the" in encoder.stderr
    bad_model = runner.invoke(app, [*base, "--models", "svm", "-o", str(tmp_path / "out")])
    assert bad_model.exit_code == 2 and "'svm': choose from logreg, rf" in bad_model.stderr
    bad_split = runner.invoke(app, [*base, "--pair-split", "genes", "-o", str(tmp_path / "out")])
    assert bad_split.exit_code == 2 and "unknown --pair-split 'genes'" in bad_split.stderr


def test_bench_gene_tasks_pair_split_flag(tmp_path, genes):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    task, _ = _hub_pairs(genes)
    random_embeddings(_table(genes[:100], np.zeros((100, 64))), seed=1).write(tmp_path / "rand.parquet")
    (tmp_path / "hubs.csv").write_text(
        "gene_a,gene_b,label\n"
        + "".join(f"{a},{b},{y}\n" for (a, b), y in zip(task.pairs, task.labels, strict=True))
    )
    base = [
        "bench",
        "gene-tasks",
        "-e",
        str(tmp_path / "rand.parquet"),
        "--labels",
        str(tmp_path / "hubs.csv"),
    ]
    runner = CliRunner()
    aucs = {}
    for split in ("pairs", "gene-disjoint"):
        result = runner.invoke(
            app, [*base, "--no-random", "--pair-split", split, "-o", str(tmp_path / split)]
        )
        assert result.exit_code == 0, result.output
        payload = json.loads((tmp_path / f"{split}.json").read_text())
        assert payload["settings"]["pair_split"] == split
        aucs[split] = payload["scores"][0]["auc_mean"]
        assert "pairs per fold (train/test)" in (tmp_path / f"{split}.md").read_text()
    assert aucs["pairs"] > 0.8 and abs(aucs["gene-disjoint"] - 0.5) < 0.15
    default = runner.invoke(app, [*base, "--no-random", "-o", str(tmp_path / "default")])
    assert default.exit_code == 0, default.output
    assert (
        json.loads((tmp_path / "default.json").read_text())["scores"][0]["protocol"] == "gene-disjoint 5-fold"
    )


def test_bench_gene_tasks_errors_name_the_flags(tmp_path):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    result = CliRunner().invoke(
        app,
        [
            "bench",
            "gene-tasks",
            "-e",
            str(tmp_path / "t.parquet"),
            "--encoder",
            "minilm",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert (
        "--encoder only sets the model of the --symbol-baseline: turn --symbol-baseline on" in result.stderr
    )


# --------------------------------------------------------------------------- real text embeddings


@pytest.mark.slow
def test_refseq_text_embeddings_beat_random_on_dosage(shared_data, tmp_path):
    from bioprofile.pipeline import embed_genes
    from bioprofile.store import Store

    dosage = load_dosage_labels(shared_data / "genept/dosage_sens_tf_labels.csv")
    wanted = set(normalize_genes(dosage.fallback).inputs.values())
    summaries = {}
    for line in (shared_data / "geneagent/gene_narrative_synopsis.txt").read_text().splitlines():
        symbol, _, text = line.partition(":")
        if symbol.strip() in wanted and text.strip():
            summaries.setdefault(symbol.strip(), text.strip())
    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_genes(list(summaries), summaries=summaries, store=store)
    # Only 39 of the 490 TFs have a RefSeq summary; a forest separates them from random vectors clearly.
    report = run_gene_tasks({"refseq": emb}, [dosage], options=GeneTaskOptions(models=["rf"], seed=0))
    real, rand = (
        next(s for s in report.scores if s.embedding == name) for name in ("refseq", "random:refseq")
    )
    assert real.n_covered == len(emb) < real.n_labelled == 490
    assert real.auc_mean > 0.65 and real.auc_mean > rand.auc_mean + 0.15


def test_cli_bench_gene_tasks_with_user_labels(tmp_path, genes):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    labels = np.arange(200) % 2
    _table(genes, _signal_vectors(labels)).write(tmp_path / "mine.parquet")
    _table(genes, np.random.default_rng(5).standard_normal((200, 16))).write(tmp_path / "other.parquet")
    (tmp_path / "task.csv").write_text(
        "ensembl_id,label\n" + "".join(f"{g.ensembl_id},{y}\n" for g, y in zip(genes, labels, strict=False))
    )
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "gene-tasks",
            "-e",
            str(tmp_path / "mine.parquet"),
            "-e",
            str(tmp_path / "other.parquet"),
            "--labels",
            str(tmp_path / "task.csv"),
            "--models",
            "logreg",
            "--no-random",
            "--text-length-baseline",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "out.json").read_text())
    aucs = {s["embedding"]: s["auc_mean"] for s in payload["scores"]}
    assert aucs["mine"] > 0.85 and aucs["other"] < 0.7  # side by side, one row each
    # These tables carry no texts, so the length baseline is listed as not scored rather than failing the run.
    assert {s["embedding"] for s in payload["skipped"]} == {"length:mine", "length:other"}
    assert (tmp_path / "out.png").is_file() and "| task |" in (tmp_path / "out.md").read_text()

    missing = CliRunner().invoke(
        app,
        [
            "bench",
            "gene-tasks",
            "-e",
            str(tmp_path / "nope.parquet"),
            "--labels",
            str(tmp_path / "task.csv"),
            "-o",
            str(tmp_path / "x"),
        ],
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_cli_bench_gene_tasks_symbol_baseline(tmp_path, genes, tiny_bert_dir):
    from typer.testing import CliRunner

    from bioprofile.cli import app
    from bioprofile.encoders import get_encoder

    tiny_id = get_encoder(f"hf:{tiny_bert_dir}").id
    genes = genes[:40]
    labels = np.arange(40) % 2
    table = _table(genes, _signal_vectors(labels))
    table.provenance = {"encoder": tiny_id}
    table.write(tmp_path / "mine.parquet")
    (tmp_path / "task.csv").write_text(
        "gene,label\n" + "".join(f"{g.symbol},{y}\n" for g, y in zip(genes, labels, strict=False))
    )
    args = [
        "bench",
        "gene-tasks",
        "-e",
        str(tmp_path / "mine.parquet"),
        "--labels",
        str(tmp_path / "task.csv"),
        "--models",
        "logreg",
        "--no-random",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = CliRunner().invoke(
        app, args + ["--symbol-baseline", "--encoder", f"hf:{tiny_bert_dir}", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "out.json").read_text())
    assert {s["embedding"] for s in payload["scores"]} == {"mine", "symbol:mine"}
    assert payload["settings"]["embeddings"]["symbol:mine"]["provenance"]["encoder"] == tiny_id
    assert "symbol:mine" in (tmp_path / "out.md").read_text()

    unresolvable = CliRunner().invoke(app, args + ["--symbol-baseline", "-o", str(tmp_path / "x")])
    assert unresolvable.exit_code == 2 and "--encoder" in unresolvable.output
    stray = CliRunner().invoke(app, args + ["--encoder", f"hf:{tiny_bert_dir}", "-o", str(tmp_path / "y")])
    assert stray.exit_code == 2 and "--symbol-baseline" in stray.output
