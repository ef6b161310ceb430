"""The `bioprofile` command line. Each command parses arguments, calls the library, and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bioprofile.errors import BioprofileInputError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: gene-tasks, clustering, integration, perturbation.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets from data_manifests/: list and fetch (sha256-checked).")
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")


def fail(message: str) -> None:
    """Print one clear line and exit with code 2 (bad input)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


@app.callback()
def main() -> None:
    """bioprofile: gene embeddings from LLM-written profiles, and BFT fine-tuning of the writer."""


@app.command("embed-genes")
def embed_genes_command(
    genes: Annotated[Optional[list[str]], typer.Argument(help="HGNC symbols, aliases, Ensembl or Entrez ids.")] = None,
    genes_file: Annotated[
        Optional[Path], typer.Option("--genes-file", "-f", help="A file of ids (one per line, or a CSV/TSV column).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.parquet, .npz, .h5ad or .pt).")] = Path(
        "genes.parquet"
    ),
    format: Annotated[
        Optional[str], typer.Option("--format", help="parquet | npz | h5ad | pt (default: from the suffix).")
    ] = None,
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="Profile writer: a local path or hub id (default SmolLM2).")
    ] = None,
    template: Annotated[str, typer.Option("--template", "-t", help="Prompt template: concise | genept.")] = "concise",
    encoder: Annotated[
        Optional[str], typer.Option("--encoder", "-e", help="Text encoder (default all-MiniLM-L6-v2; hf:PATH for BERT).")
    ] = None,
    summaries: Annotated[
        Optional[Path],
        typer.Option("--summaries", help="Embed these texts ('SYMBOL: text' lines or a TSV) instead of generating."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per generation batch.")] = 16,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Profile length cap in tokens.")] = 256,
    cache_dir: Annotated[
        Optional[Path], typer.Option("--cache-dir", help="Store location (default: $BIOPROFILE_CACHE_DIR or user cache).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on any unknown or ambiguous id.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")] = False,
) -> None:
    """Embed genes by way of LLM-written profiles: ids -> profile text -> vector, written to OUTPUT."""
    from bioprofile.embeddings import check_output_path, resolve_format
    from bioprofile.genes import normalize_genes, read_gene_list
    from bioprofile.pipeline import embed_genes
    from bioprofile.store import Store

    try:
        ids = list(genes or [])
        if genes_file is not None:
            ids += read_gene_list(genes_file)
        if not ids:
            fail("no genes given: pass ids as arguments or --genes-file FILE")
        fmt = resolve_format(output, format)
        check_output_path(output, overwrite=force)  # before any work, so nothing computed is thrown away
        resolution = normalize_genes(ids, strict=strict)
        if not quiet and (resolution.unknown or resolution.ambiguous):
            typer.secho(f"warning: {resolution.report()}", err=True, fg=typer.colors.YELLOW)
        if cache_dir is not None and not cache_dir.is_dir():
            fail(f"--cache-dir {cache_dir} does not exist: create it first")
        with Store(cache_dir / "store.sqlite" if cache_dir else None) as store:
            result = embed_genes(
                resolution,
                generator=model,
                template=template,
                encoder=encoder,
                store=store,
                summaries=summaries,
                strict=strict,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                show_progress=not quiet,
            )
        result.write(output, format=fmt, overwrite=force)
    except BioprofileInputError as err:
        fail(str(err))
    if not quiet:
        source = result.provenance.get("generator") or result.provenance["source"]
        typer.echo(f"wrote {len(result)} genes x {result.dim} dims to {output} ({source} -> {result.provenance['encoder']})")


if __name__ == "__main__":
    app()
