"""The train command: fine-tune the profile writer as a YAML config says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import fail
from bioprofile.cli.options import Quiet
from bioprofile.cli.steps import quiet_model_libraries


def train_command(
    config: Annotated[Path, typer.Argument(help="YAML config (see docs/training.md for the keys).")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Write here instead of the config's output_dir.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key: --set key=value (value read as YAML); repeatable."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an output folder that already holds files.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune the profile writer with SFT, DFT or BFT, or GRPO (LoRA by default) as CONFIG says."""
    quiet_model_libraries(quiet)
    import yaml

    from bioprofile.train.stages import train_from_config

    changes = {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set {item!r} is not key=value: write e.g. --set max_steps=100")
        try:
            changes[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            fail(f"--set {item[:80]!r}: the value is not YAML ({' '.join(str(err).split())[:120]})")
    if output_dir is not None:
        changes["output_dir"] = str(output_dir)
    out = train_from_config(config, overwrite=force, progress=not quiet, **changes)
    typer.echo(f"wrote {out}")
    _draw_grpo_rewards(out)


def _draw_grpo_rewards(out: Path) -> None:
    """After a grpo run, its reward curve beside its step log (``grpo_rewards.png``)."""
    import json

    from bioprofile.train.card import RUN_RECORD
    from bioprofile.train.grpo_log import GRPO_LOG_JSON, GRPOLog

    record = out / RUN_RECORD
    if not (out / GRPO_LOG_JSON).is_file() or not record.is_file():
        return
    if json.loads(record.read_text(encoding="utf-8")).get("stage") != "grpo":
        return
    import matplotlib.pyplot as plt

    from bioprofile import pl

    figure = out / "grpo_rewards.png"
    plt.close(pl.grpo_rewards(GRPOLog.read(out), save=figure, show=False, return_fig=True))
    typer.echo(f"wrote {figure}")
