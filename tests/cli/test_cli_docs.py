import subprocess
import sys
from pathlib import Path

from helpers import REPO

ROOT = REPO


def test_cli_reference_is_current(tmp_path):
    """docs/cli.md is generated from the typer app: regenerate it with `make docs` when a command changes."""
    out = tmp_path / "cli.md"
    typer = Path(sys.executable).parent / "typer"
    subprocess.run(
        [str(typer), "bioprofile.cli", "utils", "docs", "--name", "bioprofile", "--output", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == (ROOT / "docs" / "cli.md").read_text(), "docs/cli.md is stale: run `make docs`"
