"""The fine-tuning configuration: :class:`transformers.TrainingArguments` plus what BFT adds, read from YAML.

:class:`BFTConfig` subclasses ``TrainingArguments`` (not TRL's ``SFTConfig``: what ``SFTConfig`` adds is the data
pipeline of TRL's ``SFTTrainer``, such as packing, ``dataset_text_field``, ``assistant_only_loss`` and
``loss_type``, and :class:`bioprofile.train.trainer.BFTTrainer` builds its own completion-only batches, so those
keys would be accepted and then ignored). It adds only what BFT adds: the model and data, the prompt template,
the loss (method, window, normalisation, chunking), the LoRA section and the run options; every other
``TrainingArguments`` key (``bf16``, ``fsdp``, ``deepspeed``, ``save_strategy``...) sits at the top level of the
YAML file. Where bioprofile's defaults differ from Hugging Face's they are overridden field defaults here.

A YAML file is parsed with :class:`transformers.HfArgumentParser`; every key and every value is checked first, so a
typo or a wrong type is one line naming the key instead of a silent default or a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers import HfArgumentParser, TrainingArguments

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.prompts import get_template
from bioprofile.train.losses import METHODS as LOSS_METHODS
from bioprofile.train.losses import NORMALIZATIONS, resolve_window

__all__ = ["DEFAULT_LORA", "BFTConfig", "config_from_dict", "load_config"]

# The LoRA section used when a config says nothing about LoRA: peft ``LoraConfig`` keys.
DEFAULT_LORA: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}

# Keys of the old flat layout, each with where it lives now.
_MOVED_KEYS = {
    "trainer_args": "TrainingArguments keys now sit at the top level of the config",
    "use_lora": "write lora: null for a full fine-tune",
    "lora_r": "LoRA keys go under lora: (r, lora_alpha, lora_dropout, target_modules...)",
    "lora_alpha": "LoRA keys go under lora:",
    "lora_dropout": "LoRA keys go under lora:",
    "lora_target_modules": "LoRA keys go under lora: as target_modules",
    "gradient_checkpointing": "use activation_checkpointing, its TrainingArguments name",
}


# TrainingArguments fields that take more than their annotation says (documented: "bool, str or list").
_WIDER_TYPES: dict[str, Any] = {"fsdp": bool | str | list[str] | None}


@dataclass
class BFTConfig(TrainingArguments):
    """Everything ``bioprofile train`` needs: ``TrainingArguments`` plus model, data, template, loss and LoRA.

    Only the fields BFT adds are listed here; see :class:`transformers.TrainingArguments` for the rest.
    ``output_dir`` is where the trained model, its tokenizer and ``bioprofile_train.json`` go (the Trainer's
    checkpoints go to ``output_dir/checkpoints``).

    Parameters
    ----------
    model
        A local causal-LM checkpoint directory or a cached hub id, resolved by
        :func:`bioprofile.profiles.models.resolve_model`; ``"default"`` is the dense SmolLM2-135M-Instruct copy.
    train_file
        JSONL of training records: ``{"messages": [...]}`` chat, ``{"prompt": [...], "completion": [...]}``
        (TRL's conversational prompt/completion) or ``{"instruction": ..., "response": ...}``.
    eval_file
        Optional JSONL of held-out records in the same formats.
    refseq_file
        Alternative to ``train_file``: a ``SYMBOL: text`` synopsis file; each resolved gene is asked about with
        ``template``, exactly as ``embed_genes`` asks.
    eval_size
        Records held out from the training data when ``eval_file`` is not given: a count (>= 1) or a fraction (< 1).
    max_train_samples
        Keep only this many training records (after the held-out split); ``None`` keeps all.
    system_prompt
        A system turn put before JSONL records that have none (``train_file`` data only: RefSeq records take their
        system prompt from ``template``).
    template
        The prompt template (:mod:`bioprofile.profiles.prompts`) RefSeq records are asked with; the default is
        the one ``embed_genes`` uses, and the run record names it so the served model is asked the same way.
    loss_method, loss_window
        The objective (see :mod:`bioprofile.train.losses`) and its window (odd); ``None`` takes the method's
        default (9, or 256 for ``bft-v1``).
    loss_normalization
        ``"sample_mean"`` (the paper's: each sample's mean, then the batch mean) or ``"token_mean"`` (over all
        valid tokens of the batch: TRL's and LlamaFactory's ``dft``).
    chunked_loss
        Compute the loss from the final hidden states in chunks so full ``(batch, length, vocab)`` logits never exist.
    lora
        peft ``LoraConfig`` keys (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``...); ``None`` trains
        every weight (full fine-tune). ``target_modules`` may be ``"all-linear"``.
    merge_adapter
        Write a merged dense model to ``output_dir`` (the adapter goes to ``output_dir/adapter``); otherwise write
        the adapter alone.
    max_length
        Tokens per record after the chat template; longer records are cut on the right.
    eval_before_training
        Also evaluate the held-out records before the first step.
    """

    # bioprofile's defaults where they differ from Hugging Face's.
    output_dir: str | None = "bioprofile-finetune"
    learning_rate: float = 2e-4
    logging_steps: float = 10
    optim: str = "adamw_torch"
    save_strategy: str = "no"
    report_to: None | str | list[str] = "none"
    disable_tqdm: bool | None = True
    remove_unused_columns: bool = False

    # What BFT adds.
    model: str = "default"
    train_file: str | None = None
    eval_file: str | None = None
    refseq_file: str | None = None
    eval_size: float = 0.0
    max_train_samples: int | None = None
    system_prompt: str | None = None
    template: str = "concise"
    loss_method: str = "bft"
    loss_window: int | None = None
    loss_normalization: str = "sample_mean"
    chunked_loss: bool = False
    lora: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_LORA))
    merge_adapter: bool = True
    max_length: int = 512
    eval_before_training: bool = False

    def __post_init__(self) -> None:
        # TrainingArguments.__post_init__ rewrites some values (report_to "none" -> [], enums, nested configs);
        # keep what was given, so the config can be written out and read back.
        self._given = {
            spec.name: copy.deepcopy(getattr(self, spec.name))
            for spec in dataclasses.fields(self)
            if spec.init
        }
        self.validate()
        super().__post_init__()

    def validate(self) -> None:
        """Raise :class:`BioprofileInputError` on BFT values no run could use."""
        if self.loss_method not in LOSS_METHODS:
            raise BioprofileInputError(
                f"loss_method {self.loss_method!r} is not known: use one of {', '.join(LOSS_METHODS)}"
            )
        resolve_window(self.loss_method, self.loss_window)
        if self.loss_normalization not in NORMALIZATIONS:
            raise BioprofileInputError(
                f"loss_normalization {self.loss_normalization!r} is not known: use one of {', '.join(NORMALIZATIONS)}"
            )
        if (self.train_file is None) == (self.refseq_file is None):
            raise BioprofileInputError(
                "give exactly one of train_file (JSONL) or refseq_file (SYMBOL: text lines)"
            )
        if self.refseq_file is not None and self.system_prompt is not None:
            raise BioprofileInputError(
                "system_prompt applies to train_file data only: RefSeq records take their system prompt from "
                "template (choose another template, or leave system_prompt out)"
            )
        template = get_template(self.template)
        if self.refseq_file is not None and template.entity != "gene":
            raise BioprofileInputError(
                f"template {self.template!r} asks about a {template.entity}, but refseq_file holds genes: "
                "choose a gene template (concise, genept)",
                argument="template",
            )
        if self.eval_size < 0:
            raise BioprofileInputError(
                f"eval_size must be >= 0 (a count or a fraction), got {self.eval_size!r}"
            )
        if self.max_length < 8:
            raise BioprofileInputError(f"max_length must be at least 8 tokens, got {self.max_length!r}")
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if int(getattr(self, name)) < 1:
                raise BioprofileInputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.lora is not None:
            self.lora = _checked_lora(self.lora)

    @property
    def use_lora(self) -> bool:
        """Whether low-rank adapters are trained (``lora`` is set) rather than every weight."""
        return self.lora is not None

    def lora_config(self):
        """The peft ``LoraConfig`` of the ``lora`` section (task ``CAUSAL_LM``), or ``None`` for a full fine-tune."""
        if self.lora is None:
            return None
        from peft import LoraConfig

        return LoraConfig(task_type="CAUSAL_LM", **self.lora)

    def to_config_dict(self) -> dict[str, Any]:
        """The keys whose values differ from the defaults, JSON-ready; :func:`config_from_dict` reads it back."""
        default = _defaults()
        changed = {}
        for name, value in self._given.items():
            if name.endswith("_token"):
                continue  # tokens are secrets, never written to a run record
            if name == "lora":
                value = self.lora  # as checked
            if value != default.get(name, dataclasses.MISSING):
                changed[name] = _jsonable(value)
        return changed


def _defaults() -> dict[str, Any]:
    """Each init field's default value (what a config that leaves the key out gets)."""
    values = {}
    for spec in dataclasses.fields(BFTConfig):
        if spec.default is not dataclasses.MISSING:
            values[spec.name] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            values[spec.name] = spec.default_factory()
    return values


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _type_name(hint: Any) -> str:
    """``int``, ``str | None``, ``list[str]``: a field type as a config author reads it."""
    if hint is type(None):
        return "None"
    if isinstance(hint, type):
        return hint.__name__
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arm) for arm in typing.get_args(hint))
    if origin is Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(hint))
    return str(hint).replace("typing.", "")


class _WrongType(Exception):
    pass


def _coerce(value: Any, hint: Any, *, loose: bool) -> Any:
    """``value`` as type ``hint``; ``loose`` also reads numbers from strings (YAML 1.1 reads ``1e-4`` as a string)."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(hint)
        for strict in (True, False) if loose else (True,):
            for arm in arms:
                try:
                    return _coerce(value, arm, loose=not strict)
                except _WrongType:
                    continue
        raise _WrongType
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        raise _WrongType
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        if not isinstance(value, list):
            raise _WrongType
        return [_coerce(v, item, loose=loose) for v in value]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _WrongType
        return value
    if hint is type(None):
        if value is None:
            return None
        raise _WrongType
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _WrongType
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if loose and isinstance(value, (float, str)) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                raise _WrongType from None
            if math.isfinite(number) and number == int(number):
                return int(number)
        raise _WrongType
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if loose and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _WrongType from None
        raise _WrongType
    if hint is str:
        if isinstance(value, str):
            return value
        if loose and isinstance(value, Path):
            return str(value)
        raise _WrongType
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint) or value in {member.value for member in hint}:
            return value
        raise _WrongType
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _WrongType
    return value


def _checked_values(values: dict[str, Any], hints: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    checked = {}
    for key, value in values.items():
        try:
            checked[key] = _coerce(value, hints[key], loose=True)
        except _WrongType:
            raise BioprofileInputError(
                f"config key {prefix + key!r} must be {_type_name(hints[key])}, got {value!r}"
            ) from None
    return checked


def _checked_lora(section: Any) -> dict[str, Any]:
    """The ``lora`` section with every key a peft ``LoraConfig`` field of the right type."""
    from peft import LoraConfig

    if not isinstance(section, dict):
        raise BioprofileInputError(
            f"config key 'lora' must be a mapping of peft LoraConfig keys (or null), got {section!r}"
        )
    fields = {f.name for f in dataclasses.fields(LoraConfig) if f.init}
    for key in section:
        if key not in fields:
            raise BioprofileInputError(f"unknown LoRA key 'lora.{key}': use peft LoraConfig field names")
    return _checked_values(section, typing.get_type_hints(LoraConfig), prefix="lora.")


def config_from_dict(values: dict[str, Any], **overrides: Any) -> BFTConfig:
    """Build a :class:`BFTConfig` from a mapping, rejecting unknown keys and wrong types by name.

    Parameters
    ----------
    values
        Key/value pairs, as read from YAML.
    **overrides
        Keys that replace those in ``values`` (e.g. from the command line).

    Returns
    -------
    BFTConfig
        The validated configuration.
    """
    if not isinstance(values, dict):
        raise BioprofileInputError("the config must be a mapping of keys to values (a YAML dictionary)")
    merged = {**values, **overrides}
    known = {f.name for f in dataclasses.fields(BFTConfig) if f.init}
    for key in merged:
        if key not in known:
            hint = f" ({_MOVED_KEYS[key]})" if key in _MOVED_KEYS else ""
            raise BioprofileInputError(f"unknown config key {key!r}{hint}: see docs/training.md for the keys")
    checked = _checked_values(merged, {**typing.get_type_hints(BFTConfig), **_WIDER_TYPES})
    try:
        (config,) = HfArgumentParser(BFTConfig).parse_dict(checked, allow_extra_keys=False)
    except (TypeError, ValueError) as err:
        if isinstance(err, BioprofileInputError):
            raise
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise BioprofileInputError(f"bad config value: {lines[0]}") from None
    return config


def load_config(path: str | Path, **overrides: Any) -> BFTConfig:
    """Read a YAML config file into a :class:`BFTConfig`.

    Parameters
    ----------
    path
        The YAML file.
    **overrides
        Keys that replace those in the file.

    Returns
    -------
    BFTConfig
        The validated configuration.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise BioprofileInputError(f"config file {str(path)!r} does not exist: give the path of a YAML file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise BioprofileInputError(
            f"config file {str(path)!r} is not UTF-8 text (byte {err.start}): save it as UTF-8"
        ) from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise BioprofileInputError(
            f"config file {str(path)!r} is not valid YAML{where}: fix its syntax"
        ) from None
    return config_from_dict(values, **overrides)
