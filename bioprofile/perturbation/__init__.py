"""Perturbation response: bioprofile embeddings as perturbation features for Arc Institute's STATE.

Modules
-------
export
    :func:`export_state_features`: obs labels -> 1-D float32 tensors (the ``torch.save`` dict STATE reads), with
    a sidecar JSON recording the control handling, combinations and any missing labels.
checks
    Pre-flight checks of the AnnData and the feature files (columns, control per cell type, gene names, obsm key,
    feature dimension), each a one-line :class:`~bioprofile.errors.BioprofileInputError`.
toml
    :func:`make_state_split` (held-out perturbations and cell types) and :func:`write_cell_load_toml`, the
    experiment file cell-load reads.
runner
    ``state tx train`` / ``state tx predict`` through arc-state's own entry point, as subprocesses of this
    interpreter (:func:`run_state_train_predict`); :class:`StateModelSettings` (tiny CPU model by default,
    :meth:`StateModelSettings.gpu` for a real run), :class:`PerturbationColumns`.
baselines
    What perturbation features must beat: :func:`random_features` (same size and scale) and
    :func:`control_mean_prediction` ("no change"); one-hot is STATE's default (no feature file).
"""

from bioprofile.perturbation.baselines import control_mean_prediction, random_features
from bioprofile.perturbation.checks import (
    check_control_in_cell_types,
    check_control_label,
    check_feature_coverage,
    check_feature_dims,
    check_obs_column,
    check_obsm_key,
    check_perturbation_data,
    check_var_names,
)
from bioprofile.perturbation.export import (
    MissingPerturbationsError,
    StateFeatures,
    export_state_features,
    sidecar_path,
)
from bioprofile.perturbation.runner import (
    PerturbationColumns,
    StateModelSettings,
    StateRun,
    StateRunError,
    run_state_predict,
    run_state_train,
    run_state_train_predict,
    state_train_overrides,
)
from bioprofile.perturbation.toml import StateSplit, make_state_split, write_cell_load_toml

__all__ = [
    "MissingPerturbationsError",
    "PerturbationColumns",
    "StateModelSettings",
    "StateRun",
    "StateRunError",
    "StateFeatures",
    "StateSplit",
    "check_control_in_cell_types",
    "check_control_label",
    "check_feature_coverage",
    "check_feature_dims",
    "check_obs_column",
    "check_obsm_key",
    "check_perturbation_data",
    "check_var_names",
    "control_mean_prediction",
    "export_state_features",
    "make_state_split",
    "random_features",
    "run_state_predict",
    "run_state_train",
    "run_state_train_predict",
    "sidecar_path",
    "state_train_overrides",
    "write_cell_load_toml",
]
