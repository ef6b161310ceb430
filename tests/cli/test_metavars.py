"""Every command's --help (and the CLI reference built from it) names values readably: PATH, N, MODEL, a|b."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.cli.boundary import readable_metavar

# typer's Python-type metavars: <bool>, <str>, <int>, <int range>, <float>, <path>, <file>, <dir>, <list[str]>, <a|b>
_PYTHON_TYPES = re.compile(r"<(?:bool|str|int|float|path|file|dir|list\[|[\w-]+(?:\|[\w-]+)+>)")


def _command_paths(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


_ROOT = typer.main.get_command(app)
_PATHS = [path for path, _ in _command_paths(_ROOT)]


@pytest.mark.parametrize("path", _PATHS, ids=lambda p: " ".join(p) or "bioprofile")
def test_help_names_no_python_types(path):
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert not _PYTHON_TYPES.findall(result.output), result.output


def test_the_reference_records_name_values_readably():
    # docs/cli.md is written from each parameter's help record (typer utils docs): the same names there
    for path, command in _command_paths(_ROOT):
        ctx = typer.Context(command, info_name=" ".join(path) or "bioprofile")
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                assert not _PYTHON_TYPES.findall(record[0]), (path, record)


def test_value_names():
    command = typer.main.get_command(app).commands["embed-genes"]
    ctx = typer.Context(command, info_name="embed-genes")
    shown = {param.name: readable_metavar(param, ctx) for param in command.get_params(ctx)}
    assert shown["output"] == "PATH"
    assert shown["max_new_tokens"] == "N"
    assert shown["timeout"] == "NUMBER"
    assert shown["model"] == "MODEL"
    assert shown["dtype"] == "float32|bfloat16|float16|auto"
    assert shown["quiet"] is None and shown["help"] is None  # flags take no value
    assert shown["genes"] is None  # the argument's name column says "genes..."
    shard = next(p for p in command.params if p.name == "shard")
    assert readable_metavar(shard, ctx) == "i/N"  # an option's own metavar stays
