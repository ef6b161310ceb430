"""The gene-task benchmark: score embedding tables (and their baselines) on many tasks, and the run's report.

:func:`run_gene_tasks` takes its scoring choices as one :class:`GeneTaskOptions` and returns a
:class:`GeneTaskReport`, which writes itself (``write(prefix)``: PREFIX.md and PREFIX.json); its ROC curves are
drawn by :func:`bioprofile.pl.roc_panels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.encoders import TextEncoder
from bioprofile.encoders.coerce import as_encoder
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.baselines import (
    random_embeddings,
    symbol_embeddings,
    table_encoder,
    text_length_embeddings,
)
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, PairLabels
from bioprofile.evaluate.gene_tasks.protocol import GENE_MODELS, PAIR_MODELS, TaskScore, evaluate_task
from bioprofile.evaluate.gene_tasks.splits import PAIR_SPLITS
from bioprofile.evaluate.gene_tasks.tasks import DEFAULT_TASKS, TASKS, load_task
from bioprofile.evaluate.report import RocCurve, WritesItself, markdown_table, provenance
from bioprofile.genept import import_genept
from bioprofile.store import Store, open_store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GeneTaskOptions", "GeneTaskReport", "load_embedding_table", "run_gene_tasks"]

_MODELS = ("logreg", "rf")


@dataclass(frozen=True)
class GeneTaskOptions:
    """How a gene-task run scores its tables: classifiers, folds, seed and the baselines beside each table.

    Every table of a run is scored with the same options, so all of them see identical folds.

    Parameters
    ----------
    models
        Classifiers for every task (``"logreg"``, ``"rf"``); ``None``: ``logreg`` + ``rf`` for gene tasks,
        ``logreg`` for pair tasks.
    n_splits
        Cross-validation folds (at least 2).
    pair_split
        Folds of a pair task that has no train/test split of its own: ``"gene-disjoint"`` (the default: no gene of
        a test pair is in any training pair, Park & Marcotte's C3 class; each fold reports how many pairs it
        keeps) or ``"pairs"`` (stratified folds over pairs: genes recur between train and test, so fixed per-gene
        vectors, random ones included, can score above 0.5). A task's given split always wins.
    seed
        Seed of the folds, the models and the random baseline.
    random_baseline
        Also score random vectors for the genes of each table (named ``random:<name>``).
    text_length_baseline
        Also score, for each table that carries profile texts, a 1-d feature: ``log1p`` of the number of words
        of each gene's text (named ``length:<name>``, see :func:`text_length_embeddings`). It shows how much of a
        score the texts' length alone could explain. Tables without texts (GenePT pickles) are listed in the
        report's ``skipped``.
    symbol_baseline
        Also score, for each table, its genes embedded from their bare symbols (named ``symbol:<name>``, see
        :func:`symbol_embeddings`): how much of a score the gene's name alone could explain.
    encoder
        Encoder of the symbol baseline (a :class:`~bioprofile.encoders.TextEncoder` or a spec for
        :func:`~bioprofile.encoders.get_encoder`). ``None``: each table's own, rebuilt from
        ``provenance["encoder"]`` (see :func:`table_encoder`; the default encoder when none is recorded).

    Raises
    ------
    BioprofileInputError
        An unknown model or pair split, fewer than 2 folds, or ``encoder`` without ``symbol_baseline``.
    """

    models: tuple[str, ...] | None = None
    n_splits: int = 5
    pair_split: str = "gene-disjoint"
    seed: int = 0
    random_baseline: bool = True
    text_length_baseline: bool = False
    symbol_baseline: bool = False
    encoder: TextEncoder | str | Path | None = None

    def __post_init__(self) -> None:
        # An empty list means "the defaults", as it always has.
        object.__setattr__(self, "models", tuple(self.models) if self.models else None)
        unknown = [m for m in self.models or () if m not in _MODELS]
        if unknown:
            raise BioprofileInputError(
                f"unknown models {', '.join(map(repr, unknown))}: choose from {', '.join(_MODELS)}",
                argument="models",
            )
        if self.n_splits < 2:
            raise BioprofileInputError(
                f"n_splits must be at least 2, got {self.n_splits}", argument="n_splits"
            )
        if self.pair_split not in PAIR_SPLITS:
            raise BioprofileInputError(
                f"unknown pair_split {self.pair_split!r}: choose {' or '.join(PAIR_SPLITS)}",
                argument="pair_split",
            )
        if self.encoder is not None and not self.symbol_baseline:
            raise BioprofileInputError(
                "encoder only sets the model of the symbol_baseline: turn symbol_baseline on or leave encoder "
                "unset",
                argument="encoder",
            )

    def settings(self) -> dict[str, Any]:
        """The options as plain JSON values (the encoder by its id), as a report records them."""
        encoder = self.encoder
        return {
            "models": list(self.models)
            if self.models
            else {"genes": list(GENE_MODELS), "pairs": list(PAIR_MODELS)},
            "n_splits": self.n_splits,
            "pair_split": self.pair_split,
            "seed": self.seed,
            "baselines": {
                "random": self.random_baseline,
                "text_length": self.text_length_baseline,
                "symbol": self.symbol_baseline,
                "encoder": getattr(encoder, "id", None if encoder is None else str(encoder)),
            },
        }


@dataclass
class GeneTaskReport(WritesItself):
    """All scores of a run, with the settings and provenance that produced them.

    Attributes
    ----------
    scores
        One :class:`TaskScore` per (task, table, model).
    settings
        Tasks, tables (size, dimension, provenance) and the options of the run.
    skipped
        ``{"embedding", "task", "reason"}`` for every table that could not be scored on a task.
    provenance
        Versions of bioprofile, Python and the scoring libraries (see :func:`~bioprofile.evaluate.report.provenance`).
    """

    scores: list[TaskScore]
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per score, in run order: embedding, task, model, metric, the AUC's mean and std, protocol, coverage.

        Numbers stay numbers (the markdown's ``"0.812 ± 0.021"`` is ``auc_mean`` and ``auc_std`` here).
        """
        import pandas as pd

        columns = ["embedding", "task", "model", "metric", "auc_mean", "auc_std", "protocol"]
        columns += ["n_labelled", "n_covered"]
        return pd.DataFrame(
            [{**{c: getattr(s, c) for c in columns}, "coverage": s.coverage} for s in self.scores],
            columns=[*columns, "coverage"],
        )

    def rows(self) -> list[dict[str, Any]]:
        """One table row per score (see :meth:`TaskScore.row`), in run order."""
        return [s.row() for s in self.scores]

    def to_markdown(self) -> str:
        """One table: a row per (task, model, embedding), embeddings side by side within a task."""
        ordered = sorted(self.scores, key=lambda s: (s.task, s.model))
        notes = "".join(
            f"\n- not scored: {s['task']} on {s['embedding']}: {s['reason']}" for s in self.skipped
        )
        return markdown_table([s.row() for s in ordered]) + (notes + "\n" if notes else "")

    def to_dict(self) -> dict[str, Any]:
        """Settings, provenance, every score (fold AUCs, coverage, details; no curves) and the skipped tables."""
        scores = []
        for s in self.scores:
            entry = {k: v for k, v in s.__dict__.items() if k != "roc"}
            entry["coverage"] = s.coverage
            scores.append(entry)
        return {
            "settings": self.settings,
            "provenance": self.provenance,
            "scores": scores,
            "skipped": self.skipped,
        }

    def roc_panels(self) -> dict[str, dict[str, RocCurve]]:
        """``{task: {"embedding / model": curve}}`` of the binary tasks, for :func:`bioprofile.pl.roc_panels`."""
        panels: dict[str, dict[str, RocCurve]] = {}
        for s in self.scores:
            if s.roc is not None:
                panels.setdefault(s.task, {})[f"{s.embedding} / {s.model}"] = s.roc
        return panels


def run_gene_tasks(
    embeddings: GeneEmbeddings | Mapping[str, GeneEmbeddings],
    tasks: Sequence[str | GeneLabels | PairLabels] = DEFAULT_TASKS,
    *,
    options: GeneTaskOptions | None = None,
    data_dir: str | Path | None = None,
    store: Store | None = None,
    trust_unverified: bool = False,
) -> GeneTaskReport:
    """Score one or several embedding tables on GenePT's gene tasks (and/or the user's own).

    Parameters
    ----------
    embeddings
        A table, or ``{name: table}`` to compare several side by side.
    tasks
        Built-in task names (see :data:`TASKS`) and/or labels from :func:`load_user_labels`.
    options
        Classifiers, folds, seed and baselines (:class:`GeneTaskOptions`); ``None``: the defaults.
    data_dir
        A verified local copy of the task data (laid out like ``shared/data``); else downloaded and cached.
    store
        Cache of encoded symbols; ``None`` opens the default one (only when ``options.symbol_baseline``).
    trust_unverified
        Allow downloading task data without a recorded hash.

    Returns
    -------
    GeneTaskReport

    Raises
    ------
    BioprofileInputError
        Among others, when the symbol baseline is on without an encoder and a table's recorded encoder cannot be
        rebuilt (a local model directory, a GenePT pickle).
    """
    options = options or GeneTaskOptions()
    tables = dict(embeddings) if isinstance(embeddings, Mapping) else {"embeddings": embeddings}
    if not tables:
        raise BioprofileInputError("no embedding tables given")
    unknown = [t for t in tasks if isinstance(t, str) and t not in TASKS]
    if unknown:  # before any baseline is built: the symbol baseline encodes every gene
        raise BioprofileInputError(
            f"unknown gene tasks {', '.join(map(repr, unknown))}: choose from {', '.join(TASKS)}",
            argument="tasks",
        )
    given = list(tables.items())
    if options.random_baseline:
        for name, emb in given:
            tables[f"random:{name}"] = random_embeddings(emb, seed=options.seed)
    no_text: dict[str, str] = {}  # length baselines that could not be built: name -> why
    if options.text_length_baseline:
        for name, emb in given:
            try:
                tables[f"length:{name}"] = text_length_embeddings(emb)
            except BioprofileInputError as err:
                no_text[f"length:{name}"] = str(err)
    if options.symbol_baseline:
        tables.update(_symbol_tables(given, options.encoder, store))
    loaded = [
        load_task(t, data_dir=data_dir, trust_unverified=trust_unverified) if isinstance(t, str) else t
        for t in tasks
    ]
    scores: list[TaskScore] = []
    skipped: list[dict[str, str]] = []
    for task in loaded:
        for name, emb in tables.items():
            try:
                scores.extend(
                    evaluate_task(
                        emb,
                        task,
                        name=name,
                        models=options.models,
                        n_splits=options.n_splits,
                        seed=options.seed,
                        pair_split=options.pair_split,
                    )
                )
            except BioprofileInputError as err:  # too little coverage for this table: say so, score the rest
                skipped.append({"embedding": name, "task": task.name, "reason": str(err)})
        skipped.extend(
            {"embedding": name, "task": task.name, "reason": reason} for name, reason in no_text.items()
        )
    if not scores:
        raise BioprofileInputError("no task could be scored: " + "; ".join(s["reason"] for s in skipped))
    settings = {
        "tasks": [t.name for t in loaded],
        "embeddings": {
            name: {"n_genes": len(e), "dim": e.dim, "provenance": e.provenance} for name, e in tables.items()
        },
        **options.settings(),
    }
    return GeneTaskReport(
        scores=scores,
        settings=settings,
        skipped=skipped,
        provenance=provenance("numpy", "scikit-learn"),
    )


def _symbol_tables(
    given: list[tuple[str, GeneEmbeddings]], encoder: TextEncoder | str | Path | None, store: Store | None
) -> dict[str, GeneEmbeddings]:
    """``symbol:<name>`` for each table, each encoder loaded once.

    The shared store means each symbol is encoded once per encoder id however many tables carry it.
    """
    if encoder is not None:
        shared = as_encoder(encoder)
        encoders = {name: shared for name, _ in given}
    else:
        by_id: dict[Any, TextEncoder] = {}
        encoders = {}
        for name, emb in given:
            recorded = emb.provenance.get("encoder")
            if recorded not in by_id:
                try:
                    by_id[recorded] = table_encoder(emb)
                except BioprofileInputError as err:
                    raise BioprofileInputError(
                        f"symbol baseline for {name!r}: {err}", argument=err.argument
                    ) from None
            encoders[name] = by_id[recorded]
    with open_store(store) as cache:
        return {f"symbol:{name}": symbol_embeddings(emb, encoders[name], store=cache) for name, emb in given}


def load_embedding_table(path: str | Path) -> GeneEmbeddings:
    """An embedding table from disk.

    Parameters
    ----------
    path
        A GenePT pickle (``.pickle``/``.pkl``, read safely) or any format :meth:`GeneEmbeddings.read` knows
        (parquet, npz, h5ad, pt).

    Returns
    -------
    GeneEmbeddings
    """
    path = Path(path)
    if path.suffix.lower() in {".pickle", ".pkl"}:
        if not path.is_file():
            raise BioprofileInputError(f"embeddings file {path} does not exist")
        return import_genept(path)
    return GeneEmbeddings.read(path)
