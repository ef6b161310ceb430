"""The data group: list and fetch the datasets of bioprofile/data_manifests/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.options import Quiet
from bioprofile.cli.steps import quiet_model_libraries
from bioprofile.progress import working


def data_list_command() -> None:
    """List the datasets in bioprofile/data_manifests/: name, size, whether the hash is recorded, description."""
    from bioprofile.data import list_manifests

    manifests = list_manifests()
    for m in manifests:
        size = (
            (f"{m.size / 1e6:.1f} MB" if m.size >= 1e5 else f"{m.size / 1e3:.0f} kB") if m.size else "size ?"
        )
        # What the manifest records, not a check of files on disk (fetch checks each file against it).
        status = "sha256 recorded" if m.verified else "no sha256 yet"
        typer.echo(f"{m.name:28s} {len(m.files)} file(s) {size:>10s}  {status:15s}  {m.description}")


def data_fetch_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `bioprofile data list`).")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Copy verified files from this folder (shared/data layout) into the data root instead of "
            "downloading them.",
        ),
    ] = None,
    trust_unverified: Annotated[
        bool,
        typer.Option(
            "--trust-unverified", help="Download files with no recorded sha256 and print their hash."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a cached file whose sha256 differs from the manifest's.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Download a dataset into the data root ($BIOPROFILE_DATA_DIR, else the user cache's data folder), checking sha256.

    Every command that reads a dataset (bench gene-tasks) looks there first.
    """
    from bioprofile.data import fetch_dataset

    quiet_model_libraries(quiet)
    with working(f"fetching {name}", not quiet):
        fetched = fetch_dataset(
            name, data_dir=data_dir, trust_unverified=trust_unverified, overwrite=force, copy_local=True
        )
    for f in fetched:
        note = "verified" if f.verified else "UNVERIFIED: record this sha256 in the manifest"
        typer.echo(f"{f.path}  sha256={f.sha256}  ({note})")
