"""The getting-started tutorial (docs/tutorial.py) runs on the embedded default models, and docs/tutorial.md shows
the figures it draws.

The script runs as a reader runs it (``python docs/tutorial.py``, no options), from ``tmp_path``: its default output
folder, ``tutorial_output/``, lands there and is git-ignored, so a run from a clean clone leaves ``git status``
clean. What it prints and writes is checked. It uses the ambient bioprofile cache like any slow test that loads the default models, so a
second run reads its profiles from there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "tutorial.py"
PAGE = ROOT / "docs" / "tutorial.md"
FIGURES = ROOT / "docs" / "tutorial"


def _page_images() -> list[str]:
    return re.findall(r"!\[[^\]]*\]\((tutorial/[^)]+\.png)\)", PAGE.read_text())


def test_the_page_shows_figures_that_are_in_docs():
    images = _page_images()
    assert len(images) >= 3, images  # UMAPs side by side, one UMAP, the ROC panel
    for image in images:
        assert (ROOT / "docs" / image).is_file(), image


def test_the_page_walks_through_the_script():
    # Every code block of the page is a piece of the script (the page shows it, it does not fork it).
    script = SCRIPT.read_text()
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) >= 5
    for block in blocks:
        for line in block.strip().splitlines():
            assert line.strip() in script, line


def test_the_default_output_folder_is_git_ignored():
    ignored = subprocess.run(
        ["git", "check-ignore", "tutorial_output/summary.json", "tutorial_output/gene_task_roc.png"],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0 and len(ignored.stdout.splitlines()) == 2
    assert 'default=Path("tutorial_output")' in SCRIPT.read_text()


@pytest.mark.slow
def test_the_tutorial_runs_on_the_default_models(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],  # the defaults: tables and figures into ./tutorial_output/
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tutorial_output"]  # nothing beside it
    tmp_path = tmp_path / "tutorial_output"
    assert "20 marker genes" in out
    assert "gene embeddings: 20 genes x 384 dims" in out
    assert "generator smollm2-135m-instruct" in out and "all-MiniLM-L6-v2" in out
    assert "GenePT-w: (700, 384)" in out and "GenePT-s: (700, 384)" in out

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["genes"] == 20 and summary["gene_coverage"]["n_matched"] == 20
    methods = {row["method"] for row in summary["clustering"]}
    assert {"X_bioprofile", "X_genept_s"} <= methods and any(m.startswith("PCA") for m in methods)
    for row in summary["clustering"]:
        assert -1 <= row["kmeans_ari"] <= 1
    tasks = {(row["task"], row["embedding"]) for row in summary["gene_task"]}
    assert ("lymphoid_vs_myeloid", "profiles") in tasks and (
        "lymphoid_vs_myeloid",
        "random:profiles",
    ) in tasks

    # Every figure the page shows is one the script draws.
    drawn = {p.name for p in tmp_path.glob("*.png")}
    assert {Path(image).name for image in _page_images()} <= drawn, drawn
