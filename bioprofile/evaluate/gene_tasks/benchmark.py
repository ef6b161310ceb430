"""The gene-task benchmark: score one or several embedding tables (and their baselines) on many tasks, and
the report of a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.baselines import (
    random_embeddings,
    symbol_embeddings,
    table_encoder,
    text_length_embeddings,
)
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, PairLabels
from bioprofile.evaluate.gene_tasks.protocol import GENE_MODELS, PAIR_MODELS, TaskScore, evaluate_task
from bioprofile.evaluate.gene_tasks.tasks import DEFAULT_TASKS, load_task
from bioprofile.evaluate.report import RocCurve, markdown_table

if TYPE_CHECKING:
    from bioprofile.encoders import TextEncoder
    from bioprofile.store import Store

__all__ = ["GeneTaskReport", "load_embedding_table", "run_gene_tasks"]


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
        notes = "".join(
            f"\n- not scored: {s['task']} on {s['embedding']}: {s['reason']}" for s in self.skipped
        )
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
    text_length_baseline: bool = False,
    symbol_baseline: bool = False,
    encoder: TextEncoder | str | Path | None = None,
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
    data_dir
        A verified local copy of the task data (laid out like ``shared/data``); else downloaded and cached.
    models
        Classifiers for every task; default ``logreg`` + ``rf`` for gene tasks, ``logreg`` for pair tasks.
    n_splits, seed
        Folds and seed, fixed for every table so they are scored on identical splits.
    random_baseline
        Also score random vectors for the genes of each table (named ``random:<name>``).
    text_length_baseline
        Also score, for each table that carries profile texts, a 1-d feature: ``log1p`` of the number of words
        of each gene's text (named ``length:<name>``, see :func:`text_length_embeddings`). It shows how much of a
        score the texts' length alone could explain. Tables without texts (GenePT pickles) are listed in
        ``skipped``.
    symbol_baseline
        Also score, for each table, its genes embedded from their bare symbols (named ``symbol:<name>``, see
        :func:`symbol_embeddings`): how much of a score the gene's name alone could explain.
    encoder
        Encoder of the symbol baseline (a :class:`~bioprofile.encoders.TextEncoder` or a spec for
        :func:`~bioprofile.encoders.get_encoder`). ``None``: each table's own, rebuilt from
        ``provenance["encoder"]`` (see :func:`table_encoder`; the default encoder when none is recorded).
    store
        Cache of encoded symbols; ``None`` opens the default one (only when ``symbol_baseline``).
    trust_unverified
        Allow downloading task data without a recorded hash.

    Returns
    -------
    GeneTaskReport

    Raises
    ------
    BioprofileInputError
        Among others, when ``symbol_baseline`` is set without ``encoder`` and a table's recorded encoder cannot be
        rebuilt (a local model directory, a GenePT pickle).
    """
    tables = dict(embeddings) if isinstance(embeddings, Mapping) else {"embeddings": embeddings}
    if not tables:
        raise BioprofileInputError("no embedding tables given")
    given = list(tables.items())
    if random_baseline:
        for name, emb in given:
            tables[f"random:{name}"] = random_embeddings(emb, seed=seed)
    no_text: dict[str, str] = {}  # length baselines that could not be built: name -> why
    if text_length_baseline:
        for name, emb in given:
            try:
                tables[f"length:{name}"] = text_length_embeddings(emb)
            except BioprofileInputError as err:
                no_text[f"length:{name}"] = str(err)
    if symbol_baseline:
        tables.update(_symbol_tables(given, encoder, store))
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
                    evaluate_task(emb, task, name=name, models=models, n_splits=n_splits, seed=seed)
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
        "models": list(models) if models else {"genes": list(GENE_MODELS), "pairs": list(PAIR_MODELS)},
        "n_splits": n_splits,
        "seed": seed,
    }
    return GeneTaskReport(scores=scores, settings=settings, skipped=skipped)


def _symbol_tables(
    given: list[tuple[str, GeneEmbeddings]], encoder: TextEncoder | str | Path | None, store: Store | None
) -> dict[str, GeneEmbeddings]:
    """``symbol:<name>`` for each table; each encoder is loaded once, and the shared store means each symbol is
    encoded once per encoder id however many tables carry it.
    """
    from bioprofile.encoders import get_encoder
    from bioprofile.store import open_store

    if encoder is not None:
        shared = get_encoder(encoder) if isinstance(encoder, (str, Path)) else encoder
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
                    raise BioprofileInputError(f"symbol baseline for {name!r}: {err}") from None
            encoders[name] = by_id[recorded]
    with open_store(store) as cache:
        return {f"symbol:{name}": symbol_embeddings(emb, encoders[name], store=cache) for name, emb in given}


def load_embedding_table(path: str | Path) -> GeneEmbeddings:
    """An embedding table from disk: a GenePT pickle (``.pickle``/``.pkl``, read safely) or any format
    :meth:`GeneEmbeddings.read` knows (parquet, npz, h5ad, pt).
    """
    path = Path(path)
    if path.suffix.lower() in {".pickle", ".pkl"}:
        from bioprofile.genept import import_genept

        if not path.is_file():
            raise BioprofileInputError(f"embeddings file {path} does not exist")
        return import_genept(path)
    return GeneEmbeddings.read(path)
