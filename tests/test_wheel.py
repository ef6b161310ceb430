"""A plain ``pip install`` works on its own: the wheel holds its package data and runs outside the checkout.

The wheel is built from the checkout's ``pyproject.toml``, ``README.md`` and ``bioprofile/``, installed without
dependencies into a folder of its own, and run from a folder outside the checkout with only that folder (and the
venv's dependencies) importable: ``--version``, ``data list`` and ``embed-genes --summaries`` exit 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from helpers import SHARED_DATA

from bioprofile.evaluate.gene_tasks.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``site`` folder the wheel was installed into; the wheel itself lies beside it in ``dist``."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    # A copy of what the build reads, so the build writes its build/ and egg-info there, not into the checkout.
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "bioprofile", source / "bioprofile", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(source)],
        check=True,
        cwd=base,
    )
    wheels = list((base / "dist").glob("bioprofile-*.whl"))
    assert len(wheels) == 1, wheels
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(base / "site"), str(wheels[0])],
        check=True,
        cwd=base,
    )
    return base / "site"


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` from ``cwd`` with the installed wheel first on the path and the checkout out of reach."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOPROFILE_")}
    env.update(PYTHONPATH=str(site), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["BIOPROFILE_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _wheel_names(site: Path) -> set[str]:
    (wheel,) = site.parent.glob("dist/bioprofile-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_manifests_configs_and_protein_table(installed):
    names = _wheel_names(installed)
    manifests = {p.name for p in (ROOT / "bioprofile" / "data_manifests").glob("*.toml")}
    configs = {p.name for p in (ROOT / "bioprofile" / "configs").iterdir() if p.suffix in (".yaml", ".json")}
    assert manifests and configs
    assert {f"bioprofile/data_manifests/{n}" for n in manifests} <= names
    assert {f"bioprofile/configs/{n}" for n in configs} <= names
    assert "bioprofile/proteins_data/adt_targets.tsv" in names


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    result = _run(
        installed, tmp_path, "-c", "import bioprofile.data as d; print(d.__file__); print(d.manifest_dir())"
    )
    assert result.returncode == 0, result.stderr
    module, manifests = result.stdout.split()
    assert Path(module).is_relative_to(installed)
    assert Path(manifests) == installed / "bioprofile" / "data_manifests"


def test_version_prints_the_installed_version(installed, tmp_path):
    result = _run(installed, tmp_path, "-m", "bioprofile.cli", "--version")
    assert result.returncode == 0, result.stderr
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout.strip() == f"bioprofile {version}"


def test_data_list_finds_the_shipped_manifests(installed, tmp_path):
    result = _run(installed, tmp_path, "-m", "bioprofile.cli", "data", "list")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert "genept_dosage_tf" in listed
    assert len(listed) == len(list((ROOT / "bioprofile" / "data_manifests").glob("*.toml")))


def test_embed_genes_with_summaries_runs_from_the_wheel(installed, tmp_path):
    summaries = tmp_path / "summaries.txt"
    summaries.write_text("TP53: tumour suppressor that guards the genome.\n", encoding="utf-8")
    out = tmp_path / "genes.parquet"
    result = _run(
        installed,
        tmp_path,
        "-m",
        "bioprofile.cli",
        "embed-genes",
        "TP53",
        "--summaries",
        str(summaries),
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(out)
    assert table["symbol"].tolist() == ["TP53"]
    assert table["text"].tolist() == ["tumour suppressor that guards the genome."]
    assert len(table["vector"].iloc[0]) == 384  # all-MiniLM-L6-v2, the default encoder


def test_gene_tasks_find_their_manifests_in_the_wheel(installed, tmp_path):
    # bench gene-tasks reads each task's manifest first; with a verified local copy it needs no download.
    dosage = SHARED_DATA / "genept" / "dosage_sens_tf_labels.csv"
    code = (
        "import sys; from pathlib import Path\n"
        "from bioprofile.data import load_manifest\n"
        "from bioprofile.evaluate.gene_tasks.tasks import TASKS, load_task\n"
        "print(len({load_manifest(manifest).name for manifest, _ in TASKS.values()}))\n"
        "if len(sys.argv) > 1: print(len(load_task('dosage', data_dir=Path(sys.argv[1])).genes))\n"
    )
    result = _run(installed, tmp_path, "-c", code, *([str(SHARED_DATA)] if dosage.is_file() else []))
    assert result.returncode == 0, result.stderr
    counts = result.stdout.split()
    assert int(counts[0]) == len({manifest for manifest, _ in TASKS.values()})
    if dosage.is_file():
        assert int(counts[1]) > 100
