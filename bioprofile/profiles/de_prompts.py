"""Prompt templates that ask whether a drug changes a gene's expression in a cell line, and the answer rule.

The DE-reasoning task (VCWorld's): given drug D on cell line C, is gene G differentially expressed against the
vehicle control? A :class:`DEQuestionPrompt` is a :class:`~bioprofile.profiles.prompts.PromptTemplate` for
entities of kind ``"de_question"`` (anything with ``pert``, ``cell_line`` and ``gene``); its user message has
``{drug}``, ``{cell_line}``, ``{gene}`` and ``{answer_rule}`` fields, and its ``key`` (name plus a hash of its text)
is part of every cached answer's store key.

The rule a reply must follow (:data:`DE_ANSWER_RULE`) and its reader (:func:`parse_answer`) live here, beside the
template that states the rule, so that everything which reads replies (the benchmark, a training stage's reward)
reads them the same way from the layer it sits in. The rule:

- the reply's last non-blank line is ``Answer: yes`` or ``Answer: no``, or that word alone (``yes``, ``No.``), or
- the reply holds an ``<answer>yes</answer>`` or ``<answer>no</answer>`` tag;

case-insensitive, spaces around the word and one trailing full stop allowed. A reply with no such line or tag, a
tag holding anything else, or answers that disagree (two tags, or a tag and the final line) is malformed: a model
that says both has not answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bioprofile.profiles.prompts import PromptTemplate, lookup_template

__all__ = ["DE_ANSWER_RULE", "DE_TEMPLATES", "DEQuestionPrompt", "get_de_template", "parse_answer"]

#: The answer rule as a prompt states it (and as :func:`parse_answer` reads it).
DE_ANSWER_RULE = (
    "End your reply with a final line that reads exactly 'Answer: yes' or 'Answer: no' "
    "(or put the word in a tag: <answer>yes</answer> or <answer>no</answer>)."
)

# The word itself, with the spacing and the one full stop the rule allows.
_WORD = r"\s*(yes|no)\s*\.?\s*"
# "Answer: yes", or the word alone on the last line: a model that replies "No." has answered, one that ends
# "The answer is yes." has not (that sentence is not the line the rule asks for)
_FINAL_LINE = re.compile(rf"(?:answer\s*:)?{_WORD}", re.IGNORECASE)
_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_TAG_WORD = re.compile(_WORD, re.IGNORECASE)


def parse_answer(text: str) -> bool | None:
    """Read a yes/no answer from a model's reply, by the rule in :data:`DE_ANSWER_RULE`.

    Parameters
    ----------
    text
        The model's reply, reasoning included.

    Returns
    -------
    bool or None
        ``True`` for yes (the gene is differentially expressed), ``False`` for no, ``None`` when the reply is
        malformed: no final ``Answer:`` line (or bare yes/no line) and no ``<answer>`` tag, a tag holding anything
        but yes/no, or answers that disagree. Never raises, whatever it is given.
    """
    if not isinstance(text, str):
        return None
    found: list[bool] = []
    for inner in _TAG.findall(text):
        word = _TAG_WORD.fullmatch(inner)
        if word is None:
            return None
        found.append(word.group(1).lower() == "yes")
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        final = _FINAL_LINE.fullmatch(lines[-1].strip())
        if final is not None:
            found.append(final.group(1).lower() == "yes")
    if not found or len(set(found)) > 1:
        return None
    return found[0]


@dataclass(frozen=True)
class DEQuestionPrompt(PromptTemplate):
    """A named chat prompt asking whether one gene is differentially expressed after one drug in one cell line.

    Parameters
    ----------
    name
        Short identifier: what ``template=`` takes, and part of cache keys.
    system
        System message, or ``None`` for the user message alone.
    user
        User message; ``{drug}``, ``{cell_line}`` and ``{gene}`` are filled from the question, ``{answer_rule}``
        with :data:`DE_ANSWER_RULE`.
    entity
        ``"de_question"``.
    """

    entity: str = "de_question"

    def fields(self, entity: Any) -> dict[str, str]:
        """The values filled into the user message for a question (anything with ``pert``, ``cell_line``, ``gene``)."""
        values = {
            "drug": getattr(entity, "pert", None),
            "cell_line": getattr(entity, "cell_line", None),
            "gene": getattr(entity, "gene", None),
        }
        missing = [name for name, value in values.items() if not isinstance(value, str) or not value.strip()]
        if missing:
            raise ValueError(f"cannot build a DE question for {entity!r}: it has no {', '.join(missing)}")
        return {**{name: value.strip() for name, value in values.items()}, "answer_rule": DE_ANSWER_RULE}


# The question both templates ask; they differ in what they ask for before the answer.
_QUESTION = (
    "A {cell_line} cell line was treated with {drug}, and its single-cell expression was compared with cells given "
    "the vehicle control (DMSO). Is the gene {gene} differentially expressed (up or down) in the treated cells?"
)

REASONING = DEQuestionPrompt(
    name="de-reasoning",
    system=(
        "You are a molecular biologist who predicts transcriptional responses to drugs. Reason from what the "
        "drug targets, the pathways and processes its target acts in, the gene's function and the cell line's "
        "biology, then decide."
    ),
    user=f"{_QUESTION} Think it through in a few sentences. {{answer_rule}}",
)

DIRECT = DEQuestionPrompt(
    name="de-direct",
    system="You are a molecular biologist who predicts transcriptional responses to drugs.",
    user=f"{_QUESTION} Reply with the answer only. {{answer_rule}}",
)

#: DE-question templates by name: ``de-reasoning`` asks for a few sentences of reasoning first, ``de-direct`` for
#: the answer alone (a small model that cannot yet reason to the answer line still answers, so a GRPO reward has
#: something to tell apart).
DE_TEMPLATES: dict[str, DEQuestionPrompt] = {t.name: t for t in (REASONING, DIRECT)}


def get_de_template(name: str | DEQuestionPrompt) -> DEQuestionPrompt:
    """A DE-question template by name (case-insensitive); a :class:`DEQuestionPrompt` is returned unchanged.

    Raises
    ------
    BioprofileInputError
        If no DE-question template has that name; the message lists the available ones.
    """
    return lookup_template(DE_TEMPLATES, name, DEQuestionPrompt, "DE-question prompt")
