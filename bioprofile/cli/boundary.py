"""The CLI's one error boundary: a library error becomes one stderr line and exit code 2, in the command's flags.

The library names its Python arguments in error messages (``max_new_tokens``); :class:`BoundaryCommand` is the one
place a :class:`~bioprofile.errors.BioprofileInputError` becomes one line on stderr and exit code 2, with each
argument name replaced by the command's flag (``--max-new-tokens``). :class:`OneLineErrorsGroup` does the same for
click's own usage errors.

Both, and :class:`ReadableHelpGroup` for the sub-groups, show each value in ``--help`` by a readable name
(:func:`readable_metavar`: ``PATH``, ``N``, ``MODEL``, ``a|b``) instead of typer's Python types (``<path>``,
``<int>``, ``<list[str]>``, ``<bool>`` beside a flag).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from bioprofile.display import terminal_safe
from bioprofile.errors import BioprofileInputError

# The installed package's folder: warnings attributed to a file below it are bioprofile's own.
_PACKAGE = Path(__file__).resolve().parents[1]

# Library argument names that the CLI spells differently: argument -> command parameter.
ARGUMENT_ALIASES = {
    "overwrite": "force",
    "generator": "model",
    "input_path": "input",
    "output_path": "output",
}

# Python callables the library's messages send a user to, and the command that does the same on the command line:
# "run bioprofile.tl.embed_cells first" to a Python user reads "run embed-cells first" here.
COMMAND_HINTS = {
    "bioprofile.tl.embed_cells": "embed-cells",
    "bioprofile.embed_genes": "embed-genes",
    "bioprofile.data.list_manifests()": "`bioprofile data list`",
    "bioprofile.cache_admin.export_cache": "'bioprofile cache export'",
    "bioprofile.train.train_from_config": "bioprofile train",
}


def in_commands(message: str) -> str:
    """``message`` with the Python callables of :data:`COMMAND_HINTS` named by their commands."""
    for name in sorted(COMMAND_HINTS, key=len, reverse=True):
        message = message.replace(name, COMMAND_HINTS[name])
    return message


def flag_for(argument: str, params: list) -> str | None:
    """The flag (``--max-new-tokens``) or argument metavar (``INPUT``) a command offers for a library argument.

    ``params`` are the command's parameters (typer vendors its own click, so they are matched by duck type).
    """
    name = ARGUMENT_ALIASES.get(argument, argument)
    for param in params:
        if param.name in (argument, name):
            if getattr(param, "param_type_name", "") == "option":
                return max(param.opts, key=len)
            return (param.metavar or param.name or argument).upper()
    return None


def in_flags(message: str, params: list, argument: str | None = None) -> str:
    """``message`` with Python argument names replaced by the command's flags.

    The named ``argument`` is always translated; other words only when they contain an underscore
    (``max_new_tokens``), so plain English words that happen to be parameter names stay as they are.
    """
    words = set(re.findall(r"(?<![\w.-])[a-z][a-z0-9]*_[a-z0-9_]+(?![\w-])", message))
    if argument:
        words.add(argument)
    for word in sorted(words, key=len, reverse=True):
        flag = flag_for(word, params)
        if flag is not None:
            message = re.sub(rf"(?<![\w.-]){re.escape(word)}(?![\w-])", flag, message)
    return message


def readable_metavar(param, ctx=None) -> str | None:
    """How ``--help`` names a parameter's value: ``PATH``, ``FILE``, ``DIR``, ``N``, ``NUMBER``, ``a|b``, the name.

    Parameters
    ----------
    param
        A command's option or argument (typer vendors its own click, so it is read by duck type).
    ctx
        The click context of the help being written.

    Returns
    -------
    str or None
        ``None`` for a flag (it takes no value) and for an argument of text, whose name already says what it is;
        an option's own ``metavar`` when it sets one; ``...`` follows the name of an argument that takes several.
    """
    is_argument = getattr(param, "param_type_name", "") == "argument"
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        return None if is_argument else param.metavar  # an argument's metavar is its name column already
    typed = getattr(param, "display_type", None)  # typer's "<path>", "<int range>", "<list[str]>", "<a|b>"
    if typed is None:
        return None  # a typer that names values itself, click's way (TEXT, PATH)
    label = typed(ctx).strip("<>")
    several = label.startswith("list[") and label.endswith("]")
    label = label[5:-1] if several else label
    if "|" not in label:
        label = _VALUE_NAMES.get(label.removesuffix(" range"), label.upper())
    if label == "TEXT":
        if is_argument:
            return None  # "genes...", "name": the argument's own name says it
        label = (param.name or "value").upper()
    return f"{label}..." if is_argument and several else label


# typer's type names -> what help calls such a value (text is named after the option: MODEL, FORMAT).
_VALUE_NAMES = {"path": "PATH", "file": "FILE", "dir": "DIR", "int": "N", "float": "NUMBER", "str": "TEXT"}


class _ReadableHelp:
    """Mixin: every parameter of the command (its ``--help`` option too) shows :func:`readable_metavar` in help."""

    def get_params(self, ctx):
        """The command's parameters, each naming its value readably in ``--help`` (:func:`readable_metavar`)."""
        params = super().get_params(ctx)
        for param in params:
            if "display_type_rich" not in vars(param):
                # typer asks each parameter for the text of its type column; this one answers for itself
                param.display_type_rich = lambda ctx=None, param=param: readable_metavar(param, ctx)
        return params


def fail(message: str) -> None:
    """Print one clear line and exit with code 2 (bad input)."""
    # whitespace runs (newlines included) become one space; any other control character is shown escaped
    typer.secho(f"error: {terminal_safe(' '.join(str(message).split()))}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


class BoundaryCommand(_ReadableHelp, TyperCommand):
    """A typer command whose :class:`BioprofileInputError` ends the run as one line on stderr and exit code 2."""

    def invoke(self, ctx: typer.Context):
        """Run the command; bad input becomes :func:`fail` with the message in this command's flags and commands.

        A warning bioprofile raises (a damaged store file moved aside, vectors not served, genes left out...) is one
        ``warning:`` line on stderr as it happens, in the command's flags, not Python's form with a source line.
        Other libraries' warnings keep theirs.
        """
        import warnings

        from bioprofile.store import DamagedStoreWarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DamagedStoreWarning) or _in_package(filename):
                text = in_flags(in_commands(" ".join(str(message).split())), self.params)
                typer.secho(f"warning: {terminal_safe(text)}", err=True, fg=typer.colors.YELLOW)
            else:
                shown(message, category, filename, lineno, file, line)

        try:
            with warnings.catch_warnings():
                shown = warnings.showwarning
                warnings.showwarning = show
                warnings.simplefilter("always", DamagedStoreWarning)
                return super().invoke(ctx)
        except BioprofileInputError as err:
            fail(in_flags(in_commands(str(err)), self.params, err.argument))


def _in_package(filename: str) -> bool:
    """Whether a warning was attributed to a file of bioprofile itself (its own warnings, one line each)."""
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


class ReadableHelpGroup(_ReadableHelp, TyperGroup):
    """A group of commands (``bench``, ``data``...) whose own ``--help`` names values as its commands do."""


class OneLineErrorsGroup(ReadableHelpGroup):
    """The top-level group: click's own usage errors (a bad option value, a missing argument) as one line too.

    Typer would draw them as a multi-line panel; every other bad input here is one line, so these are as well.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the CLI; a usage error prints ``error: ...`` on one line and exits with its code (2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as err:  # click's UsageError and friends (typer vendors click)
            context = getattr(err, "ctx", None)
            if context is not None and type(err).__name__ == "NoArgsIsHelpError":
                typer.echo(context.get_help())  # a bare group or command: its help, as before
                sys.exit(0)
            where = f" (see '{context.command_path} --help')" if context is not None else ""
            message = err.format_message() if hasattr(err, "format_message") else str(err)
            typer.secho(f"error: {' '.join(message.split())}{where}", err=True, fg=typer.colors.RED)
            sys.exit(getattr(err, "exit_code", 2))
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
