"""Token- and sample-reweighted causal-LM losses: SFT, DFT and Balanced Fine-Tuning (BFT).

Every objective here has the same shape::

    loss = mean_i  beta_i * sum_t(mask_it * w_it * ce_it) / (sum_t mask_it + eps)

where ``ce_it = -log p_it`` is the per-token cross-entropy of the target token, ``w_it`` a per-token
weight and ``beta_i`` a per-sample weight. That is the ``"sample_mean"`` normalisation (the default, and the
paper's: each sample's mean, then the batch mean). ``"token_mean"`` divides the batch's weighted sum by all its
valid tokens instead, ``sum_i beta_i * sum_t(mask_it * w_it * ce_it) / max(sum_it mask_it, 1)``, which is how TRL's
and LlamaFactory's ``dft`` reduce (see :data:`NORMALIZATIONS`). Both weights are computed from the detached probabilities
(stop-gradient), so the gradient of the loss is ``sum(beta * w * d ce) / (n_valid + eps) / B``.

=============  ===============================  ===========================================
method         token weight ``w_t``              sample weight ``beta_i``
=============  ===============================  ===========================================
``sft``        1                                 1
``dft``        ``p_t``                           1
``bft``        ``p_t / cbar_t``                  ``2 - min_t cbar_t``
``bft-token``  ``p_t / cbar_t``                  1
``bft-sample`` 1                                 ``2 - min_t cbar_t``
``bft-v1``     ``p_t``                           ``1 - exp(m_i)``
=============  ===============================  ===========================================

``cbar_t`` is the local confidence (see :func:`local_confidence`) and ``m_i`` the lowest windowed mean
log-probability of sample ``i`` (see :func:`min_window_mean_log_prob`). ``docs/bft.md`` gives the
formulas and every choice made where the paper is silent.

:func:`causal_lm_loss` starts from logits; :func:`reweighted_loss` starts from per-token cross-entropy,
so a chunked or fused cross-entropy (``bioprofile.train.chunked``) that never builds full logits can
feed it; :func:`token_weights` returns the weights themselves (for diagnostics).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from bioprofile.errors import BioprofileInputError

__all__ = [
    "DEFAULT_WINDOWS",
    "METHODS",
    "NORMALIZATIONS",
    "LossWeights",
    "causal_lm_loss",
    "check_labels",
    "check_normalization",
    "local_confidence",
    "min_window_mean_log_prob",
    "resolve_window",
    "reweighted_loss",
    "shift_and_mask_labels",
    "token_weights",
]

METHODS: tuple[str, ...] = ("sft", "dft", "bft", "bft-token", "bft-sample", "bft-v1")

# How a batch's weighted token losses become one number: each sample's mean then the batch mean (the paper's),
# or one mean over every valid token of the batch (TRL's and LlamaFactory's reduction).
NORMALIZATIONS: tuple[str, ...] = ("sample_mean", "token_mean")

# Window length G used when the caller passes ``window=None``. bft-v1 follows the earlier public code,
# whose window spans 256 valid tokens; the BFT family uses a short local window of 9 positions.
DEFAULT_WINDOWS: dict[str, int] = {
    "sft": 9,
    "dft": 9,
    "bft": 9,
    "bft-token": 9,
    "bft-sample": 9,
    "bft-v1": 256,
}

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class LossWeights(NamedTuple):
    """Detached weights of one reweighted objective.

    Attributes
    ----------
    token
        ``[B, T]`` per-token weight ``w_t``; exactly 0 at ignored positions.
    sample
        ``[B]`` per-sample weight ``beta_i``.
    """

    token: torch.Tensor
    sample: torch.Tensor


def resolve_window(method: str, window: int | None) -> int:
    """Check ``method`` and ``window`` and return the window length to use.

    Parameters
    ----------
    method
        One of :data:`METHODS`.
    window
        Window length G (>= 1; odd except for ``bft-v1``, whose windows are not centred), or ``None``
        for the method's default in :data:`DEFAULT_WINDOWS` (9, or 256 for ``bft-v1``).

    Returns
    -------
    The window length.

    Raises
    ------
    BioprofileInputError
        (a ValueError) for an unknown method, a window that is not an integer >= 1, or an even window
        for a method other than ``bft-v1``.
    """
    if method not in METHODS:
        raise BioprofileInputError(f"unknown loss method {method!r}: use one of {', '.join(METHODS)}")
    if window is None:
        return DEFAULT_WINDOWS[method]
    if isinstance(window, bool) or not isinstance(window, int):
        raise BioprofileInputError(f"loss window must be an odd integer >= 1, got {window!r}")
    if window < 1:
        raise BioprofileInputError(f"loss window must be >= 1, got {window}: pass an odd integer such as 9")
    # Only the centred windows (cbar) need an odd length; bft-v1 windows start at a token, and its
    # default of 256 is even.
    if window % 2 == 0 and method != "bft-v1":
        raise BioprofileInputError(
            f"loss window must be odd so it centres on a token, got {window}: use {window - 1} or {window + 1}"
        )
    return window


def check_normalization(normalization: str) -> str:
    """Return ``normalization`` if it is one of :data:`NORMALIZATIONS`; raise :class:`BioprofileInputError` if not."""
    if normalization not in NORMALIZATIONS:
        raise BioprofileInputError(
            f"unknown loss normalization {normalization!r}: use one of {', '.join(NORMALIZATIONS)}",
            argument="normalization",
        )
    return normalization


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """bf16/fp16 statistics are reduced in fp32; fp32 and fp64 are kept as they are."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _check_token_inputs(token_ce: torch.Tensor, mask: torch.Tensor) -> None:
    if token_ce.dim() != 2:
        raise ValueError(f"token_ce must be [batch, time], got shape {tuple(token_ce.shape)}")
    if mask.shape != token_ce.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match token_ce shape {tuple(token_ce.shape)}"
        )
    if not token_ce.is_floating_point():
        raise ValueError(f"token_ce must be a floating-point tensor, got {token_ce.dtype}")


def _window_sums(values: torch.Tensor, window: int, padding: int) -> torch.Tensor:
    """Sum of each ``[B, C, T]`` channel over sliding windows of length ``window`` (one conv1d)."""
    channels = values.shape[1]
    kernel = values.new_ones(channels, 1, window)
    return F.conv1d(values, kernel, padding=padding, groups=channels)


def local_confidence(p: torch.Tensor, mask: torch.Tensor, window: int) -> torch.Tensor:
    """Mean target probability over the ``window`` raw positions centred on each token.

    ``cbar_t = sum_{|s-t| <= (G-1)/2} mask_s p_s / sum_{|s-t| <= (G-1)/2} mask_s``: the window runs over
    raw positions, and ignored positions are left out of both sums, so they never dilute the mean
    (windows are truncated at the sequence edges in the same way). A sequence with fewer than G valid
    tokens uses its whole-sequence mean at every position.

    Parameters
    ----------
    p
        ``[B, T]`` probability of the target token (any values at ignored positions).
    mask
        ``[B, T]`` bool, True where the label is valid.
    window
        Odd window length G.

    Returns
    -------
    ``[B, T]`` local confidence in the dtype of ``p`` (fp32 for bf16/fp16 input); 0 at ignored positions.
    """
    if p.shape != mask.shape or p.dim() != 2:
        raise ValueError(f"p {tuple(p.shape)} and mask {tuple(mask.shape)} must both be [batch, time]")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and >= 1, got {window}")
    dtype = _compute_dtype(p.dtype)
    valid = mask.to(dtype)
    p_valid = torch.where(mask, p.to(dtype), 0.0)
    sums = _window_sums(torch.stack([p_valid, valid], dim=1), window, padding=window // 2)
    in_window_sum, in_window_count = sums[:, 0], sums[:, 1]
    # Every valid position counts itself, so the count is >= 1 wherever it is used.
    windowed = in_window_sum / in_window_count.clamp_min(1.0)

    n_valid = valid.sum(dim=1, keepdim=True)
    whole_sequence = p_valid.sum(dim=1, keepdim=True) / n_valid.clamp_min(1.0)
    cbar = torch.where(n_valid < window, whole_sequence.expand_as(windowed), windowed)
    return torch.where(mask, cbar, 0.0)


def min_window_mean_log_prob(log_p: torch.Tensor, mask: torch.Tensor, window: int) -> torch.Tensor:
    """Lowest mean log-probability over full windows of valid tokens laid end to end (bft-v1).

    The valid tokens of each sample are packed to the front (ignored positions skipped, order kept),
    every full window of ``window`` consecutive packed tokens is averaged, and the minimum is taken.
    A sample with fewer than ``window`` valid tokens uses its whole-sequence mean; a sample with no
    valid token gets 0.

    Parameters
    ----------
    log_p
        ``[B, T]`` log-probability of the target token.
    mask
        ``[B, T]`` bool, True where the label is valid.
    window
        Window length G.

    Returns
    -------
    ``[B]`` minimum window mean ``m_i`` (<= 0 for log-probabilities).
    """
    if log_p.shape != mask.shape or log_p.dim() != 2:
        raise ValueError(
            f"log_p {tuple(log_p.shape)} and mask {tuple(mask.shape)} must both be [batch, time]"
        )
    dtype = _compute_dtype(log_p.dtype)
    n_time = log_p.shape[1]
    log_p_valid = torch.where(mask, log_p.to(dtype), 0.0)
    n_valid = mask.sum(dim=1)

    whole_sequence = log_p_valid.sum(dim=1) / n_valid.clamp_min(1).to(dtype)
    if n_time < window:
        return whole_sequence

    # A stable sort on "is ignored" moves valid tokens to the front in their original order.
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    packed = torch.gather(log_p_valid, 1, order)
    window_means = _window_sums(packed.unsqueeze(1), window, padding=0).squeeze(1) / window
    starts = torch.arange(window_means.shape[1], device=log_p.device)
    full = starts.unsqueeze(0) + window <= n_valid.unsqueeze(1)
    lowest = torch.where(full, window_means, torch.inf).amin(dim=1)
    return torch.where(n_valid >= window, lowest, whole_sequence)


def token_weights(
    token_ce: torch.Tensor,
    mask: torch.Tensor,
    method: str = "bft",
    window: int | None = None,
) -> LossWeights:
    """The detached token and sample weights that ``method`` puts on each token's cross-entropy.

    Parameters
    ----------
    token_ce
        ``[B, T]`` per-token cross-entropy ``-log p_t`` of the target token (values at ignored positions
        are not used).
    mask
        ``[B, T]`` bool (or 0/1), True where the label is valid.
    method
        One of :data:`METHODS`.
    window
        Window length G, or ``None`` for the method's default (9; 256 for ``bft-v1``).

    Returns
    -------
    :class:`LossWeights` with ``token`` ``[B, T]`` (0 at ignored positions) and ``sample`` ``[B]``,
    both detached, in fp32 for bf16/fp16 input and otherwise in the dtype of ``token_ce``.

    Examples
    --------
    >>> ce = torch.tensor([[0.1, 0.1, 3.0, 0.1, 0.1]])
    >>> w = token_weights(ce, torch.ones_like(ce, dtype=torch.bool), "bft", window=3)
    >>> w.token.shape, w.sample.shape
    (torch.Size([1, 5]), torch.Size([1]))
    """
    window = resolve_window(method, window)
    _check_token_inputs(token_ce, mask)
    mask = mask.bool()
    dtype = _compute_dtype(token_ce.dtype)
    with torch.no_grad():
        ce = torch.where(mask, token_ce.detach().to(dtype), 0.0)
        p = torch.exp(-ce)
        ones_token = mask.to(dtype)
        ones_sample = torch.ones(ce.shape[0], dtype=dtype, device=ce.device)

        if method == "sft":
            return LossWeights(ones_token, ones_sample)
        if method == "dft":
            return LossWeights(torch.where(mask, p, 0.0), ones_sample)
        if method == "bft-v1":
            lowest = min_window_mean_log_prob(-ce, mask, window)
            return LossWeights(torch.where(mask, p, 0.0), 1.0 - torch.exp(lowest))

        cbar = local_confidence(p, mask, window)
        # cbar > 0 wherever mask is True (it averages probabilities that include p_t itself > 0), but
        # p underflows to 0 for ce > ~100 in fp32; the clamp keeps such a token's weight finite (0).
        tiny = torch.finfo(dtype).tiny
        bft_token = torch.where(mask, p / cbar.clamp_min(tiny), 0.0)
        lowest_cbar = torch.where(mask, cbar, torch.inf).amin(dim=1)
        # An empty sample has no minimum; it contributes 0 whatever beta is, so use the neutral 1.
        bft_sample = torch.where(mask.any(dim=1), 2.0 - lowest_cbar, 1.0)

        if method == "bft":
            return LossWeights(bft_token, bft_sample)
        if method == "bft-token":
            return LossWeights(bft_token, ones_sample)
        return LossWeights(ones_token, bft_sample)  # bft-sample


def reweighted_loss(
    token_ce: torch.Tensor,
    mask: torch.Tensor,
    *,
    method: str = "bft",
    window: int | None = None,
    eps: float = 1e-8,
    normalization: str = "sample_mean",
) -> torch.Tensor:
    """Reduce per-token cross-entropy to the scalar ``method`` objective.

    ``mean_i beta_i * sum_t(mask * w * ce) / (sum_t mask + eps)`` (``normalization="sample_mean"``), or
    ``sum_i beta_i * sum_t(mask * w * ce) / max(sum_it mask, 1)`` (``"token_mean"``), with ``w`` and ``beta``
    from :func:`token_weights` (detached). Under ``sample_mean`` a sample with no valid token contributes 0 and
    still counts in the batch mean; under ``token_mean`` only valid tokens count.

    Parameters
    ----------
    token_ce
        ``[B, T]`` per-token cross-entropy, differentiable (e.g. from :func:`F.cross_entropy` with
        ``reduction="none"`` or from :func:`bioprofile.train.chunked.chunked_token_ce`). Values at ignored
        positions are never used, not even in the gradient (inf/NaN there is harmless).
    mask
        ``[B, T]`` bool (or 0/1), True where the label is valid.
    method
        One of :data:`METHODS`.
    window
        Window length G (odd), or ``None`` for the method's default (9; 256 for ``bft-v1``).
    eps
        Added to each sample's valid-token count (``sample_mean`` only; ``token_mean`` divides by at least 1,
        as TRL does).
    normalization
        ``"sample_mean"`` (default; the paper's) or ``"token_mean"`` (TRL's and LlamaFactory's), see
        :data:`NORMALIZATIONS`.

    Returns
    -------
    Scalar loss, fp32 for bf16/fp16 input and otherwise in the dtype of ``token_ce``.
    """
    window = resolve_window(method, window)
    check_normalization(normalization)
    _check_token_inputs(token_ce, mask)
    mask = mask.bool()
    ce = torch.where(mask, token_ce.to(_compute_dtype(token_ce.dtype)), 0.0)
    weights = token_weights(ce, mask, method, window)
    weighted = (weights.token * ce).sum(dim=1)
    if normalization == "token_mean":
        return (weights.sample * weighted).sum() / mask.sum().clamp_min(1).to(ce.dtype)
    per_sample = weighted / (mask.sum(dim=1).to(ce.dtype) + eps)
    return (weights.sample * per_sample).mean()


def shift_and_mask_labels(
    labels: torch.Tensor, *, shift_labels: bool = True, ignore_index: int = -100
) -> torch.Tensor:
    """Align labels with the positions that predict them, keeping the ``[B, T]`` shape.

    With ``shift_labels=True`` (Hugging Face convention) position t predicts ``labels[:, t + 1]``, so the
    labels move one step left and the last position gets ``ignore_index``.

    Parameters
    ----------
    labels
        ``[B, T]`` integer labels.
    shift_labels
        Whether ``logits[:, t]`` predicts ``labels[:, t + 1]`` (True) or ``labels[:, t]`` (False).
    ignore_index
        Label value that marks positions left out of the loss.

    Returns
    -------
    ``[B, T]`` labels aligned with the logits.
    """
    if not shift_labels:
        return labels
    return F.pad(labels[:, 1:], (0, 1), value=ignore_index)


def check_labels(labels: torch.Tensor, vocab_size: int, ignore_index: int) -> torch.Tensor:
    """The valid-label mask of ``labels`` (True where it is not ``ignore_index``).

    Parameters
    ----------
    labels
        Integer labels, already aligned with the positions that predict them.
    vocab_size
        Size of the vocabulary; every valid label must lie in ``[0, vocab_size)``.
    ignore_index
        Label value that marks positions left out.

    Returns
    -------
    Bool tensor of the shape of ``labels``.

    Raises
    ------
    ValueError
        For a non-integer tensor or a label outside ``[0, vocab_size)`` other than ``ignore_index``.
    """
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    mask = labels != ignore_index
    outside = mask & ((labels < 0) | (labels >= vocab_size))
    if bool(outside.any()):
        bad = labels[outside][0].item()
        raise ValueError(
            f"label {bad} is outside the vocabulary [0, {vocab_size}) and is not ignore_index={ignore_index}"
        )
    return mask


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    method: str = "bft",
    window: int | None = None,
    shift_labels: bool = True,
    ignore_index: int = -100,
    eps: float = 1e-8,
    normalization: str = "sample_mean",
) -> torch.Tensor:
    """Causal language-modelling loss under ``method`` (SFT, DFT, BFT and its ablations).

    Parameters
    ----------
    logits
        ``[B, T, V]`` logits (bf16/fp16 are reduced in fp32).
    labels
        ``[B, T]`` target token ids; ``ignore_index`` marks positions left out (prompt, padding).
    method
        One of :data:`METHODS`: ``sft``, ``dft``, ``bft``, ``bft-token``, ``bft-sample``, ``bft-v1``.
    window
        Window length G (odd): 9 by default, 256 by default for ``bft-v1``; an explicit value wins.
    shift_labels
        True: ``logits[:, t]`` predicts ``labels[:, t + 1]`` like Hugging Face causal LMs (pass the
        unshifted ``input_ids``-aligned labels). False: ``logits[:, t]`` predicts ``labels[:, t]``.
    ignore_index
        Label value to leave out.
    eps
        Added to each sample's valid-token count (1e-8; ``sample_mean`` only).
    normalization
        ``"sample_mean"`` (default, the paper's: each sample's mean, then the batch mean) or ``"token_mean"``
        (the weighted token losses of the batch over its valid-token count: TRL's and LlamaFactory's ``dft``
        with ``method="dft"``).

    Returns
    -------
    Scalar loss.

    Raises
    ------
    ValueError
        Unknown method or bad window (as :class:`BioprofileInputError`), shapes that disagree, or a label
        outside ``[0, V)`` other than ``ignore_index``.

    Examples
    --------
    >>> logits = torch.randn(2, 6, 11, requires_grad=True)
    >>> labels = torch.randint(0, 11, (2, 6))
    >>> labels[:, :2] = -100  # prompt tokens
    >>> causal_lm_loss(logits, labels, method="bft").backward()
    """
    window = resolve_window(method, window)
    check_normalization(normalization)
    if logits.dim() != 3:
        raise ValueError(f"logits must be [batch, time, vocab], got shape {tuple(logits.shape)}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match logits [batch, time] {tuple(logits.shape[:2])}"
        )
    labels = shift_and_mask_labels(labels, shift_labels=shift_labels, ignore_index=ignore_index)
    mask = check_labels(labels, logits.shape[-1], ignore_index)
    batch, time, vocab = logits.shape
    logits = logits.to(_compute_dtype(logits.dtype))
    token_ce = F.cross_entropy(
        logits.reshape(batch * time, vocab), labels.reshape(-1), ignore_index=ignore_index, reduction="none"
    ).view(batch, time)
    return reweighted_loss(token_ce, mask, method=method, window=window, eps=eps, normalization=normalization)
