"""GenePT's gene-level benchmarks: score any gene embedding table on labelled genes and gene pairs.

Protocol (as GenePT, Chen & Zou 2024)
-------------------------------------
- Gene classification (dosage-sensitive TFs, bivalent promoters, TF range, functional class): stratified 5-fold
  cross-validation over the labelled genes that have a vector, logistic regression and random forest, ROC-AUC
  mean ± std over folds, fixed seeds. Functional class is multi-class: macro one-vs-rest ROC-AUC.
- Gene pairs (Gene2vec GGI, PPI): the pair feature is the sum of the two gene vectors; with a given train/test
  split (GGI) the model is fit on covered train pairs and scored on covered test pairs, otherwise 5-fold CV.
- A random-vector baseline: the same genes, standard-normal vectors of the same dimension, fixed seed.
- Coverage: how many labelled genes (or pairs) had vectors is reported beside every score.

Labels are matched to embedding rows through :func:`bioprofile.genes.normalize_genes`, so Ensembl-labelled tasks
score symbol-keyed tables and vice versa.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.report import RocCurve, format_mean_std, markdown_table

__all__ = [
    "DEFAULT_TASKS",
    "TASKS",
    "GeneLabels",
    "GeneTaskReport",
    "PairLabels",
    "TaskScore",
    "cross_validated_auc",
    "evaluate_task",
    "load_dosage_labels",
    "load_embedding_table",
    "load_gene2vec_pairs",
    "load_gene_class_pickle",
    "load_gene_types",
    "load_pair_table",
    "load_task",
    "load_user_labels",
    "make_classifier",
    "match_genes",
    "pair_features",
    "random_embeddings",
    "run_gene_tasks",
    "train_test_auc",
]

#: Gene types of the functional-class task: the Ensembl biotypes with >= 1,000 genes in GenePT's table that
#: are not catch-alls (TEC = "to be experimentally confirmed").
FUNCTIONAL_CLASSES = (
    "protein_coding",
    "lncRNA",
    "processed_pseudogene",
    "unprocessed_pseudogene",
    "misc_RNA",
    "snRNA",
    "miRNA",
    "snoRNA",
)
GENE_MODELS = ("logreg", "rf")
PAIR_MODELS = ("logreg",)  # a forest on ~10^5 pairs takes far longer than the rest together; opt in with models=


# --------------------------------------------------------------------------- labelled data


@dataclass
class GeneLabels:
    """Genes with a class each.

    Attributes
    ----------
    name
        Task name.
    genes
        Gene identifiers as the label file writes them (any kind :func:`~bioprofile.genes.normalize_genes` reads).
    labels
        Integer class per gene (``0``/``1`` for binary tasks, ``1`` the positive class).
    classes
        Class names, indexed by label.
    fallback
        Optional second identifier per gene (e.g. the symbol beside an Ensembl id), tried when the first fails.
    """

    name: str
    genes: list[str]
    labels: np.ndarray
    classes: list[str]
    fallback: list[str] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.genes) != len(self.labels):
            raise ValueError(f"{len(self.genes)} genes but {len(self.labels)} labels")


@dataclass
class PairLabels:
    """Gene pairs with a 0/1 label each, optionally split into train and test.

    Attributes
    ----------
    name
        Task name.
    pairs
        ``(gene_a, gene_b)`` identifiers.
    labels
        ``1`` for an interacting pair.
    is_test
        Boolean per pair, or ``None`` to cross-validate.
    """

    name: str
    pairs: list[tuple[str, str]]
    labels: np.ndarray
    is_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.pairs) != len(self.labels):
            raise ValueError(f"{len(self.pairs)} pairs but {len(self.labels)} labels")
        if self.is_test is not None:
            self.is_test = np.asarray(self.is_test, dtype=bool)


def _read_csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh, delimiter=delimiter))
    except OSError as err:
        raise BioprofileInputError(f"cannot read label file {path}: {err.strerror}; check the path") from None


def load_dosage_labels(path: str | Path) -> GeneLabels:
    """Dosage-sensitive (1) vs dosage-insensitive (0) transcription factors.

    Parameters
    ----------
    path
        ``dosage_sens_tf_labels.csv`` with columns ``ensembl_id, gene_name, dosage_insensitive, dosage_sensitive``
        (``Yes`` marks the class).

    Returns
    -------
    GeneLabels
        122 sensitive and 368 insensitive TFs for the released file; Ensembl ids first, symbols as fallback.
    """
    rows = _read_csv_rows(Path(path))
    genes, fallback, labels = [], [], []
    for row in rows:
        sensitive = row.get("dosage_sensitive", "").strip().lower() == "yes"
        insensitive = row.get("dosage_insensitive", "").strip().lower() == "yes"
        if sensitive == insensitive:  # neither or both: no usable label
            continue
        genes.append(row["ensembl_id"].strip())
        fallback.append(row.get("gene_name", "").strip())
        labels.append(int(sensitive))
    if not genes:
        raise BioprofileInputError(f"{path} has no dosage labels: expected columns dosage_sensitive/insensitive")
    return GeneLabels("dosage", genes, np.array(labels), ["dosage_insensitive", "dosage_sensitive"], fallback)


def load_gene_types(path: str | Path, classes: Sequence[str] = FUNCTIONAL_CLASSES) -> GeneLabels:
    """Gene functional class (Ensembl gene type) as a multi-class task.

    Parameters
    ----------
    path
        ``gene_info_table.csv`` with columns ``ensembl_id, gene_name, gene_type``.
    classes
        Gene types to keep; other genes are left out.

    Returns
    -------
    GeneLabels
        One row per Ensembl id of a kept type; label = position of its type in ``classes``.
    """
    rows = _read_csv_rows(Path(path))
    position = {c: i for i, c in enumerate(classes)}
    kept = [r for r in rows if r.get("gene_type", "").strip() in position]
    if not kept:
        raise BioprofileInputError(f"{path} has no genes of types {', '.join(classes)}: expected column gene_type")
    return GeneLabels(
        "functional_class",
        [r["ensembl_id"].strip() for r in kept],
        np.array([position[r["gene_type"].strip()] for r in kept]),
        list(classes),
        [r.get("gene_name", "").strip() for r in kept],
    )


def load_gene_class_pickle(path: str | Path, name: str, positive: str, negative: str) -> GeneLabels:
    """A binary task from a Geneformer-style pickle ``{class name: [gene ids]}``, read with the safe unpickler.

    Parameters
    ----------
    path
        The pickle (e.g. ``bivalent_vs_lys4_only.pickle``).
    name
        Task name.
    positive, negative
        Text that identifies the positive / negative class key (case-insensitive substring, ``_`` and ``-``
        ignored), e.g. ``"bivalent"`` and ``"lys4"``.
    """
    from bioprofile.genept import safe_load_pickle

    table = safe_load_pickle(path)
    if not isinstance(table, dict):
        raise BioprofileInputError(f"{path} is not a {{class: [genes]}} dict")

    def squash(text: str) -> str:
        return str(text).lower().replace("_", "").replace("-", "").replace(" ", "")

    def pick(token: str) -> str:
        hits = [k for k in table if squash(token) in squash(k)]
        if len(hits) != 1:
            raise BioprofileInputError(
                f"{path}: cannot tell which key is {token!r} among {', '.join(map(str, table))}"
            )
        return hits[0]

    pos, neg = pick(positive), pick(negative)
    genes = [str(g) for g in table[pos]] + [str(g) for g in table[neg]]
    labels = [1] * len(table[pos]) + [0] * len(table[neg])
    return GeneLabels(name, genes, np.array(labels), [str(neg), str(pos)])


def load_gene2vec_pairs(directory: str | Path) -> PairLabels:
    """Gene2vec's gene-gene interaction pairs with its train/test split.

    Parameters
    ----------
    directory
        Holds ``{train,test}_{text,label}.txt``: ``GENE_A GENE_B`` per line and the 0/1 label on the same line.

    Returns
    -------
    PairLabels
        263,016 train and 21,448 test pairs for the released files.
    """
    directory = Path(directory)
    pairs, labels, is_test = [], [], []
    for split in ("train", "test"):
        try:
            texts = (directory / f"{split}_text.txt").read_text().splitlines()
            values = (directory / f"{split}_label.txt").read_text().split()
        except OSError as err:
            raise BioprofileInputError(f"cannot read Gene2vec {split} files in {directory}: {err.strerror}") from None
        texts = [t for t in texts if t.strip()]
        if len(texts) != len(values):
            raise BioprofileInputError(
                f"{directory}: {split}_text.txt has {len(texts)} pairs but {split}_label.txt {len(values)} labels"
            )
        for text, value in zip(texts, values):
            a, b = text.split()[:2]
            pairs.append((a, b))
            labels.append(int(value))
            is_test.append(split == "test")
    return PairLabels("ggi", pairs, np.array(labels), np.array(is_test))


def load_pair_table(path: str | Path, name: str = "ppi", *, seed: int = 0) -> PairLabels:
    """Gene pairs from a tab/comma table: ``gene_a, gene_b[, label[, split]]``.

    Without a label column every pair is a positive (an interactome such as HuRI); as many negatives are then
    drawn uniformly from pairs of the same genes that are not positives, with ``seed``. Self-pairs are dropped.
    A ``split`` column with ``train``/``test`` values gives a fixed split; otherwise the task is cross-validated.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise BioprofileInputError(f"cannot read pair file {path}: {err.strerror}") from None
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if r and not r[0].startswith("#")]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if {"gene_a", "gene_b"} <= set(header):
        ia, ib = header.index("gene_a"), header.index("gene_b")
        il = header.index("label") if "label" in header else None
        isplit = header.index("split") if "split" in header else None
        rows = rows[1:]
    else:
        ia, ib, il, isplit = 0, 1, None, None
    if not rows or min(len(r) for r in rows) < 2:
        raise BioprofileInputError(f"{path} needs two gene columns (gene_a, gene_b) per line")
    pairs = [(r[ia].strip(), r[ib].strip()) for r in rows]
    keep = [a != b for a, b in pairs]
    rows = [r for r, k in zip(rows, keep) if k]
    pairs = [p for p, k in zip(pairs, keep) if k]
    is_test = None
    if isplit is not None:
        splits = [r[isplit].strip().lower() for r in rows]
        if set(splits) - {"train", "test"}:
            raise BioprofileInputError(f"{path}: the split column may only hold 'train' or 'test'")
        is_test = np.array([s == "test" for s in splits])
    if il is not None:
        labels = _binary_labels([r[il] for r in rows], path)
        return PairLabels(name, pairs, labels, is_test)
    positives = {frozenset(p) for p in pairs}
    pairs = [tuple(sorted(p)) for p in positives]
    pairs.sort()
    genes = sorted({g for p in pairs for g in p})
    rng = np.random.default_rng(seed)
    negatives: set[frozenset] = set()
    max_negatives = len(genes) * (len(genes) - 1) // 2 - len(positives)
    target = min(len(pairs), max_negatives)
    while len(negatives) < target:
        a, b = rng.choice(len(genes), size=2, replace=False)
        candidate = frozenset((genes[a], genes[b]))
        if candidate not in positives:
            negatives.add(candidate)
    negative_pairs = sorted(tuple(sorted(p)) for p in negatives)
    return PairLabels(name, pairs + negative_pairs, np.array([1] * len(pairs) + [0] * len(negative_pairs)))


def _binary_labels(values: Sequence[str], path: Path) -> np.ndarray:
    """0/1 from a label column: 0/1, true/false, yes/no, or exactly two other values (sorted, the last is 1)."""
    cleaned = [str(v).strip().lower() for v in values]
    distinct = sorted(set(cleaned))
    known = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "0.0": 0, "1.0": 1}
    if set(distinct) <= set(known):
        out = np.array([known[v] for v in cleaned])
    elif len(distinct) == 2:
        out = np.array([int(v == distinct[1]) for v in cleaned])
    else:
        raise BioprofileInputError(
            f"{path}: the label column must hold two classes (0/1), found {len(distinct)}: {', '.join(distinct[:5])}"
        )
    if len(set(out.tolist())) < 2:
        raise BioprofileInputError(f"{path}: every label is the same; a task needs both classes")
    return out


def load_user_labels(path: str | Path) -> GeneLabels | PairLabels:
    """A user's own task from a CSV/TSV file.

    Parameters
    ----------
    path
        Either a gene column (``gene``, ``symbol``, ``gene_name``, ``ensembl_id`` or ``gene_id``) and a binary
        ``label`` column, or ``gene_a, gene_b, label`` (and an optional ``split`` of train/test) for an
        interaction task.

    Returns
    -------
    GeneLabels or PairLabels
        Named after the file stem.
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() in {".tsv", ".txt"} else ","
    rows = _read_csv_rows(path, delimiter)
    header = {k.strip().lower(): k for k in (rows[0].keys() if rows else [])}
    if {"gene_a", "gene_b"} <= set(header):
        if "label" not in header:
            raise BioprofileInputError(f"{path}: a pair task needs a 'label' column beside gene_a and gene_b")
        return load_pair_table(path, name=path.stem)
    gene_column = next((header[c] for c in ("gene", "symbol", "gene_name", "ensembl_id", "gene_id") if c in header), None)
    if gene_column is None or "label" not in header:
        raise BioprofileInputError(
            f"{path} needs a gene column (gene, symbol or ensembl_id) and a 'label' column, or gene_a,gene_b,label"
        )
    rows = [r for r in rows if (r.get(gene_column) or "").strip()]
    labels = _binary_labels([r[header["label"]] for r in rows], path)
    return GeneLabels(path.stem, [r[gene_column].strip() for r in rows], labels, ["0", "1"])


# name -> (manifest, loader of the fetched files). Paths are relative to the data directory.
TASKS: dict[str, tuple[str, Any]] = {
    "dosage": ("genept_dosage_tf", lambda d: load_dosage_labels(d / "genept/dosage_sens_tf_labels.csv")),
    "bivalent_vs_no_methyl": (
        "geneformer_chromatin",
        lambda d: load_gene_class_pickle(
            d / "geneformer/bivalent_vs_no_methyl.pickle", "bivalent_vs_no_methyl", "bivalent", "methyl"
        ),
    ),
    "bivalent_vs_lys4_only": (
        "geneformer_chromatin",
        lambda d: load_gene_class_pickle(
            d / "geneformer/bivalent_vs_lys4_only.pickle", "bivalent_vs_lys4_only", "bivalent", "lys4"
        ),
    ),
    "tf_range": (
        "geneformer_tf_range",
        lambda d: load_gene_class_pickle(d / "geneformer/tf_regulatory_range.pickle", "tf_range", "long", "short"),
    ),
    "ggi": ("gene2vec_ggi", lambda d: load_gene2vec_pairs(d / "gene2vec")),
    "ppi": ("ppi_pairs", lambda d: load_pair_table(d / "ppi/HuRI.tsv", "ppi")),
    "functional_class": ("genept_gene_info", lambda d: load_gene_types(d / "genept/gene_info_table.csv")),
}
#: Tasks whose data have recorded hashes (the others need ``trust_unverified`` on first download).
DEFAULT_TASKS = ("dosage", "ggi", "functional_class")


def load_task(
    name: str, *, data_dir: str | Path | None = None, trust_unverified: bool = False
) -> GeneLabels | PairLabels:
    """Load a built-in task's labels, from ``data_dir`` when it holds a verified copy, else the download cache.

    Parameters
    ----------
    name
        One of :data:`TASKS`.
    data_dir
        A directory laid out like the project's ``shared/data`` (checked by sha256 before use).
    trust_unverified
        Allow downloading data whose hash is not yet recorded.
    """
    from bioprofile.data import data_cache_dir, fetch_dataset, load_manifest

    if name not in TASKS:
        raise BioprofileInputError(f"unknown gene task {name!r}: choose from {', '.join(TASKS)}")
    manifest_name, loader = TASKS[name]
    manifest = load_manifest(manifest_name)
    fetched = fetch_dataset(manifest, data_dir=data_dir, trust_unverified=trust_unverified)
    # All files of a manifest share one root: the fetched path minus the manifest's relative path.
    root = Path(str(fetched[0].path)[: -len(manifest.files[0].path)]) if fetched else data_cache_dir()
    return loader(root)


# --------------------------------------------------------------------------- matching labels to vectors


def _canonical_ids(identifiers: Sequence[str]) -> dict[str, str]:
    """identifier → HGNC id for every identifier that resolves to exactly one gene."""
    from bioprofile.genes import normalize_genes

    unique = [i for i in dict.fromkeys(identifiers) if i]
    if not unique:
        return {}
    try:
        resolution = normalize_genes(unique)
    except BioprofileInputError:  # none resolved
        return {}
    hgnc_of = {g.symbol: g.hgnc_id for g in resolution.genes}
    return {key: hgnc_of[symbol] for key, symbol in resolution.inputs.items()}


class _EmbeddingIndex:
    """Find an embedding row for any gene identifier, via the canonical HGNC id or the exact key."""

    def __init__(self, emb: GeneEmbeddings):
        canonical = _canonical_ids(list(emb.ids) + list(emb.symbols))
        self.by_canonical: dict[str, int] = {}
        self.by_raw: dict[str, int] = {}
        for row, (gene_id, symbol) in enumerate(zip(emb.ids, emb.symbols)):
            for key in (gene_id, symbol):
                hgnc = canonical.get(key)
                if hgnc is not None:
                    self.by_canonical.setdefault(hgnc, row)
                self.by_raw.setdefault(key.upper(), row)

    def rows(self, identifiers: Sequence[str], canonical: Mapping[str, str]) -> np.ndarray:
        out = np.full(len(identifiers), -1, dtype=np.int64)
        for i, identifier in enumerate(identifiers):
            hgnc = canonical.get(identifier)
            row = self.by_canonical.get(hgnc, -1) if hgnc is not None else self.by_raw.get(identifier.upper(), -1)
            out[i] = row
        return out


def match_genes(emb: GeneEmbeddings, identifiers: Sequence[str], fallback: Sequence[str] | None = None) -> np.ndarray:
    """Embedding row of each identifier (``-1`` when the table has no vector for it).

    Parameters
    ----------
    emb
        The embedding table (keyed by HGNC ids, symbols, or anything ``normalize_genes`` reads).
    identifiers
        Gene ids of the labels, any kind.
    fallback
        A second id per gene, tried where the first finds no row.

    Returns
    -------
    numpy.ndarray
        int64 rows, ``-1`` for no vector.
    """
    index = _EmbeddingIndex(emb)
    rows = index.rows(identifiers, _canonical_ids(identifiers))
    if fallback is not None:
        missing = np.flatnonzero(rows < 0)
        second = [fallback[i] for i in missing]
        rows[missing] = index.rows(second, _canonical_ids(second))
    return rows


def random_embeddings(emb: GeneEmbeddings, *, seed: int = 0) -> GeneEmbeddings:
    """The same genes with standard-normal vectors of the same dimension: the chance baseline."""
    rng = np.random.default_rng(seed)
    return GeneEmbeddings(
        ids=list(emb.ids),
        symbols=list(emb.symbols),
        texts=[""] * len(emb),
        vectors=rng.standard_normal((len(emb), emb.dim)).astype(np.float32),
        provenance={"source": "random", "seed": seed, "encoder": "random", "like": emb.provenance.get("encoder")},
    )


def pair_features(vectors: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Feature of a gene pair: the sum of its two vectors (symmetric in the pair, as GenePT)."""
    return vectors[rows_a] + vectors[rows_b]


# --------------------------------------------------------------------------- scoring


def make_classifier(name: str, *, seed: int = 0, n_jobs: int = 1):
    """A fresh scikit-learn classifier: ``"logreg"`` (standardised features, L2 logistic regression) or ``"rf"``
    (random forest, 100 trees, as scikit-learn's default)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    if name == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=n_jobs)
    raise BioprofileInputError(f"unknown model {name!r}: choose logreg or rf")


def _auc(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import roc_auc_score

    if n_classes == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=np.arange(n_classes)))


def cross_validated_auc(
    X: np.ndarray, y: np.ndarray, *, model: str = "logreg", n_splits: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified k-fold ROC-AUC.

    Parameters
    ----------
    X
        ``(n, d)`` features.
    y
        Integer classes ``0..k-1``; binary → ROC-AUC, more → macro one-vs-rest ROC-AUC.
    model
        See :func:`make_classifier`.
    n_splits, seed
        Folds and the seed of both the fold shuffle and the model.

    Returns
    -------
    fold_aucs : numpy.ndarray
        One AUC per fold.
    out_of_fold : numpy.ndarray
        ``(n, k)`` predicted class probabilities, each from the model that did not see that row.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    n_classes = int(y.max()) + 1
    if np.bincount(y, minlength=n_classes).min() < n_splits:
        raise ValueError(f"every class needs at least {n_splits} examples for {n_splits}-fold CV")
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    out_of_fold = np.zeros((len(y), n_classes))
    aucs = []
    for train, test in folds.split(X, y):
        clf = make_classifier(model, seed=seed).fit(X[train], y[train])
        proba = clf.predict_proba(X[test])
        out_of_fold[test] = proba
        aucs.append(_auc(y[test], proba, n_classes))
    return np.array(aucs), out_of_fold


def train_test_auc(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *, model: str = "logreg",
    seed: int = 0
) -> tuple[float, np.ndarray]:
    """Fit on the train split, ROC-AUC on the test split (binary). Returns the AUC and the test scores."""
    clf = make_classifier(model, seed=seed).fit(X_train, y_train)
    scores = clf.predict_proba(X_test)[:, 1]
    return _auc(y_test, np.column_stack([1 - scores, scores]), 2), scores


@dataclass
class TaskScore:
    """One score: an embedding table on a task with a model.

    ``n_labelled`` counts labelled genes (or scored pairs) in the task, ``n_covered`` those with vectors.
    ``auc_std`` is NaN for a single train/test split. ``roc`` is pooled over out-of-fold predictions (binary
    tasks only).
    """

    embedding: str
    task: str
    model: str
    metric: str
    auc_mean: float
    auc_std: float
    protocol: str
    n_labelled: int
    n_covered: int
    fold_aucs: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    roc: RocCurve | None = None

    @property
    def coverage(self) -> float:
        return self.n_covered / self.n_labelled if self.n_labelled else float("nan")

    def row(self) -> dict[str, Any]:
        """The table row: embedding, task, model, AUC, coverage."""
        return {
            "embedding": self.embedding,
            "task": self.task,
            "model": self.model,
            "metric": self.metric,
            "ROC-AUC": format_mean_std(self.auc_mean, self.auc_std),
            "protocol": self.protocol,
            "coverage": f"{self.n_covered}/{self.n_labelled} ({100 * self.coverage:.1f}%)",
        }


def _roc(y: np.ndarray, scores: np.ndarray, auc: float) -> RocCurve:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, scores)
    return RocCurve(fpr=fpr, tpr=tpr, auc=auc)


def _score_genes(emb, emb_name, task: GeneLabels, models, n_splits, seed) -> list[TaskScore]:
    rows = match_genes(emb, task.genes, task.fallback)
    covered = rows >= 0
    # One gene may be labelled twice (two Ensembl ids of one HGNC gene): keep its first label only.
    _, first = np.unique(rows[covered], return_index=True)
    keep = np.flatnonzero(covered)[np.sort(first)]
    X, y = emb.vectors[rows[keep]], task.labels[keep]
    counts = np.bincount(y, minlength=len(task.classes))
    usable = [c for c in range(len(task.classes)) if counts[c] >= n_splits]
    dropped = [task.classes[c] for c in range(len(task.classes)) if c not in usable]
    if len(usable) < 2:
        raise BioprofileInputError(
            f"task {task.name}: only {int(covered.sum())} of {len(task.genes)} labelled genes have vectors in "
            f"{emb_name}, too few per class for {n_splits}-fold CV; embed more of the labelled genes"
        )
    mask = np.isin(y, usable)
    X, y = X[mask], np.searchsorted(usable, y[mask])
    binary = len(usable) == 2
    scores = []
    for model in models:
        aucs, oof = cross_validated_auc(X, y, model=model, n_splits=n_splits, seed=seed)
        details = {"classes": [task.classes[c] for c in usable], "class_counts": np.bincount(y).tolist()}
        if dropped:
            details["classes_dropped_too_few_genes"] = dropped
        scores.append(
            TaskScore(
                embedding=emb_name,
                task=task.name,
                model=model,
                metric="roc_auc" if binary else "macro_ovr_roc_auc",
                auc_mean=float(aucs.mean()),
                auc_std=float(aucs.std()),
                protocol=f"stratified {n_splits}-fold",
                n_labelled=len(task.genes),
                n_covered=int(covered.sum()),
                fold_aucs=aucs.tolist(),
                details=details,
                roc=_roc(y, oof[:, 1], float(aucs.mean())) if binary else None,
            )
        )
    return scores


def _score_pairs(emb, emb_name, task: PairLabels, models, n_splits, seed) -> list[TaskScore]:
    index = _EmbeddingIndex(emb)
    a_ids = [a for a, _ in task.pairs]
    b_ids = [b for _, b in task.pairs]
    canonical = _canonical_ids(a_ids + b_ids)
    rows_a, rows_b = index.rows(a_ids, canonical), index.rows(b_ids, canonical)
    covered = (rows_a >= 0) & (rows_b >= 0)
    scores = []
    for model in models:
        if task.is_test is not None:
            train, test = covered & ~task.is_test, covered & task.is_test
            if len(set(task.labels[train])) < 2 or len(set(task.labels[test])) < 2:
                raise BioprofileInputError(
                    f"task {task.name}: too few pairs with both vectors in {emb_name} ({int(train.sum())} train, "
                    f"{int(test.sum())} test); embed more of the task's genes"
                )
            X_train = pair_features(emb.vectors, rows_a[train], rows_b[train])
            X_test = pair_features(emb.vectors, rows_a[test], rows_b[test])
            auc, test_scores = train_test_auc(X_train, task.labels[train], X_test, task.labels[test], model=model,
                                              seed=seed)
            scores.append(
                TaskScore(
                    embedding=emb_name, task=task.name, model=model, metric="roc_auc", auc_mean=auc,
                    auc_std=float("nan"), protocol="given train/test split",
                    n_labelled=int(task.is_test.sum()), n_covered=int(test.sum()), fold_aucs=[auc],
                    details={"train_pairs": int((~task.is_test).sum()), "train_pairs_covered": int(train.sum())},
                    roc=_roc(task.labels[test], test_scores, auc),
                )
            )
        else:
            y = task.labels[covered]
            X = pair_features(emb.vectors, rows_a[covered], rows_b[covered])
            if len(y) == 0 or np.bincount(y, minlength=2).min() < n_splits:
                raise BioprofileInputError(
                    f"task {task.name}: only {int(covered.sum())} pairs have both vectors in {emb_name}; too few"
                )
            aucs, oof = cross_validated_auc(X, y, model=model, n_splits=n_splits, seed=seed)
            scores.append(
                TaskScore(
                    embedding=emb_name, task=task.name, model=model, metric="roc_auc", auc_mean=float(aucs.mean()),
                    auc_std=float(aucs.std()), protocol=f"stratified {n_splits}-fold",
                    n_labelled=len(task.pairs), n_covered=int(covered.sum()), fold_aucs=aucs.tolist(),
                    roc=_roc(y, oof[:, 1], float(aucs.mean())),
                )
            )
    return scores


def evaluate_task(
    emb: GeneEmbeddings,
    task: GeneLabels | PairLabels,
    *,
    name: str = "embeddings",
    models: Sequence[str] | None = None,
    n_splits: int = 5,
    seed: int = 0,
) -> list[TaskScore]:
    """Score one embedding table on one task.

    Parameters
    ----------
    emb
        The embedding table.
    task
        Labels from a ``load_*`` function or :func:`load_user_labels`.
    name
        What to call the table in the results.
    models
        Classifiers (``logreg``, ``rf``); default both for gene tasks, ``logreg`` for pair tasks.
    n_splits, seed
        Cross-validation folds and the seed of folds and models.

    Returns
    -------
    list of TaskScore
        One per model.
    """
    if isinstance(task, PairLabels):
        return _score_pairs(emb, name, task, tuple(models or PAIR_MODELS), n_splits, seed)
    return _score_genes(emb, name, task, tuple(models or GENE_MODELS), n_splits, seed)


@dataclass
class GeneTaskReport:
    """All scores of a run, with the settings that produced them."""

    scores: list[TaskScore]
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [s.row() for s in self.scores]

    def to_markdown(self) -> str:
        """One table: a row per (task, model, embedding), embeddings side by side within a task."""
        ordered = sorted(self.scores, key=lambda s: (s.task, s.model))
        notes = "".join(f"\n- not scored: {s['task']} on {s['embedding']}: {s['reason']}" for s in self.skipped)
        return markdown_table([s.row() for s in ordered]) + (notes + "\n" if notes else "")

    def to_dict(self) -> dict[str, Any]:
        scores = []
        for s in self.scores:
            entry = {k: v for k, v in s.__dict__.items() if k != "roc"}
            entry["coverage"] = s.coverage
            scores.append(entry)
        return {"settings": self.settings, "scores": scores, "skipped": self.skipped}

    def roc_panels(self) -> dict[str, dict[str, RocCurve]]:
        """{task: {"embedding / model": curve}} for :func:`~bioprofile.evaluate.report.plot_roc_panels`."""
        panels: dict[str, dict[str, RocCurve]] = {}
        for s in self.scores:
            if s.roc is not None:
                panels.setdefault(s.task, {})[f"{s.embedding} / {s.model}"] = s.roc
        return panels


def run_gene_tasks(
    embeddings: GeneEmbeddings | Mapping[str, GeneEmbeddings],
    tasks: Sequence[str | GeneLabels | PairLabels] = DEFAULT_TASKS,
    *,
    data_dir: str | Path | None = None,
    models: Sequence[str] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    random_baseline: bool = True,
    trust_unverified: bool = False,
) -> GeneTaskReport:
    """Score one or several embedding tables on GenePT's gene tasks (and/or the user's own).

    Parameters
    ----------
    embeddings
        A table, or ``{name: table}`` to compare several side by side.
    tasks
        Built-in task names (see :data:`TASKS`) and/or labels from :func:`load_user_labels`.
    data_dir
        A verified local copy of the task data (laid out like ``shared/data``); else downloaded and cached.
    models
        Classifiers for every task; default ``logreg`` + ``rf`` for gene tasks, ``logreg`` for pair tasks.
    n_splits, seed
        Folds and seed, fixed for every table so they are scored on identical splits.
    random_baseline
        Also score random vectors for the genes of each table (named ``random:<name>``).
    trust_unverified
        Allow downloading task data without a recorded hash.

    Returns
    -------
    GeneTaskReport
    """
    tables = dict(embeddings) if isinstance(embeddings, Mapping) else {"embeddings": embeddings}
    if not tables:
        raise BioprofileInputError("no embedding tables given")
    if random_baseline:
        for name, emb in list(tables.items()):
            tables[f"random:{name}"] = random_embeddings(emb, seed=seed)
    loaded = [
        load_task(t, data_dir=data_dir, trust_unverified=trust_unverified) if isinstance(t, str) else t for t in tasks
    ]
    scores: list[TaskScore] = []
    skipped: list[dict[str, str]] = []
    for task in loaded:
        for name, emb in tables.items():
            try:
                scores.extend(evaluate_task(emb, task, name=name, models=models, n_splits=n_splits, seed=seed))
            except BioprofileInputError as err:  # too little coverage for this table: say so, score the rest
                skipped.append({"embedding": name, "task": task.name, "reason": str(err)})
    if not scores:
        raise BioprofileInputError("no task could be scored: " + "; ".join(s["reason"] for s in skipped))
    settings = {
        "tasks": [t.name for t in loaded],
        "embeddings": {name: {"n_genes": len(e), "dim": e.dim, "provenance": e.provenance} for name, e in tables.items()},
        "models": list(models) if models else {"genes": list(GENE_MODELS), "pairs": list(PAIR_MODELS)},
        "n_splits": n_splits,
        "seed": seed,
    }
    return GeneTaskReport(scores=scores, settings=settings, skipped=skipped)


def load_embedding_table(path: str | Path) -> GeneEmbeddings:
    """An embedding table from disk: a GenePT pickle (``.pickle``/``.pkl``, read safely) or any format
    :meth:`GeneEmbeddings.read` knows (parquet, npz, h5ad, pt)."""
    path = Path(path)
    if path.suffix.lower() in {".pickle", ".pkl"}:
        from bioprofile.genept import import_genept

        if not path.is_file():
            raise BioprofileInputError(f"embeddings file {path} does not exist")
        return import_genept(path)
    return GeneEmbeddings.read(path)
