"""The cache group: the store of profile texts and vectors (info, prune, export, import, merge)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import fail
from bioprofile.cli.options import CacheDir, ForceOutput
from bioprofile.cli.steps import open_store
from bioprofile.display import display_value, terminal_safe

_CacheModel = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Generator id, its name before '@', or a glob (see 'cache info' for the ids)."
    ),
]
_CacheEncoder = Annotated[
    str | None, typer.Option("--encoder", "-e", help="Encoder id, its name before '@', or a glob.")
]


def _store_file(cache_dir: Path | None) -> Path:
    """The store file under --cache-dir, else the default one."""
    from bioprofile.store import default_store_path

    return cache_dir / "store.sqlite" if cache_dir else default_store_path()


def _existing_store(cache_dir: Path | None):
    """The store under --cache-dir (or the default one), which must exist: a maintenance command creates none."""
    path = _store_file(cache_dir)
    if not path.is_file():
        fail(f"no store at {path}: nothing to do (--cache-dir names the folder that holds store.sqlite)")
    return open_store(cache_dir)


def _human_bytes(n: int) -> str:
    """A byte count as KiB/MiB/GiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def cache_info_command(
    cache_dir: CacheDir = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Show where the store is, its size, and how many texts and vectors each model and encoder has there."""
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Column, Table

    from bioprofile.cache_admin import cache_info

    info = cache_info(_store_file(cache_dir))
    if json_output:
        typer.echo(json.dumps(info.to_dict(), indent=2))
        return
    console = Console()
    if not info.exists:
        typer.echo(f"no store at {info.path} yet (it is created by the first embed run)")
        return
    mode = "" if info.journal_mode == "wal" else f", journal {info.journal_mode}: a network file system?"
    typer.echo(
        f"store {info.path}: {_human_bytes(info.size_bytes)}, {info.n_profiles} profiles, "
        f"{info.n_vectors} vectors{mode}"
    )
    if info.generators:
        # Ids are what prune and export take: shown whole, never shortened to fit the terminal.
        widest = max(len(row["generator"]) for row in info.generators)
        table = Table(Column("generator (model id)", no_wrap=True, min_width=widest), "texts", "templates")
        table.add_column("oldest", no_wrap=True)
        table.add_column("newest", no_wrap=True)
        for row in info.generators:
            table.add_row(
                escape(
                    terminal_safe(row["generator"])
                ),  # ids come from files and servers: no markup, no escapes
                str(row["profiles"]),
                str(row["templates"]),
                row["oldest"][:10],
                row["newest"][:10],
            )
        console.print(table)
    if info.encoders:
        widest = max(len(row["encoder"]) for row in info.encoders)
        table = Table(Column("encoder", no_wrap=True, min_width=widest), "vectors", "dim", "size")
        for row in info.encoders:
            table.add_row(
                escape(terminal_safe(row["encoder"])),
                str(row["vectors"]),
                str(row["dim"]),
                _human_bytes(row["bytes"]),
            )
        console.print(table)
        for row in info.encoders:
            if row["damaged"]:
                typer.echo(
                    f"damaged: {row['damaged']} vectors of {display_value(row['encoder'], 200)} (wrong size or "
                    "width, or not finite) are never served; their texts are encoded again when next asked for",
                    err=True,
                )
    for name, size in info.folders.items():
        typer.echo(f"{name}/: {_human_bytes(size)}")


def cache_prune_command(
    model: _CacheModel = None,
    encoder: _CacheEncoder = None,
    older_than_days: Annotated[
        float | None,
        typer.Option("--older-than-days", min=0, help="Profiles stored more than this many days ago."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Remove them (without it nothing is removed).")
    ] = False,
    cache_dir: CacheDir = None,
) -> None:
    """Remove the profiles of a model or older than some days (and vectors only they used), or an encoder's vectors."""
    from bioprofile.cache_admin import PruneRule, prune_cache

    rule = PruneRule(model=model, encoder=encoder, older_than_days=older_than_days)
    with _existing_store(cache_dir) as store:
        plan = prune_cache(store, rule, dry_run=True)
        if not plan.n_profiles and not plan.n_vectors:
            typer.echo(f"nothing to prune in {store.path}")
            return
        what = f"{plan.n_profiles} profiles and {plan.n_vectors} vectors"
        if dry_run:
            typer.echo(f"would remove {what} from {store.path}:")
            for name, count in {**plan.profiles}.items():
                typer.echo(f"  {count} profiles of {name}")
            for name, count in plan.vectors.items():
                typer.echo(f"  {count} vectors of {name}")
            return
        if not force:
            fail(f"this removes {what} from {store.path}: add --force to remove them (--dry-run lists them)")
        done = prune_cache(store, rule)
    typer.echo(f"removed {what} from {store.path} ({_human_bytes(done.freed_bytes)} freed)")


def cache_export_command(
    output: Annotated[Path, typer.Argument(help="The .parquet file to write.")],
    model: _CacheModel = None,
    encoder: _CacheEncoder = None,
    force: ForceOutput = False,
    cache_dir: CacheDir = None,
) -> None:
    """Write the store's texts and vectors (or one model's, one encoder's) to a parquet file for another machine."""
    from bioprofile.cache_admin import export_cache
    from bioprofile.outputs import check_output_path

    check_output_path(output, overwrite=force)
    with _existing_store(cache_dir) as store:
        result = export_cache(store, output, model=model, encoder=encoder, overwrite=force)
    typer.echo(f"wrote {result.profiles} profiles and {result.vectors} vectors to {output}")


def cache_import_command(
    input: Annotated[Path, typer.Argument(help="A file 'bioprofile cache export' wrote.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace stored entries that differ from the file's.")
    ] = False,
    cache_dir: CacheDir = None,
) -> None:
    """Add the texts and vectors of an export to this store; entries that differ stop it unless --force."""
    from bioprofile.cache_admin import import_cache

    if not input.is_file():  # before the store is opened (and, when there is none yet, created)
        fail(
            f"{input} {'is a folder' if input.is_dir() else 'does not exist'}: give a file 'cache export' wrote"
        )
    with open_store(cache_dir) as store:
        result = import_cache(store, input, overwrite=force)
    replaced = f", replaced {result.replaced}" if result.replaced else ""
    typer.echo(
        f"added {result.profiles} profiles and {result.vectors} vectors to {store.path} "
        f"({result.identical} already there{replaced})"
    )


def cache_merge_command(
    shards: Annotated[
        list[Path],
        typer.Argument(
            help="The shard stores: each job's --cache-dir folder (or its store.sqlite); only read."
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace stored entries that differ from the shards'.")
    ] = False,
    cache_dir: CacheDir = None,
) -> None:
    """Add the texts and vectors of shard stores (--shard jobs' --cache-dir) to this store, all or nothing."""
    from bioprofile.cache_rows import merge_stores

    for shard in shards:  # before the store is opened (and, when there is none yet, created)
        if not (shard / "store.sqlite").is_file() and not shard.is_file():
            fail(f"no store at {shard}: give a --cache-dir folder (holding store.sqlite) or its store.sqlite")
    with open_store(cache_dir) as store:
        result = merge_stores(store, shards, overwrite=force)
    replaced = f", replaced {result.replaced}" if result.replaced else ""
    typer.echo(
        f"added {result.profiles} profiles and {result.vectors} vectors of {len(shards)} stores to {store.path} "
        f"({result.identical} already there{replaced})"
    )
