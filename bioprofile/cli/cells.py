"""The embed-cells command: cell vectors from gene embeddings (GenePT-w) or top-gene sentences (GenePT-s).

One input writes one file (``-o``); several inputs, or a glob pattern, write one file each into the folder ``-o``
names. ``--dask`` alone starts a local Dask cluster; ``--dask ADDRESS`` uses a running scheduler.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import BoundaryCommand, fail, in_commands, in_flags
from bioprofile.cli.options import ForceOutput, Quiet
from bioprofile.cli.steps import quiet_model_libraries
from bioprofile.display import terminal_safe
from bioprofile.progress import working

# What --dask takes as a scheduler's address rather than as the next input: a URL (tcp://host:8786), host:port,
# or the word local. Anything else after a bare --dask is left to be an input, and --dask starts a local cluster.
_ADDRESS = re.compile(r"^(local|[a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+)$")
# The value a bare --dask stands for: the library's "local" (a local cluster).
_LOCAL = "local"


class EmbedCellsCommand(BoundaryCommand):
    """embed-cells: a :class:`BoundaryCommand` whose ``--dask`` takes an address or nothing (a local cluster).

    typer's options take a value always; a bare ``--dask`` (last, or before an input or another option) is read as
    ``--dask=local`` before the arguments are parsed.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        """The arguments with each bare ``--dask`` written ``--dask=local``, then parsed as usual."""
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--dask" and (i + 1 == len(args) or not _ADDRESS.match(args[i + 1])):
                args[i] = f"--dask={_LOCAL}"
        return super().parse_args(ctx, args)


def embed_cells_command(
    ctx: typer.Context,
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Cells x genes .h5ad files, or a quoted glob pattern ('data/*.h5ad'), all with the same genes "
            "(streamed from disk in row chunks).",
            show_default=False,
        ),
    ],
    embeddings: Annotated[
        Path | None, typer.Option("--embeddings", "-e", help="Gene embeddings from embed-genes (GenePT-w).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Output .h5ad, the input plus obsm/uns (default cells.h5ad); for several inputs or a pattern, a "
            "folder that gets one file per input, named as the input.",
        ),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="genept-w | genept-s.")] = "genept-w",
    gene_key: Annotated[
        str | None,
        typer.Option("--gene-key", help="var column with symbols or Ensembl ids (default var_names)."),
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Expression from this layer instead of X.")
    ] = None,
    use_raw: Annotated[bool, typer.Option("--use-raw", help="Expression from .raw instead of X.")] = False,
    normalize: Annotated[
        str, typer.Option("--normalize", help="none (X as is) | log1p (normalize_total+log1p).")
    ] = "none",
    scale: Annotated[
        str, typer.Option("--scale", help="matched (/ n matched genes) | total (/ expression) | none.")
    ] = ("matched"),
    l2: Annotated[bool, typer.Option("--l2", help="Unit-length cell vectors.")] = False,
    top_n: Annotated[int, typer.Option("--top-n", min=1, help="Genes per GenePT-s sentence.")] = 50,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="GenePT-s text encoder (default MiniLM).")
    ] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Cells per chunk.")] = 10_000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Chunks computed at once: threads, or the local Dask cluster's processes (default: one per core).",
        ),
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="[ADDRESS]",
            help="Compute the chunks on Dask (the dask extra): a scheduler's address (tcp://host:8786; the inputs "
            "on a disk its workers see), or nothing for a local cluster.",
        ),
    ] = None,
    dask_timeout: Annotated[
        float,
        typer.Option("--dask-timeout", help="Seconds the Dask scheduler has to answer before the run stops."),
    ] = 5.0,
    force: ForceOutput = False,
    min_coverage: Annotated[
        float,
        typer.Option(
            "--min-coverage",
            help="Fail when fewer than this fraction of the genes have a vector (lower it for a small panel).",
        ),
    ] = 0.05,
    nonfinite: Annotated[
        str,
        typer.Option(
            "--nonfinite", help="NaN/inf expression: raise (refuse) | zero (read as 0, with a count)."
        ),
    ] = "raise",
    quiet: Quiet = False,
) -> None:
    """Embed cells from gene embeddings (GenePT-w) or top-gene sentences (GenePT-s) into obsm['X_bioprofile']."""
    import warnings

    from bioprofile.cells import EmbedLimits, embed_cells_file, embed_cells_files, options_for
    from bioprofile.cells._files import expand_inputs, is_pattern

    # the registered method takes the flags its options class declares; another method's flags are ignored
    flags = {"normalize": normalize, "scale": scale, "l2": l2, "top_n": top_n, "encoder": encoder}
    options = options_for(method, flags)
    limits = EmbedLimits(
        chunk_size=chunk_size,
        min_coverage=min_coverage,
        nonfinite=nonfinite,
        workers=workers,
        dask_address=dask_address,
        dask_timeout=dask_timeout,
    )
    one_file = len(inputs) == 1 and not is_pattern(inputs[0])
    if not one_file and output is None:
        fail("several inputs write one file each: pass -o FOLDER for them")
    target = Path("cells.h5ad") if output is None else output
    paths = [inputs[0]] if one_file else expand_inputs(inputs)
    what = paths[0].name if one_file else f"{len(paths)} files"
    quiet_model_libraries(quiet)
    common = {"method": options, "gene_key": gene_key, "layer": layer, "use_raw": use_raw, "limits": limits}
    with (
        warnings.catch_warnings(record=True) as caught,
        working(f"embedding the cells of {what} ({method})", not quiet),
    ):
        warnings.simplefilter("always", UserWarning)
        if one_file:
            written = [(target, embed_cells_file(paths[0], embeddings, target, overwrite=force, **common))]
        else:
            infos = embed_cells_files(paths, embeddings, target, overwrite=force, **common)
            written = [(target / f"{path.stem}.h5ad", info) for path, info in zip(paths, infos, strict=True)]
    for warning in caught:  # each library warning as one line in flags, not Python's two-line form
        message = in_flags(in_commands(" ".join(str(warning.message).split())), ctx.command.params)
        typer.secho(f"warning: {terminal_safe(message)}", err=True, fg=typer.colors.YELLOW)
    for path, info in written:
        cov = info["gene_coverage"]
        typer.echo(
            f"wrote obsm['X_bioprofile'] to {path} ({info['method']}; {cov['n_matched']} of {cov['n_vars']} "
            f"genes matched)"
        )
