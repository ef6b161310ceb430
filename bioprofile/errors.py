"""The one error type for bad user input: the CLI prints its message on one line and exits with code 2."""

from __future__ import annotations

from bioprofile.redact import redact_secrets


class BioprofileInputError(ValueError):
    """Input a user can fix (unknown genes, a missing file, a path that is not a model...).

    The message is one line naming the problem and what to do about it, in the library's terms: it names the Python
    argument (``max_new_tokens``), never a command-line flag. The CLI turns argument names into its flags in one
    place (``bioprofile.cli``).

    Parameters
    ----------
    message
        The problem and the fix, on one line.
    argument
        The Python argument at fault, when there is one; the CLI replaces its name in the message with the flag.

    Notes
    -----
    The message is stored with every API key and bearer token replaced by ``***``
    (:func:`~bioprofile.redact.redact_secrets`), whoever wrote it: a server's echoed key never reaches a terminal.
    """

    def __init__(self, message: str, *, argument: str | None = None):
        super().__init__(redact_secrets(message))
        self.argument = argument


def check_whole_number(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` if it is an ``int`` of at least ``minimum`` (``True``/``False`` are not numbers here).

    Parameters
    ----------
    name
        The Python argument checked, named in the message (and :attr:`BioprofileInputError.argument`).
    value
        What was given.
    minimum
        The smallest value allowed.

    Returns
    -------
    int
        ``value``, checked.

    Raises
    ------
    BioprofileInputError
        Anything else: a float, a string, a bool, a number below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BioprofileInputError(
            f"{name} must be a whole number >= {minimum}, got {value!r}", argument=name
        )
    return value
