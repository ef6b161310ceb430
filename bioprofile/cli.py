"""The `bioprofile` command line. Each command parses arguments, calls the library, and prints."""

from __future__ import annotations

import typer

from bioprofile.errors import BioprofileInputError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def fail(message: str) -> None:
    """Print one clear line and exit with code 2 (bad input)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


@app.callback()
def main() -> None:
    """bioprofile: gene embeddings from LLM-written profiles, and BFT fine-tuning of the writer."""


if __name__ == "__main__":
    app()
