"""One run of the ``sft`` stage: records in, a model folder out (model, tokenizer, run record, model card).

:func:`run_sft` checks the output folder and the model, reads and splits the records (:func:`load_training_data`),
builds the :class:`bioprofile.train.trainer.BFTTrainer` (:func:`build_trainer`), trains, evaluates, and writes the
model (merged, full or adapter), ``bioprofile_train.json`` and ``README.md``. The stage registry
(:mod:`bioprofile.train.stages`) reaches it for ``stage: sft``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback, ProgressCallback

from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_folder
from bioprofile.profiles.models import resolve_model
from bioprofile.progress import quiet_model_loading
from bioprofile.train.card import MODEL_CARD, RUN_RECORD, base_model_hub_id, merge_adapter, model_card
from bioprofile.train.config import BFTConfig
from bioprofile.train.data import (
    ChatDataset,
    CompletionCollator,
    read_jsonl_records,
    refseq_records,
    split_records,
)
from bioprofile.train.losses import resolve_window
from bioprofile.train.trainer import (
    BFTTrainer,
    RichProgressCallback,
    preprocess_logits_for_metrics,
    token_metrics,
)

ADAPTER_SUBDIR = "adapter"
CHECKPOINT_SUBDIR = "checkpoints"


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
    _warn_if_cut(config.max_length, train_set, eval_set)

    with quiet_model_loading():
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
        "n_truncated_at_max_length": train_set.n_truncated
        + (eval_set.n_truncated if eval_set is not None else 0),
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


def _warn_if_cut(max_length: int, train_set: ChatDataset, eval_set: ChatDataset | None) -> None:
    """Say how many records lost response tokens past ``max_length`` (cut short, or dropped with none left).

    A long prompt (a prompt template's system turn) can leave a short ``max_length`` a few response tokens: training
    then sees the start of each answer only, and the held-out scores measure those tokens alone.
    """
    parts = [("training", train_set), ("held-out", eval_set)]
    counts = [
        f"{name} records: {data.n_truncated} of {len(data) + data.n_dropped} cut short, {data.n_dropped} dropped "
        "(no response token left)"
        for name, data in parts
        if data is not None and (data.n_truncated or data.n_dropped)
    ]
    if counts:
        warnings.warn(
            f"max_length {max_length} cuts responses: {'; '.join(counts)}; raise max_length to train and score "
            "whole responses (counted in the run record)",
            UserWarning,
            stacklevel=3,
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


def run_sft(config: BFTConfig, *, overwrite: bool = False, progress: bool | None = None) -> Path:
    """Run the ``sft`` stage (SFT, DFT and every BFT loss): fine-tune a causal LM as ``config`` says, write the result.

    Works the same in one process and under ``torchrun`` / ``accelerate launch`` (DDP, FSDP, DeepSpeed through
    their ``TrainingArguments`` keys); only the main process writes the final model and the run record. The output
    directory is checked before the model loads. :func:`bioprofile.train.stages.train_from_config` reaches it for
    ``stage: sft`` (the default).

    Parameters
    ----------
    config
        The run's settings.
    overwrite
        Write into an ``output_dir`` that already holds files (an earlier model is replaced); without it such a
        folder is refused before anything loads.
    progress
        A progress bar on stderr (``True``), silence (``False``), or as ``disable_tqdm`` says (``None``); see
        :func:`build_trainer`.

    Returns
    -------
    Path
        ``output_dir``. It holds a model ``AutoModelForCausalLM.from_pretrained`` loads (merged or full fine-tune),
        or a peft adapter (``adapter_config.json``) when ``merge_adapter`` is false; the tokenizer; and
        ``bioprofile_train.json`` (:data:`RUN_RECORD`) with the method, window, normalisation, the prompt
        ``template`` name and ``template_key`` (``None`` for JSONL data), the train loss curve and held-out token
        accuracy; and a model card (``README.md``, :func:`bioprofile.train.card.model_card`) naming the base model
        by its Hub id.
    """
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
            merge_adapter(model_path, out / ADAPTER_SUBDIR, out)
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


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()  # only succeeds when nothing (no checkpoint) was written there
    except OSError:
        pass


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
    "ADAPTER_SUBDIR",
    "CHECKPOINT_SUBDIR",
    "TrainingData",
    "build_trainer",
    "check_output_dir",
    "check_processes_train_together",
    "load_records",
    "load_training_data",
    "resolve_training_model",
    "run_sft",
]
