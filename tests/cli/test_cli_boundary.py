"""The CLI's one error boundary: a library error becomes one stderr line, exit 2, in the command's flags."""

from __future__ import annotations

import importlib
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from bioprofile.cli import BoundaryCommand, in_flags
from bioprofile.errors import BioprofileInputError


def _app(message: str, argument: str | None = None) -> typer.Typer:
    app = typer.Typer()

    @app.command("run", cls=BoundaryCommand)
    def run(
        max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n")] = 1,
        force: Annotated[bool, typer.Option("--force")] = False,
        model: Annotated[str, typer.Option("--model", "-m")] = "x",
    ) -> None:
        raise BioprofileInputError(message, argument=argument)

    @app.command("other")
    def other() -> None:  # a second command, so typer keeps "run" as a sub-command
        pass

    return app


@pytest.mark.parametrize(
    ("message", "argument", "shown"),
    [
        ("max_new_tokens must be at least 1, got 0", None, "--max-new-tokens must be at least 1, got 0"),
        ("genes.parquet exists: pass overwrite=True", "overwrite", "genes.parquet exists: pass --force=True"),
        ("generator 'x' is not a model folder", "generator", "--model 'x' is not a model folder"),
        # a plain word that is also a parameter name stays a word unless it is the argument at fault
        ("the model folder has no config", None, "the model folder has no config"),
        # a snake_case word that is no parameter of this command stays as it is
        ("top_p must be in (0, 1]", None, "top_p must be in (0, 1]"),
        # the Python callable a library message names becomes the command that does the same
        (
            "obsm has no 'X': run bioprofile.tl.embed_cells first",
            None,
            "obsm has no 'X': run embed-cells first",
        ),
        (
            "unknown dataset 'x' (see bioprofile.data.list_manifests())",
            None,
            "unknown dataset 'x' (see `bioprofile data list`)",
        ),
    ],
)
def test_library_errors_become_one_line_in_flags(message, argument, shown):
    result = CliRunner().invoke(_app(message, argument), ["run"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {shown}"]
    assert "Traceback" not in result.output


def test_in_flags_keeps_dotted_names_and_longer_words():
    params = typer.main.get_command(_app("x")).commands["run"].params
    assert in_flags("cfg.max_new_tokens and max_new_tokens_total", params) == (
        "cfg.max_new_tokens and max_new_tokens_total"
    )
    assert in_flags("set max_new_tokens", params) == "set --max-new-tokens"


def test_other_errors_are_not_swallowed():
    app = typer.Typer()

    @app.command("boom", cls=BoundaryCommand)
    def boom() -> None:
        raise RuntimeError("a bug shows its traceback")

    @app.command("other")
    def other() -> None:
        pass

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_each_command_hint_names_a_real_python_callable():
    """A library message names a Python callable; the CLI shows the command that does the same."""
    from bioprofile.cli import COMMAND_HINTS, in_commands

    for name in COMMAND_HINTS:
        module, _, function = name.removesuffix("()").rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), name
    assert (
        in_commands("pass embeddings (from bioprofile.embed_genes)") == "pass embeddings (from embed-genes)"
    )


def test_bioprofile_warnings_are_one_line_and_others_keep_their_form(tmp_path):
    import warnings
    from pathlib import Path

    import bioprofile

    own = str(Path(bioprofile.__file__).parent / "pipeline.py")
    other = str(tmp_path / "elsewhere.py")
    app = typer.Typer()

    @app.command(cls=BoundaryCommand)
    def run(max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 1) -> None:
        warnings.warn_explicit("2 genes have no text (max_new_tokens\nis low)", UserWarning, own, 10)
        warnings.warn_explicit("a third-party warning", UserWarning, other, 20)

    with pytest.warns(UserWarning, match="a third-party warning") as passed_on:
        result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "warning: 2 genes have no text (--max-new-tokens is low)" in lines  # one line, in flags
    assert not any("pipeline.py" in line for line in lines)  # no source line of ours
    # the other library's warning goes on to Python's own handling (here: pytest's), as it was
    assert [str(w.message) for w in passed_on] == ["a third-party warning"]
