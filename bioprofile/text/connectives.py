"""Causal connectives in a text: the words and phrases that assert a cause (because, leads to, inhibits...)."""

from __future__ import annotations

import re

__all__ = ["CAUSAL_CONNECTIVES", "connective_spans"]

# Causal connectives, as regular expressions matched case-insensitively at word boundaries. Verbs are matched
# in their inflected forms (inhibits, inhibited, inhibiting) but not as nouns (inhibition): the noun names a
# process, the verb asserts a cause.
CAUSAL_CONNECTIVES: dict[str, str] = {
    "because": r"because(?: of)?",
    "therefore": r"therefore",
    "thus": r"thus",
    "hence": r"hence",
    "thereby": r"thereby",
    "consequently": r"consequently",
    "as a result": r"as a result(?: of)?",
    "so that": r"so that",
    "in order to": r"in order to",
    "due to": r"due to",
    "owing to": r"owing to",
    "via": r"via",
    "through": r"through",
    "leads to": r"(?:lead|leads|leading|led) to",
    "results in": r"(?:result|results|resulting|resulted) in",
    "gives rise to": r"(?:give|gives|giving|gave|given) rise to",
    "contributes to": r"(?:contribute|contributes|contributing|contributed) to",
    "required for": r"(?:required|necessary|essential) for",
    "causes": r"(?:cause|causes|caused|causing)",
    "induces": r"(?:induce|induces|induced|inducing)",
    "inhibits": r"(?:inhibit|inhibits|inhibited|inhibiting)",
    "activates": r"(?:activate|activates|activated|activating)",
    "promotes": r"(?:promote|promotes|promoted|promoting)",
    "regulates": r"(?:up-?|down-?)?(?:regulate|regulates|regulated|regulating)",
    "mediates": r"(?:mediate|mediates|mediated|mediating)",
    "triggers": r"(?:trigger|triggers|triggered|triggering)",
    "suppresses": r"(?:suppress|suppresses|suppressed|suppressing)",
    "enhances": r"(?:enhance|enhances|enhanced|enhancing)",
    "blocks": r"(?:block|blocks|blocked|blocking)",
    "prevents": r"(?:prevent|prevents|prevented|preventing)",
}
_CONNECTIVE = re.compile(
    r"\b(?:"
    + "|".join(f"(?P<c{i}>{pattern})" for i, pattern in enumerate(CAUSAL_CONNECTIVES.values()))
    + r")\b",
    re.IGNORECASE,
)
_CONNECTIVE_NAMES = list(CAUSAL_CONNECTIVES)


def connective_spans(text: str) -> list[tuple[int, int, str]]:
    """Causal connectives in ``text`` (see :data:`CAUSAL_CONNECTIVES`).

    Parameters
    ----------
    text
        The text to tag.

    Returns
    -------
    list of (start, end, name)
        ``name`` being the connective's key in :data:`CAUSAL_CONNECTIVES`, in text order.
    """
    # each alternative is one named group c<i>, so the group that matched names the connective
    return [
        (match.start(), match.end(), _CONNECTIVE_NAMES[int(match.lastgroup[1:])])
        for match in _CONNECTIVE.finditer(text)
    ]
