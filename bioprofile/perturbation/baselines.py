"""Baselines of the perturbation bench: what a perturbation feature must beat.

- **one-hot**: STATE's default encoding (no feature file); a perturbation held out of training has a one-hot
  column the model never saw, so it can only be predicted as the average seen perturbation.
- **random**: :func:`random_features`, a random vector of the same size and scale for every perturbation: what
  a feature file carries when it knows nothing about the genes.
- **control-mean**: :func:`control_mean_prediction`, "no change": every perturbed cell predicted as the mean
  control cell of its cell type. A method that learned nothing beyond the control must show up next to it.
"""

from __future__ import annotations

import numpy as np

from bioprofile.errors import BioprofileInputError

__all__ = ["control_mean_prediction", "random_features"]


def random_features(features: dict, *, control: str, seed: int = 0) -> dict:
    """Random vectors in place of ``features``: the same labels, size and mean norm; the control's vector kept.

    Parameters
    ----------
    features
        Perturbation label -> 1-D float tensor (what :func:`~bioprofile.perturbation.export_state_features` made).
    control
        The control label; its vector (zeros by default) stays as it is, as the control means "no perturbation".
    seed
        The seed of the draw.

    Returns
    -------
    dict
        Label -> 1-D float32 tensor, Gaussian directions scaled to the mean norm of the non-control vectors.
    """
    import torch

    if not features:
        raise BioprofileInputError("features is empty: there is nothing to replace", argument="features")
    labels = [k for k in features if k != control]
    dim = int(next(iter(features.values())).shape[0])
    norms = [float(torch.linalg.vector_norm(features[k].float())) for k in labels]
    scale = float(np.mean(norms)) if norms else 1.0
    draws = np.random.default_rng(seed).standard_normal((len(labels), dim))
    draws *= scale / np.maximum(np.linalg.norm(draws, axis=1, keepdims=True), 1e-12)
    out = {k: torch.from_numpy(draws[i].astype(np.float32)) for i, k in enumerate(labels)}
    if control in features:
        out[control] = features[control].clone().float()
    return {k: out[k] for k in features}


def control_mean_prediction(real, *, pert_col: str, control: str, cell_type_key: str):
    """A "no change" prediction of ``real``: each perturbed cell replaced by the mean control cell of its type.

    Parameters
    ----------
    real
        The real AnnData of the test cells, control cells included (``state tx predict``'s ``adata_real``).
    pert_col, control, cell_type_key
        Its perturbation column, control label and cell-type column.

    Returns
    -------
    anndata.AnnData
        A copy of ``real`` whose non-control rows of ``X`` are the control means (control rows unchanged).

    Raises
    ------
    BioprofileInputError
        A cell type of ``real`` has no control cells.
    """
    pred = real.copy()
    x = np.asarray(pred.X.toarray() if hasattr(pred.X, "toarray") else pred.X, dtype=np.float32)
    labels = pred.obs[pert_col].astype(str).to_numpy()
    types = pred.obs[cell_type_key].astype(str).to_numpy()
    for ct in dict.fromkeys(types):
        in_type = types == ct
        ctrl = in_type & (labels == control)
        if not ctrl.any():
            raise BioprofileInputError(
                f"cell type {ct!r} has no {control!r} cells to take the control mean of", argument="control"
            )
        x[in_type & ~ctrl] = x[ctrl].mean(axis=0)
    pred.X = x
    return pred
