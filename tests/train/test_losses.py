"""SFT / DFT / BFT losses against a plain reference written from the formulas (loops over samples and tokens)."""

from __future__ import annotations

import math

import pytest
import torch

from bioprofile.errors import BioprofileInputError
from bioprofile.train.losses import (
    DEFAULT_WINDOWS,
    METHODS,
    NORMALIZATIONS,
    causal_lm_loss,
    local_confidence,
    min_window_mean_log_prob,
    reweighted_loss,
    token_weights,
)

IGNORE = -100


def reference_loss(logits, labels, method, window, shift_labels=True, eps=1e-8, normalization="sample_mean"):
    """The objective computed token by token; weights are Python floats, so they are constants.

    ``sample_mean``: each sample's weighted sum over its own valid-token count, then the batch mean.
    ``token_mean``: every sample's weighted sum over the valid-token count of the whole batch.
    """
    batch, time, _ = logits.shape
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    half = (window - 1) // 2
    total = logits.new_zeros((), dtype=torch.float64)
    weighted_sums, n_valid_batch = logits.new_zeros((), dtype=torch.float64), 0
    for b in range(batch):
        positions, lp = [], {}
        for t in range(time):
            target = t + 1 if shift_labels else t
            if target >= time or labels[b, target].item() == IGNORE:
                continue
            positions.append(t)
            lp[t] = log_probs[b, t, labels[b, target].item()]
        n = len(positions)
        if n == 0:
            continue  # contributes 0, still counted in the batch mean
        p = {t: math.exp(lp[t].item()) for t in positions}

        if n < window:
            whole = sum(p.values()) / n
            cbar = {t: whole for t in positions}
        else:
            cbar = {}
            for t in positions:
                neighbours = [s for s in positions if abs(s - t) <= half]
                cbar[t] = sum(p[s] for s in neighbours) / len(neighbours)

        if method == "sft":
            w, beta = {t: 1.0 for t in positions}, 1.0
        elif method == "dft":
            w, beta = dict(p), 1.0
        elif method == "bft":
            w, beta = {t: p[t] / cbar[t] for t in positions}, 2.0 - min(cbar.values())
        elif method == "bft-token":
            w, beta = {t: p[t] / cbar[t] for t in positions}, 1.0
        elif method == "bft-sample":
            w, beta = {t: 1.0 for t in positions}, 2.0 - min(cbar.values())
        elif method == "bft-v1":
            packed = [lp[t].item() for t in positions]
            if n < window:
                lowest = sum(packed) / n
            else:
                lowest = min(sum(packed[s : s + window]) / window for s in range(n - window + 1))
            w, beta = dict(p), 1.0 - math.exp(lowest)
        else:
            raise AssertionError(method)

        weighted = sum(w[t] * -lp[t] for t in positions)
        total = total + beta * weighted / (n + eps)
        weighted_sums, n_valid_batch = weighted_sums + beta * weighted, n_valid_batch + n
    if normalization == "token_mean":
        return weighted_sums / max(n_valid_batch, 1)
    return total / batch


def make_batch(seed=0, batch=5, time=24, vocab=13):
    """Random logits and labels: a prompt prefix, an interior gap, a short sample, an empty sample."""
    gen = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(batch, time, vocab, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, vocab, (batch, time), generator=gen)
    labels[0, :4] = IGNORE  # prompt
    labels[1, 7:10] = IGNORE  # interior gap
    labels[1, -3:] = IGNORE  # padding
    labels[2, 5:] = IGNORE  # short: fewer valid tokens than the window
    labels[3] = IGNORE  # nothing to learn from
    labels[4, torch.randperm(time, generator=gen)[:8]] = IGNORE  # scattered
    return logits, labels


CASES = [(m, w) for m in METHODS for w in (3, 9)] + [
    ("bft-v1", 4),
    ("bft-v1", 5),
    ("bft-v1", None),
    ("bft", None),
]


@pytest.mark.parametrize("method,window", CASES)
@pytest.mark.parametrize("shift_labels", [True, False])
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_value_and_gradient_match_reference(method, window, shift_labels, normalization):
    logits, labels = make_batch()
    ours_logits = logits.clone().requires_grad_(True)
    ref_logits = logits.clone().requires_grad_(True)

    ours = causal_lm_loss(
        ours_logits,
        labels,
        method=method,
        window=window,
        shift_labels=shift_labels,
        normalization=normalization,
    )
    ref = reference_loss(
        ref_logits,
        labels,
        method,
        window or DEFAULT_WINDOWS[method],
        shift_labels,
        normalization=normalization,
    )
    ours.backward()
    ref.backward()

    assert torch.isfinite(ours)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours_logits.grad, ref_logits.grad, rtol=1e-9, atol=1e-12)
    # The empty sample (index 3) gets no gradient at all.
    assert torch.count_nonzero(ours_logits.grad[3]) == 0


def test_token_mean_weighs_samples_by_their_token_count():
    """Under token_mean an empty sample changes nothing; under sample_mean it still counts in the mean."""
    logits, labels = make_batch(seed=7)
    keep = [0, 1, 2, 4]
    with_empty = causal_lm_loss(logits, labels, method="bft", window=3, normalization="token_mean")
    without = causal_lm_loss(logits[keep], labels[keep], method="bft", window=3, normalization="token_mean")
    torch.testing.assert_close(with_empty, without)
    sample_mean = causal_lm_loss(logits[keep], labels[keep], method="bft", window=3)
    assert not torch.allclose(sample_mean, without)  # the lengths differ, so the two reductions differ


def test_unknown_normalization_raises():
    logits, labels = make_batch()
    assert NORMALIZATIONS == ("sample_mean", "token_mean")
    with pytest.raises(BioprofileInputError, match="unknown loss normalization 'tokens'"):
        causal_lm_loss(logits, labels, normalization="tokens")
    with pytest.raises(BioprofileInputError, match="sample_mean, token_mean"):
        reweighted_loss(torch.zeros(1, 3), torch.ones(1, 3, dtype=torch.bool), normalization="mean")


def _padded_chat_batch(tokenizer) -> dict[str, torch.Tensor]:
    """Right-padded rows of different lengths whose prompts (and padding) are labelled ignore_index."""
    rows = [
        ("gene A?", "kinase."),
        ("tell me about gene B", "a transcription factor binding DNA."),
        ("C?", "pump"),
    ]
    input_ids, labels = [], []
    for prompt, response in rows:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        input_ids.append(prompt_ids + response_ids)
        labels.append([IGNORE] * len(prompt_ids) + response_ids)
    width = max(len(ids) for ids in input_ids)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids in input_ids]),
        "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in input_ids]),
        "labels": torch.tensor([lab + [IGNORE] * (width - len(lab)) for lab in labels]),
    }


def test_dft_token_mean_equals_trl_dft(tiny_tokenizer, tmp_path):
    """``dft`` + ``token_mean`` is TRL's ``SFTTrainer(loss_type="dft")`` loss on the same model and batch."""
    from datasets import Dataset
    from helpers import build_tiny_llama
    from trl import SFTConfig, SFTTrainer

    batch = _padded_chat_batch(tiny_tokenizer)
    assert (batch["labels"] == IGNORE).any(dim=1).all() and (batch["attention_mask"] == 0).any()
    model = build_tiny_llama(tiny_tokenizer, seed=5).double()
    args = SFTConfig(
        output_dir=str(tmp_path / "trl"), loss_type="dft", report_to="none", use_cpu=True, max_length=None,
        disable_tqdm=True,
    )  # fmt: skip
    trl_trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"input_ids": row.tolist()} for row in batch["input_ids"]]),
        processing_class=tiny_tokenizer,
    )
    with torch.no_grad():
        trl_loss = trl_trainer.compute_loss(trl_trainer.model, {k: v.clone() for k, v in batch.items()})
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ours = causal_lm_loss(logits, batch["labels"], method="dft", normalization="token_mean")
    # TRL's fused head projects in float32 whatever the model's dtype, hence float32 round-off, not float64's.
    torch.testing.assert_close(ours, trl_loss.to(ours.dtype), rtol=1e-6, atol=1e-9)
    # The per-sample mean is another number on this batch (by far more than that round-off), so the agreement above
    # is not a coincidence.
    sample_mean = causal_lm_loss(logits, batch["labels"], method="dft")
    assert abs(sample_mean.item() - ours.item()) > 1e-3 * abs(ours.item())


def test_shift_changes_which_label_each_position_predicts():
    logits, labels = make_batch(seed=1)
    shifted = causal_lm_loss(logits, labels, method="sft", shift_labels=True)
    manual = causal_lm_loss(logits[:, :-1], labels[:, 1:], method="sft", shift_labels=False)
    torch.testing.assert_close(shifted, manual)
    assert not torch.allclose(shifted, causal_lm_loss(logits, labels, method="sft", shift_labels=False))


def test_default_windows():
    assert DEFAULT_WINDOWS["bft"] == 9
    assert DEFAULT_WINDOWS["bft-v1"] == 256
    logits, labels = make_batch(seed=2, time=40)
    torch.testing.assert_close(causal_lm_loss(logits, labels), causal_lm_loss(logits, labels, window=9))
    # bft-v1 with an explicit window uses it, not 256.
    explicit = causal_lm_loss(logits, labels, method="bft-v1", window=5)
    torch.testing.assert_close(explicit, reference_loss(logits, labels, "bft-v1", 5))
    assert not torch.allclose(explicit, causal_lm_loss(logits, labels, method="bft-v1"))


@pytest.mark.parametrize("method", METHODS)
def test_bf16_logits_reduced_in_fp32(method):
    logits, labels = make_batch(seed=3)
    low = logits.to(torch.bfloat16).requires_grad_(True)
    loss = causal_lm_loss(low, labels, method=method, window=5)
    assert loss.dtype == torch.float32
    expected = causal_lm_loss(low.detach().float(), labels, method=method, window=5)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-7)
    loss.backward()
    assert low.grad.dtype == torch.bfloat16
    assert torch.isfinite(low.grad.float()).all()


@pytest.mark.parametrize("method", METHODS)
def test_weights_are_detached(method):
    """The gradient equals sum(beta * w * d ce) / n / B with the weights held constant."""
    logits, labels = make_batch(seed=4)
    logits.requires_grad_(True)
    loss = causal_lm_loss(logits, labels, method=method, window=3, shift_labels=False)
    (grad,) = torch.autograd.grad(loss, logits)

    mask = labels != IGNORE
    ce = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="none"
    ).view(labels.shape)
    weights = token_weights(ce, mask, method, window=3)
    assert not weights.token.requires_grad and not weights.sample.requires_grad
    constant = (weights.sample[:, None] * weights.token * ce).sum(1) / (mask.sum(1) + 1e-8)
    (expected,) = torch.autograd.grad(constant.mean(), logits, retain_graph=True)
    torch.testing.assert_close(grad, expected)

    if method == "dft":
        # The same weights left attached to the graph give a different gradient, so the check above can fail.
        live = (torch.exp(-ce) * ce).sum(1) / (mask.sum(1) + 1e-8)
        (attached,) = torch.autograd.grad(live.mean(), logits)
        assert not torch.allclose(attached, expected)


def test_token_weights_zero_at_ignored_positions():
    _, labels = make_batch(seed=5)
    mask = labels != IGNORE
    ce = torch.rand(labels.shape, dtype=torch.float64) * 3
    ce[~mask] = float("inf")  # never read
    for method in METHODS:
        weights = token_weights(ce, mask, method, window=3)
        assert torch.all(weights.token[~mask] == 0)
        assert torch.isfinite(weights.token).all() and torch.isfinite(weights.sample).all()
    beta = token_weights(ce, mask, "bft", window=3).sample
    assert torch.all((beta >= 1) & (beta <= 2))


def test_reweighted_loss_ignores_garbage_at_masked_positions():
    _, labels = make_batch(seed=6)
    mask = labels != IGNORE
    ce = (torch.rand(labels.shape, dtype=torch.float64) * 3).requires_grad_(True)
    garbage = torch.where(mask, ce, torch.full_like(ce, float("nan")))
    loss = reweighted_loss(garbage, mask, method="bft", window=3)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(ce.grad).all() and torch.all(ce.grad[~mask] == 0)


def test_all_ignored_batch_is_zero_not_nan():
    logits = torch.randn(2, 6, 5, requires_grad=True)
    labels = torch.full((2, 6), IGNORE)
    for method in METHODS:
        loss = causal_lm_loss(logits, labels, method=method)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.all(logits.grad == 0)


def test_empty_sample_counts_in_batch_mean():
    logits, labels = make_batch(seed=7)
    with_empty = causal_lm_loss(logits, labels, method="bft", window=3)
    keep = [0, 1, 2, 4]
    without = causal_lm_loss(logits[keep], labels[keep], method="bft", window=3)
    torch.testing.assert_close(with_empty, without * 4 / 5)


def test_local_confidence_ignored_positions_do_not_dilute():
    p = torch.tensor([[0.8, 0.1, 0.6, 0.4, 0.2, 0.9]], dtype=torch.float64)
    mask = torch.tensor([[True, False, True, True, True, True]])
    cbar = local_confidence(p, mask, window=3)
    # Position 0 sees positions 0 and 1 (ignored) -> only 0.8; position 2 sees 1 (ignored), 2, 3.
    expected = torch.tensor([[0.8, 0.0, 0.5, 0.4, 0.5, 0.55]], dtype=torch.float64)
    torch.testing.assert_close(cbar, expected)
    # Fewer valid tokens than the window: the whole-sequence mean everywhere.
    short = local_confidence(p, mask, window=7)
    torch.testing.assert_close(short[mask], torch.full((5,), 2.9 / 5, dtype=torch.float64))


def test_min_window_mean_log_prob_skips_ignored_positions():
    log_p = torch.tensor([[-1.0, -50.0, -3.0, -2.0, -4.0], [-1.0, -2.0, -3.0, -4.0, -5.0]])
    mask = torch.tensor([[True, False, True, True, True], [True, True, False, False, False]])
    lowest = min_window_mean_log_prob(log_p, mask, window=2)
    # Row 0 packed: [-1, -3, -2, -4] -> window means -2, -2.5, -3; row 1 packed: [-1, -2] -> -1.5.
    torch.testing.assert_close(lowest, torch.tensor([-3.0, -1.5]))
    torch.testing.assert_close(min_window_mean_log_prob(log_p, mask, window=9), torch.tensor([-2.5, -1.5]))


def test_bft_damps_sparse_outlier_relative_to_dense_low_run():
    """The design property: one isolated miss is likely noise; a run of misses is real signal."""
    time, high, low = 41, 0.9, 0.05
    sparse = torch.full((time,), high, dtype=torch.float64)
    sparse[20] = low
    dense = torch.full((time,), high, dtype=torch.float64)
    dense[14:27] = low
    ce = -torch.log(torch.stack([sparse, dense]))
    mask = torch.ones_like(ce, dtype=torch.bool)

    sft = token_weights(ce, mask, "sft", window=9)
    dft = token_weights(ce, mask, "dft", window=9)
    bft = token_weights(ce, mask, "bft", window=9)
    outlier, run_centre = bft.token[0, 20], bft.token[1, 20]
    # SFT weighs them equally; DFT suppresses both alike; BFT keeps the run and damps the outlier.
    assert sft.token[0, 20] == sft.token[1, 20]
    assert dft.token[0, 20] == dft.token[1, 20]
    torch.testing.assert_close(run_centre, torch.tensor(1.0, dtype=torch.float64))
    assert outlier < 0.1 * run_centre
    assert outlier < dft.token[1, 20] / low * 0.1  # damped well below the run's relative weight
    # The sample with the dense low run also gets the larger sample weight.
    assert bft.sample[1] > bft.sample[0] >= 1.0
    torch.testing.assert_close(bft.sample[1], torch.tensor(2.0 - low, dtype=torch.float64))


@pytest.mark.parametrize("method", ["bft", "bft-v1"])
@pytest.mark.parametrize("window", [0, -3, 4, 2.0, True])
def test_bad_window_raises(method, window):
    logits, labels = make_batch()
    if method == "bft-v1" and window == 4:
        causal_lm_loss(logits, labels, method=method, window=window)  # not centred, so even is fine
        return
    with pytest.raises(BioprofileInputError, match="window"):
        causal_lm_loss(logits, labels, method=method, window=window)


def test_unknown_method_raises():
    logits, labels = make_batch()
    with pytest.raises(BioprofileInputError, match="unknown loss method 'bft2'"):
        causal_lm_loss(logits, labels, method="bft2")
    with pytest.raises(ValueError, match="unknown loss method"):
        reweighted_loss(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool), method="DFT")


def test_shape_and_label_errors():
    logits, labels = make_batch(vocab=13)
    with pytest.raises(ValueError, match=r"\[batch, time, vocab\]"):
        causal_lm_loss(logits[0], labels[0])
    with pytest.raises(ValueError, match="does not match"):
        causal_lm_loss(logits, labels[:, :-1])
    too_big = labels.clone()
    too_big[0, 10] = 13
    with pytest.raises(ValueError, match="label 13 is outside the vocabulary"):
        causal_lm_loss(logits, too_big, shift_labels=False)
    negative = labels.clone()
    negative[1, 2] = -1
    with pytest.raises(ValueError, match="label -1 is outside"):
        causal_lm_loss(logits, negative, shift_labels=False)
    with pytest.raises(ValueError, match="integer"):
        causal_lm_loss(logits, labels.double())
    with pytest.raises(ValueError, match="mask shape"):
        reweighted_loss(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        token_weights(torch.zeros(6), torch.ones(6, dtype=torch.bool))
