"""The `bioprofile` command line. Each command parses arguments, calls the library, and prints.

This package is the one place that speaks in flags; its modules:

- ``boundary``: the one error boundary (a :class:`~bioprofile.errors.BioprofileInputError` becomes one stderr
  line and exit code 2, its argument names replaced by the command's flags);
- ``options``: option definitions several commands share; ``steps``: steps they share (the model libraries'
  output, the writer, encoder and store the flags name);
- one module per command or group: ``embed`` (embed-genes, embed-proteins), ``train``, ``cells`` (embed-cells),
  ``state`` (export-state), ``bench`` (and ``bench_de_reasoning``: bench de-reasoning), ``data``, ``diagnose``,
  ``cache``, ``merge`` (shard tables joined), ``responses`` (analyze-responses);
- ``__main__``: ``python -m bioprofile.cli``.

The commands are registered below, in the order ``bioprofile --help`` lists them: a new command is a function in
its group's module and one registration line here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bioprofile._version import __version__
from bioprofile.cli import bench, cache, cells, data, diagnose, embed, merge, responses, state, train
from bioprofile.cli.bench_de_reasoning import bench_de_reasoning_command
from bioprofile.cli.boundary import (
    ARGUMENT_ALIASES,
    COMMAND_HINTS,
    BoundaryCommand,
    OneLineErrorsGroup,
    ReadableHelpGroup,
    fail,
    flag_for,
    in_commands,
    in_flags,
)

__all__ = [
    "ARGUMENT_ALIASES",
    "COMMAND_HINTS",
    "BoundaryCommand",
    "OneLineErrorsGroup",
    "app",
    "fail",
    "flag_for",
    "in_commands",
    "in_flags",
    "main",
]

app = typer.Typer(
    cls=OneLineErrorsGroup, no_args_is_help=True, add_completion=True, help=__doc__.split("\n")[0]
)
bench_app = typer.Typer(
    cls=ReadableHelpGroup,
    no_args_is_help=True,
    help="Benchmarks: gene-tasks, gene-sets, clustering, integration, perturbation, de-reasoning.",
)
data_app = typer.Typer(
    cls=ReadableHelpGroup,
    no_args_is_help=True,
    help="Datasets from bioprofile/data_manifests/: list and fetch (sha256-checked).",
)
diagnose_app = typer.Typer(
    cls=ReadableHelpGroup,
    no_args_is_help=True,
    help="Teacher-forced confidence diagnostics: windows (where a model doubts its answers) and weights.",
)
cache_app = typer.Typer(
    cls=ReadableHelpGroup,
    no_args_is_help=True,
    help="The store of profile texts and vectors: info, prune, export, import, merge (keep it on a local disk).",
)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(diagnose_app, name="diagnose")
app.add_typer(cache_app, name="cache")


def _print_version(value: bool) -> None:
    """Print the installed version and exit 0 when ``--version`` is given."""
    if value:
        typer.echo(f"bioprofile {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """bioprofile: gene embeddings from LLM-written profiles, and BFT fine-tuning of the writer."""


# Every command goes through BoundaryCommand: bad input is one line and exit 2.
app.command("embed-genes", cls=BoundaryCommand)(embed.embed_genes_command)
app.command("train", cls=BoundaryCommand)(train.train_command)
app.command("embed-cells", cls=cells.EmbedCellsCommand)(cells.embed_cells_command)
app.command("export-state", cls=BoundaryCommand)(state.export_state_command)
app.command("embed-proteins", cls=BoundaryCommand)(embed.embed_proteins_command)
app.command("merge", cls=BoundaryCommand)(merge.merge_command)
app.command("analyze-responses", cls=BoundaryCommand)(responses.analyze_responses_command)

bench_app.command("gene-tasks", cls=BoundaryCommand)(bench.bench_gene_tasks_command)
bench_app.command("clustering", cls=BoundaryCommand)(bench.bench_clustering_command)
bench_app.command("integration", cls=BoundaryCommand)(bench.bench_integration_command)
bench_app.command("gene-sets", cls=BoundaryCommand)(bench.bench_gene_sets_command)
bench_app.command("perturbation", cls=BoundaryCommand)(bench.bench_perturbation_command)
bench_app.command("de-reasoning", cls=BoundaryCommand)(bench_de_reasoning_command)

data_app.command("list", cls=BoundaryCommand)(data.data_list_command)
data_app.command("fetch", cls=BoundaryCommand)(data.data_fetch_command)

diagnose_app.command("windows", cls=BoundaryCommand)(diagnose.diagnose_windows_command)
diagnose_app.command("weights", cls=BoundaryCommand)(diagnose.diagnose_weights_command)

cache_app.command("info", cls=BoundaryCommand)(cache.cache_info_command)
cache_app.command("prune", cls=BoundaryCommand)(cache.cache_prune_command)
cache_app.command("export", cls=BoundaryCommand)(cache.cache_export_command)
cache_app.command("import", cls=BoundaryCommand)(cache.cache_import_command)
cache_app.command("merge", cls=BoundaryCommand)(cache.cache_merge_command)
