"""Chunked per-token cross-entropy: same values and gradients as full logits, without saving [N, V] tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bioprofile.errors import BioprofileInputError
from bioprofile.train.chunked import ChunkSettings, causal_lm_loss_from_hidden, chunked_token_ce
from bioprofile.train.losses import METHODS, NORMALIZATIONS, causal_lm_loss, shift_and_mask_labels

IGNORE = -100


def make_inputs(dtype=torch.float64, batch=3, time=11, hidden=6, vocab=17, seed=0, with_bias=True):
    gen = torch.Generator().manual_seed(seed)
    hidden_states = torch.randn(batch, time, hidden, generator=gen, dtype=dtype)
    weight = torch.randn(vocab, hidden, generator=gen, dtype=dtype)
    bias = torch.randn(vocab, generator=gen, dtype=dtype) if with_bias else None
    labels = torch.randint(0, vocab, (batch, time), generator=gen)
    labels[0, :3] = IGNORE
    labels[1, 5:7] = IGNORE
    labels[2] = IGNORE
    return hidden_states, weight, bias, labels


def full_token_ce(hidden_states, weight, labels, bias=None, shift_labels=True):
    logits = F.linear(hidden_states, weight, bias)
    if logits.dtype in (torch.bfloat16, torch.float16):
        logits = logits.float()
    aligned = shift_and_mask_labels(labels, shift_labels=shift_labels, ignore_index=IGNORE)
    return F.cross_entropy(
        logits.flatten(0, 1), aligned.flatten(), ignore_index=IGNORE, reduction="none"
    ).view(labels.shape)


def test_gradcheck_float64():
    hidden_states, weight, bias, labels = make_inputs(batch=3, time=6, hidden=4, vocab=9)
    inputs = tuple(t.requires_grad_(True) for t in (hidden_states, weight, bias))

    def fn(h, w, b):
        # Random per-token upstream weights exercise the per-token folding in backward.
        return chunked_token_ce(h, w, labels, chunk_size=4, bias=b)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("chunk_size", [1, 4, 7, 1000])
@pytest.mark.parametrize("shift_labels", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_full_logits_float32(chunk_size, shift_labels, with_bias):
    hidden_states, weight, bias, labels = make_inputs(torch.float32, with_bias=with_bias, seed=chunk_size)
    upstream = torch.rand(labels.shape)

    params = [hidden_states, weight] + ([bias] if with_bias else [])
    full_params = [p.clone().requires_grad_(True) for p in params]
    ours_params = [p.clone().requires_grad_(True) for p in params]

    full = full_token_ce(*full_params[:2], labels, full_params[2] if with_bias else None, shift_labels)
    ours = chunked_token_ce(
        *ours_params[:2],
        labels,
        chunk_size=chunk_size,
        shift_labels=shift_labels,
        bias=ours_params[2] if with_bias else None,
    )
    torch.testing.assert_close(ours, full, rtol=1e-5, atol=1e-6)
    (full * upstream).sum().backward()
    (ours * upstream).sum().backward()
    for got, want in zip(ours_params, full_params, strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("method", METHODS)
def test_loss_from_hidden_matches_causal_lm_loss(method, normalization):
    hidden_states, weight, _, labels = make_inputs(torch.float64, time=16, with_bias=False, seed=3)
    h1, w1 = hidden_states.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    h2, w2 = hidden_states.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    full = causal_lm_loss(F.linear(h1, w1), labels, method=method, window=3, normalization=normalization)
    ours = causal_lm_loss_from_hidden(
        h2,
        w2,
        labels,
        method=method,
        window=3,
        normalization=normalization,
        chunks=ChunkSettings(chunk_size=5),
    )
    torch.testing.assert_close(ours, full)
    full.backward()
    ours.backward()
    torch.testing.assert_close(h2.grad, h1.grad)
    torch.testing.assert_close(w2.grad, w1.grad)


def test_bf16_reduced_in_fp32():
    hidden_states, weight, _, labels = make_inputs(torch.bfloat16, with_bias=False, seed=4)
    h = hidden_states.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    ours = chunked_token_ce(h, w, labels, chunk_size=4)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, full_token_ce(hidden_states, weight, labels), rtol=1e-5, atol=1e-5)
    loss = causal_lm_loss_from_hidden(h, w, labels, method="bft", window=3)
    loss.backward()
    assert h.grad.dtype == torch.bfloat16 and w.grad.dtype == torch.bfloat16

    h_ref = hidden_states.clone().requires_grad_(True)
    w_ref = weight.clone().requires_grad_(True)
    causal_lm_loss(F.linear(h_ref, w_ref), labels, method="bft", window=3).backward()
    torch.testing.assert_close(h.grad.float(), h_ref.grad.float(), rtol=2e-2, atol=2e-3)
    torch.testing.assert_close(w.grad.float(), w_ref.grad.float(), rtol=2e-2, atol=2e-3)


def test_ignored_positions_are_zero_and_get_no_gradient():
    hidden_states, weight, bias, labels = make_inputs(torch.float32)
    h = hidden_states.clone().requires_grad_(True)
    ce = chunked_token_ce(h, weight, labels, bias=bias)
    aligned = shift_and_mask_labels(labels)
    assert torch.all(ce[aligned == IGNORE] == 0)
    ce.sum().backward()
    assert torch.all(h.grad[aligned == IGNORE] == 0)
    assert torch.all(h.grad[2] == 0)  # the sample with no valid label


def _largest_saved_numel(fn) -> int:
    """The largest tensor autograd keeps for backward while ``fn`` builds its graph."""
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return max(sizes)


def test_saves_no_logits_for_backward():
    batch, time, hidden, vocab = 2, 64, 8, 500
    hidden_states = torch.randn(batch, time, hidden, requires_grad=True)
    weight = torch.randn(vocab, hidden, requires_grad=True)
    labels = torch.randint(0, vocab, (batch, time))
    chunk = 16

    full = _largest_saved_numel(
        lambda: causal_lm_loss(F.linear(hidden_states, weight), labels, method="bft").backward()
    )
    lean = _largest_saved_numel(
        lambda: causal_lm_loss_from_hidden(
            hidden_states, weight, labels, method="bft", chunks=ChunkSettings(chunk_size=chunk)
        ).backward()
    )
    assert full >= batch * (time - 1) * vocab  # the full path keeps [B*T, V] logits (or their softmax)
    assert lean <= vocab * hidden  # nothing bigger than the weight itself


def test_errors():
    hidden_states, weight, bias, labels = make_inputs(torch.float32, vocab=17)
    with pytest.raises(ValueError, match=r"\[batch, time, hidden\]"):
        chunked_token_ce(hidden_states[0], weight, labels)
    with pytest.raises(ValueError, match="lm_head_weight"):
        chunked_token_ce(hidden_states, weight.t(), labels)
    with pytest.raises(ValueError, match="bias"):
        chunked_token_ce(hidden_states, weight, labels, bias=bias[:-1])
    with pytest.raises(ValueError, match="labels shape"):
        chunked_token_ce(hidden_states, weight, labels[:, 1:])
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_token_ce(hidden_states, weight, labels, chunk_size=0)
    bad = labels.clone()
    bad[0, 5] = 17
    with pytest.raises(ValueError, match="label 17 is outside"):
        chunked_token_ce(hidden_states, weight, bad)
    with pytest.raises(BioprofileInputError, match="unknown cross-entropy backend"):
        chunked_token_ce(hidden_states, weight, labels, backend="triton")
    with pytest.raises(BioprofileInputError, match="CUDA"):
        chunked_token_ce(hidden_states, weight, labels, backend="liger")
    with pytest.raises(BioprofileInputError, match="window"):
        causal_lm_loss_from_hidden(hidden_states, weight, labels, window=8)


def test_all_ignored_is_zero_with_zero_gradient():
    hidden_states, weight, bias, _ = make_inputs(torch.float32)
    labels = torch.full(hidden_states.shape[:2], IGNORE)
    h = hidden_states.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    loss = causal_lm_loss_from_hidden(h, w, labels, method="bft", bias=bias)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(h.grad == 0) and torch.all(w.grad == 0)
