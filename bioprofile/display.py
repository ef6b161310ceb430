"""Values from the user's files, made safe to echo in a one-line message: shortened, control characters escaped.

An identifier read from a file may be a 5 MB token or hold NUL bytes and escape sequences; an error line shows a
recognisable prefix of it, never the raw value.
"""

from __future__ import annotations

__all__ = ["display_value", "is_plain", "terminal_safe"]

#: The longest value echoed whole; longer ones are cut to this many characters and their length said.
LIMIT = 60


def is_plain(value: str, limit: int = LIMIT) -> bool:
    """Whether ``value`` can be echoed as it is: at most ``limit`` characters, all printable."""
    return len(value) <= limit and value.isprintable()


def terminal_safe(text: object) -> str:
    r"""``text`` with every character that is not printable written as its escape (``\x1b``, ``\x07``, ``\n``).

    Whatever came from outside (a server's answer, an id from a file, a model id in the store) is shown through
    this: an ANSI or OSC escape sequence is shown as text, never run by the terminal. Linear in the text.

    Parameters
    ----------
    text
        Anything; it is turned into a string first.

    Returns
    -------
    str
        The text, safe to write to a terminal.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
