"""The fine-tuning configuration: TRL's :class:`trl.SFTConfig` plus what BFT adds, read from YAML.

:class:`BFTConfig` subclasses ``SFTConfig`` (so ``TrainingArguments`` too), the arguments of
:class:`bioprofile.train.trainer.BFTTrainer`, a TRL ``SFTTrainer``. It adds only what BFT adds: the model and data,
the prompt template, the loss (method, window, normalisation, chunking), the LoRA section and the run options; every
other ``TrainingArguments`` key (``bf16``, ``fsdp``, ``deepspeed``, ``save_strategy``...) sits at the top level of the
YAML file. ``SFTConfig``'s own data and loss keys (packing, ``dataset_text_field``, ``assistant_only_loss``,
``loss_type``...) are refused with the reason: bioprofile tokenises and masks its records itself and replaces the
loss, so they would be accepted and then ignored. Where bioprofile's defaults differ from TRL's or Hugging Face's
they are overridden field defaults here.

A YAML file is read with :class:`transformers.HfArgumentParser`: every value goes through the parser's own type
conversion, as a command-line value would, so a typo or a wrong type is one line naming the key instead of a silent
default or a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers import HfArgumentParser
from trl import SFTConfig

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.prompts import get_template
from bioprofile.train.losses import METHODS as LOSS_METHODS
from bioprofile.train.losses import NORMALIZATIONS, resolve_window

__all__ = [
    "DEFAULT_LORA",
    "BFTConfig",
    "changed_config_values",
    "check_config_keys",
    "checked_lora",
    "config_from_dict",
    "load_config",
    "parse_config",
    "read_config_file",
]

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

# SFTConfig's keys for TRL's own data pipeline and loss, each with why bioprofile train does not use it.
_UNUSED_SFT_KEYS = {
    **dict.fromkeys(
        (
            "dataset_text_field",
            "dataset_kwargs",
            "dataset_num_proc",
            "packing",
            "packing_strategy",
            "eval_packing",
            "padding_free",
            "pad_to_multiple_of",
            "truncation_mode",
            "shuffle_dataset",
            "completion_only_loss",
            "assistant_only_loss",
        ),  # fmt: skip
        "bioprofile tokenises its records itself (only assistant turns are trained; max_length cuts them)",
    ),
    **dict.fromkeys(
        ("chat_template_path", "eos_token", "pad_token"),
        "the records are tokenised with the model's own tokenizer",
    ),
    **dict.fromkeys(
        ("model_init_kwargs", "trust_remote_code"), "bioprofile loads the model itself (give it with model:)"
    ),
    "loss_type": "the loss is chosen with loss_method (dft among them)",
    "router_aux_loss_coef": "the loss is one of loss_method's, without a mixture-of-experts term",
}


# TrainingArguments fields that take more than their annotation says (documented: "bool, str or list").
_WIDER_TYPES: dict[str, Any] = {"fsdp": bool | str | list[str] | None}


@dataclass
class BFTConfig(SFTConfig):
    """Everything ``bioprofile train`` needs: ``TrainingArguments`` plus model, data, template, loss and LoRA.

    A :class:`trl.SFTConfig` (the ``sft`` training stage's arguments). Only the fields BFT adds are listed here; see
    :class:`transformers.TrainingArguments` for the rest.
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

    # bioprofile's defaults where they differ from Hugging Face's, and Hugging Face's where TRL's differ (TRL turns
    # on bf16 and activation checkpointing by default).
    output_dir: str | None = "bioprofile-finetune"
    learning_rate: float = 2e-4
    logging_steps: float = 10
    optim: str = "adamw_torch"
    save_strategy: str = "no"
    report_to: None | str | list[str] = "none"
    disable_tqdm: bool | None = True
    remove_unused_columns: bool = False
    bf16: bool = False
    gradient_checkpointing: bool | None = None
    # The records come tokenised and labelled (bioprofile.train.data): TRL's preparation is skipped.
    dataset_kwargs: dict[str, Any] | str | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True}
    )

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
        _refuse_unused_sft_keys(self)
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
            self.lora = checked_lora(self.lora)

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
        return changed_config_values(self, self._given)


def changed_config_values(config: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The keys of a config dataclass whose given values differ from its class's defaults, JSON-ready.

    Parameters
    ----------
    config
        A config dataclass of a training stage (its ``lora`` attribute, when it has one, is written as checked).
    given
        The values it was built with, before ``TrainingArguments.__post_init__`` rewrote any of them.

    Returns
    -------
    dict
        What the stage's reader needs to build the same config again; API tokens are never included.
    """
    default = _defaults(type(config))
    changed = {}
    for name, value in given.items():
        if name.endswith("_token"):
            continue  # tokens are secrets, never written to a run record
        if name == "lora":
            value = config.lora  # as checked
        if value != default.get(name, dataclasses.MISSING):
            changed[name] = _jsonable(value)
    return changed


def _defaults(config_class: type | None = None) -> dict[str, Any]:
    """Each init field's default value (what a config that leaves the key out gets)."""
    values = {}
    for spec in dataclasses.fields(config_class or BFTConfig):
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


def _refuse_unused_sft_keys(config: BFTConfig) -> None:
    defaults = _defaults()
    for name, why in _UNUSED_SFT_KEYS.items():
        if getattr(config, name) != defaults[name]:
            raise BioprofileInputError(
                f"config key {name!r} belongs to TRL's own SFT pipeline, which "
                f"bioprofile.train.train_from_config does not use: {why}"
            )


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


def _arms(hint: Any) -> tuple:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value is of type ``hint`` as it stands (no conversion): for what a command line cannot carry."""
    return any(_fits_arm(value, arm) for arm in _arms(hint))


def _fits_arm(value: Any, arm: Any) -> bool:
    origin = typing.get_origin(arm) or arm
    if arm is Any or origin is type(None):
        return arm is Any or value is None
    if origin is Literal:
        return value in typing.get_args(arm)
    if origin in (list, tuple):
        (item,) = typing.get_args(arm)[:1] or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if not isinstance(origin, type) or value is None:
        return False
    if issubclass(origin, enum.Enum):
        return value in {member.value for member in origin}
    if isinstance(value, bool) and origin in (int, float):
        return False  # YAML's true is no number
    return isinstance(value, origin) or (origin is float and isinstance(value, int))


def _parsed_as_list(hint: Any) -> bool:
    """Whether ``HfArgumentParser`` reads the field as a list (``nargs="+"``): ``list[X]`` or ``list[X] | None``."""
    arms = [arm for arm in _arms(hint) if arm is not type(None)]
    return len(arms) == 1 and typing.get_origin(arms[0]) is list


def _parsed_as_bool(hint: Any) -> bool:
    return hint is bool or hint == bool | None


class _ConfigParser(HfArgumentParser):
    """``HfArgumentParser`` of a config class whose errors are one :class:`BioprofileInputError` line.

    ``values`` are the config's key/value pairs, so an error names the key, its type and the value given.
    """

    def __init__(self, config_class: type, values: dict[str, Any], hints: dict[str, Any]):
        super().__init__(config_class)
        self.values, self.hints = values, hints

    def error(self, message: str):
        """Raise instead of printing the usage and exiting (argparse's hook for parser errors)."""
        found = re.match(r"argument -+([\w-]+)", message)
        key = found.group(1).replace("-", "_") if found else None
        if key in self.values:
            raise BioprofileInputError(
                f"config key {key!r} must be {_type_name(self.hints[key])}, got {self.values[key]!r}"
            )
        raise BioprofileInputError(f"bad config value: {message.splitlines()[0]}")


def parse_config(config_class: type, values: dict[str, Any]) -> Any:
    """Build a ``config_class`` (a dataclass of ``TrainingArguments`` kind) from YAML values with its parser.

    Each value goes through :class:`transformers.HfArgumentParser`'s conversion of that field (what it does to a
    command-line value: ``"1e-4"`` to a float, ``"true"`` to a bool, a choice checked against its choices); values a
    command line cannot carry (``None``, a mapping, a list for a field that is not a list) are kept as they are when
    the field's type admits them. The parser's ``parse_dict`` then builds the dataclass from the given keys.

    Parameters
    ----------
    config_class
        The dataclass, e.g. :class:`BFTConfig`.
    values
        Key/value pairs as read from YAML; every key must be a field.

    Returns
    -------
    The ``config_class`` instance.
    """
    hints = {**typing.get_type_hints(config_class), **_WIDER_TYPES}
    parser = _ConfigParser(config_class, values, hints)
    arguments, kept = [], {}
    for key, value in values.items():
        hint = hints[key]
        carried = not (value is None or isinstance(value, dict) or isinstance(value, list))
        if isinstance(value, list) and _parsed_as_list(hint):
            carried = True
        if isinstance(value, bool) and not _parsed_as_bool(hint) and _fits(value, hint):
            carried = False  # fsdp: true, which the parser would read as the string "True"
        if carried:
            items = value if isinstance(value, list) else [value]
            arguments += [f"--{key}", *(str(v).lower() if isinstance(v, bool) else str(v) for v in items)]
        elif _fits(value, hint):
            kept[key] = value
        else:
            raise BioprofileInputError(f"config key {key!r} must be {_type_name(hint)}, got {value!r}")
    parser.set_defaults(**kept)
    parsed = parser.parse_args(arguments)
    # Only the given keys: the parser's own defaults can differ from the dataclass's (a field it reads as a list
    # defaults to None).
    converted = {key: getattr(parsed, key) for key in values}
    try:
        (config,) = parser.parse_dict(converted, allow_extra_keys=False)
    except (TypeError, ValueError) as err:
        if isinstance(err, BioprofileInputError):
            raise
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise BioprofileInputError(f"bad config value: {lines[0]}") from None
    return config


def checked_lora(section: Any) -> dict[str, Any]:
    """The ``lora`` section with every key a peft ``LoraConfig`` field of the right type (else one line)."""
    from peft import LoraConfig

    if not isinstance(section, dict):
        raise BioprofileInputError(
            f"config key 'lora' must be a mapping of peft LoraConfig keys (or null), got {section!r}"
        )
    fields = {f.name for f in dataclasses.fields(LoraConfig) if f.init}
    hints = typing.get_type_hints(LoraConfig)
    for key, value in section.items():
        if key not in fields:
            raise BioprofileInputError(f"unknown LoRA key 'lora.{key}': use peft LoraConfig field names")
        if not _fits(value, hints[key]):
            raise BioprofileInputError(
                f"config key 'lora.{key}' must be {_type_name(hints[key])}, got {value!r}"
            )
    return dict(section)


def check_config_keys(config_class: type, values: Any, moved: dict[str, str] | None = None) -> None:
    """Refuse a config that is not a mapping or has a key ``config_class`` lacks, in one line naming the key.

    Parameters
    ----------
    config_class
        The dataclass the values are for.
    values
        What the YAML file held.
    moved
        Keys of an older layout, each with where it went (said in the message).
    """
    if not isinstance(values, dict):
        raise BioprofileInputError("the config must be a mapping of keys to values (a YAML dictionary)")
    known = {f.name for f in dataclasses.fields(config_class) if f.init}
    for key in values:
        if key not in known:
            hint = f" ({moved[key]})" if moved and key in moved else ""
            raise BioprofileInputError(f"unknown config key {key!r}{hint}: see docs/training.md for the keys")


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
    check_config_keys(BFTConfig, values, _MOVED_KEYS)
    merged = {**values, **overrides}
    check_config_keys(BFTConfig, merged, _MOVED_KEYS)
    return parse_config(BFTConfig, merged)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The key/value pairs of a YAML config file, or one :class:`BioprofileInputError` line saying what is wrong.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    dict
        Its top-level mapping (empty for an empty file).
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
    if not isinstance(values, dict):
        raise BioprofileInputError("the config must be a mapping of keys to values (a YAML dictionary)")
    return values


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
    values = read_config_file(path)
    # the stage registry's key (bioprofile.train.stages): a BFTConfig is the sft stage's
    stage = values.pop("stage", "sft")
    if stage != "sft":
        raise BioprofileInputError(
            f"config file {str(path)!r} is for training stage {stage!r}, not sft: read it with train_from_config",
            argument="stage",
        )
    return config_from_dict(values, **overrides)
