"""Run arc-state's ``state tx train`` and ``state tx predict`` as subprocesses of this Python interpreter.

Both go through arc-state's own entry point (``python -m state tx ...``), training with hydra overrides, so a run
here is the run a user would type. Everything a run writes (config, checkpoints, the Lightning CSV log, the
predicted and real AnnData) goes under ``run_dir``, which is also the subprocess's working folder; wandb is off.
arc-state (CC BY-NC-SA 4.0, non-commercial) is needed only to call these functions.

:class:`StateModelSettings` holds the model and trainer sizes: the default is a tiny transition model that
trains in seconds on a CPU; :meth:`StateModelSettings.gpu` keeps arc-state's own ``state_sm`` sizes for a real run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bioprofile.errors import BioprofileInputError

__all__ = [
    "PerturbationColumns",
    "StateModelSettings",
    "StateRun",
    "StateRunError",
    "run_state_predict",
    "run_state_train",
    "run_state_train_predict",
    "state_train_overrides",
]


class StateRunError(RuntimeError):
    """``state tx train`` or ``state tx predict`` failed; the message ends with the last lines of its log."""


@dataclass(frozen=True)
class PerturbationColumns:
    """Where a Perturb-seq AnnData keeps what STATE needs.

    Attributes
    ----------
    pert_col
        The ``obs`` column of perturbation labels.
    control
        The control label in it.
    cell_type_key
        The ``obs`` column of cell types.
    batch_col
        The ``obs`` column of batches (gem groups).
    embed_key
        The ``obsm`` matrix STATE models (``"X_hvg"``: the expression of the highly variable genes); ``None``
        models ``X``.
    """

    pert_col: str = "gene"
    control: str = "non-targeting"
    cell_type_key: str = "cell_type"
    batch_col: str = "gem_group"
    embed_key: str | None = "X_hvg"

    def for_data(self, adata) -> tuple[PerturbationColumns, list[str]]:
        """These columns, where a default the data lacks gives way, and one note for each default given up.

        A plain Perturb-seq file (expression in ``X``, no batch column) should run without layout arguments: the
        default ``embed_key`` (``"X_hvg"``) absent from ``obsm`` falls back to ``X``; the default ``batch_col``
        (``"gem_group"``) absent from ``obs`` falls back to the cell-type column, so each cell type is one batch
        (cell-load needs a batch column; STATE's default random control mapping and disabled batch encoder do
        not use it beyond that). A column that is not the default is never replaced: its absence stays an error.

        Parameters
        ----------
        adata
            The AnnData (its ``obs`` and ``obsm`` keys are read).

        Returns
        -------
        tuple of PerturbationColumns and list of str
            The columns to use, and what was taken instead of an absent default (empty when nothing was).
        """
        defaults = PerturbationColumns()
        columns, notes = self, []
        if (
            self.embed_key is not None
            and self.embed_key == defaults.embed_key
            and self.embed_key not in adata.obsm
        ):
            columns = replace(columns, embed_key=None)
            notes.append(f"no obsm[{self.embed_key!r}]: STATE models the expression in X (embed_key=None)")
        if self.batch_col == defaults.batch_col and self.batch_col not in adata.obs:
            columns = replace(columns, batch_col=self.cell_type_key)
            notes.append(
                f"no batch column {self.batch_col!r} in obs: one batch per cell type "
                f"(batch_col={self.cell_type_key!r})"
            )
        return columns, notes


@dataclass(frozen=True)
class StateModelSettings:
    """Sizes of STATE's transition model and its trainer; a ``None`` keeps arc-state's ``state_sm`` value.

    Attributes
    ----------
    hidden_dim
        Width of the transformer backbone.
    n_layers
        Transformer layers.
    n_heads
        Attention heads (``hidden_dim / n_heads`` is each head's size).
    intermediate_size
        Width of the feed-forward layers.
    cell_set_len
        Cells per set (STATE models sets of cells of one perturbation).
    batch_size
        Sets per step.
    max_steps
        Training steps.
    lr
        Learning rate.
    seed
        The training seed (``training.train_seed``).
    num_workers
        Data loader workers (0: load in the training process).
    """

    hidden_dim: int | None = 32
    n_layers: int | None = 1
    n_heads: int | None = 2
    intermediate_size: int | None = 64
    cell_set_len: int | None = 16
    batch_size: int = 4
    max_steps: int = 300
    lr: float = 3e-3
    seed: int = 42
    num_workers: int = 0

    @classmethod
    def gpu(cls, *, max_steps: int = 40_000, seed: int = 42) -> StateModelSettings:
        """arc-state's ``state_sm`` model and trainer defaults, for a real run on a GPU."""
        return cls(
            hidden_dim=None,
            n_layers=None,
            n_heads=None,
            intermediate_size=None,
            cell_set_len=None,
            batch_size=16,
            max_steps=max_steps,
            lr=1e-4,
            seed=seed,
            num_workers=8,
        )

    def with_seed(self, seed: int) -> StateModelSettings:
        """These settings with another training seed."""
        return replace(self, seed=seed)

    def check(self) -> StateModelSettings:
        """These settings, once every size is positive and the heads divide the width."""
        for name, value in asdict(self).items():
            if name in ("seed", "num_workers", "lr"):
                continue
            if value is not None and value < 1:
                raise BioprofileInputError(f"{name} must be at least 1, got {value}", argument=name)
        if self.lr <= 0:
            raise BioprofileInputError(f"lr must be positive, got {self.lr}", argument="lr")
        if self.num_workers < 0:
            raise BioprofileInputError(
                f"num_workers must be at least 0, got {self.num_workers}", argument="num_workers"
            )
        if self.hidden_dim is not None and self.n_heads is not None and self.hidden_dim % self.n_heads:
            raise BioprofileInputError(
                f"n_heads ({self.n_heads}) must divide hidden_dim ({self.hidden_dim})", argument="n_heads"
            )
        return self


@dataclass(frozen=True)
class StateRun:
    """One trained (and maybe predicted) STATE model.

    Attributes
    ----------
    run_dir
        The folder of the run (``config.yaml``, ``checkpoints/``, the logs).
    checkpoint
        The checkpoint predicted with.
    """

    run_dir: Path
    checkpoint: str = "final.ckpt"

    @property
    def eval_dir(self) -> Path:
        """The folder ``state tx predict`` writes into."""
        return self.run_dir / f"eval_{self.checkpoint}"

    @property
    def pred_path(self) -> Path:
        """The predicted AnnData (``adata_pred.h5ad``)."""
        return self.eval_dir / "adata_pred.h5ad"

    @property
    def real_path(self) -> Path:
        """The real AnnData of the same test cells (``adata_real.h5ad``)."""
        return self.eval_dir / "adata_real.h5ad"


def _hydra_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        # Quoted so hydra keeps labels such as "non-targeting" or "1" as strings.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def state_train_overrides(
    toml_path: str | Path,
    run_dir: str | Path,
    *,
    columns: PerturbationColumns,
    settings: StateModelSettings,
    features_file: str | Path | None = None,
) -> list[str]:
    """The hydra overrides of ``state tx train`` for one run.

    Parameters
    ----------
    toml_path
        The cell-load experiment TOML (:func:`~bioprofile.perturbation.write_cell_load_toml`).
    run_dir
        The run's folder; arc-state writes into ``output_dir/name``, so these are its parent and its name.
    columns
        The data's columns.
    settings
        Model and trainer sizes.
    features_file
        A ``torch.save`` dict of perturbation vectors; ``None`` keeps STATE's default one-hot encoding.

    Returns
    -------
    list of str
        ``key=value`` overrides, wandb off.
    """
    run_dir = Path(run_dir).resolve()
    data = {
        "toml_config_path": str(Path(toml_path).resolve()),
        "embed_key": columns.embed_key,
        "output_space": "gene",
        "num_workers": settings.num_workers,
        "pin_memory": False,
        "pert_col": columns.pert_col,
        "cell_type_key": columns.cell_type_key,
        "batch_col": columns.batch_col,
        "control_pert": columns.control,
        "perturbation_features_file": None if features_file is None else str(Path(features_file).resolve()),
    }
    out = [f"data.kwargs.{k}={_hydra_value(v)}" for k, v in data.items()]
    out += ["model=state_sm"]
    backbone = "model.kwargs.transformer_backbone_kwargs"
    if settings.hidden_dim is not None:
        out.append(f"model.kwargs.hidden_dim={settings.hidden_dim}")
    if settings.cell_set_len is not None:
        out.append(f"model.kwargs.cell_set_len={settings.cell_set_len}")
    if settings.n_layers is not None:
        out.append(f"{backbone}.num_hidden_layers={settings.n_layers}")
    if settings.n_heads is not None:
        out += [
            f"{backbone}.num_attention_heads={settings.n_heads}",
            f"{backbone}.num_key_value_heads={settings.n_heads}",
        ]
        if settings.hidden_dim is not None:
            out.append(f"{backbone}.head_dim={settings.hidden_dim // settings.n_heads}")
    if settings.intermediate_size is not None:
        out.append(f"{backbone}.intermediate_size={settings.intermediate_size}")
    if settings.hidden_dim is not None:
        out += ["model.kwargs.n_encoder_layers=1", "model.kwargs.n_decoder_layers=1"]
    steps = settings.max_steps
    out += [
        f"training.max_steps={steps}",
        f"training.val_freq={min(steps, 2000)}",
        f"training.ckpt_every_n_steps={min(steps, 2000)}",
        f"training.batch_size={settings.batch_size}",
        f"training.lr={settings.lr}",
        f"training.train_seed={settings.seed}",
        "training.wandb_track=false",
        "use_wandb=false",
        f"wandb.local_wandb_dir={_hydra_value(str(run_dir / 'wandb'))}",
        f"output_dir={_hydra_value(str(run_dir.parent))}",
        f"name={_hydra_value(run_dir.name)}",
    ]
    return out


# Both commands through arc-state's own entry point in one interpreter: the imports (lightning, cell-load,
# cell-eval) then cost once per run instead of twice.
_TRAIN_THEN_PREDICT = """
import json, sys
from state.__main__ import main
for argv in json.loads(sys.argv[1]):
    sys.argv = ["state", *argv]
    main()
"""


def _run(args: list[str], cwd: Path, log: Path, what: str) -> None:
    env = dict(os.environ, WANDB_MODE="disabled", WANDB_DIR=str(cwd), WANDB_SILENT="true")
    with open(log, "w") as handle:
        done = subprocess.run(args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise StateRunError(f"{what} failed with exit code {done.returncode} (log: {log}):\n{tail}")


def _prepare_run_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir).resolve()
    if (run_dir / "checkpoints").exists():
        raise BioprofileInputError(f"{run_dir} already holds a STATE run", argument="run_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _predict_args(run: StateRun) -> list[str]:
    # arc-state's own argparse options (the argv of its subprocess), listed as foreign in the structure test
    return [
        "tx",
        "predict",
        "--output-dir",
        str(run.run_dir),
        "--checkpoint",
        run.checkpoint,
        "--predict-only",
    ]


def run_state_train(
    toml_path: str | Path,
    run_dir: str | Path,
    *,
    columns: PerturbationColumns,
    settings: StateModelSettings | None = None,
    features_file: str | Path | None = None,
) -> StateRun:
    """Train STATE's transition model with ``state tx train``; returns the run.

    Parameters
    ----------
    toml_path
        The cell-load experiment TOML.
    run_dir
        The run's folder (created; it must not hold an earlier run, whose checkpoint arc-state would resume).
    columns
        The data's columns.
    settings
        Model and trainer sizes (default: the tiny CPU model).
    features_file
        Perturbation vectors; ``None``: STATE's one-hot encoding.

    Raises
    ------
    StateRunError
        arc-state exited with an error.
    """
    settings = (settings or StateModelSettings()).check()
    run_dir = _prepare_run_dir(run_dir)
    overrides = state_train_overrides(
        toml_path, run_dir, columns=columns, settings=settings, features_file=features_file
    )
    _run(
        [sys.executable, "-m", "state", "tx", "train", *overrides],
        run_dir,
        run_dir / "train.log",
        "state tx train",
    )
    return StateRun(run_dir)


def run_state_predict(run: StateRun) -> StateRun:
    """Predict the test cells of a trained run with ``state tx predict`` (no scoring); returns the run.

    The predicted and real AnnData land at :attr:`StateRun.pred_path` and :attr:`StateRun.real_path`.

    Raises
    ------
    StateRunError
        arc-state exited with an error, or wrote no predictions.
    """
    _run(
        [sys.executable, "-m", "state", *_predict_args(run)],
        run.run_dir,
        run.run_dir / "predict.log",
        "state tx predict",
    )
    if not run.pred_path.exists():
        raise StateRunError(f"state tx predict wrote no {run.pred_path} (log: {run.run_dir / 'predict.log'})")
    return run


def run_state_train_predict(
    toml_path: str | Path,
    run_dir: str | Path,
    *,
    columns: PerturbationColumns,
    settings: StateModelSettings | None = None,
    features_file: str | Path | None = None,
) -> StateRun:
    """``state tx train`` then ``state tx predict``, in one subprocess; arguments as :func:`run_state_train`.

    Returns
    -------
    StateRun
        The run, its predictions at :attr:`StateRun.pred_path` and :attr:`StateRun.real_path`.

    Raises
    ------
    StateRunError
        arc-state exited with an error (the log is ``run_dir/state.log``), or wrote no predictions.
    """
    import json

    settings = (settings or StateModelSettings()).check()
    run_dir = _prepare_run_dir(run_dir)
    run = StateRun(run_dir)
    train = [
        "tx",
        "train",
        *state_train_overrides(
            toml_path, run_dir, columns=columns, settings=settings, features_file=features_file
        ),
    ]
    argv = json.dumps([train, _predict_args(run)])
    log = run_dir / "state.log"
    _run([sys.executable, "-c", _TRAIN_THEN_PREDICT, argv], run_dir, log, "state tx train + predict")
    if not run.pred_path.exists():
        raise StateRunError(f"state tx predict wrote no {run.pred_path} (log: {log})")
    return run
