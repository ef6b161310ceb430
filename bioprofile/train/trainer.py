"""The one BFT trainer (a :class:`transformers.Trainer`), its loss function, and :func:`train_from_config`.

Why ``transformers.Trainer`` and not TRL's ``SFTTrainer``: the records are tokenised here
(:func:`bioprofile.train.data.tokenize_chat`), so that the prompt tokens of a training record are exactly those
the generator sends, with any chat template (TRL's assistant-only masking needs ``{% generation %}`` markers in
the template); and the loss is replaced whole. What ``SFTTrainer`` would add on top (dataset preparation, packing,
its own loss types, an extra forward pass for entropy logging) would go unused.

Gradient accumulation and data parallelism
------------------------------------------
Under ``loss_normalization="sample_mean"`` every objective in :mod:`bioprofile.train.losses` is a mean over samples
of a per-sample value (``beta_i`` and the token weights depend only on sample ``i``), so the loss of a large batch
splits exactly over micro-batches: ``L = sum_micro (B_micro / B_total) * L_micro``. The trainer then counts
*samples* (rows) as ``num_items_in_batch``. Under ``"token_mean"`` the loss is a sum over the batch's valid tokens
divided by their count, so it counts *valid label tokens*, as Hugging Face does. Either count is summed over the
accumulation steps and, when ``average_tokens_across_devices`` is on (the default), over all ranks; each micro-batch
loss is scaled by ``n_micro / num_items_in_batch``. Hugging Face then multiplies by the number of processes before
DDP/FSDP average the gradients, so one optimiser step equals a step on the whole global batch at once.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback

from bioprofile._version import __version__
from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_folder
from bioprofile.profiles.models import (
    DEFAULT_MODEL_ALIASES,
    DEFAULT_MODEL_DIRNAME,
    DEFAULT_MODEL_HUB_ID,
    TRAIN_RECORD_FILE,
    resolve_model,
)
from bioprofile.progress import progress_bars
from bioprofile.train.chunked import causal_lm_loss_from_hidden
from bioprofile.train.config import BFTConfig, config_from_dict, load_config
from bioprofile.train.data import (
    IGNORE_INDEX,
    ChatDataset,
    CompletionCollator,
    read_jsonl_records,
    refseq_records,
    split_records,
)
from bioprofile.train.losses import causal_lm_loss, check_normalization, resolve_window

RUN_RECORD = TRAIN_RECORD_FILE  # the serving side (profiles.models) reads the learned template from it
ADAPTER_SUBDIR = "adapter"
CHECKPOINT_SUBDIR = "checkpoints"
MODEL_CARD = "README.md"


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
    micro-batch loss.
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


class BFTTrainer(Trainer):
    """:class:`transformers.Trainer` that trains with SFT, DFT or a BFT variant.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`transformers.Trainer`; ``args`` may be a :class:`bioprofile.train.config.BFTConfig`, whose
        loss settings are then the defaults of the keywords below.
    loss_method
        One of :data:`bioprofile.train.losses.METHODS` (default ``args.loss_method``, else ``"bft"``).
    loss_window
        Window length, or ``None`` for the method's default (default ``args.loss_window``).
    loss_normalization
        ``"sample_mean"`` or ``"token_mean"`` (default ``args.loss_normalization``, else ``"sample_mean"``).
    chunked_loss
        Compute the training loss from the final hidden states in chunks (no full logits); evaluation still uses
        full logits, which it needs for token accuracy (default ``args.chunked_loss``, else false).
    """

    def __init__(
        self,
        *args,
        loss_method: str | None = None,
        loss_window: int | None = None,
        loss_normalization: str | None = None,
        chunked_loss: bool | None = None,
        **kwargs,
    ):
        settings = kwargs.get("args", args[1] if len(args) > 1 else None)
        loss_method = loss_method or getattr(settings, "loss_method", "bft")
        if loss_window is None:
            loss_window = getattr(settings, "loss_window", None)
        loss_normalization = loss_normalization or getattr(settings, "loss_normalization", "sample_mean")
        if chunked_loss is None:
            chunked_loss = bool(getattr(settings, "chunked_loss", False))
        if kwargs.get("compute_loss_func") is None:
            kwargs["compute_loss_func"] = BalancedCausalLMLoss(loss_method, loss_window, loss_normalization)
        super().__init__(*args, **kwargs)
        self.loss_method = loss_method
        self.loss_window = resolve_window(loss_method, loss_window)
        self.loss_normalization = check_normalization(loss_normalization)
        self.chunked_loss = chunked_loss

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        # Samples under sample_mean, valid label tokens under token_mean: see the module docstring.
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        count = sum(count_loss_items(batch["labels"], self.loss_normalization) for batch in batch_samples)
        count = torch.tensor(count, device=device)
        # Mirror Hugging Face: the loss is multiplied by the process count exactly when counts are summed over ranks.
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            count = self.accelerator.gather(count.reshape(1)).sum()
        return count

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The training or evaluation loss of one micro-batch, scaled for accumulation (see the module docstring)."""
        inputs = {**inputs, "use_cache": False}
        if not (self.chunked_loss and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        # Run the wrapped model (so DDP/FSDP hooks fire) but let it project only the last position to logits.
        outputs = model(**inputs, output_hidden_states=True, logits_to_keep=1)
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        loss = causal_lm_loss_from_hidden(
            outputs.hidden_states[-1],
            head.weight,
            labels,
            method=self.loss_method,
            window=self.loss_window,
            normalization=self.loss_normalization,
        )
        n_micro = count_loss_items(labels, self.loss_normalization)
        loss = scale_to_accumulated_batch(loss, n_micro, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss


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


def resolve_training_model(model: str) -> str:
    """The base model a config names, through :func:`bioprofile.profiles.models.resolve_model`.

    ``"default"`` is the dense SmolLM2-135M-Instruct copy. A peft adapter directory is refused: training starts
    from a full model (train on the adapter's base model instead).
    """
    resolved = resolve_model(model)
    path = Path(resolved)
    if path.is_dir() and not (path / "config.json").is_file():
        raise BioprofileInputError(
            f"model {model!r} is a peft adapter, not a full model: train from its base model",
            argument="model",
        )
    return resolved


def check_output_dir(output_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Fail before any expensive work unless ``output_dir`` can be written (see :func:`.check_output_folder`).

    A folder that already holds files (an earlier model, a trained adapter) is written into only with
    ``overwrite``; an empty one is used as is.
    """
    # Under torchrun only rank 0 judges what is there: a later rank could see files rank 0 has begun to write
    # (its failure stops the others).
    first_rank = os.environ.get("RANK", "0") == "0"
    return check_output_folder(output_dir, overwrite=overwrite or not first_rank, argument="output_dir")


@dataclass
class TrainingData:
    """The records a config trains and evaluates on, and where their prompts came from.

    Attributes
    ----------
    train, held_out
        Chat records (``{"messages": [...]}``), split as training splits them.
    template
        The prompt template name RefSeq records were asked with; ``None`` for JSONL data (its records carry their
        own prompts).
    template_key
        That template's :attr:`bioprofile.profiles.prompts.PromptTemplate.key`, or ``None``.
    unresolved_genes
        RefSeq symbols that did not resolve to one gene (skipped).
    """

    train: list
    held_out: list
    template: str | None = None
    template_key: str | None = None
    unresolved_genes: list[str] = field(default_factory=list)


def load_training_data(config: BFTConfig) -> TrainingData:
    """Read, prompt and split the records of a config (see :class:`TrainingData`)."""
    template = template_key = None
    unresolved: list[str] = []
    if config.refseq_file is not None:
        refseq = refseq_records(config.refseq_file, template=config.template)
        records, unresolved = refseq.records, refseq.unresolved
        template, template_key = refseq.template.name, refseq.template.key
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
    return TrainingData(train, held_out, template, template_key, unresolved)


def load_records(config: BFTConfig) -> tuple[list, list]:
    """The ``(train, held_out)`` chat records a config trains and evaluates on (see :func:`load_training_data`)."""
    data = load_training_data(config)
    return data.train, data.held_out


def _with_system(record: dict, system_prompt: str) -> dict:
    if record["messages"][0]["role"] == "system":
        return record
    return {**record, "messages": [{"role": "system", "content": system_prompt}, *record["messages"]]}


def _apply_overrides(config: BFTConfig, overrides: dict[str, Any]) -> BFTConfig:
    if not overrides:
        return config
    return config_from_dict(config.to_config_dict(), **overrides)


def build_trainer(
    config: BFTConfig,
    model_path: str,
    train_records: list,
    eval_records: list,
    *,
    progress: bool | None = None,
):
    """Load the model and tokenizer, tokenise the records and return a ready :class:`BFTTrainer`.

    Parameters
    ----------
    config
        The run configuration; the trainer gets a copy whose ``output_dir`` is ``output_dir/checkpoints``.
    model_path
        Resolved model (see :func:`resolve_training_model`).
    train_records, eval_records
        Chat records (``{"messages": [...]}``).
    progress
        ``True``: a progress bar on stderr (:class:`RichProgressCallback`) and no log lines; ``False``: neither;
        ``None``: as ``config.disable_tqdm`` says (the bar, or transformers' log lines on stdout).

    Returns
    -------
    tuple
        ``(trainer, tokenizer, info)`` where ``info`` counts records kept and dropped.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_processes_train_together(config)
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
    lora = config.lora_config()
    if lora is not None:
        from peft import get_peft_model

        try:
            model = get_peft_model(model, lora)
        except ValueError as err:
            raise BioprofileInputError(f"LoRA could not attach: {str(err).splitlines()[0]}") from None
        if config.activation_checkpointing:
            model.enable_input_require_grads()

    # The config is the TrainingArguments; only the checkpoints go one level down, beside nothing else.
    args = copy.copy(config)
    args.output_dir = str(Path(config.output_dir) / CHECKPOINT_SUBDIR)
    trainer = BFTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=CompletionCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        compute_metrics=token_metrics if eval_set is not None else None,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if eval_set is not None else None,
    )
    _warn_if_fsdp_was_dropped(trainer)
    if progress is None:
        progress = None if config.disable_tqdm else True
    if progress is not None:
        # One style of progress bar across bioprofile (rich, on stderr) instead of transformers' tqdm bars; the
        # loss is in the bar, so no log line on stdout either.
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        if progress:
            trainer.add_callback(RichProgressCallback)
    info = {
        "n_train": len(train_set),
        "n_eval": len(eval_set) if eval_set is not None else 0,
        "n_dropped_over_max_length": train_set.n_dropped
        + (eval_set.n_dropped if eval_set is not None else 0),
    }
    return trainer, tokenizer, info


def check_processes_train_together(config: BFTConfig) -> None:
    """Refuse a launch of several processes in which each would train alone into the same ``output_dir``.

    A launcher (torchrun, accelerate) sets ``WORLD_SIZE``, but on a machine without GPUs the Trainer joins the
    processes only when ``use_cpu`` is set; otherwise every one of them trains the whole data set and writes the
    same folder (four trainings, one result).

    Parameters
    ----------
    config
        The run's settings; its ``world_size`` is the number of processes the Trainer joined.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if launched > 1 and config.world_size == 1:
        raise BioprofileInputError(
            f"launched as {launched} processes, but each would train alone into the same output_dir: on CPU set "
            "use_cpu: true and ddp_backend: gloo in the config so that they train together",
            argument="config",
        )


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


def train_from_config(
    config: BFTConfig | str | Path,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    **overrides: Any,
) -> Path:
    """Fine-tune a causal LM as a config says and write the result.

    Works the same in one process and under ``torchrun`` / ``accelerate launch`` (DDP, FSDP, DeepSpeed through
    their ``TrainingArguments`` keys); only the main process writes the final model and the run record. The output
    directory is checked before the model loads.

    Parameters
    ----------
    config
        A :class:`BFTConfig` or the path of a YAML config.
    overwrite
        Write into an ``output_dir`` that already holds files (an earlier model is replaced); without it such a
        folder is refused before anything loads.
    progress
        A progress bar on stderr (``True``), silence (``False``), or as ``disable_tqdm`` says (``None``); see
        :func:`build_trainer`.
    **overrides
        Config keys that replace the file's values (e.g. ``max_steps=5``).

    Returns
    -------
    Path
        ``output_dir``. It holds a model ``AutoModelForCausalLM.from_pretrained`` loads (merged or full fine-tune),
        or a peft adapter (``adapter_config.json``) when ``merge_adapter`` is false; the tokenizer; and
        ``bioprofile_train.json`` (:data:`RUN_RECORD`) with the method, window, normalisation, the prompt
        ``template`` name and ``template_key`` (``None`` for JSONL data), the train loss curve and held-out token
        accuracy; and a model card (``README.md``, :func:`model_card`) naming the base model by its Hub id.
    """
    if isinstance(config, BFTConfig):
        config = _apply_overrides(config, overrides)
    else:
        config = load_config(config, **overrides)
    out = check_output_dir(config.output_dir, overwrite=overwrite)
    model_path = resolve_training_model(config.model)
    data = load_training_data(config)
    trainer, tokenizer, info = build_trainer(config, model_path, data.train, data.held_out, progress=progress)

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
            "normalization": config.loss_normalization,
            "template": data.template,
            "template_key": data.template_key,
            "n_unresolved_genes": len(data.unresolved_genes),
            "unresolved_genes": data.unresolved_genes,
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
            "config": config.to_config_dict(),
        }
        atomic_write_text(out / RUN_RECORD, json.dumps(_finite(record), indent=2) + "\n")
        # peft's own card names the base model by its local path; this one names its Hub id, or none.
        hub_id = base_model_hub_id(config.model, model_path)
        atomic_write_text(out / MODEL_CARD, model_card(record, name=out.name, hub_id=hub_id))
        if merge and (out / ADAPTER_SUBDIR).is_dir():
            adapter_record = {**record, "saved_as": "adapter"}
            card = model_card(adapter_record, name=ADAPTER_SUBDIR, hub_id=hub_id)
            atomic_write_text(out / ADAPTER_SUBDIR / MODEL_CARD, card)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        _remove_if_empty(Path(trainer.args.output_dir))
    return out


def base_model_hub_id(model: str, model_path: str) -> str | None:
    """The Hugging Face Hub id of the model a run trained from, or ``None`` when it is only a local folder.

    Parameters
    ----------
    model
        The model as the config names it (``"default"``, a hub id, a path).
    model_path
        What :func:`resolve_training_model` made of it (a local directory or the hub id).

    Returns
    -------
    str or None
        ``HuggingFaceTB/SmolLM2-135M-Instruct`` for the bundled default (its converted copy lives in bioprofile's
        cache); ``org/name`` for a hub id or a folder of the Hugging Face cache (``models--org--name/snapshots/``);
        else ``None``: a local path is no name another machine can load.
    """
    path = Path(model_path)
    if str(model).strip().lower() in DEFAULT_MODEL_ALIASES or path.name == DEFAULT_MODEL_DIRNAME:
        return DEFAULT_MODEL_HUB_ID
    if not path.is_dir():
        return str(model_path)  # resolve_model returns a hub id unchanged
    for part in path.parts:
        if part.startswith("models--") and part.count("--") >= 2:
            return "/".join(part.removeprefix("models--").split("--", 1))
    return None


def model_card(record: dict[str, Any], *, name: str, hub_id: str | None) -> str:
    """The model card (README.md with Hub metadata) of a trained model or adapter, from its run record.

    Parameters
    ----------
    record
        The run record written beside it (:data:`RUN_RECORD`).
    name
        The folder's name, the card's title.
    hub_id
        :func:`base_model_hub_id`; the card's ``base_model`` (left out when ``None``, never a local path).
    """
    adapter = record["saved_as"] == "adapter"
    meta = []
    if hub_id is not None:
        meta.append(f"base_model: {hub_id}")
    meta += [
        f"library_name: {'peft' if adapter else 'transformers'}",
        "pipeline_tag: text-generation",
        "tags:",
    ]
    meta += [f"- {tag}" for tag in ("bioprofile", str(record["method"]).lower(), "gene-profiles")]
    base = hub_id or f"a local model folder ({Path(str(record['base_model'])).name}; no Hub id known)"
    eval_metrics = (record.get("metrics") or {}).get("eval") or {}
    accuracy = eval_metrics.get("token_accuracy")
    lines = [
        "---",
        *meta,
        "---",
        "",
        f"# {name}",
        "",
        f"A gene-profile writer fine-tuned from {base} by bioprofile {__version__} with the {record['method']} "
        f"loss (window {record['window']}, {record['normalization']} normalisation).",
        "",
        f"- saved as: {record['saved_as']}",
        f"- prompt template: {record['template'] or 'the prompts of the JSONL records'}",
        f"- training records: {record['n_train']}, held out: {record['n_eval']}, steps: {record['global_steps']}",
        f"- held-out token accuracy: {'n/a' if accuracy is None else f'{accuracy:.4f}'}",
        "",
        f"The run record `{RUN_RECORD}` beside this card holds the whole configuration and the loss curve.",
        "",
        "```python",
    ]
    if adapter:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "",
            f'model = AutoPeftModelForCausalLM.from_pretrained("{name}")',
        ]
    else:
        lines += [
            "from transformers import AutoModelForCausalLM",
            "",
            f'model = AutoModelForCausalLM.from_pretrained("{name}")',
        ]
    lines += ["```", ""]
    return "\n".join(lines)


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
    "DEFAULT_MODEL_HUB_ID",
    "check_processes_train_together",
    "MODEL_CARD",
    "RUN_RECORD",
    "BFTTrainer",
    "RichProgressCallback",
    "BalancedCausalLMLoss",
    "TrainingData",
    "base_model_hub_id",
    "build_trainer",
    "check_output_dir",
    "count_loss_items",
    "load_records",
    "load_training_data",
    "model_card",
    "resolve_training_model",
    "scale_to_accumulated_batch",
    "preprocess_logits_for_metrics",
    "token_metrics",
    "train_from_config",
]
