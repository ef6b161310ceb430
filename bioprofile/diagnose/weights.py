"""The weights view: each token of one scored response under the SFT, DFT, BFT and BFT-v1 losses, side by side.

The weights are the ones training applies (:func:`bioprofile.train.losses.token_weights` on the response's
cross-entropy), so the table shows what each loss keeps and what it suppresses. torch is imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bioprofile.diagnose.confidences import ResponseConfidence
from bioprofile.errors import BioprofileInputError

WEIGHT_METHODS: tuple[str, ...] = ("sft", "dft", "bft", "bft-v1")

__all__ = ["WEIGHT_METHODS", "check_weight_window", "compact_weight_view", "token_weight_table"]


def check_weight_window(window: int | None, methods: Sequence[str] = WEIGHT_METHODS) -> None:
    """Refuse a loss window some of ``methods`` cannot use (an even one for the centred windows), before any work.

    Parameters
    ----------
    window
        Window length G, or ``None`` for each method's default.
    methods
        The loss names the table will hold.

    Raises
    ------
    BioprofileInputError
        The window is not an integer >= 1, or it is even and a method centres its windows on a token.
    """
    # lazy: bioprofile.train.losses imports torch at module top; checking a window must not load it
    from bioprofile.train.losses import resolve_window

    for method in ("bft", *methods):
        resolve_window(method, window)


def token_weight_table(
    confidence: ResponseConfidence,
    *,
    methods: Sequence[str] = WEIGHT_METHODS,
    window: int | None = None,
) -> pd.DataFrame:
    """Each token's loss weight under SFT, DFT, BFT and BFT-v1, side by side.

    The weights come from :func:`bioprofile.train.losses.token_weights` applied to the response's
    cross-entropy ``-log p``, so they are the weights training puts on this response. Each method's column
    is the effective weight ``w_t * beta`` (token weight times the response's sample weight), the factor that
    multiplies the token's cross-entropy.

    Parameters
    ----------
    confidence
        One scored response (ideally tagged, see :func:`bioprofile.diagnose.confidences.tag_response`).
    methods
        Loss names understood by ``token_weights``.
    window
        Window length G for the losses; ``None`` uses each method's default (9; 256 for ``bft-v1``).

    Returns
    -------
    One row per token: ``position``, ``token``, ``p``, ``cbar`` (BFT's local confidence), ``entity``,
    ``connective``, then one column per method. ``table.attrs["sample_weight"]`` maps each method to ``beta``.
    """
    import torch

    # lazy: bioprofile.train.losses imports torch at module top, which the rest of the package does not need
    from bioprofile.train.losses import local_confidence, resolve_window, token_weights

    check_weight_window(window, methods)
    n = confidence.p.size
    if n == 0:
        raise BioprofileInputError(
            f"response {confidence.index} has no tokens to weigh; pick another index", argument="index"
        )
    p = torch.tensor(np.clip(confidence.p, 1e-300, 1.0), dtype=torch.float64)[None]
    mask = torch.ones_like(p, dtype=torch.bool)
    table = pd.DataFrame(
        {
            "position": np.arange(n),
            "token": confidence.tokens,
            "p": confidence.p,
            "cbar": local_confidence(p, mask, resolve_window("bft", window))[0].numpy(),
            "entity": confidence.entity if confidence.entity.size else np.zeros(n, dtype=bool),
            "connective": confidence.connective if confidence.connective.size else np.zeros(n, dtype=bool),
        }
    )
    sample_weight = {}
    for method in methods:
        weights = token_weights(-torch.log(p), mask, method=method, window=window)
        table[method] = (weights.token[0] * weights.sample[0]).numpy()
        sample_weight[method] = float(weights.sample[0])
    table.attrs["sample_weight"] = sample_weight
    return table


def compact_weight_view(table: pd.DataFrame) -> pd.DataFrame:
    """A narrower :func:`token_weight_table` for printing: ``cbar`` dropped, the two tags merged into ``tag``."""
    tag = np.where(table["entity"], "gene", np.where(table["connective"], "causal", ""))
    methods = [m for m in table.columns if m in WEIGHT_METHODS]
    view = table[["position", "token", "p"]].assign(tag=tag)
    return pd.concat([view, table[methods]], axis=1)
