"""merge: the shard tables of a sharded embed-genes / embed-proteins run joined into one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.options import EmbedFormat, ForceOutput


def merge_command(
    output: Annotated[Path, typer.Argument(help="The merged table to write (.parquet, .npz, .h5ad or .pt).")],
    shards: Annotated[
        list[Path],
        typer.Argument(help="The N shard tables of one run (written with --shard i/N), any order."),
    ],
    format: EmbedFormat = None,
    force: ForceOutput = False,
) -> None:
    """Join the shard tables of one --shard run into OUTPUT: all N shards, of one model, template and encoder."""
    from bioprofile.shards import merge_shard_files

    merged = merge_shard_files(output, shards, format=format, overwrite=force)
    typer.echo(
        f"wrote {len(merged)} rows of {merged.provenance['merged_shards']['count']} shards x {merged.dim} dims "
        f"to {output}"
    )
