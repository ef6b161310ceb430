"""Reward functions of the ``grpo`` training stage, by name: TRL's reward signature, registered like backends.

A reward is a pure function ``reward(completions, **dataset_columns) -> list[float]`` (TRL's
``GRPOTrainer`` calls it with ``prompts``, ``completions``, ``completion_ids``, every other column of the training
records, and ``log_metric``, a hook whose values TRL averages into each step's log). A completion is the reply text,
or, for chat prompts, the list of assistant messages TRL hands over.

Two are built in, both reading replies with :func:`bioprofile.profiles.de_prompts.parse_answer` (the DE-reasoning
task's answer rule, the same reader the benchmark scores with):

``answer``
    Outcome only: ``1.0`` when the parsed answer equals the record's ``label``, ``0.0`` otherwise, a malformed
    reply (no readable yes/no) included. It logs ``malformed_rate``, the share of replies the rule cannot read.
``answer_format``
    ``1.0`` for a reply the rule can read, whatever it says; off unless a config lists it (a shaping term for a
    model that has not yet found the format).

A config lists rewards by name (``rewards: [answer]``, TRL's ``reward_weights`` weighs them); a package adds one with
:func:`register_reward` or an entry point of group ``bioprofile.rewards``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.de_prompts import parse_answer
from bioprofile.registry import Registry

__all__ = [
    "MALFORMED_RATE",
    "REWARDS",
    "answer_format_reward",
    "answer_reward",
    "completion_text",
    "get_reward",
    "register_reward",
    "reward_names",
]

#: The metric name under which :func:`answer_reward` logs the share of replies the answer rule cannot read.
MALFORMED_RATE = "malformed_rate"

REWARDS: Registry[Callable[..., list[float]]] = Registry("reward", "bioprofile.rewards")


def completion_text(completion: Any) -> str:
    """The reply text of one TRL completion: a string, or the ``content`` of its chat messages joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "\n".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    return ""


def answer_reward(
    completions: Sequence[Any],
    label: Sequence[Any],
    log_metric: Callable[[str, float], None] | None = None,
    **columns: Any,
) -> list[float]:
    """Outcome-only binary reward: ``1.0`` when a reply's parsed yes/no equals its record's label, else ``0.0``.

    Parameters
    ----------
    completions
        The replies (strings or TRL's chat completions), one per generation.
    label
        Each reply's record label: ``True`` (differentially expressed) or ``False``.
    log_metric
        TRL's metric hook; given, the share of malformed replies is logged as :data:`MALFORMED_RATE`.
    **columns
        The other record columns TRL passes (``prompts``, ``pert``, ``gene``...); unused.

    Returns
    -------
    list of float
        One reward per reply; a malformed reply (``parse_answer`` gives ``None``) scores ``0.0``.
    """
    answers = [parse_answer(completion_text(c)) for c in completions]
    if log_metric is not None and answers:
        log_metric(MALFORMED_RATE, sum(a is None for a in answers) / len(answers))
    return [float(a is not None and a == bool(y)) for a, y in zip(answers, label, strict=True)]


def answer_format_reward(completions: Sequence[Any], **columns: Any) -> list[float]:
    """``1.0`` for each reply the answer rule can read (yes or no, right or wrong), else ``0.0``.

    Parameters
    ----------
    completions
        The replies (strings or TRL's chat completions).
    **columns
        The record columns TRL passes; unused.

    Returns
    -------
    list of float
        One reward per reply.
    """
    return [float(parse_answer(completion_text(c)) is not None) for c in completions]


def register_reward(name: str, reward: Callable[..., list[float]], *, replace: bool = False) -> None:
    """Make ``name`` usable in a ``grpo`` config's ``rewards`` list.

    Parameters
    ----------
    name
        The name configs give.
    reward
        A function of TRL's reward signature (see the module docstring); TRL logs its mean under
        ``rewards/<function name>/mean``.
    replace
        Replace a reward already registered under ``name``.
    """
    REWARDS.register(name, reward, replace=replace)


def reward_names() -> tuple[str, ...]:
    """The registered reward names."""
    return REWARDS.names()


def get_reward(name: Any) -> Callable[..., list[float]]:
    """The reward registered as ``name``; an unknown name is one :class:`BioprofileInputError` listing the known."""
    reward = REWARDS.get(name) if isinstance(name, str) else None
    if reward is None:
        raise BioprofileInputError(
            f"unknown reward {name!r}: use one of {', '.join(REWARDS.names())}", argument="rewards"
        )
    return reward


register_reward("answer", answer_reward)
register_reward("answer_format", answer_format_reward)
