"""The fine-tuning configuration: one flat dataclass (TRL style) and a strict YAML reader.

A YAML file names every key of :class:`BFTConfig` it wants to change; anything else is rejected with the key's name,
so a typo never silently falls back to a default. Keys of :class:`transformers.TrainingArguments` that this dataclass
does not model (``fsdp``, ``deepspeed``, ``bf16``...) go under ``trainer_args``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.train.losses import METHODS as LOSS_METHODS
from bioprofile.train.losses import resolve_window


@dataclass
class BFTConfig:
    """Everything `bioprofile train` needs: model, data, loss, LoRA and optimisation settings.

    Parameters
    ----------
    model
        Path of a local causal-LM checkpoint (``AutoModelForCausalLM.from_pretrained``), tokenizer beside it.
        ``"default"`` means the cached dense copy of the default generator (SmolLM2-135M-Instruct).
    output_dir
        Where the trained model (merged or adapter), its tokenizer and ``bioprofile_train.json`` are written.
    train_file
        JSONL of training records: ``{"messages": [...]}`` chat or ``{"instruction": ..., "response": ...}``.
    eval_file
        Optional JSONL of held-out records in the same formats.
    refseq_file
        Alternative to ``train_file``: a ``SYMBOL: text`` synopsis file turned into "Tell me about gene X" records.
    eval_size
        Records held out from the training data when ``eval_file`` is not given: a count (>= 1) or a fraction (< 1).
    max_train_samples
        Keep only this many training records (after the held-out split); ``None`` keeps all.
    loss_method, loss_window
        The objective (see :mod:`bioprofile.train.losses`) and its window (odd); ``None`` takes the method's
        default (9, or 256 for ``bft-v1``).
    chunked_loss
        Compute the loss from the final hidden states in chunks so full ``(batch, length, vocab)`` logits never exist.
    use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules
        Low-rank adapters through peft; ``lora_target_modules`` may be ``"all-linear"``.
    merge_adapter
        Write a merged dense model to ``output_dir`` (the adapter goes to ``output_dir/adapter``); otherwise write
        the adapter alone.
    max_length
        Tokens per record after the chat template; longer records are cut on the right.
    trainer_args
        Extra :class:`transformers.TrainingArguments` keys passed through unchanged (``fsdp``, ``bf16``...).
    """

    model: str = "default"
    output_dir: str = "bioprofile-finetune"
    train_file: str | None = None
    eval_file: str | None = None
    refseq_file: str | None = None
    eval_size: float = 0.0
    max_train_samples: int | None = None
    system_prompt: str | None = None

    loss_method: str = "bft"
    loss_window: int | None = None
    chunked_loss: bool = False

    use_lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    merge_adapter: bool = True

    num_train_epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    warmup_steps: float = 0.0
    lr_scheduler_type: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    logging_steps: int = 10
    seed: int = 42
    gradient_checkpointing: bool = False
    eval_before_training: bool = False
    trainer_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`BioprofileInputError` on values no run could use."""
        if self.loss_method not in LOSS_METHODS:
            raise BioprofileInputError(
                f"loss_method {self.loss_method!r} is not known: use one of {', '.join(LOSS_METHODS)}"
            )
        resolve_window(self.loss_method, self.loss_window)
        if (self.train_file is None) == (self.refseq_file is None):
            raise BioprofileInputError(
                "give exactly one of train_file (JSONL) or refseq_file (SYMBOL: text lines)"
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
        if self.use_lora and self.lora_r < 1:
            raise BioprofileInputError(f"lora_r must be a positive integer, got {self.lora_r!r}")
        if not isinstance(self.trainer_args, dict):
            raise BioprofileInputError("trainer_args must be a mapping of TrainingArguments keys to values")
        _check_trainer_args(self.trainer_args)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dictionary of every field."""
        return dataclasses.asdict(self)


def _check_trainer_args(extra: dict[str, Any]) -> None:
    from transformers import TrainingArguments

    allowed = {f.name for f in dataclasses.fields(TrainingArguments)}
    own = {f.name for f in dataclasses.fields(BFTConfig)}
    for key in extra:
        if key not in allowed:
            raise BioprofileInputError(
                f"trainer_args key {key!r} is not a transformers.TrainingArguments field: check its spelling"
            )
        if key in own:
            raise BioprofileInputError(
                f"trainer_args key {key!r} is a top-level config key: move it up one level"
            )


def config_from_dict(values: dict[str, Any], **overrides: Any) -> BFTConfig:
    """Build a :class:`BFTConfig` from a mapping, rejecting unknown keys by name.

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
    known = {f.name: f for f in dataclasses.fields(BFTConfig)}
    for key in merged:
        if key not in known:
            hint = " (TrainingArguments keys go under trainer_args)" if _is_training_arg(key) else ""
            raise BioprofileInputError(f"unknown config key {key!r}{hint}: see docs/training.md for the keys")
    try:
        return BFTConfig(**{k: _coerce(known[k], v) for k, v in merged.items()})
    except (TypeError, ValueError) as err:
        if isinstance(err, BioprofileInputError):
            raise
        raise BioprofileInputError(f"bad config value: {err}") from err


def _is_training_arg(key: str) -> bool:
    from transformers import TrainingArguments

    return key in {f.name for f in dataclasses.fields(TrainingArguments)}


def _coerce(spec: dataclasses.Field, value: Any) -> Any:
    """Turn YAML scalars into the field's type (``1e-4`` reads as a string in YAML 1.1) with a clear error."""
    if value is None:
        return None
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", str(spec.type))
    try:
        if kind == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "int | None":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind == "str" or kind == "str | None":
            if not isinstance(value, (str, Path)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise BioprofileInputError(f"config key {spec.name!r} must be {kind}, got {value!r}") from None
    return value


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
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise BioprofileInputError(
            f"config file {str(path)!r} is not valid YAML{where}: fix its syntax"
        ) from None
    return config_from_dict(values, **overrides)
