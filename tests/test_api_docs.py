"""docs/api.md is generated from the docstrings by docs/make_api.py (griffe): it must match a fresh run."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current(tmp_path):
    pytest.importorskip("griffe", reason="the API reference generator needs griffelib (the [dev] extra)")
    out = tmp_path / "api.md"
    subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_api.py"), "--output", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == (ROOT / "docs" / "api.md").read_text(), "docs/api.md is stale: run `make docs`"


def test_api_reference_covers_the_front_door_and_every_public_package():
    text = (ROOT / "docs" / "api.md").read_text()
    for name in ("bioprofile.pipeline.embed_genes", "bioprofile.cells", "bioprofile.evaluate.clustering",
                 "bioprofile.pl", "bioprofile.train", "bioprofile.embeddings.GeneEmbeddings"):  # fmt: skip
        assert f"`{name}" in text, name
    assert "## `bioprofile.cli`" not in text  # docs/cli.md is the command line's reference
