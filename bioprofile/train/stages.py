"""Training stages: ``train_from_config`` reads a config's ``stage:`` key and runs the stage registered under it.

A stage is a config class (a ``TrainingArguments`` dataclass such as :class:`bioprofile.train.config.BFTConfig`), a
reader that builds it from YAML key/value pairs (unknown keys and wrong types one :class:`BioprofileInputError` line)
and a runner that trains and writes a model folder. ``sft`` (SFT, DFT and every BFT loss: :mod:`bioprofile.train.run`)
and ``grpo`` (TRL's GRPO on DE questions: :mod:`bioprofile.train.grpo`) are registered at the bottom of this
module; a new stage is one more line there, as ``grpo``'s is::

    register_stage("grpo", GRPOStageConfig, grpo_config_from_dict, run_grpo)

A config without ``stage:`` is ``sft``, so every existing config keeps working. The stages live in a
:class:`bioprofile.registry.Registry`, as generator backends and cell methods do: an installed package may also add
one through the entry-point group ``bioprofile.training_stages``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.registry import Registry
from bioprofile.train.config import BFTConfig, config_from_dict, read_config_file
from bioprofile.train.grpo import GRPOStageConfig, grpo_config_from_dict, run_grpo
from bioprofile.train.run import run_sft

DEFAULT_STAGE = "sft"


@dataclass(frozen=True)
class Stage:
    """One training stage of the registry.

    Attributes
    ----------
    name
        The ``stage:`` value that selects it.
    config_class
        Its settings' class; a config object of this class (or a subclass) runs this stage.
    from_dict
        ``from_dict(values, **overrides) -> config``: the config from YAML key/value pairs, every key and value
        checked (as :func:`bioprofile.train.config.config_from_dict`).
    run
        ``run(config, overwrite=..., progress=...) -> Path``: train, write the model folder, return it (as
        :func:`bioprofile.train.run.run_sft`). The config class has ``to_config_dict()``, read back by ``from_dict``.
    """

    name: str
    config_class: type
    from_dict: Callable[..., Any]
    run: Callable[..., Path]


STAGES: Registry[Stage] = Registry("training stage", "bioprofile.training_stages")


def register_stage(
    name: str,
    config_class: type,
    from_dict: Callable[..., Any],
    run: Callable[..., Path],
    *,
    replace: bool = False,
) -> Stage:
    """Make ``stage: name`` in a training config run ``run`` with a ``config_class`` built by ``from_dict``.

    Parameters
    ----------
    name
        The stage's name in configs (``sft``, ``grpo``...).
    config_class, from_dict, run
        See :class:`Stage`.
    replace
        Replace a stage already registered under ``name`` (otherwise that is an error).

    Returns
    -------
    Stage
        The registered stage.
    """
    stage = Stage(name, config_class, from_dict, run)
    STAGES.register(name, stage, replace=replace)
    return stage


def stages() -> tuple[str, ...]:
    """The registered stage names."""
    return STAGES.names()


def get_stage(name: Any) -> Stage:
    """The stage registered as ``name``; an unknown one is a :class:`BioprofileInputError` naming the known ones."""
    stage = STAGES.get(name)
    if stage is None:
        raise BioprofileInputError(
            f"unknown training stage {name!r}: use one of {', '.join(STAGES.names())}", argument="stage"
        )
    return stage


def _stage_of(config: Any) -> Stage:
    """The registered stage whose config class is the most specific one ``config`` is an instance of."""
    matching = [stage for _, stage in STAGES.items() if isinstance(config, stage.config_class)]
    if not matching:
        raise BioprofileInputError(
            f"config must be a YAML path or the config of a training stage ({', '.join(STAGES.names())}), "
            f"got {type(config).__name__}",
            argument="config",
        )
    return max(matching, key=lambda stage: len(stage.config_class.__mro__))


def train_from_config(
    config: Any,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    **overrides: Any,
) -> Path:
    """Train as a config says, with the stage its ``stage:`` key names (``sft`` when it names none).

    Parameters
    ----------
    config
        The path of a YAML config, or a stage's config object (a :class:`BFTConfig` runs ``sft``).
    overwrite
        Write into an ``output_dir`` that already holds files (an earlier model is replaced); without it such a
        folder is refused before anything loads.
    progress
        A progress bar on stderr (``True``), silence (``False``), or as ``disable_tqdm`` says (``None``).
    **overrides
        Config keys that replace the file's values (e.g. ``max_steps=5``; ``stage`` too).

    Returns
    -------
    Path
        The model folder the stage wrote (for ``sft``: see :func:`bioprofile.train.run.run_sft`).
    """
    if isinstance(config, (str, Path)):
        values = {**read_config_file(config), **overrides}
        stage = get_stage(values.pop("stage", DEFAULT_STAGE))
        settings = stage.from_dict(values)
    else:
        stage = _stage_of(config)
        if "stage" in overrides and get_stage(overrides.pop("stage")) is not stage:
            raise BioprofileInputError(
                f"a {type(config).__name__} is the config of stage {stage.name!r}: give a YAML file to change stage",
                argument="stage",
            )
        settings = stage.from_dict(config.to_config_dict(), **overrides) if overrides else config
    return stage.run(settings, overwrite=overwrite, progress=progress)


register_stage("sft", BFTConfig, config_from_dict, run_sft)
register_stage("grpo", GRPOStageConfig, grpo_config_from_dict, run_grpo)

__all__ = ["DEFAULT_STAGE", "STAGES", "Stage", "get_stage", "register_stage", "stages", "train_from_config"]
