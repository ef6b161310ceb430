"""The answer rule of the DE-reasoning task: a model's reply -> yes (DE), no, or malformed (``None``).

The rule and its reader are defined in :mod:`bioprofile.profiles.de_prompts`, beside the template that states the
rule, so that a training stage (a layer below evaluation) rewards replies with the same reader; this module is the
task's name for them. A reward is ``1.0`` when :func:`parse_answer` equals the label and ``0.0`` otherwise,
malformed included.
"""

from __future__ import annotations

from bioprofile.profiles.de_prompts import DE_ANSWER_RULE, parse_answer

__all__ = ["DE_ANSWER_RULE", "parse_answer"]
