"""Perturbation-response bench: STATE trained on each perturbation feature set, scored by cell-eval.

The question: do text-derived gene vectors let Arc Institute's STATE transition model predict perturbations it
never saw in training, where its default one-hot encoding cannot? :func:`benchmark_perturbation` answers it on
one Perturb-seq AnnData:

1. every check first (:func:`prepare_perturbation_bench`): the data's columns and control, each feature set
   covering every label (a missing vector is an error, never cell-load's silent zero), the work folder free;
2. one split for all (:func:`~bioprofile.perturbation.make_state_split`): held-out perturbations, unseen in
   every cell type, written as cell-load's TOML;
3. per seed, ``state tx train`` and ``state tx predict`` (:mod:`bioprofile.perturbation.runner`) for each
   feature set, for random vectors of the same size and for one-hot (STATE's default);
4. the "no change" prediction (control mean of each cell type) scored beside them, so a method that learned
   nothing beyond the control is visible;
5. cell-eval's metrics per held-out perturbation and cell type (:func:`score_perturbation_predictions`),
   averaged into one method x metric table (:class:`PerturbationBenchResult`, ``write(prefix)``; the plot is
   :func:`bioprofile.pl.perturbation_metrics`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.report import TableResult, format_mean_std, markdown_table, provenance
from bioprofile.perturbation import (
    StateSplit,
    check_feature_coverage,
    check_feature_dims,
    check_perturbation_data,
    export_state_features,
    make_state_split,
    write_cell_load_toml,
)
from bioprofile.perturbation.baselines import control_mean_prediction, random_features
from bioprofile.perturbation.runner import (
    PerturbationColumns,
    StateModelSettings,
    StateRun,
    run_state_train_predict,
)
from bioprofile.readers import read_h5ad

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONTROL_MEAN",
    "METRIC_DIRECTIONS",
    "ONE_HOT",
    "PROFILES",
    "PerturbationBenchOptions",
    "PerturbationBenchPlan",
    "PerturbationBenchResult",
    "benchmark_perturbation",
    "prepare_perturbation_bench",
    "run_perturbation_bench",
    "score_perturbation_predictions",
]

ONE_HOT = "one-hot"
CONTROL_MEAN = "control-mean"
#: cell-eval metric profiles; "minimal" (pearson_delta, mse, mae, discrimination score, overlap/precision at N,
#: DE counts) finishes in well under a second per cell type on a small test set.
PROFILES = ("minimal", "vcc", "full", "de", "anndata")
#: Which way is better for the metrics the table shows first.
METRIC_DIRECTIONS = {
    "pearson_delta": "higher",
    "mse": "lower",
    "mae": "lower",
    "discrimination_score_l1": "higher",
    "overlap_at_N": "higher",
    "precision_at_N": "higher",
}
# cell-eval metrics that need an embedding or are slow, never run here.
_SKIPPED_METRICS = ["pearson_edistance", "clustering_agreement"]


@dataclass(frozen=True)
class PerturbationBenchOptions:
    """How the bench splits, trains and scores.

    Attributes
    ----------
    test_fraction
        Share of perturbations held out (drawn with ``split_seed``), unless ``test_perturbations`` names them.
    test_perturbations
        The held-out perturbations, instead of a draw.
    split_seed
        The seed of the held-out draw.
    seeds
        Training seeds; every method is trained once per seed (random vectors are drawn per seed too).
    model
        STATE's model and trainer sizes (default: the tiny CPU model; :meth:`StateModelSettings.gpu` for real).
    profile
        The cell-eval metric profile (:data:`PROFILES`).
    random
        Also train on random vectors of each feature set's size.
    one_hot
        Also train with STATE's one-hot encoding.
    control_vector
        The control's vector in exported tables: ``"zeros"`` or ``"mean"``.
    allow_missing
        For exported tables, what a perturbation with no vector gets: None (fail), ``"zeros"`` or ``"mean"``.
    """

    test_fraction: float = 0.2
    test_perturbations: tuple[str, ...] | None = None
    split_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    model: StateModelSettings = field(default_factory=StateModelSettings)
    profile: str = "minimal"
    random: bool = True
    one_hot: bool = True
    control_vector: str = "zeros"
    allow_missing: str | None = None

    def check(self) -> PerturbationBenchOptions:
        """These options, once each is valid."""
        if self.profile not in PROFILES:
            raise BioprofileInputError(
                f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}", argument="profile"
            )
        if not self.seeds:
            raise BioprofileInputError("seeds is empty: give at least one training seed", argument="seeds")
        if self.allow_missing == "drop":
            # Dropped keys are zero-filled by cell-load: exactly the silent null perturbation the bench refuses.
            raise BioprofileInputError(
                "allow_missing='drop' leaves labels without a key, which cell-load fills with zeros: "
                "use 'zeros' or 'mean' to choose the vector yourself",
                argument="allow_missing",
            )
        self.model.check()
        return self


@dataclass
class PerturbationBenchPlan:
    """A checked bench, ready to train: the data, the split and every method's features.

    Attributes
    ----------
    data_path
        The ``.h5ad`` file.
    columns
        Its columns.
    split
        The held-out perturbations (and any held-out cell types).
    features
        Feature set name -> label -> 1-D float32 tensor, every label of the data covered.
    sources
        Feature set name -> the file it came from.
    work_dir
        Where the TOML, feature files, runs and cell-eval's files go.
    options
        The options.
    var_names
        The expression features' names, given to predictions that lack them.
    layout_notes
        One line for each default column the data lacks and what was taken instead
        (:meth:`~bioprofile.perturbation.PerturbationColumns.for_data`); ``columns`` are the ones taken.
    """

    data_path: Path
    columns: PerturbationColumns
    split: StateSplit
    features: dict[str, dict]
    sources: dict[str, str]
    work_dir: Path
    options: PerturbationBenchOptions
    var_names: list[str]
    layout_notes: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        """Every row the table will have, in order: the feature sets, their random twins, one-hot, control-mean."""
        names = list(self.features)
        if self.options.random:
            names += [_random_name(n, len(self.features)) for n in self.features]
        if self.options.one_hot:
            names.append(ONE_HOT)
        return [*names, CONTROL_MEAN]


def _random_name(name: str, n_sets: int) -> str:
    return "random" if n_sets == 1 else f"random:{name}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _load_pt_features(path: Path, labels: Sequence[str]) -> dict:
    import torch

    check_feature_dims([path])
    check_feature_coverage(path, labels)
    table = torch.load(path, map_location="cpu", weights_only=True)
    return {label: table[label].float() for label in labels}


def prepare_perturbation_bench(
    data: str | Path,
    embeddings: Mapping[str, str | Path],
    *,
    columns: PerturbationColumns,
    work_dir: str | Path,
    options: PerturbationBenchOptions | None = None,
    overwrite: bool = False,
) -> PerturbationBenchPlan:
    """Check everything a bench needs before any training, and build its features and split.

    Parameters
    ----------
    data
        The Perturb-seq ``.h5ad``.
    embeddings
        Feature set name -> a bioprofile gene table (exported with
        :func:`~bioprofile.perturbation.export_state_features`) or a ``.pt`` dict of label -> 1-D tensor.
    columns
        The data's columns. The default ``embed_key`` or ``batch_col`` absent from the data gives way to ``X`` and
        one batch per cell type (the plan's ``layout_notes`` say so).
    work_dir
        The folder for the bench's files (must not exist, unless ``overwrite``).
    options
        Split, training and scoring options.
    overwrite
        Reuse an existing ``work_dir`` (its earlier runs are deleted).

    Raises
    ------
    BioprofileInputError
        The data fails a check, a feature set misses a label or is malformed, an option is invalid, or the
        work folder is in the way.
    """
    options = (options or PerturbationBenchOptions()).check()
    data_path = Path(data)
    if not data_path.is_file():
        raise BioprofileInputError(f"data file {data_path} does not exist", argument="data")
    if not embeddings:
        raise BioprofileInputError(
            "no embeddings given: name at least one feature set", argument="embeddings"
        )
    work_dir = Path(work_dir)
    if work_dir.exists() and not (overwrite and work_dir.is_dir()):
        raise BioprofileInputError(
            f"{work_dir} already exists: choose another output, or set overwrite to replace it",
            argument="overwrite",
        )
    if not work_dir.parent.is_dir():
        raise BioprofileInputError(f"folder {work_dir.parent} does not exist", argument="work_dir")
    adata = read_h5ad(data_path, what="data file", argument="data")
    columns, layout_notes = columns.for_data(adata)
    check_perturbation_data(
        adata,
        pert_col=columns.pert_col,
        control=columns.control,
        cell_type_key=columns.cell_type_key,
        batch_col=columns.batch_col,
        embed_key=columns.embed_key,
    )
    labels = list(dict.fromkeys(adata.obs[columns.pert_col].astype(str)))
    features: dict[str, dict] = {}
    sources: dict[str, str] = {}
    for name, source in embeddings.items():
        path = Path(source)
        if path.suffix == ".pt":
            features[name] = _load_pt_features(path, labels)
        else:
            exported = export_state_features(
                path,
                adata,
                pert_col=columns.pert_col,
                control=columns.control,
                control_vector=options.control_vector,
                allow_missing=options.allow_missing,
            )
            features[name] = exported.features
        sources[name] = str(path)
    reserved = {ONE_HOT, CONTROL_MEAN, "random", *(f"random:{n}" for n in features)}
    clash = sorted(set(features) & reserved)
    if clash:
        raise BioprofileInputError(
            f"feature set name(s) {', '.join(clash)} are taken by the baselines: rename them",
            argument="embeddings",
        )
    split = make_state_split(
        adata,
        pert_col=columns.pert_col,
        control=columns.control,
        cell_type_key=columns.cell_type_key,
        test_fraction=options.test_fraction,
        test_perturbations=options.test_perturbations,
        seed=options.split_seed,
    )
    if not split.test_perturbations:
        raise BioprofileInputError(
            "no perturbation is held out: raise test_fraction or name test_perturbations",
            argument="test_fraction",
        )
    return PerturbationBenchPlan(
        data_path=data_path,
        columns=columns,
        split=split,
        features=features,
        sources=sources,
        work_dir=work_dir,
        options=options,
        var_names=[str(v) for v in adata.var_names],
        layout_notes=layout_notes,
    )


def score_perturbation_predictions(
    pred,
    real,
    *,
    columns: PerturbationColumns,
    outdir: str | Path,
    profile: str = "minimal",
    var_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """cell-eval's metrics of a prediction, per cell type and perturbation.

    Parameters
    ----------
    pred, real
        Predicted and real AnnData of the same test cells, control cells included (as ``state tx predict``
        writes them).
    columns
        Their perturbation, control and cell-type columns.
    outdir
        Where cell-eval writes its differential-expression tables.
    profile
        The cell-eval metric profile.
    var_names
        Names for the expression features when ``pred`` and ``real`` lack them (STATE writes none).

    Returns
    -------
    pandas.DataFrame
        One row per (cell type, perturbation), the control excluded: ``cell_type``, ``perturbation`` and one
        column per metric.
    """
    import pandas as pd
    from cell_eval import MetricsEvaluator

    if var_names is not None and len(var_names) == pred.n_vars == real.n_vars:
        pred.var_names = list(var_names)
        real.var_names = list(var_names)
    frames = []
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    types = real.obs[columns.cell_type_key].astype(str).to_numpy()
    pred_types = pred.obs[columns.cell_type_key].astype(str).to_numpy()
    for ct in dict.fromkeys(types):
        evaluator = MetricsEvaluator(
            adata_pred=pred[pred_types == ct].copy(),
            adata_real=real[types == ct].copy(),
            control_pert=columns.control,
            pert_col=columns.pert_col,
            num_threads=threads,
            outdir=str(outdir),
            prefix=_slug(ct),
            pdex_kwargs={"is_log1p": True},
        )
        results, _ = evaluator.compute(profile=profile, skip_metrics=_SKIPPED_METRICS, write_csv=False)
        frame = results.to_pandas()
        frame.insert(0, "cell_type", ct)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _train_and_predict(plan: PerturbationBenchPlan, name: str, seed: int, features: dict | None) -> StateRun:
    import torch

    slug = f"{_slug(name)}-seed{seed}"
    features_file = None
    if features is not None:
        features_file = plan.work_dir / "features" / f"{slug}.pt"
        torch.save(features, features_file)
    return run_state_train_predict(
        plan.work_dir / "split.toml",
        plan.work_dir / "runs" / slug,
        columns=plan.columns,
        settings=plan.options.model.with_seed(seed),
        features_file=features_file,
    )


def run_perturbation_bench(plan: PerturbationBenchPlan) -> PerturbationBenchResult:
    """Train, predict and score every method of a checked bench (:func:`prepare_perturbation_bench`)."""
    import anndata as ad
    import pandas as pd

    if plan.work_dir.exists():
        import shutil

        shutil.rmtree(plan.work_dir)
    (plan.work_dir / "features").mkdir(parents=True)
    write_cell_load_toml(plan.split, plan.work_dir / "split.toml", data_path=plan.data_path)
    held_out = set(plan.split.test_perturbations)
    options = plan.options
    frames = []
    for seed in options.seeds:
        todo: list[tuple[str, dict | None]] = list(plan.features.items())
        if options.random:
            todo += [
                (
                    _random_name(n, len(plan.features)),
                    random_features(f, control=plan.columns.control, seed=seed),
                )
                for n, f in plan.features.items()
            ]
        if options.one_hot:
            todo.append((ONE_HOT, None))
        real = None
        for name, features in todo:
            run = _train_and_predict(plan, name, seed, features)
            pred, this_real = ad.read_h5ad(run.pred_path), ad.read_h5ad(run.real_path)
            real = this_real if real is None else real
            frames.append(_scored(plan, name, seed, pred, this_real))
        baseline = control_mean_prediction(
            real,
            pert_col=plan.columns.pert_col,
            control=plan.columns.control,
            cell_type_key=plan.columns.cell_type_key,
        )
        frames.append(_scored(plan, CONTROL_MEAN, seed, baseline, real))
    per_perturbation = pd.concat(frames, ignore_index=True)
    per_perturbation["held_out"] = per_perturbation["perturbation"].isin(held_out)
    return _summarise(plan, per_perturbation)


def _scored(plan: PerturbationBenchPlan, name: str, seed: int, pred, real) -> pd.DataFrame:
    outdir = plan.work_dir / "cell_eval" / f"{_slug(name)}-seed{seed}"
    frame = score_perturbation_predictions(
        pred,
        real,
        columns=plan.columns,
        outdir=outdir,
        profile=plan.options.profile,
        var_names=plan.var_names,
    )
    frame.insert(0, "seed", seed)
    frame.insert(0, "method", name)
    return frame


def _summarise(plan: PerturbationBenchPlan, per_perturbation: pd.DataFrame) -> PerturbationBenchResult:
    import pandas as pd

    held = per_perturbation[per_perturbation["held_out"]]
    metrics = [
        c for c in held.columns if c not in ("method", "seed", "cell_type", "perturbation", "held_out")
    ]
    metrics = [m for m in METRIC_DIRECTIONS if m in metrics] + [
        m for m in metrics if m not in METRIC_DIRECTIONS
    ]
    per_seed = held.groupby(["method", "seed"], sort=False)[metrics].mean()
    order = [m for m in plan.methods if m in per_seed.index.get_level_values("method")]
    mean = per_seed.groupby(level="method", sort=False).mean().reindex(order)
    std = per_seed.groupby(level="method", sort=False).std(ddof=1).reindex(order)
    mean.index.name = std.index.name = "method"
    settings = {
        "data": str(plan.data_path),
        "columns": asdict(plan.columns),
        "layout_defaults_taken": list(plan.layout_notes),
        "embeddings": plan.sources,
        "held_out_perturbations": plan.split.test_perturbations,
        "cell_types": list(plan.split.cell_types),
        "options": asdict(plan.options),
        "n_held_out_rows": int(len(held) // max(len(per_seed), 1)),
        "work_dir": str(plan.work_dir),
    }
    return PerturbationBenchResult(
        table=mean,
        settings=settings,
        provenance=provenance("arc-state", "cell-load", "cell-eval", "torch"),
        std=std,
        per_perturbation=pd.DataFrame(per_perturbation),
    )


def benchmark_perturbation(
    data: str | Path,
    embeddings: Mapping[str, str | Path],
    *,
    columns: PerturbationColumns,
    work_dir: str | Path,
    options: PerturbationBenchOptions | None = None,
    overwrite: bool = False,
) -> PerturbationBenchResult:
    """Every check, then STATE trained and scored for each feature set and baseline (see the module docstring).

    Parameters are those of :func:`prepare_perturbation_bench`.

    Returns
    -------
    PerturbationBenchResult
        Held-out-perturbation metrics, one row per method (``one-hot`` and ``control-mean`` included).

    Warns
    -----
    UserWarning
        Once for each default column the data lacks (``X`` or one batch per cell type taken instead).
    """
    import warnings

    plan = prepare_perturbation_bench(
        data, embeddings, columns=columns, work_dir=work_dir, options=options, overwrite=overwrite
    )
    for note in plan.layout_notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return run_perturbation_bench(plan)


@dataclass(frozen=True, eq=False)
class PerturbationBenchResult(TableResult):
    """Held-out-perturbation metrics of each method: the mean over seeds in :attr:`table`, the spread in :attr:`std`.

    Attributes
    ----------
    std
        Standard deviation over seeds of each mean (NaN with one seed).
    per_perturbation
        Every scored (method, seed, cell type, perturbation) row, ``held_out`` marking the unseen perturbations.
    """

    std: Any = None
    per_perturbation: Any = None

    def to_markdown(self) -> str:
        """The table (mean ± std over seeds) and what it measured, as GitHub markdown."""
        rows = []
        for method, values in self.table.iterrows():
            row: dict[str, Any] = {"method": method}
            for metric, value in values.items():
                spread = None if self.std is None else self.std.loc[method, metric]
                row[metric] = format_mean_std(float(value), None if spread is None else float(spread))
            rows.append(row)
        directions = ", ".join(
            f"{m} {'↑' if d == 'higher' else '↓'}" for m, d in METRIC_DIRECTIONS.items() if m in self.table
        )
        held = self.settings.get("held_out_perturbations", [])
        seeds = self.settings.get("options", {}).get("seeds", [])
        return (
            "# Perturbation response: STATE on held-out perturbations\n\n"
            f"{len(held)} held-out perturbation(s), unseen in training in every cell type; cell-eval metrics "
            f"averaged over them and the cell types, mean ± std over {len(seeds)} seed(s). {directions}. "
            f"`{CONTROL_MEAN}` predicts no change (the control mean of each cell type).\n\n"
            + markdown_table(rows)
        )

    def to_dict(self) -> dict[str, Any]:
        """Settings, provenance, the table rows with their spread, and every per-perturbation score."""
        out = super().to_dict()
        if self.std is not None:
            out["std"] = [{"method": m, **r} for m, r in self.std.to_dict(orient="index").items()]
        if self.per_perturbation is not None:
            out["per_perturbation"] = self.per_perturbation.replace({np.nan: None}).to_dict(orient="records")
        return out
