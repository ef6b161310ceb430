"""The gene split of ``reproduce.py``: train genes, held-out genes, and every evaluation gene kept out of training.

Genes are compared by approved HGNC symbol (each source is resolved through :func:`bioprofile.genes.normalize_genes`),
and also by the upper-cased symbol as each file writes it, so a gene that fails to resolve in one file but not in
another still cannot slip into training.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bioprofile.evaluate.gene_sets import GeneSet, read_gene_sets
from bioprofile.evaluate.gene_tasks.dosage import load_dosage_labels
from bioprofile.genes import normalize_genes
from bioprofile.train.data import refseq_records

#: The prompt template of training and of every generated profile (the library default, ``embed_genes``').
TEMPLATE = "concise"


class LeakError(RuntimeError):
    """A training gene is also an evaluation gene."""


@dataclass(frozen=True)
class SplitSizes:
    """How many genes and sets each part of the split gets (0: all there are).

    Parameters
    ----------
    train_genes
        RefSeq genes to train on.
    held_out_genes
        RefSeq genes whose profiles are scored against their true summary.
    dosage_tfs
        Dosage-task TFs to write profiles for (half sensitive, half insensitive); every dosage TF is kept out of
        training whatever this is.
    go_sets
        GO sets of the held-out slice of ``GO_terms.csv`` (the gene-set task).
    cluster_genes
        Most variable pbmc68k_reduced genes to write profiles for (the clustering task).
    seed
        Seed of every sample.
    class_genes
        Genes of GenePT's functional-class task to write profiles for and score (0: the task is not run).
    pair_genes
        Genes of Gene2vec's interaction pairs to write profiles for; every pair between two of them is scored with
        gene-disjoint folds (0: not run). Pairs among G random genes grow as G squared: about 500 for 1,000 genes.

    Both are drawn among genes without a RefSeq summary, which no model here can be trained on, so the training and
    held-out genes stay what they are whatever these are (the split's key, and with it the adapters' and scores'
    cache keys, changes when they are used).
    """

    train_genes: int = 160
    held_out_genes: int = 30
    dosage_tfs: int = 60
    go_sets: int = 20
    cluster_genes: int = 60
    seed: int = 0
    class_genes: int = 0
    pair_genes: int = 0


@dataclass
class GeneSplit:
    """The split: training records, held-out records, and the evaluation genes and sets.

    Attributes
    ----------
    train, held_out
        RefSeq chat records (``{"gene", "messages"}``) asked with :data:`TEMPLATE`.
    dosage_tfs
        Approved symbols of the sampled dosage TFs (profiles are written for them).
    go_sets
        The held-out GO sets.
    cluster_genes
        Approved symbols of the pbmc genes profiles are written for.
    excluded
        Every symbol kept out of training (approved and as written): held-out genes, all dosage TFs, every gene of
        the held-out GO sets, the cluster genes.
    """

    train: list[dict]
    held_out: list[dict]
    dosage_tfs: list[str]
    go_sets: list[GeneSet]
    cluster_genes: list[str]
    excluded: set[str] = field(default_factory=set)
    class_labels: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def held_out_genes(self) -> list[str]:
        """Approved symbols of the held-out RefSeq genes."""
        return [r["approved"] for r in self.held_out]

    @property
    def profile_genes(self) -> list[str]:
        """The genes each model writes a profile for: held-out, dosage TFs, cluster, class and pair genes."""
        return list(
            dict.fromkeys(
                self.held_out_genes
                + self.dosage_tfs
                + self.cluster_genes
                + list(self.class_labels)
                + self.pair_genes
            )
        )

    @property
    def pair_genes(self) -> list[str]:
        """The genes of the split's own interaction pairs, first seen first."""
        return list(dict.fromkeys(g for a, b, _ in self.pairs for g in (a, b)))

    def extra_tasks(self) -> list:
        """The functional-class and pair tasks on this split's own genes (none when their sizes are 0)."""
        from bioprofile.evaluate.gene_tasks import GeneLabels, PairLabels
        from bioprofile.evaluate.gene_tasks.functional_class import FUNCTIONAL_CLASSES

        tasks = []
        if self.class_labels:
            classes = [c for c in FUNCTIONAL_CLASSES if c in set(self.class_labels.values())]
            position = {c: i for i, c in enumerate(classes)}
            genes = list(self.class_labels)
            labels = [position[self.class_labels[g]] for g in genes]
            tasks.append(GeneLabels("functional_class", genes, labels, classes))
        if self.pairs:
            # no is_test: the folds are gene-disjoint (Gene2vec's own split would put a gene on both sides)
            tasks.append(PairLabels("ggi", [(a, b) for a, b, _ in self.pairs], [y for _, _, y in self.pairs]))
        return tasks

    def key(self) -> str:
        """A short hash of the training genes and the evaluation genes, the cache key part of the split."""
        payload = {
            "train": [r["approved"] for r in self.train],
            "held_out": self.held_out_genes,
            "dosage": self.dosage_tfs,
            "go": [s.name for s in self.go_sets],
            "cluster": self.cluster_genes,
        }
        # only when used: a split without them keeps the key (and the cached scores) it had before they existed
        if self.class_labels:
            payload["class"] = sorted(self.class_labels)
        if self.pairs:
            payload["pairs"] = [list(p) for p in self.pairs]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:12]

    def summary(self) -> dict:
        """Counts of each part, as the report records them."""
        return {
            "key": self.key(),
            "n_train": len(self.train),
            "n_held_out": len(self.held_out),
            "n_dosage_tfs": len(self.dosage_tfs),
            "n_go_sets": len(self.go_sets),
            "n_go_set_genes": len({g for s in self.go_sets for g in s.genes}),
            "n_cluster_genes": len(self.cluster_genes),
            "n_excluded_symbols": len(self.excluded),
            **({"n_class_genes": len(self.class_labels)} if self.class_labels else {}),
            **({"n_pairs": len(self.pairs), "n_pair_genes": len(self.pair_genes)}
               if self.pairs else {}),
        }  # fmt: skip


def _record_symbols(records: list[dict]) -> set[str]:
    """Every symbol of RefSeq records: approved and as the file writes it (upper-cased), as genes are compared."""
    return {r["approved"] for r in records} | {r["gene"].upper() for r in records}


def _approved(symbols: list[str]) -> dict[str, str]:
    """Each input symbol -> its approved symbol (inputs that do not resolve map to themselves, upper-cased)."""
    resolution = normalize_genes(symbols)
    return {s: resolution.inputs.get(s, s.upper()) for s in symbols}


def _sample(items: list, n: int, rng: random.Random) -> list:
    if n <= 0 or n >= len(items):
        return list(items)
    return rng.sample(items, n)


def top_variable_genes(n: int) -> list[str]:
    """The ``n`` most variable genes of scanpy's pbmc68k_reduced (``dispersions_norm``), most variable first."""
    import numpy as np
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    dispersion = pbmc.var["dispersions_norm"].reindex(pbmc.raw.var_names).fillna(-np.inf)
    order = list(dispersion.sort_values(ascending=False).index)
    return order if n <= 0 else order[:n]


def make_split(synopsis: Path, data_dir: Path, sizes: SplitSizes) -> GeneSplit:
    """Split the RefSeq genes so no held-out gene, dosage TF, held-out GO-set gene or cluster gene is trained on.

    Parameters
    ----------
    synopsis
        RefSeq summaries, one ``SYMBOL: text`` per line.
    data_dir
        The data folder (``genept/dosage_sens_tf_labels.csv``, ``geneagent/GO_terms.csv``).
    sizes
        How many genes and sets each part gets.

    Returns
    -------
    GeneSplit
        Checked by :func:`check_no_leak` before it is returned.
    """
    rng = random.Random(sizes.seed)
    records = refseq_records(synopsis, template=TEMPLATE).records
    approved = _approved([r["gene"] for r in records])
    for record in records:
        record["approved"] = approved[record["gene"]]

    dosage = load_dosage_labels(data_dir / "genept" / "dosage_sens_tf_labels.csv")
    ids = _approved(list(dosage.genes) + list(dosage.fallback or []))
    dosage_symbols, dosage_by_class = [], {0: [], 1: []}
    for gene, symbol, label in zip(dosage.genes, dosage.fallback or dosage.genes, dosage.labels, strict=True):
        name = ids[gene] if ids[gene] != gene.upper() else ids[symbol]
        dosage_symbols += [name, symbol.upper()]
        dosage_by_class[int(label)].append(name)
    per_class = sizes.dosage_tfs // 2
    dosage_tfs = _sample(dosage_by_class[1], per_class, rng) + _sample(dosage_by_class[0], per_class, rng)

    all_sets = read_gene_sets(data_dir / "geneagent" / "GO_terms.csv")
    go_sets = _sample(all_sets, sizes.go_sets, rng)
    go_genes = [g for s in go_sets for g in s.genes]
    go_approved = _approved(go_genes)

    cluster_raw = top_variable_genes(sizes.cluster_genes) if sizes.cluster_genes else []
    cluster_approved = _approved(cluster_raw) if cluster_raw else {}
    cluster_genes = list(dict.fromkeys(cluster_approved[g] for g in cluster_raw))

    evaluation = (
        set(dosage_symbols)
        | set(go_approved.values())
        | {g.upper() for g in go_genes}
        | set(cluster_genes)
        | {g.upper() for g in cluster_raw}
    )
    candidates = [
        r for r in records if r["approved"] not in evaluation and r["gene"].upper() not in evaluation
    ]
    held_out = _sample(candidates, sizes.held_out_genes, rng)
    held = {r["approved"] for r in held_out}
    excluded = evaluation | held | {r["gene"].upper() for r in held_out}
    pool = [r for r in candidates if r["approved"] not in held]
    rng.shuffle(pool)
    train = pool if sizes.train_genes <= 0 else pool[: sizes.train_genes]
    # a second generator, so the parts above are drawn exactly as before these two existed
    trainable = _record_symbols(records)
    extra = random.Random(sizes.seed + 1)
    class_labels = _class_genes(data_dir, sizes.class_genes, trainable, extra) if sizes.class_genes else {}
    pairs = _pairs(data_dir, sizes.pair_genes, trainable, extra) if sizes.pair_genes else []
    split = GeneSplit(
        train=train,
        held_out=held_out,
        dosage_tfs=dosage_tfs,
        go_sets=go_sets,
        cluster_genes=cluster_genes,
        excluded=excluded,
        class_labels=class_labels,
        pairs=pairs,
    )
    split.excluded |= set(split.class_labels) | set(split.pair_genes)
    check_no_leak(split)
    return split


def _class_genes(data_dir: Path, n: int, trainable: set[str], rng: random.Random) -> dict[str, str]:
    """``n`` functional-class genes without a RefSeq summary: approved symbol -> class name."""
    from bioprofile.evaluate.gene_tasks.functional_class import load_gene_types

    types = load_gene_types(data_dir / "genept" / "gene_info_table.csv")
    names = types.fallback or types.genes
    rows = [(name, types.classes[label]) for name, label in zip(names, types.labels, strict=True) if name]
    rows = [r for r in rows if r[0].upper() not in trainable]
    drawn = _sample(rows, min(len(rows), 2 * n), rng)  # twice as many: some resolve to a trainable symbol
    approved = _approved([name for name, _ in drawn])
    chosen = {}
    for name, kind in drawn:
        if approved[name] not in trainable and approved[name] not in chosen and len(chosen) < n:
            chosen[approved[name]] = kind
    return chosen


def _pairs(
    data_dir: Path, n_genes: int, trainable: set[str], rng: random.Random
) -> list[tuple[str, str, int]]:
    """Every Gene2vec pair between two of ``n_genes`` genes drawn among its genes without a RefSeq summary."""
    from bioprofile.evaluate.gene_tasks.interaction import load_gene2vec_pairs

    task = load_gene2vec_pairs(data_dir / "gene2vec")
    genes = sorted({g for pair in task.pairs for g in pair if g.upper() not in trainable})
    drawn = _sample(genes, min(len(genes), n_genes), rng)
    approved = _approved(drawn)
    kept = {g for g in drawn if approved[g] not in trainable}
    pairs = {}
    for (a, b), label in zip(task.pairs, task.labels, strict=True):
        if a in kept and b in kept and a != b:
            pairs.setdefault(tuple(sorted((approved[a], approved[b]))), int(label))
    return [(a, b, y) for (a, b), y in sorted(pairs.items())]


def check_no_leak(split: GeneSplit) -> None:
    """Raise :class:`LeakError` if any training gene is an evaluation gene (by approved or written symbol).

    Checked against the excluded set and, independently, against the evaluation genes themselves.
    """
    trained = _record_symbols(split.train)
    evaluation = (
        set(split.held_out_genes)
        | set(split.dosage_tfs)
        | set(split.cluster_genes)
        | {g.upper() for s in split.go_sets for g in s.genes}
        | set(split.class_labels)
        | set(split.pair_genes)
    )
    leaked = sorted(trained & (split.excluded | evaluation))
    if leaked:
        raise LeakError(f"{len(leaked)} training genes are evaluation genes: {', '.join(leaked[:10])}")


def _inputs_key(synopsis: Path, data_dir: Path, sizes: SplitSizes) -> str:
    """What the split depends on: the sizes and the size and mtime of every input file."""
    files = [
        synopsis,
        data_dir / "genept" / "dosage_sens_tf_labels.csv",
        data_dir / "geneagent" / "GO_terms.csv",
    ]
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps([asdict(sizes), stats]).encode()).hexdigest()[:12]


def cached_split(synopsis: Path, data_dir: Path, sizes: SplitSizes, run_dir: Path) -> GeneSplit:
    """:func:`make_split`, kept in ``run_dir`` so a resumed run reads it instead of resolving every gene again.

    The cached split is checked for leaks again when it is read.
    """
    path = run_dir / f"split-{_inputs_key(synopsis, data_dir, sizes)}.json"
    if path.is_file():
        return read_split(path)
    split = make_split(synopsis, data_dir, sizes)
    payload = {
        "train": split.train,
        "held_out": split.held_out,
        "dosage_tfs": split.dosage_tfs,
        "go_sets": [asdict(s) for s in split.go_sets],
        "cluster_genes": split.cluster_genes,
        "excluded": sorted(split.excluded),
        "class_labels": split.class_labels,
        "pairs": [list(p) for p in split.pairs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload) + "\n")
    tmp.replace(path)
    return split


def read_split(path: Path) -> GeneSplit:
    """A split :func:`cached_split` kept (``run_dir/split-KEY.json``), checked for leaks again."""
    data = json.loads(path.read_text())
    split = GeneSplit(
        train=data["train"],
        held_out=data["held_out"],
        dosage_tfs=data["dosage_tfs"],
        go_sets=[GeneSet(s["name"], tuple(s["genes"]), s["term"]) for s in data["go_sets"]],
        cluster_genes=data["cluster_genes"],
        excluded=set(data["excluded"]),
        class_labels=data.get("class_labels", {}),
        pairs=[tuple(p) for p in data.get("pairs", [])],
    )
    check_no_leak(split)
    return split


def held_out_gene_sets(
    split: GeneSplit, all_sets: list[GeneSet], n_sets: int, seed: int = 0
) -> list[GeneSet]:
    """``n_sets`` gene sets none of whose genes a model trained on ``split`` has seen.

    The split's own held-out GO sets come first; the rest are drawn (seeded) from ``all_sets`` among the sets with
    no training gene, compared by approved symbol and by the symbol as the file writes it, as the split itself is.

    Raises
    ------
    LeakError
        If a chosen set holds a training gene (checked again after the choice), or too few clean sets exist.
    """
    trained = _record_symbols(split.train)
    chosen = list(split.go_sets[:n_sets])
    taken = {s.name for s in chosen}
    others = [s for s in all_sets if s.name not in taken]
    approved = _approved([g for s in [*chosen, *others] for g in s.genes])
    clean = [s for s in others if not any(g.upper() in trained or approved[g] in trained for g in s.genes)]
    random.Random(seed).shuffle(clean)
    chosen += clean[: n_sets - len(chosen)]
    if len(chosen) < n_sets:
        raise LeakError(f"only {len(chosen)} gene sets hold no training gene; {n_sets} were asked for")
    leaked = sorted({g for s in chosen for g in s.genes if g.upper() in trained or approved[g] in trained})
    if leaked:
        raise LeakError(
            f"{len(leaked)} genes of the chosen sets are training genes: {', '.join(leaked[:10])}"
        )
    return chosen


def write_split(split: GeneSplit, path: Path, sizes: SplitSizes) -> None:
    """Record the split (symbols of every part, sizes, key) as JSON."""
    payload = {
        "sizes": asdict(sizes),
        **split.summary(),
        "train": [r["approved"] for r in split.train],
        "held_out": split.held_out_genes,
        "dosage_tfs": split.dosage_tfs,
        "go_sets": [s.name for s in split.go_sets],
        "cluster_genes": split.cluster_genes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
