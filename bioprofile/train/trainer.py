"""Hugging Face `Trainer` / TRL `SFTTrainer` glue for the reweighted losses, and `train_from_config`.

Gradient accumulation and data parallelism
------------------------------------------
Every objective in :mod:`bioprofile.train.losses` is a mean over samples of a per-sample value (``beta_i`` and the
token weights depend only on sample ``i``), so the loss of a large batch splits exactly over micro-batches:
``L = sum_micro (B_micro / B_total) * L_micro``. The trainers here therefore count *samples* (rows), not tokens, as
``num_items_in_batch``, summed over the accumulation steps and, when ``average_tokens_across_devices`` is on (the
default), over all ranks; each micro-batch loss is scaled by ``B_micro / num_items_in_batch``. Hugging Face then
multiplies by the number of processes before DDP/FSDP average the gradients, so one optimiser step equals a step on
the whole global batch at once.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer

from bioprofile.errors import BioprofileInputError
from bioprofile.train.config import BFTConfig, config_from_dict, load_config
from bioprofile.train.losses import causal_lm_loss, resolve_window

RUN_RECORD = "bioprofile_train.json"
ADAPTER_SUBDIR = "adapter"


def _hidden_loss_function():
    """The chunked loss from final hidden states, wherever the losses module put it."""
    from bioprofile.train import losses

    if hasattr(losses, "causal_lm_loss_from_hidden"):
        return losses.causal_lm_loss_from_hidden
    try:
        from bioprofile.train.chunked import causal_lm_loss_from_hidden
    except ImportError:
        raise BioprofileInputError(
            "chunked_loss needs bioprofile.train.chunked.causal_lm_loss_from_hidden, which this install lacks: "
            "set chunked_loss: false"
        ) from None
    return causal_lm_loss_from_hidden


class BalancedCausalLMLoss:
    """A ``compute_loss_func`` for Hugging Face trainers: the chosen objective, scaled for accumulation.

    Parameters
    ----------
    method
        One of :data:`bioprofile.train.losses.METHODS`.
    window
        Window length, or ``None`` for the method's default.

    Notes
    -----
    Called as ``loss_fn(outputs, labels, num_items_in_batch=N)`` where ``N`` is the number of samples in the whole
    accumulated (and, with ``average_tokens_across_devices``, global) batch; it returns
    ``causal_lm_loss(...) * B_micro / N``. With ``N=None`` it returns the plain micro-batch loss.
    """

    def __init__(self, method: str = "bft", window: int | None = None):
        self.method = method
        self.window = resolve_window(method, window)

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = causal_lm_loss(logits, labels, method=self.method, window=self.window)
        return _scale_to_accumulated_batch(loss, labels.shape[0], num_items_in_batch)


def _scale_to_accumulated_batch(loss: torch.Tensor, n_micro: int, num_items_in_batch: Any) -> torch.Tensor:
    if num_items_in_batch is None:
        return loss
    total = num_items_in_batch.to(loss.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch
    return loss * (n_micro / total)


class SampleCountMixin:
    """Make a Hugging Face trainer count samples, not tokens, as ``num_items_in_batch``.

    Mixed in before :class:`transformers.Trainer` (or TRL's ``SFTTrainer``) together with a ``compute_loss_func``
    such as :class:`BalancedCausalLMLoss`.
    """

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        count = torch.tensor(sum(int(batch["labels"].shape[0]) for batch in batch_samples), device=device)
        # Mirror Hugging Face: the loss is multiplied by the process count exactly when counts are summed over ranks.
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            count = self.accelerator.gather(count.reshape(1)).sum()
        return count


class BFTTrainer(SampleCountMixin, Trainer):
    """:class:`transformers.Trainer` that trains with SFT, DFT or a BFT variant.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`transformers.Trainer`.
    loss_method
        One of :data:`bioprofile.train.losses.METHODS`.
    loss_window
        Window length, or ``None`` for the method's default.
    chunked_loss
        Compute the training loss from the final hidden states in chunks (no full logits); evaluation still uses
        full logits, which it needs for token accuracy.
    """

    def __init__(
        self,
        *args,
        loss_method: str = "bft",
        loss_window: int | None = None,
        chunked_loss: bool = False,
        **kwargs,
    ):
        if kwargs.get("compute_loss_func") is None:
            kwargs["compute_loss_func"] = BalancedCausalLMLoss(loss_method, loss_window)
        super().__init__(*args, **kwargs)
        self.loss_method = loss_method
        self.loss_window = resolve_window(loss_method, loss_window)
        self.chunked_loss = chunked_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = {**inputs, "use_cache": False}
        if not (self.chunked_loss and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss_from_hidden = _hidden_loss_function()
        labels = inputs.pop("labels")
        # Run the wrapped model (so DDP/FSDP hooks fire) but let it project only the last position to logits.
        outputs = model(**inputs, output_hidden_states=True, logits_to_keep=1)
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        loss = loss_from_hidden(
            outputs.hidden_states[-1], head.weight, labels, method=self.loss_method, window=self.loss_window
        )
        loss = _scale_to_accumulated_batch(loss, labels.shape[0], num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss


def __getattr__(name: str):
    # TRL is imported only when this variant is asked for.
    if name == "BFTSFTTrainer":
        globals()[name] = _build_sft_trainer_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_sft_trainer_class():
    from trl import SFTTrainer

    class BFTSFTTrainer(SampleCountMixin, SFTTrainer):
        """TRL ``SFTTrainer`` trained with SFT, DFT or a BFT variant.

        TRL builds the completion-only labels (``completion_only_loss`` on prompt/completion data,
        ``assistant_only_loss`` on chat data); this class replaces the loss and makes accumulation count samples.
        TRL's own entropy / token-accuracy logging is skipped (it needs an extra forward pass).

        Parameters
        ----------
        *args, **kwargs
            As for :class:`trl.SFTTrainer`.
        loss_method, loss_window
            The objective and its window, as for :class:`BFTTrainer`.
        """

        loss_is_scaled_for_ga = True

        def __init__(self, *args, loss_method: str = "bft", loss_window: int | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.balanced_loss = BalancedCausalLMLoss(loss_method, loss_window)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            model_inputs = {
                k: v for k, v in inputs.items() if k not in ("labels", "completion_mask", "assistant_masks")
            }
            outputs = model(**model_inputs, use_cache=False)
            if num_items_in_batch is None:
                # Per-micro-batch mean: the accumulation steps average it, as Trainer would.
                loss = self.balanced_loss(outputs, labels) / (
                    self.current_gradient_accumulation_steps if model.training else 1
                )
            else:
                loss = self.balanced_loss(outputs, labels, num_items_in_batch)
                if self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return BFTSFTTrainer


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


def _resolve_model_path(model: str) -> str:
    if model in ("default", "smollm2"):
        from bioprofile.profiles.models import default_generator_path

        return str(default_generator_path())
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise BioprofileInputError(
            f"model {model!r} is not a local checkpoint directory with config.json: give a path or 'default'"
        )
    return str(path)


def load_records(config: BFTConfig) -> tuple[list, list]:
    """The ``(train, held_out)`` chat records a config trains and evaluates on, split as training splits them."""
    from bioprofile.train.data import read_jsonl_records, refseq_sft_records, split_records

    if config.refseq_file is not None:
        records = refseq_sft_records(config.refseq_file, system_prompt=config.system_prompt)
    else:
        records = read_jsonl_records(config.train_file)
        if config.system_prompt:
            records = [_with_system(r, config.system_prompt) for r in records]
    if config.eval_file is not None:
        train, held_out = records, read_jsonl_records(config.eval_file)
    elif config.eval_size > 0:
        train, held_out = split_records(records, config.eval_size, seed=config.seed)
    else:
        train, held_out = records, []
    if config.max_train_samples is not None:
        train = train[: config.max_train_samples]
    return train, held_out


def _with_system(record: dict, system_prompt: str) -> dict:
    if record["messages"][0]["role"] == "system":
        return record
    return {**record, "messages": [{"role": "system", "content": system_prompt}, *record["messages"]]}


def _training_arguments(config: BFTConfig, has_eval: bool):
    from transformers import TrainingArguments

    values = {
        "output_dir": str(Path(config.output_dir) / "checkpoints"),
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "per_device_eval_batch_size": config.per_device_eval_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "warmup_steps": config.warmup_steps,
        "lr_scheduler_type": config.lr_scheduler_type,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "optim": config.optim,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        "activation_checkpointing": config.gradient_checkpointing,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "remove_unused_columns": False,
        "disable_tqdm": True,
    }
    values.update(config.trainer_args)
    try:
        return TrainingArguments(**values)
    except (TypeError, ValueError) as err:
        raise BioprofileInputError(f"bad training arguments: {str(err).splitlines()[0]}") from None


def _apply_overrides(config: BFTConfig, overrides: dict[str, Any]) -> BFTConfig:
    if not overrides:
        return config
    return config_from_dict(config.to_dict(), **overrides)


def build_trainer(config: BFTConfig, model_path: str, train_records: list, eval_records: list):
    """Load the model and tokenizer, tokenise the records and return a ready :class:`BFTTrainer`.

    Parameters
    ----------
    config
        The run configuration.
    model_path
        Resolved local checkpoint directory.
    train_records, eval_records
        Chat records (``{"messages": [...]}``).

    Returns
    -------
    tuple
        ``(trainer, tokenizer, info)`` where ``info`` counts records kept and dropped.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bioprofile.train.data import ChatDataset, CompletionCollator

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_set = ChatDataset(train_records, tokenizer, max_length=config.max_length)
    eval_set = ChatDataset(eval_records, tokenizer, max_length=config.max_length) if eval_records else None
    if len(train_set) == 0:
        raise BioprofileInputError(
            "no training record has a response token within max_length: raise max_length"
        )

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    if config.use_lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_target_modules,
        )
        try:
            model = get_peft_model(model, lora)
        except ValueError as err:
            raise BioprofileInputError(f"LoRA could not attach: {str(err).splitlines()[0]}") from None
        if config.gradient_checkpointing:
            model.enable_input_require_grads()

    args = _training_arguments(config, eval_set is not None)
    trainer = BFTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=CompletionCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        compute_metrics=token_metrics if eval_set is not None else None,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if eval_set is not None else None,
        loss_method=config.loss_method,
        loss_window=config.loss_window,
        chunked_loss=config.chunked_loss,
    )
    _warn_if_fsdp_was_dropped(trainer)
    info = {
        "n_train": len(train_set),
        "n_eval": len(eval_set) if eval_set is not None else 0,
        "n_dropped_over_max_length": train_set.n_dropped
        + (eval_set.n_dropped if eval_set is not None else 0),
    }
    return trainer, tokenizer, info


def _warn_if_fsdp_was_dropped(trainer) -> None:
    """Say so when ``fsdp`` was asked for on several processes but the trainer runs plain data parallelism.

    accelerate enables its FSDP plugin only for accelerator devices (GPU, XPU, NPU...); CPU processes silently get
    DDP, with a full model copy on every rank.
    """
    if trainer.args.fsdp and trainer.args.world_size > 1 and not trainer.is_fsdp_enabled:
        warnings.warn(
            "FSDP was asked for but accelerate did not enable it on this device (CPU processes get DDP): "
            "every rank holds the whole model",
            UserWarning,
            stacklevel=2,
        )


_EVAL_KEYS = ("loss", "token_accuracy", "token_nll", "n_tokens", "runtime")


def _eval_summary(metrics: dict[str, float]) -> dict[str, float]:
    """Keep the held-out numbers worth recording (drop throughput figures and the epoch counter)."""
    found = {key.removeprefix("eval_"): value for key, value in metrics.items()}
    return {key: found[key] for key in _EVAL_KEYS if key in found}


def train_from_config(config: BFTConfig | str | Path, **overrides: Any) -> Path:
    """Fine-tune a causal LM as a config says and write the result.

    Works the same in one process and under ``torchrun`` / ``accelerate launch`` (DDP, FSDP, DeepSpeed through
    ``trainer_args``); only the main process writes the final model and the run record.

    Parameters
    ----------
    config
        A :class:`BFTConfig` or the path of a YAML config.
    **overrides
        Config keys that replace the file's values (e.g. ``max_steps=5``).

    Returns
    -------
    Path
        ``output_dir``. It holds a model ``AutoModelForCausalLM.from_pretrained`` loads (merged or full fine-tune),
        or a peft adapter (``adapter_config.json``) when ``merge_adapter`` is false; the tokenizer; and
        ``bioprofile_train.json`` with the method, window, train loss curve and held-out token accuracy.
    """
    if isinstance(config, BFTConfig):
        config = _apply_overrides(config, overrides)
    else:
        config = load_config(config, **overrides)
    model_path = _resolve_model_path(config.model)
    train_records, eval_records = load_records(config)
    trainer, tokenizer, info = build_trainer(config, model_path, train_records, eval_records)
    out = Path(config.output_dir)

    before = None
    if config.eval_before_training and trainer.eval_dataset is not None:
        before = _eval_summary(trainer.evaluate())
    started = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - started
    after = _eval_summary(trainer.evaluate()) if trainer.eval_dataset is not None else None

    merge = config.use_lora and config.merge_adapter
    trainer.model.config.use_cache = True
    if trainer.is_fsdp_enabled:
        # A sharded state_dict_type is for checkpoints: Trainer.save_model writes no weights at all for it (and it
        # is accelerate's FSDP2 default), so gather the final model into full weights whatever the config says.
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(out / ADAPTER_SUBDIR) if merge else str(out))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        if merge:
            _merge_adapter(model_path, out / ADAPTER_SUBDIR, out)
        tokenizer.save_pretrained(out)
        curve = [
            {"step": entry["step"], "loss": entry["loss"]}
            for entry in trainer.state.log_history
            if "loss" in entry
        ]
        record = {
            "method": config.loss_method,
            "window": resolve_window(config.loss_method, config.loss_window),
            "base_model": model_path,
            "saved_as": "merged" if merge else ("adapter" if config.use_lora else "full"),
            "world_size": trainer.args.world_size,
            **info,
            "global_steps": trainer.state.global_step,
            "train_seconds": round(train_seconds, 2),
            "metrics": {
                "train_loss": train_output.training_loss,
                "train_loss_curve": curve,
                "eval_before": before,
                "eval": after,
            },
            "config": config.to_dict(),
        }
        (out / RUN_RECORD).write_text(json.dumps(_finite(record), indent=2) + "\n")
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        _remove_if_empty(Path(trainer.args.output_dir))
    return out


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()  # only succeeds when nothing (no checkpoint) was written there
    except OSError:
        pass


def _merge_adapter(base_path: str, adapter_dir: Path, out: Path) -> None:
    """Fold a saved adapter into a fresh copy of the base model (works whatever sharding training used)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out)


def _finite(value: Any) -> Any:
    """JSON has no NaN: write None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


__all__ = [
    "RUN_RECORD",
    "BFTSFTTrainer",  # noqa: F822 (built on first access, see __getattr__)
    "BFTTrainer",
    "BalancedCausalLMLoss",
    "SampleCountMixin",
    "build_trainer",
    "preprocess_logits_for_metrics",
    "token_metrics",
    "train_from_config",
]
