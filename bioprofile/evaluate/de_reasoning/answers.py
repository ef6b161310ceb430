"""The answer rule of the DE-reasoning task: a model's free text -> yes (DE), no, or malformed.

One rule, shared by the benchmark (:mod:`bioprofile.evaluate.de_reasoning`) and by anything that rewards answers
(a GRPO reward is ``1.0`` when :func:`parse_answer` equals the label, ``0.0`` otherwise, malformed included):

- the text's last non-blank line is ``Answer: yes`` or ``Answer: no``, or
- the text holds an ``<answer>yes</answer>`` or ``<answer>no</answer>`` tag;

case-insensitive, spaces around the word and one trailing full stop allowed. A text with no such line or tag, a
tag holding anything else, or answers that disagree (two tags, or a tag and the final line) is malformed: a
reasoning model that says both has not answered.
"""

from __future__ import annotations

import re

__all__ = ["DE_ANSWER_RULE", "parse_answer"]

DE_ANSWER_RULE = (
    "End your reply with a final line that reads exactly 'Answer: yes' or 'Answer: no' "
    "(or put the word in a tag: <answer>yes</answer> or <answer>no</answer>)."
)

# The word itself, with the spacing and the one full stop the rule allows.
_WORD = r"\s*(yes|no)\s*\.?\s*"
_FINAL_LINE = re.compile(rf"answer\s*:{_WORD}", re.IGNORECASE)
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
        malformed: no final ``Answer:`` line and no ``<answer>`` tag, a tag holding anything but yes/no, or
        answers that disagree. Never raises on any string.
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
