"""The embed-cells command: cell vectors from gene embeddings (GenePT-w) or top-gene sentences (GenePT-s)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import in_commands, in_flags
from bioprofile.cli.options import ForceOutput, Quiet
from bioprofile.cli.steps import quiet_model_libraries
from bioprofile.display import terminal_safe
from bioprofile.progress import working


def embed_cells_command(
    ctx: typer.Context,
    input: Annotated[Path, typer.Argument(help="Cells x genes .h5ad (streamed from disk in row chunks).")],
    embeddings: Annotated[
        Path | None, typer.Option("--embeddings", "-e", help="Gene embeddings from embed-genes (GenePT-w).")
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output .h5ad: the input plus obsm/uns.")
    ] = Path("cells.h5ad"),
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

    from bioprofile.cells import EmbedLimits, embed_cells_file, options_for

    # the registered method takes the flags its options class declares; another method's flags are ignored
    flags = {"normalize": normalize, "scale": scale, "l2": l2, "top_n": top_n, "encoder": encoder}
    options = options_for(method, flags)
    limits = EmbedLimits(chunk_size=chunk_size, min_coverage=min_coverage, nonfinite=nonfinite)
    quiet_model_libraries(quiet)
    with (
        warnings.catch_warnings(record=True) as caught,
        working(f"embedding the cells of {input.name} ({method})", not quiet),
    ):
        warnings.simplefilter("always", UserWarning)
        info = embed_cells_file(
            input,
            embeddings,
            output,
            method=options,
            gene_key=gene_key,
            layer=layer,
            use_raw=use_raw,
            limits=limits,
            overwrite=force,
        )
    for warning in caught:  # each library warning as one line in flags, not Python's two-line form
        message = in_flags(in_commands(" ".join(str(warning.message).split())), ctx.command.params)
        typer.secho(f"warning: {terminal_safe(message)}", err=True, fg=typer.colors.YELLOW)
    cov = info["gene_coverage"]
    typer.echo(
        f"wrote obsm['X_bioprofile'] to {output} ({info['method']}; {cov['n_matched']} of {cov['n_vars']} "
        f"genes matched)"
    )
