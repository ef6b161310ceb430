"""The one BFT trainer, a TRL ``SFTTrainer`` whose loss is one of :mod:`bioprofile.train.losses`.

:class:`BFTTrainer` subclasses :class:`trl.SFTTrainer` and replaces its loss (``compute_loss``). It trains on records
tokenised by bioprofile (:class:`bioprofile.train.data.ChatDataset`: the prompt tokens of a record are exactly those
the generator sends, with any chat template, and every prompt label is ``-100``), so TRL's dataset preparation is
skipped (``dataset_kwargs={"skip_prepare_dataset": True}``) and bioprofile's collator pads the batches.

Per-token log-probabilities come from TRL's own path: ``SFTTrainer`` gives the model a fused LM head
(``model(..., labels=labels, fused_lm_head=True)`` returns each next-token label's log-probability, computed in
chunks without the full ``[B, T, V]`` logits), and :func:`bioprofile.train.losses.reweighted_loss` turns
``-log_probs`` into the chosen objective. ``chunked_loss`` uses bioprofile's own chunked path instead
(:mod:`bioprofile.train.chunked`, exact in float64 and with a Liger backend). Evaluation computes full logits, which
the held-out token metrics need. ``SFTTrainer``'s extra metrics (entropy, token accuracy) are not logged: they would
ask for its private metric store.

Gradient accumulation and data parallelism
------------------------------------------
Under ``loss_normalization="sample_mean"`` every objective in :mod:`bioprofile.train.losses` is a mean over samples
of a per-sample value (``beta_i`` and the token weights depend only on sample ``i``), so the loss of a large batch
splits exactly over micro-batches: ``L = sum_micro (B_micro / B_total) * L_micro``. The trainer then counts
*samples* (rows) as ``num_items_in_batch``. Under ``"token_mean"`` the loss is a sum over the batch's valid tokens
divided by their count, so it counts *valid label tokens*, as Hugging Face does. The count comes from
``Trainer.get_batch_samples`` (the public hook that fetches one optimiser step's micro-batches and counts their
items): it is summed over the accumulation steps and, when ``average_tokens_across_devices`` is on (the default),
over all ranks; each micro-batch loss is scaled by ``n_micro / num_items_in_batch`` and multiplied by the number of
processes before DDP/FSDP average the gradients, so one optimiser step equals a step on the whole global batch at
once. ``tests/train/test_trainer.py`` pins the hook's contract (the count it returns is what ``compute_loss`` receives).
"""

from __future__ import annotations

import copy
from contextlib import ExitStack
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments
from trl import SFTConfig, SFTTrainer

from bioprofile.progress import progress_bars
from bioprofile.train.chunked import causal_lm_loss_from_hidden
from bioprofile.train.data import IGNORE_INDEX, ChatDataset
from bioprofile.train.losses import causal_lm_loss, check_normalization, resolve_window, reweighted_loss


def count_loss_items(labels: torch.Tensor, normalization: str) -> int:
    """What one micro-batch contributes to ``num_items_in_batch``: its rows, or its valid (shifted) label tokens."""
    if normalization == "token_mean":
        return int((labels[..., 1:] != IGNORE_INDEX).sum())
    return int(labels.shape[0])


class BalancedCausalLMLoss:
    """A ``compute_loss_func`` for Hugging Face trainers: the chosen objective, scaled for accumulation.

    Parameters
    ----------
    method
        One of :data:`bioprofile.train.losses.METHODS`.
    window
        Window length, or ``None`` for the method's default.
    normalization
        ``"sample_mean"`` or ``"token_mean"`` (see :data:`bioprofile.train.losses.NORMALIZATIONS`).

    Notes
    -----
    Called as ``loss_fn(outputs, labels, num_items_in_batch=N)`` where ``N`` counts the samples (``sample_mean``)
    or valid label tokens (``token_mean``) of the whole accumulated (and, with ``average_tokens_across_devices``,
    global) batch; it returns ``causal_lm_loss(...) * n_micro / N``. With ``N=None`` it returns the plain
    micro-batch loss. :class:`BFTTrainer` computes the same loss itself; this is for a plain ``transformers.Trainer``.
    """

    def __init__(self, method: str = "bft", window: int | None = None, normalization: str = "sample_mean"):
        self.method = method
        self.window = resolve_window(method, window)
        self.normalization = check_normalization(normalization)

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        """The micro-batch loss of ``outputs`` (with ``logits``) against ``labels``, scaled as the class says."""
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = causal_lm_loss(
            logits, labels, method=self.method, window=self.window, normalization=self.normalization
        )
        return scale_to_accumulated_batch(
            loss, count_loss_items(labels, self.normalization), num_items_in_batch
        )


def scale_to_accumulated_batch(loss: torch.Tensor, n_micro: int, num_items_in_batch: Any) -> torch.Tensor:
    """``loss * n_micro / num_items_in_batch``: a micro-batch's share of the accumulated batch's loss."""
    if num_items_in_batch is None:
        return loss
    # The ratio in the loss's own dtype: int / int64-tensor would give float32, whose rounding of e.g. 67 / 145
    # breaks the exact accumulation a float64 run can show.
    if torch.is_tensor(num_items_in_batch):
        total = num_items_in_batch.to(device=loss.device, dtype=loss.dtype)
    else:
        total = float(num_items_in_batch)
    return loss * n_micro / total


def sft_arguments(args: Any) -> SFTConfig:
    """``args`` as the :class:`trl.SFTConfig` a :class:`BFTTrainer` runs with: TRL's dataset preparation skipped.

    A :class:`bioprofile.train.config.BFTConfig` already says so. A plain ``TrainingArguments`` is converted the way
    ``SFTTrainer`` converts it (its values kept, TRL's defaults for the rest), and ``None`` is Hugging Face's default
    ``TrainingArguments`` (as a ``Trainer`` without arguments gets; TRL's default would turn on bf16); arguments that would prepare the data
    or drop columns are copied with both turned off: bioprofile's records are tokenised and labelled already (TRL's
    preparation would cut them at its own ``max_length``), and the collator needs their ``attention_mask``.
    """
    if args is None:
        args = TrainingArguments()
    if not isinstance(args, SFTConfig):
        values = args.to_dict()
        values["hub_token"] = args.hub_token  # to_dict hides it
        args = SFTConfig(**values)
    if (args.dataset_kwargs or {}).get("skip_prepare_dataset") and not args.remove_unused_columns:
        return args
    args = copy.copy(args)
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    args.remove_unused_columns = False
    return args


def _as_dataset(dataset: Any) -> Any:
    return dataset.as_dataset() if isinstance(dataset, ChatDataset) else dataset


class BFTTrainer(SFTTrainer):
    """:class:`trl.SFTTrainer` that trains with SFT, DFT or a BFT variant (it overrides ``compute_loss``).

    Parameters
    ----------
    model
        The model to train (a ``PreTrainedModel`` or a peft model), as for ``SFTTrainer``.
    args
        A :class:`bioprofile.train.config.BFTConfig` (whose loss settings are then the defaults of the keywords
        below), a ``trl.SFTConfig`` or a ``transformers.TrainingArguments`` (see :func:`sft_arguments`).
    loss_method
        One of :data:`bioprofile.train.losses.METHODS` (default ``args.loss_method``, else ``"bft"``).
    loss_window
        Window length, or ``None`` for the method's default (default ``args.loss_window``).
    loss_normalization
        ``"sample_mean"`` or ``"token_mean"`` (default ``args.loss_normalization``, else ``"sample_mean"``).
    chunked_loss
        Compute the training loss with bioprofile's chunked path from the final hidden states instead of TRL's fused
        LM head (default ``args.chunked_loss``, else false).
    **kwargs
        As for ``SFTTrainer`` (``train_dataset``, ``eval_dataset``, ``data_collator``, ``processing_class``...). A
        :class:`bioprofile.train.data.ChatDataset` is turned into the ``datasets.Dataset`` TRL takes, and its
        tokenizer is the ``processing_class`` when none is given.
    """

    # compute_loss scales each micro-batch by its share of num_items_in_batch (transformers' documented switch)
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model,
        args: Any = None,
        *,
        loss_method: str | None = None,
        loss_window: int | None = None,
        loss_normalization: str | None = None,
        chunked_loss: bool | None = None,
        **kwargs,
    ):
        loss_method = loss_method or getattr(args, "loss_method", "bft")
        if loss_window is None:
            loss_window = getattr(args, "loss_window", None)
        loss_normalization = loss_normalization or getattr(args, "loss_normalization", "sample_mean")
        if chunked_loss is None:
            chunked_loss = bool(getattr(args, "chunked_loss", False))
        # Checked before TRL's set-up, which loads and patches the model.
        self.loss_method = loss_method
        self.loss_window = resolve_window(loss_method, loss_window)
        self.loss_normalization = check_normalization(loss_normalization)
        self.chunked_loss = chunked_loss
        train_dataset = kwargs.get("train_dataset")
        if kwargs.get("processing_class") is None and isinstance(train_dataset, ChatDataset):
            kwargs["processing_class"] = train_dataset.tokenizer
        for key in ("train_dataset", "eval_dataset"):
            if key in kwargs:
                kwargs[key] = _as_dataset(kwargs[key])
        super().__init__(model, sft_arguments(args), **kwargs)

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        """One optimiser step's micro-batches and their item count: rows (``sample_mean``) or valid label tokens.

        Hugging Face's count is replaced so that ``num_items_in_batch`` is what the objective averages over (see the
        module docstring); it is summed over ranks exactly when Hugging Face sums its own.
        """
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not batch_samples or "labels" not in batch_samples[0]:
            return batch_samples, num_items_in_batch
        count = sum(count_loss_items(batch["labels"], self.loss_normalization) for batch in batch_samples)
        count = torch.tensor(count, device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            count = self.accelerator.gather(count.reshape(1)).sum()
        return batch_samples, count

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The training or evaluation loss of one micro-batch, scaled for accumulation (see the module docstring)."""
        inputs = {**inputs, "use_cache": False}
        labels = inputs.pop("labels")
        outputs = None
        if model.training and not return_outputs:
            loss = self._training_loss(model, inputs, labels)
        else:
            outputs = model(**inputs)
            loss = causal_lm_loss(
                outputs.logits,
                labels,
                method=self.loss_method,
                window=self.loss_window,
                normalization=self.loss_normalization,
            )
        loss = scale_to_accumulated_batch(
            loss, count_loss_items(labels, self.loss_normalization), num_items_in_batch
        )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # num_items_in_batch counts every rank, and DDP/FSDP average the gradients over the ranks
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss

    def _training_loss(self, model, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
        settings = {
            "method": self.loss_method,
            "window": self.loss_window,
            "normalization": self.loss_normalization,
        }
        if self.chunked_loss:
            # Run the wrapped model (so DDP/FSDP hooks fire) but let it project only the last position to logits.
            outputs = model(**inputs, output_hidden_states=True, logits_to_keep=1)
            head = self.accelerator.unwrap_model(model).get_output_embeddings()
            return causal_lm_loss_from_hidden(outputs.hidden_states[-1], head.weight, labels, **settings)
        # TRL's fused LM head: log p of each next-token label ([B, T-1], 0 where the label is -100), no full logits.
        outputs = model(**inputs, labels=labels, fused_lm_head=True)
        return reweighted_loss(-outputs.log_probs, outputs.label_mask, **settings)


class RichProgressCallback(TrainerCallback):
    """Training and evaluation steps as bioprofile's progress bars on stderr, in place of transformers' tqdm bars.

    The bar's description carries the last logged loss, so no log line is printed on stdout. Only the main process
    draws.
    """

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._progress = None
        self._train = None
        self._eval = None

    def _bars(self):
        if self._progress is None:
            self._stack = ExitStack()
            self._progress = self._stack.enter_context(progress_bars())
        return self._progress

    def _close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._progress = self._train = self._eval = None

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the training bar (``max_steps`` steps)."""
        if state.is_world_process_zero:
            self._train = self._bars().add_task("training", total=state.max_steps)

    def on_step_end(self, args, state, control, **kwargs):
        """Move the training bar to the global step."""
        if self._train is not None:
            self._progress.update(self._train, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Show the last training loss in the bar's description."""
        if self._train is not None and logs and "loss" in logs:
            self._progress.update(self._train, description=f"training (loss {logs['loss']:.4f})")

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        """Advance the evaluation bar, started on the first evaluation batch."""
        if not state.is_world_process_zero:
            return
        if self._eval is None:
            total = len(eval_dataloader) if hasattr(eval_dataloader, "__len__") else None
            self._eval = self._bars().add_task("evaluating", total=total)
        self._progress.advance(self._eval)

    def on_evaluate(self, args, state, control, **kwargs):
        """End the evaluation bar (and the bars altogether when not training)."""
        self._eval = None
        if self._train is None:
            self._close()

    def on_train_end(self, args, state, control, **kwargs):
        """Stop drawing."""
        self._close()


def preprocess_logits_for_metrics(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Shrink ``[B, T, V]`` logits to ``[B, T-1, 2]``: argmax and cross-entropy of the next-token label.

    The vocabulary dimension never leaves the device, so evaluation memory does not grow with ``V``.
    """
    if isinstance(logits, tuple):
        logits = logits[0]
    logits, targets = logits[:, :-1].float(), labels[:, 1:]
    predicted = logits.argmax(dim=-1)
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
    ).view_as(predicted)
    return torch.stack([predicted.to(nll.dtype), nll], dim=-1)


def token_metrics(eval_pred) -> dict[str, float]:
    """Held-out token accuracy (argmax == label) and mean token NLL over response tokens.

    Parameters
    ----------
    eval_pred
        ``EvalPrediction`` whose predictions come from :func:`preprocess_logits_for_metrics`.

    Returns
    -------
    dict
        ``token_accuracy``, ``token_nll``, ``n_tokens``.
    """
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    targets = labels[:, 1:]
    width = min(targets.shape[1], predictions.shape[1])
    targets, predictions = targets[:, :width], predictions[:, :width]
    mask = targets != -100
    n_tokens = int(mask.sum())
    if n_tokens == 0:
        return {"token_accuracy": float("nan"), "token_nll": float("nan"), "n_tokens": 0}
    correct = predictions[..., 0][mask].astype(np.int64) == targets[mask]
    return {
        "token_accuracy": float(correct.mean()),
        "token_nll": float(predictions[..., 1][mask].mean()),
        "n_tokens": n_tokens,
    }


__all__ = [
    "BFTTrainer",
    "BalancedCausalLMLoss",
    "RichProgressCallback",
    "count_loss_items",
    "preprocess_logits_for_metrics",
    "scale_to_accumulated_batch",
    "sft_arguments",
    "token_metrics",
]
