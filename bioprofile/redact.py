"""Secrets out of every message: API keys and bearer tokens are replaced by ``***`` whatever said them.

A proxy or a hostile server may echo the request's key in its error ("Bad request made with key sk-..."); a user
may paste a token into a file name. Every :class:`~bioprofile.errors.BioprofileInputError` message, every quoted
server message and every stored error passes through :func:`redact_secrets`, which removes

- the values of the environment variables that hold keys (``OPENAI_API_KEY`` and each ``api_key_env`` an
  endpoint was built with: :func:`watch_secret_env`), wherever they appear;
- anything shaped like a bearer token (``Bearer abc...``) or an OpenAI-style key (``sk-...``).

It runs in time linear in the text (no pattern can backtrack over more than a bounded run), so a 1 MB server
message costs milliseconds.
"""

from __future__ import annotations

import os
import re

__all__ = ["MASK", "redact_secrets", "watch_secret_env"]

#: What a secret is replaced with.
MASK = "***"
# Environment variables whose values are secrets; OPENAI_API_KEY always, others as endpoints name them.
_SECRET_ENV_NAMES: set[str] = {"OPENAI_API_KEY"}
# Shorter values would mask ordinary words; no real key is this short.
_MIN_SECRET_CHARS = 8
# "Bearer <token>" and OpenAI-style keys (sk-..., sk-proj-...). Each alternative starts with a fixed word and
# consumes one run of token characters: linear.
_TOKEN_SHAPES = re.compile(
    r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{8,}|\bsk-[A-Za-z0-9_-]{8,}",
)


def watch_secret_env(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on (it is read when redacting).

    Parameters
    ----------
    name
        The variable's name, e.g. the ``api_key_env`` of an endpoint; only the name is kept, never the value.
    """
    if name:
        _SECRET_ENV_NAMES.add(str(name))


def redact_secrets(text: str) -> str:
    """``text`` with every known key value, bearer token and ``sk-`` key replaced by ``***``.

    Parameters
    ----------
    text
        Any message, from this package or from a server.

    Returns
    -------
    str
        The same text, safe to show, log or store.
    """
    text = str(text)
    values = {os.environ.get(name) or "" for name in _SECRET_ENV_NAMES}
    for value in sorted((v for v in values if len(v.strip()) >= _MIN_SECRET_CHARS), key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return _TOKEN_SHAPES.sub(_mask_token, text)


def _mask_token(match: re.Match) -> str:
    """A token shape masked, keeping the word that introduced it (``Bearer ***``)."""
    found = match.group(0)
    if found[:2].lower() == "sk":
        return MASK
    return found.split(None, 1)[0] + " " + MASK
