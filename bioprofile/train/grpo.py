"""The ``grpo`` training stage: TRL's ``GRPOTrainer`` on DE questions, with an outcome-only binary reward.

``stage: grpo`` in a ``bioprofile train`` config runs :func:`run_grpo` with a :class:`GRPOStageConfig` (a
:class:`trl.GRPOConfig`, so every GRPO and ``TrainingArguments`` key sits at the top level of the YAML file). The
records are DE questions (:mod:`bioprofile.train.grpo_data`) asked with a DE-question template; each prompt gets
``num_generations`` sampled replies, scored by the rewards the config lists (:mod:`bioprofile.train.rewards`;
``answer`` by default: 1 when the parsed yes/no equals the label, 0 otherwise, a malformed reply included).

The policy starts from

- a full model (the base model, a hub id, or a model folder ``bioprofile train`` wrote): LoRA adapters of the
  ``lora`` section are trained on it (``lora: null`` trains every weight);
- a peft LoRA adapter folder (``adapter_config.json``, such as the ``adapter/`` folder of an sft run): it is loaded
  on its base model *trainable* (``PeftModel.from_pretrained(base, path, is_trainable=True)``, no new
  ``peft_config``) and trained further. An adapter loaded the default way trains nothing, silently (trl issue
  6700); ``tests/train/test_grpo_stage.py`` checks its weights move.

The output folder holds what an sft run's does (the merged model with the adapter in ``adapter/``, or the adapter
alone with ``merge_adapter: false``, or the full model), ``bioprofile_train.json`` and a model card, plus the step
log (:class:`bioprofile.train.grpo_log.GRPOLog`: ``grpo_log.json`` and ``grpo_log.csv``, one row per step with the
mean reward, the share of all-equal groups, the malformed rate and the KL). A run in which every group's rewards
were equal at every step learned nothing; it says so in a warning and in the record (``made_progress: false``).
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import GRPOConfig

from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.de_prompts import get_de_template
from bioprofile.profiles.models import resolve_model, trained_template
from bioprofile.profiles.vllm import vllm_available
from bioprofile.progress import quiet_model_loading
from bioprofile.train.card import MODEL_CARD, RUN_RECORD, base_model_hub_id, merge_adapter
from bioprofile.train.config import (
    DEFAULT_LORA,
    changed_config_values,
    check_config_keys,
    checked_lora,
    parse_config,
)
from bioprofile.train.grpo_data import prompt_rows, read_de_questions
from bioprofile.train.grpo_log import GRPOLog
from bioprofile.train.rewards import get_reward
from bioprofile.train.run import (
    ADAPTER_SUBDIR,
    CHECKPOINT_SUBDIR,
    check_output_dir,
    check_processes_train_together,
)
from bioprofile.train.trainer import RichProgressCallback

__all__ = ["GRPOStageConfig", "Policy", "grpo_config_from_dict", "load_policy", "run_grpo"]

# GRPOConfig keys bioprofile does not use, each with why.
_UNUSED_GRPO_KEYS = {
    "model_init_kwargs": "bioprofile loads the model itself (give it with model:)",
    "trust_remote_code": "bioprofile loads the model itself, without remote code",
}


@dataclass
class GRPOStageConfig(GRPOConfig):
    """Everything the ``grpo`` stage needs: TRL's ``GRPOConfig`` plus the model, the records and the rewards.

    Only the fields bioprofile adds are listed here; see :class:`trl.GRPOConfig` (``num_generations``, ``beta``,
    ``max_completion_length``, ``temperature``, ``loss_type``, ``scale_rewards``, ``use_vllm``...) and
    :class:`transformers.TrainingArguments` for the rest. ``output_dir`` receives the model, the run record and the
    step log (checkpoints go to ``output_dir/checkpoints``).

    Parameters
    ----------
    model
        Where the policy starts: ``"default"`` (the dense SmolLM2-135M-Instruct copy), a hub id, a model folder, or
        a peft LoRA adapter folder (trained further as it is; see the module docstring).
    train_file
        CSV, TSV or JSONL of DE questions: ``pert``, ``cell_line``, ``gene``, ``label`` (``split`` optional).
    train_split
        Keep only records of this ``split`` (records without one are kept); ``None`` keeps all.
    max_train_samples
        Keep only this many questions (after the split filter); ``None`` keeps all.
    template
        The DE-question template (:data:`bioprofile.profiles.de_prompts.DE_TEMPLATES`) the questions are asked
        with: the one ``bench de-reasoning`` asks with, so reward and benchmark read the same replies.
    rewards
        Reward names (:func:`bioprofile.train.rewards.reward_names`); ``["answer"]``, outcome only, by default.
        Add ``answer_format`` for a format term; TRL's ``reward_weights`` weighs them.
    lora
        peft ``LoraConfig`` keys for adapters trained on a full model; ``None`` trains every weight. Leave it out
        when ``model`` is an adapter (that adapter is trained).
    merge_adapter
        Write a merged dense model to ``output_dir`` (the adapter goes to ``output_dir/adapter``); otherwise write
        the adapter alone.
    """

    # bioprofile's defaults where they differ from TRL's: float32 and no activation checkpointing (small models,
    # CPU runs), a log row per step, LoRA's usual learning rate, short replies.
    output_dir: str | None = "bioprofile-grpo"
    learning_rate: float = 1e-5
    logging_steps: float = 1
    optim: str = "adamw_torch"
    save_strategy: str = "no"
    report_to: None | str | list[str] = "none"
    disable_tqdm: bool | None = True
    bf16: bool = False
    gradient_checkpointing: bool | None = None  # TRL turns it on; transformers' None is off
    max_completion_length: int | None = 256

    model: str = "default"
    train_file: str | None = None
    train_split: str | None = "train"
    max_train_samples: int | None = None
    template: str = "de-reasoning"
    rewards: list[str] = field(default_factory=lambda: ["answer"])
    lora: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_LORA))
    merge_adapter: bool = True

    def __post_init__(self) -> None:
        # As BFTConfig: keep the values given, before TrainingArguments rewrites some, for the run record.
        self._given = {
            spec.name: copy.deepcopy(getattr(self, spec.name))
            for spec in self.__dataclass_fields__.values()
            if spec.init
        }
        self.validate()
        super().__post_init__()

    def validate(self) -> None:
        """Raise :class:`BioprofileInputError` on values no run could use (before any model loads)."""
        for name, why in _UNUSED_GRPO_KEYS.items():
            if name in self._given and self._given[name] != self.__dataclass_fields__[name].default:
                raise BioprofileInputError(f"config key {name!r} is not used by the grpo stage: {why}")
        if self.train_file is None:
            raise BioprofileInputError(
                "give train_file: a CSV, TSV or JSONL file of DE questions (pert, cell_line, gene, label)",
                argument="train_file",
            )
        get_de_template(self.template)
        if not isinstance(self.rewards, list) or not self.rewards:
            raise BioprofileInputError("rewards must list at least one reward name (e.g. [answer])")
        for name in self.rewards:
            get_reward(name)
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise BioprofileInputError(
                f"reward_weights has {len(self.reward_weights)} value(s) for {len(self.rewards)} reward(s): "
                "give one weight per reward, in the order of rewards"
            )
        if self.use_vllm and not vllm_available():
            # TRL would fail only when the trainer is built, after the model has loaded
            raise BioprofileInputError(
                "use_vllm: true needs vLLM: pip install 'bioprofile[vllm]', or leave use_vllm out to generate the "
                "replies with transformers"
            )
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise BioprofileInputError(f"max_train_samples must be >= 1, got {self.max_train_samples!r}")
        if self.lora is not None:
            self.lora = checked_lora(self.lora)

    def lora_config(self):
        """The peft ``LoraConfig`` of the ``lora`` section (task ``CAUSAL_LM``), or ``None`` for every weight."""
        if self.lora is None:
            return None
        from peft import LoraConfig

        return LoraConfig(task_type="CAUSAL_LM", **self.lora)

    def to_config_dict(self) -> dict[str, Any]:
        """The keys whose values differ from the defaults, JSON-ready; :func:`grpo_config_from_dict` reads it back."""
        return changed_config_values(self, self._given)


def grpo_config_from_dict(values: dict[str, Any], **overrides: Any) -> GRPOStageConfig:
    """Build a :class:`GRPOStageConfig` from YAML key/value pairs; unknown keys and wrong types are one line.

    Parameters
    ----------
    values
        Key/value pairs, as read from YAML (without ``stage``).
    **overrides
        Keys that replace those in ``values``.

    Returns
    -------
    GRPOStageConfig
        The validated configuration.
    """
    merged = {**values, **overrides}
    check_config_keys(GRPOStageConfig, merged)
    return parse_config(GRPOStageConfig, merged)


@dataclass
class Policy:
    """The model GRPO trains, its tokenizer, and where it came from.

    Attributes
    ----------
    model
        A causal LM, or a ``PeftModel`` when starting from an adapter.
    tokenizer
        Its tokenizer, padding on the left (what TRL's generation needs).
    peft_config
        The ``LoraConfig`` for TRL to attach, or ``None`` (an adapter already attached, or a full fine-tune).
    base_path
        The full model under any adapter (what a merge folds the adapter into).
    start
        ``"adapter"`` or ``"model"``.
    start_path
        The resolved ``model`` of the config.
    """

    model: Any
    tokenizer: Any
    peft_config: Any
    base_path: str
    start: str
    start_path: str


def _is_adapter(path: Path) -> bool:
    return path.is_dir() and (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


def _adapter_base(adapter: Path) -> str:
    """The resolved base model a peft adapter folder was trained on, or one line saying why it cannot be had."""
    try:
        base = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path"
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        base = None
    if not isinstance(base, str) or not base.strip():
        raise BioprofileInputError(
            f"adapter {adapter} names no base model (base_model_name_or_path in adapter_config.json)",
            argument="model",
        )
    try:
        return resolve_model(base)
    except BioprofileInputError as err:
        raise BioprofileInputError(
            f"adapter {adapter} was trained on {base!r}, which cannot be loaded here: {err}", argument="model"
        ) from None


def load_policy(config: GRPOStageConfig) -> Policy:
    """Load the starting model as :class:`GRPOStageConfig` ``model`` says; an adapter is loaded trainable.

    Parameters
    ----------
    config
        The run's settings (``model`` and ``lora``).

    Returns
    -------
    Policy
        The model, tokenizer and provenance.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start_path = resolve_model(config.model)
    path = Path(start_path)
    if _is_adapter(path):
        if "lora" in config.to_config_dict():
            raise BioprofileInputError(
                f"model {config.model!r} is a LoRA adapter, which GRPO trains as it is: leave lora out of the config",
                argument="lora",
            )
        base_path = _adapter_base(path)
        tokenizer_path = start_path if (path / "tokenizer_config.json").is_file() else base_path
    else:
        base_path = tokenizer_path = start_path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    with quiet_model_loading():
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if _is_adapter(path):
        from peft import PeftModel

        # is_trainable=True: the default loads the adapter frozen, and GRPO would then train nothing (trl #6700).
        model = PeftModel.from_pretrained(model, start_path, is_trainable=True)
        return Policy(model, tokenizer, None, base_path, "adapter", start_path)
    return Policy(model, tokenizer, config.lora_config(), base_path, "model", start_path)


def _build_trainer(config: GRPOStageConfig, policy: Policy, rows: list[dict], progress: bool | None):
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    args = copy.copy(config)
    args.output_dir = str(Path(config.output_dir) / CHECKPOINT_SUBDIR)
    try:
        trainer = GRPOTrainer(
            model=policy.model,
            reward_funcs=[get_reward(name) for name in config.rewards],
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=policy.tokenizer,
            peft_config=policy.peft_config,
        )
    except ValueError as err:
        if isinstance(err, BioprofileInputError):
            raise
        raise BioprofileInputError(f"GRPO could not start: {str(err).splitlines()[0]}") from None
    if progress is None:
        progress = None if config.disable_tqdm else True
    if progress is not None:
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        if progress:
            trainer.add_callback(RichProgressCallback)
    return trainer


def _save_model(trainer, config: GRPOStageConfig, policy: Policy, out: Path) -> str:
    """Write the trained model into ``out``; return how it was saved (``merged``, ``adapter`` or ``full``)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not hasattr(model, "peft_config"):
        trainer.save_model(str(out))
        return "full"
    merge = config.merge_adapter
    if trainer.is_world_process_zero():
        target = out / ADAPTER_SUBDIR if merge else out
        # only the trained adapter: with beta > 0 TRL keeps a frozen copy named "ref" beside it
        model.save_pretrained(str(target), selected_adapters=["default"])
        if merge:
            merge_adapter(policy.base_path, target, out)
    return "merged" if merge else "adapter"


def run_grpo(config: GRPOStageConfig, *, overwrite: bool = False, progress: bool | None = None) -> Path:
    """Run the ``grpo`` stage: sample replies to DE questions, reward them, update the policy; write the result.

    The output folder and the records are checked before the model loads. :func:`bioprofile.train.stages.
    train_from_config` reaches it for ``stage: grpo``.

    Parameters
    ----------
    config
        The run's settings.
    overwrite
        Write into an ``output_dir`` that already holds files; without it such a folder is refused.
    progress
        A progress bar on stderr (``True``), silence (``False``), or as ``disable_tqdm`` says (``None``).

    Returns
    -------
    Path
        ``output_dir``: the model (merged, adapter or full), the tokenizer, ``bioprofile_train.json`` (stage,
        rewards, start, the step log's summary, the config), ``README.md``, and ``grpo_log.json`` /
        ``grpo_log.csv`` (see :class:`bioprofile.train.grpo_log.GRPOLog`). When no step had a group of unequal
        rewards, a ``UserWarning`` says the run made no progress.
    """
    out = check_output_dir(config.output_dir, overwrite=overwrite)
    check_processes_train_together(config)
    questions = read_de_questions(config.train_file, split=config.train_split)
    if config.max_train_samples is not None:
        questions = questions[: config.max_train_samples]
    template = get_de_template(config.template)
    rows = prompt_rows(questions, template)
    policy = load_policy(config)
    trainer = _build_trainer(config, policy, rows, progress)

    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    log = GRPOLog.from_log_history(trainer.state.log_history, config.num_generations)
    message = log.no_progress_message()
    if message is not None:
        warnings.warn(message, UserWarning, stacklevel=2)

    saved_as = _save_model(trainer, config, policy, out)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        policy.tokenizer.padding_side = (
            "right"  # as any other model folder: left padding is for TRL's sampling
        )
        policy.tokenizer.save_pretrained(out)
        log.write(out)
        record = {
            "method": "grpo",
            "stage": "grpo",
            # the profile template the starting model was trained with: serving the result asks the same way
            "template": trained_template(policy.start_path),
            "question_template": template.name,
            "question_template_key": template.key,
            "rewards": list(config.rewards),
            "reward_weights": config.reward_weights,
            "num_generations": config.num_generations,
            "beta": config.beta,
            "base_model": policy.base_path,
            "started_from": policy.start,
            "start_model": policy.start_path,
            "saved_as": saved_as,
            "world_size": trainer.args.world_size,
            "n_train": len(rows),
            "global_steps": trainer.state.global_step,
            "train_seconds": round(train_seconds, 2),
            "metrics": log.summary(),
            "no_progress": message,
            "config": config.to_config_dict(),
        }
        atomic_write_text(out / RUN_RECORD, json.dumps(record, indent=2) + "\n")
        hub_id = base_model_hub_id(config.model, policy.base_path)
        atomic_write_text(out / MODEL_CARD, _model_card(record, name=out.name, hub_id=hub_id))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        try:
            Path(trainer.args.output_dir).rmdir()  # only when no checkpoint was written there
        except OSError:
            pass
    return out


def _model_card(record: dict[str, Any], *, name: str, hub_id: str | None) -> str:
    adapter = record["saved_as"] == "adapter"
    meta = [f"base_model: {hub_id}"] if hub_id else []
    meta += [
        f"library_name: {'peft' if adapter else 'transformers'}",
        "pipeline_tag: text-generation",
        "tags:",
        "- bioprofile",
        "- grpo",
        "- de-reasoning",
    ]
    summary = record["metrics"]
    base = hub_id or f"a local model folder ({Path(str(record['base_model'])).name}; no Hub id known)"
    loader = "peft import AutoPeftModelForCausalLM" if adapter else "transformers import AutoModelForCausalLM"
    cls = "AutoPeftModelForCausalLM" if adapter else "AutoModelForCausalLM"
    lines = [
        "---",
        *meta,
        "---",
        "",
        f"# {name}",
        "",
        f"A model trained with GRPO by bioprofile on DE questions (template {record['question_template']}), from "
        f"{base} (started from the {record['started_from']} {Path(str(record['start_model'])).name}).",
        "",
        f"- saved as: {record['saved_as']}",
        f"- rewards: {', '.join(record['rewards'])}; {record['num_generations']} replies per question",
        f"- questions: {record['n_train']}, steps: {record['global_steps']}",
        f"- mean reward, first and last logged step: {summary['first_reward']} -> {summary['last_reward']}",
        f"- made progress (a group of unequal rewards at some step): {summary['made_progress']}",
        "",
        f"`{RUN_RECORD}` holds the configuration; `grpo_log.json` the reward per step.",
        "",
        "```python",
        f"from {loader}",
        "",
        f'model = {cls}.from_pretrained("{name}")',
        "```",
        "",
    ]
    return "\n".join(lines)
