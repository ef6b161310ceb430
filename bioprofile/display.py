"""Values from the user's files, made safe to echo in a one-line message: shortened, control characters escaped.

An identifier read from a file may be a 5 MB token or hold NUL bytes and escape sequences; an error line shows a
recognisable prefix of it, never the raw value.
"""

from __future__ import annotations

__all__ = ["display_value", "is_plain"]

#: The longest value echoed whole; longer ones are cut to this many characters and their length said.
LIMIT = 60


def is_plain(value: str, limit: int = LIMIT) -> bool:
    """Whether ``value`` can be echoed as it is: at most ``limit`` characters, all printable."""
    return len(value) <= limit and value.isprintable()


def display_value(value: object, limit: int = LIMIT) -> str:
    r"""``value`` as a message may show it: itself when plain, else quoted with escapes and cut at ``limit``.

    Parameters
    ----------
    value
        Anything; it is turned into a string first.
    limit
        The most characters of the value to show.

    Returns
    -------
    str
        E.g. ``"TP53"``, ``"'TP\x0053'"`` or ``"'AAAA...' (5000000 characters)"``.
    """
    text = str(value)
    if is_plain(text, limit):
        return text
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
