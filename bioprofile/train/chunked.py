"""Per-token cross-entropy from hidden states without building the full ``[B, T, V]`` logits.

With a 49k-token vocabulary the logits, their fp32 copy, the softmax saved for backward and the logit
gradient dominate training memory for a small model. :func:`chunked_token_ce` projects a few hundred
tokens at a time through the output layer and keeps nothing of size ``V`` between chunks: the forward
pass saves only the hidden states and one log-sum-exp per token, and the backward pass recomputes each
chunk's logits to form its gradient. (Plain chunking under autograd would save every chunk's logits
for backward, so peak memory would not drop.)

The per-token cross-entropy it returns feeds :func:`bioprofile.train.losses.reweighted_loss`, so every
method (SFT, DFT, BFT, ...) runs on this path; :func:`causal_lm_loss_from_hidden` wires the two.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from bioprofile.errors import BioprofileInputError, check_whole_number
from bioprofile.train.losses import (
    check_labels,
    check_normalization,
    resolve_window,
    reweighted_loss,
    shift_and_mask_labels,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_CHUNK_SIZE",
    "ChunkSettings",
    "causal_lm_loss_from_hidden",
    "chunked_token_ce",
]

# 256 tokens x 49,152 vocabulary x 4 bytes = 48 MiB of transient fp32 logits per chunk.
DEFAULT_CHUNK_SIZE = 256
BACKENDS: tuple[str, ...] = ("torch", "liger")

_LOW_PRECISION = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class ChunkSettings:
    """How :func:`causal_lm_loss_from_hidden` projects hidden states to per-token cross-entropy.

    Parameters
    ----------
    chunk_size
        Tokens projected at once (see :func:`chunked_token_ce`).
    backend
        ``"torch"`` or ``"liger"``, as in :func:`chunked_token_ce`.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    backend: str = "torch"


def _chunk_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Logits of one chunk, projected in the parameters' dtype and reduced in fp32 (or fp64)."""
    logits = hidden @ weight.t()
    if bias is not None:
        logits = logits + bias
    return logits.float() if logits.dtype in _LOW_PRECISION else logits


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """``ce[n] = logsumexp(h[n] W^T + b) - (h[n] W^T + b)[y[n]]`` for rows whose label is valid.

    Saves ``hidden``, ``weight``, ``bias``, ``labels`` and the per-row log-sum-exp; backward recomputes the
    logits chunk by chunk and folds the per-token upstream gradient in before summing over tokens.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, chunk_size):
        n_rows = hidden.shape[0]
        out_dtype = torch.float32 if hidden.dtype in _LOW_PRECISION else hidden.dtype
        token_ce = torch.empty(n_rows, dtype=out_dtype, device=hidden.device)
        log_norm = torch.empty_like(token_ce)
        for start in range(0, n_rows, chunk_size):
            stop = min(start + chunk_size, n_rows)
            logits = _chunk_logits(hidden[start:stop], weight, bias)
            log_norm[start:stop] = torch.logsumexp(logits, dim=-1)
            target_logit = logits.gather(1, labels[start:stop, None]).squeeze(1)
            token_ce[start:stop] = log_norm[start:stop] - target_logit
            del logits
        ctx.save_for_backward(hidden, weight, bias, labels, log_norm)
        ctx.chunk_size = chunk_size
        return token_ce

    @staticmethod
    def backward(ctx, grad_token_ce):
        hidden, weight, bias, labels, log_norm = ctx.saved_tensors
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        chunk_size = ctx.chunk_size
        n_rows = hidden.shape[0]
        accumulate = torch.float32 if weight.dtype in _LOW_PRECISION else weight.dtype

        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=accumulate, device=weight.device) if need_weight else None
        )
        grad_bias = torch.zeros(bias.shape, dtype=accumulate, device=bias.device) if need_bias else None

        for start in range(0, n_rows, chunk_size):
            stop = min(start + chunk_size, n_rows)
            hidden_chunk = hidden[start:stop]
            # d ce / d logits = softmax(logits) - onehot(label), scaled per token by the upstream gradient.
            grad_logits = _chunk_logits(hidden_chunk, weight, bias)
            grad_logits.sub_(log_norm[start:stop, None]).exp_()
            rows = torch.arange(stop - start, device=grad_logits.device)
            grad_logits[rows, labels[start:stop]] -= 1.0
            grad_logits.mul_(grad_token_ce[start:stop, None].to(grad_logits.dtype))
            # Matmuls run in the parameters' dtype, as the backward of a bf16 lm_head would.
            grad_logits = grad_logits.to(weight.dtype)
            if need_hidden:
                grad_hidden[start:stop] = grad_logits @ weight
            if need_weight:
                grad_weight += (grad_logits.t() @ hidden_chunk).to(accumulate)
            if need_bias:
                grad_bias += grad_logits.sum(dim=0).to(accumulate)
            del grad_logits

        if need_weight:
            grad_weight = grad_weight.to(weight.dtype)
        if need_bias:
            grad_bias = grad_bias.to(bias.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None


def _liger_token_ce(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    bias: torch.Tensor | None,
    ignore_index: int,
) -> torch.Tensor:
    """Per-row cross-entropy from Liger's fused linear cross-entropy (CUDA only, imported lazily)."""
    if hidden.device.type != "cuda":
        raise BioprofileInputError(
            f"backend='liger' runs on CUDA only, but hidden states are on {hidden.device.type}: use backend='torch'"
        )
    try:
        from liger_kernel.ops import fused_linear_cross_entropy as liger_ops
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError as err:
        raise BioprofileInputError(
            "backend='liger' needs liger-kernel>=0.8.2: pip install 'bioprofile[liger]', or use backend='torch'"
        ) from err
    # Releases before linkedin/Liger-Kernel#1298 scale every token's gradient by the first token's
    # upstream gradient when reduction="none"; BFT's per-token weights would be silently lost.
    if "token_grad_output" not in inspect.signature(liger_ops.fused_linear_cross_entropy_forward).parameters:
        raise BioprofileInputError(
            "the installed liger-kernel gives wrong gradients for per-token losses (reduction='none'): "
            "upgrade liger-kernel (a release with linkedin/Liger-Kernel#1298) or use backend='torch'"
        )
    out = liger_fused_linear_cross_entropy(
        hidden, weight, labels, bias=bias, ignore_index=ignore_index, reduction="none"
    )
    token_ce = out.loss if hasattr(out, "loss") else out[0] if isinstance(out, tuple) else out
    return token_ce.float()


def chunked_token_ce(
    hidden_states: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ignore_index: int = -100,
    shift_labels: bool = True,
    bias: torch.Tensor | None = None,
    backend: str = "torch",
) -> torch.Tensor:
    """Per-token cross-entropy of ``hidden_states @ lm_head_weight.T (+ bias)``, chunk by chunk.

    Equal (value and gradient wrt ``hidden_states``, ``lm_head_weight`` and ``bias``) to
    ``F.cross_entropy(logits, labels, reduction="none")`` on the full logits, without ever holding more
    than ``chunk_size`` rows of logits; only tokens with a valid label are projected.

    Parameters
    ----------
    hidden_states
        ``[B, T, H]`` final hidden states (after the final norm), e.g. ``model.model(...).last_hidden_state``.
    lm_head_weight
        ``[V, H]`` output projection, e.g. ``model.lm_head.weight`` (tied embeddings work unchanged).
    labels
        ``[B, T]`` target ids; ``ignore_index`` marks positions left out.
    chunk_size
        Tokens projected at once; transient memory is about ``chunk_size * V * 4`` bytes, twice in backward.
    ignore_index
        Label value to leave out.
    shift_labels
        True: position t predicts ``labels[:, t + 1]`` (Hugging Face convention); False: ``labels[:, t]``.
    bias
        Optional ``[V]`` output bias.
    backend
        ``"torch"`` (this module's recomputing autograd function, any device) or ``"liger"`` (CUDA only:
        Liger's fused linear cross-entropy with ``reduction="none"``; needs ``bioprofile[liger]``, and
        ``chunk_size`` is then chosen by Liger).

    Returns
    -------
    ``[B, T]`` cross-entropy per position, 0 where the (shifted) label is ``ignore_index``; fp32 for
    bf16/fp16 inputs, otherwise the dtype of ``hidden_states``.

    Raises
    ------
    ValueError
        Shapes that disagree, a bad ``chunk_size``, or a label outside ``[0, V)`` other than ``ignore_index``.
    BioprofileInputError
        An unknown backend, or ``backend="liger"`` off CUDA or without a suitable liger-kernel.
    """
    if backend not in BACKENDS:
        raise BioprofileInputError(
            f"unknown cross-entropy backend {backend!r}: use one of {', '.join(BACKENDS)}"
        )
    if hidden_states.dim() != 3:
        raise ValueError(
            f"hidden_states must be [batch, time, hidden], got shape {tuple(hidden_states.shape)}"
        )
    batch, time, hidden_size = hidden_states.shape
    if lm_head_weight.dim() != 2 or lm_head_weight.shape[1] != hidden_size:
        raise ValueError(
            f"lm_head_weight must be [vocab, {hidden_size}], got shape {tuple(lm_head_weight.shape)}"
        )
    vocab = lm_head_weight.shape[0]
    if bias is not None and bias.shape != (vocab,):
        raise ValueError(f"bias must be [{vocab}], got shape {tuple(bias.shape)}")
    if labels.shape != (batch, time):
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match hidden_states [batch, time] {(batch, time)}"
        )
    check_whole_number("chunk_size", chunk_size)

    labels = shift_and_mask_labels(labels, shift_labels=shift_labels, ignore_index=ignore_index)
    mask = check_labels(labels, vocab, ignore_index)
    flat_labels = labels.reshape(-1)
    flat_hidden = hidden_states.reshape(batch * time, hidden_size)
    out_dtype = torch.float32 if hidden_states.dtype in _LOW_PRECISION else hidden_states.dtype

    if backend == "liger":
        token_ce = _liger_token_ce(flat_hidden, lm_head_weight, flat_labels, bias, ignore_index)
        return torch.where(mask, token_ce.view(batch, time).to(out_dtype), 0.0)

    # Project only the tokens that count: prompts and padding cost nothing.
    rows = mask.reshape(-1).nonzero().squeeze(1)
    valid_ce = _ChunkedLinearCrossEntropy.apply(
        flat_hidden.index_select(0, rows), lm_head_weight, bias, flat_labels.index_select(0, rows), chunk_size
    )
    token_ce = torch.zeros(batch * time, dtype=out_dtype, device=hidden_states.device)
    return token_ce.index_copy(0, rows, valid_ce.to(out_dtype)).view(batch, time)


def causal_lm_loss_from_hidden(
    hidden_states: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    method: str = "bft",
    window: int | None = None,
    normalization: str = "sample_mean",
    shift_labels: bool = True,
    ignore_index: int = -100,
    bias: torch.Tensor | None = None,
    chunks: ChunkSettings = ChunkSettings(),  # noqa: B008 (frozen, so one shared default is safe)
) -> torch.Tensor:
    """:func:`bioprofile.train.losses.causal_lm_loss` computed from hidden states, memory-lean.

    Same value and gradient as ``causal_lm_loss(hidden_states @ lm_head_weight.T, labels, ...)``; the
    per-token cross-entropy comes from :func:`chunked_token_ce` and is reduced by
    :func:`bioprofile.train.losses.reweighted_loss`.

    Parameters
    ----------
    hidden_states, lm_head_weight, labels, bias, shift_labels, ignore_index
        As in :func:`chunked_token_ce`.
    method, window, normalization
        As in :func:`bioprofile.train.losses.causal_lm_loss` (``window=None``: 9, or 256 for ``bft-v1``;
        ``normalization`` ``"sample_mean"`` or ``"token_mean"``).
    chunks
        Chunk size and cross-entropy backend (:class:`ChunkSettings`).

    Returns
    -------
    Scalar loss.

    Examples
    --------
    >>> out = model.model(input_ids=input_ids, attention_mask=attention_mask)  # doctest: +SKIP
    >>> loss = causal_lm_loss_from_hidden(out.last_hidden_state, model.lm_head.weight, labels)  # doctest: +SKIP
    """
    window = resolve_window(method, window)  # fail before the expensive projection
    check_normalization(normalization)
    token_ce = chunked_token_ce(
        hidden_states,
        lm_head_weight,
        labels,
        chunk_size=chunks.chunk_size,
        ignore_index=ignore_index,
        shift_labels=shift_labels,
        bias=bias,
        backend=chunks.backend,
    )
    mask = shift_and_mask_labels(labels, shift_labels=shift_labels, ignore_index=ignore_index) != ignore_index
    return reweighted_loss(token_ce, mask, method=method, window=window, normalization=normalization)
