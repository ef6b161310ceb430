"""The export-state command: STATE perturbation features from a gene embedding table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.options import PertCol


def export_state_command(
    embeddings: Annotated[
        Path, typer.Option("--embeddings", "-e", help="Gene embedding table (.parquet/.npz/.h5ad/.pt).")
    ],
    adata: Annotated[Path, typer.Option("--adata", help="Perturb-seq .h5ad (only obs is read).")],
    pert_col: PertCol,
    control: Annotated[
        str, typer.Option("--control", help="Control label, exactly as in the data (e.g. non-targeting).")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Features file (.pt); a OUTPUT.json sidecar goes beside it."),
    ] = Path("pert.pt"),
    control_vector: Annotated[
        str, typer.Option("--control-vector", help="zeros | mean (of the matched genes' vectors).")
    ] = "zeros",
    allow_missing: Annotated[
        str | None,
        typer.Option(
            "--allow-missing",
            help="What a label with no vector gets: zeros | mean | drop (default: fail, listing them).",
        ),
    ] = None,
    combination: Annotated[
        str, typer.Option("--combination", help="How the genes of a combination (A+B) combine: mean | sum.")
    ] = "mean",
    separator: Annotated[str, typer.Option("--separator", help="Separator of combination labels.")] = "+",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output and sidecar.")] = False,
) -> None:
    """Write STATE perturbation features: each label of obs[PERT_COL] -> a 1-D float32 tensor (torch.save)."""
    from bioprofile.outputs import check_output_path
    from bioprofile.perturbation import export_state_features, sidecar_path

    check_output_path(output, overwrite=force)
    check_output_path(sidecar_path(output), overwrite=force)
    result = export_state_features(
        embeddings,
        adata,
        pert_col=pert_col,
        control=control,
        control_vector=control_vector,
        allow_missing=allow_missing,
        combination=combination,
        separator=separator,
    )
    path, sidecar = result.write(output, overwrite=force)
    missing = result.record["missing"]["n"]
    if missing:
        done = "left out: drop their cells too" if allow_missing == "drop" else f"given {allow_missing}"
        typer.secho(
            f"warning: {missing} perturbation(s) had no vector and were {done} (see {sidecar})",
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(f"wrote {len(result)} perturbations x {result.dim} dims to {path} (record: {sidecar})")
