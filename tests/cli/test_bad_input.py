"""Bad inputs across every command: exit 2, one stderr line, no traceback, and nothing already there changed.

Each case runs in a fresh copy of a small folder of good and bad files; every file in it is hashed before and
after the run. No case loads a model: bad input fails before any model work.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import EntityEmbeddings

GENES = ["TP53", "EGFR", "BRCA2", "GAPDH", "MYC", "KRAS"]


class _Plant:
    """A pickle whose loading would create the file ``ran`` (what a hostile file would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _manifest(folder: Path, path: str, url: str, sha: str = "", verified: bool = False) -> None:
    folder.mkdir(parents=True)
    (folder / "toy.toml").write_text(
        'name = "toy"\ndescription = "d"\nlicence = "MIT"\ncitation = "c"\n\n'
        f'[[files]]\npath = "{path}"\nurl = "{url}"\nsha256 = "{sha}"\nsize = 0\nverified = {str(verified).lower()}\n'
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Good and bad inputs every case starts from (copied per case)."""
    import anndata as ad
    import pandas as pd

    d = tmp_path_factory.mktemp("bad-inputs")
    rng = np.random.default_rng(0)
    table = EntityEmbeddings(GENES, GENES, [f"{g} text" for g in GENES], rng.normal(size=(6, 8)))
    table.write(d / "emb.parquet")
    table.write(d / "emb.npz")
    good = (d / "emb.parquet").read_bytes()
    (d / "truncated.parquet").write_bytes(good[: len(good) // 2])
    (d / "garbage.parquet").write_bytes(b"not parquet at all\n" * 50)
    pd.DataFrame({"gene": GENES}).to_parquet(d / "schema.parquet")
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 not a zip" * 20)
    (d / "truncated.npz").write_bytes((d / "emb.npz").read_bytes()[:200])
    np.savez(d / "schema.npz", other=np.arange(3))
    (d / "garbage.h5ad").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    (d / "garbage.pt").write_bytes(b"not a torch file" * 30)
    (d / "garbage.pickle").write_bytes(b"\x80\x04 garbage")
    (d / "hostile.pickle").write_bytes(pickle.dumps(_Plant(d / "ran")))
    (d / "folder").mkdir()

    n = 40
    cells = ad.AnnData(
        X=rng.poisson(2.0, size=(n, 6)).astype(np.float32),
        obs=pd.DataFrame(
            {"cell_type": ["a", "b"] * (n // 2), "batch": ["x"] * (n // 2) + ["y"] * (n // 2)},
            index=[f"c{i}" for i in range(n)],
        ),
        var=pd.DataFrame(index=GENES),
    )
    cells.obsm["X_bioprofile"] = rng.normal(size=(n, 8)).astype(np.float32)
    cells.write_h5ad(d / "cells.h5ad")
    (d / "truncated.h5ad").write_bytes((d / "cells.h5ad").read_bytes()[:3000])

    (d / "taken.md").write_text("earlier result\n")
    (d / "taken.json").write_text("{}\n")
    (d / "umap_umap").mkdir()
    (d / "umap.md").parent.mkdir(exist_ok=True)
    (d / "genes_latin1.txt").write_bytes("TP53\nGÈNE\n".encode("latin-1"))
    (d / "comments.txt").write_text("# only a comment\n")
    (d / "huge.txt").write_text("A" * 5_000_000 + "\n")
    (d / "summaries.txt").write_text("TP53: a tumour suppressor.\n")
    (d / "cachefile").write_text("a file where a folder should be\n")
    (d / "badstore").mkdir()
    (d / "badstore" / "store.sqlite").write_bytes(b"this is not a database" * 200)

    (d / "set.jsonl").write_text('{"instruction": "TP53?", "response": "TP53 encodes p53."}\n')
    (d / "latin1.jsonl").write_bytes('{"instruction": "È?", "response": "È."}\n'.encode("latin-1"))
    (d / "broken.jsonl").write_text('{"instruction": "x", "response": "y"}\n{oops\n')
    (d / "diag").mkdir()
    (d / "diag" / "diagnose_groups.csv").write_text("earlier\n")
    (d / "diag" / "weights_0.csv").write_text("earlier\n")

    (d / "train.yaml").write_text(
        f"model: {d / 'no-model'}\ntrain_file: {d / 'set.jsonl'}\noutput_dir: {d / 'run'}\n"
    )
    (d / "latin1.yaml").write_bytes("model: m\n# \xe9t\xe9\n".encode("latin-1"))
    (d / "badsyntax.yaml").write_text("model: [unclosed\n")
    (d / "run").mkdir()
    (d / "run" / "adapter_model.safetensors").write_bytes(b"an earlier adapter")

    _manifest(d / "m_traversal", "../../escaped.csv", "http://127.0.0.1:9/x.csv")
    _manifest(d / "m_absolute", "/tmp/bioprofile-escaped.csv", "http://127.0.0.1:9/x.csv")
    _manifest(d / "m_file", "x/labels.csv", (d / "set.jsonl").as_uri())
    _manifest(d / "m_kept", "x/labels.csv", "http://127.0.0.1:9/x.csv", "a" * 64, True)
    (d / "cache" / "data" / "x").mkdir(parents=True)
    (d / "cache" / "data" / "x" / "labels.csv").write_text("my own copy\n")
    _manifest(d / "m_unverified", "x/new.csv", "http://127.0.0.1:9/x.csv")
    _manifest(d / "m_ok", "x/labels.csv", "http://127.0.0.1:9/x.csv", "a" * 64, True)
    return d


E = "embed-genes"
GT = ["bench", "gene-tasks"]
CL = ["bench", "clustering", "{d}/cells.h5ad", "--label-key", "cell_type"]
IN = ["bench", "integration", "{d}/cells.h5ad", "--batch-key", "batch", "--label-key", "cell_type"]
EC = ["embed-cells", "{d}/cells.h5ad", "-e", "{d}/emb.parquet"]
DW = ["diagnose", "windows"]
DG = ["diagnose", "weights"]
SUMMARIES = ["--summaries", "{d}/summaries.txt"]
AR = "analyze-responses"

# (id, argv with {d} for the case's folder, environment with {d}, a word the line must hold)
CASES = [
    # embed-genes
    ("genes-none", [E, "-o", "{d}/new.parquet"], {}, "no genes"),
    ("genes-output-exists", [E, "TP53", "-o", "{d}/emb.parquet"], {}, "--force"),
    ("genes-output-folder", [E, "TP53", "-o", "{d}/folder"], {}, "folder"),
    ("genes-output-csv", [E, "TP53", "-o", "{d}/genes.csv"], {}, ".csv"),
    ("genes-output-missing-dir", [E, "TP53", "-o", "{d}/nowhere/genes.parquet"], {}, "does not exist"),
    ("genes-output-under-file", [E, "TP53", "-o", "{d}/cachefile/genes.parquet"], {}, "not a folder"),
    ("genes-format", [E, "TP53", "-o", "{d}/new.bin", "--format", "bin"], {}, "--format"),
    ("genes-file-missing", [E, "-f", "{d}/nope.txt", "-o", "{d}/new.parquet"], {}, "cannot read"),
    ("genes-file-latin1", [E, "-f", "{d}/genes_latin1.txt", "-o", "{d}/new.parquet"], {}, "cannot read"),
    ("genes-file-folder", [E, "-f", "{d}/folder", "-o", "{d}/new.parquet"], {}, "cannot read"),
    ("genes-file-empty", [E, "-f", "{d}/comments.txt", "-o", "{d}/new.parquet"], {}, "no gene identifiers"),
    ("genes-unknown", [E, "NOTAGENE1", "NOTAGENE2", "-o", "{d}/new.parquet"], {}, "NOTAGENE1"),
    ("genes-nul", [E, "FOO\x00BAR", "-o", "{d}/new.parquet"], {}, "FOO"),
    ("genes-huge-token", [E, "-f", "{d}/huge.txt", "-o", "{d}/new.parquet"], {}, "characters"),
    ("genes-strict", [E, "TP53", "FOO1", "--strict", "-o", "{d}/new.parquet"], {}, "--strict"),
    (
        "genes-summaries-missing",
        [E, "TP53", "--summaries", "{d}/nope.txt", "-o", "{d}/new.parquet"],
        {},
        "nope",
    ),
    (
        "genes-cache-file",
        [E, "TP53", *SUMMARIES, "--cache-dir", "{d}/cachefile", "-o", "{d}/n.parquet"],
        {},
        "cache",
    ),
    (
        "genes-store-damaged",
        [E, "TP53", *SUMMARIES, "--cache-dir", "{d}/badstore", "-o", "{d}/n.parquet"],
        {},
        "damaged",
    ),
    # bench gene-tasks
    ("gt-missing", [*GT, "-e", "{d}/nope.parquet", "-o", "{d}/gt"], {}, "does not exist"),
    ("gt-garbage-parquet", [*GT, "-e", "{d}/garbage.parquet", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-truncated-parquet", [*GT, "-e", "{d}/truncated.parquet", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-schema-parquet", [*GT, "-e", "{d}/schema.parquet", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-garbage-npz", [*GT, "-e", "{d}/garbage.npz", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-truncated-npz", [*GT, "-e", "{d}/truncated.npz", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-schema-npz", [*GT, "-e", "{d}/schema.npz", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-garbage-h5ad", [*GT, "-e", "{d}/garbage.h5ad", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-truncated-h5ad", [*GT, "-e", "{d}/truncated.h5ad", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-garbage-pt", [*GT, "-e", "{d}/garbage.pt", "-o", "{d}/gt"], {}, "not a readable"),
    ("gt-garbage-pickle", [*GT, "-e", "{d}/garbage.pickle", "-o", "{d}/gt"], {}, "pickle"),
    ("gt-hostile-pickle", [*GT, "-e", "{d}/hostile.pickle", "-o", "{d}/gt"], {}, "refusing"),
    ("gt-folder", [*GT, "-e", "{d}/folder", "-o", "{d}/gt"], {}, "folder"),
    ("gt-output-exists", [*GT, "-e", "{d}/emb.parquet", "-o", "{d}/taken"], {}, "--force"),
    ("gt-output-missing-dir", [*GT, "-e", "{d}/emb.parquet", "-o", "{d}/nowhere/gt"], {}, "does not exist"),
    ("gt-models", [*GT, "-e", "{d}/emb.parquet", "--models", "svm", "-o", "{d}/gt"], {}, "svm"),
    ("gt-tasks", [*GT, "-e", "{d}/emb.parquet", "--tasks", "nope", "-o", "{d}/gt"], {}, "nope"),
    (
        "gt-labels-missing",
        [*GT, "-e", "{d}/emb.parquet", "--labels", "{d}/nope.csv", "-o", "{d}/gt"],
        {},
        "nope",
    ),
    (
        "gt-encoder-alone",
        [*GT, "-e", "{d}/emb.parquet", "--encoder", "minilm", "-o", "{d}/gt"],
        {},
        "--symbol-baseline",
    ),
    # bench clustering
    (
        "cl-missing",
        ["bench", "clustering", "{d}/nope.h5ad", "--label-key", "x", "-o", "{d}/cl"],
        {},
        "does not exist",
    ),
    (
        "cl-garbage",
        ["bench", "clustering", "{d}/garbage.h5ad", "--label-key", "x", "-o", "{d}/cl"],
        {},
        "h5ad",
    ),
    (
        "cl-truncated",
        ["bench", "clustering", "{d}/truncated.h5ad", "--label-key", "x", "-o", "{d}/cl"],
        {},
        "h5ad",
    ),
    ("cl-folder", ["bench", "clustering", "{d}/folder", "--label-key", "x", "-o", "{d}/cl"], {}, "folder"),
    (
        "cl-label-key",
        ["bench", "clustering", "{d}/cells.h5ad", "--label-key", "nope", "-o", "{d}/cl"],
        {},
        "--label-key",
    ),
    ("cl-obsm-key", [*CL, "--obsm-key", "X_nope", "-o", "{d}/cl"], {}, "X_nope"),
    ("cl-use-raw", [*CL, "--use-raw", "-o", "{d}/cl"], {}, "--use-raw"),
    ("cl-output-exists", [*CL, "-o", "{d}/taken"], {}, "--force"),
    ("cl-umap-exists", [*CL, "-o", "{d}/umap"], {}, "--force"),
    ("cl-output-missing-dir", [*CL, "-o", "{d}/nowhere/cl"], {}, "does not exist"),
    # bench integration
    (
        "in-batch-key",
        [
            "bench",
            "integration",
            "{d}/cells.h5ad",
            "--batch-key",
            "nope",
            "--label-key",
            "cell_type",
            "-o",
            "{d}/in",
        ],
        {},
        "--batch-key",
    ),
    ("in-baselines", [*IN, "--baselines", "svm", "-o", "{d}/in"], {}, "svm"),
    ("in-use-raw", [*IN, "--use-raw", "-o", "{d}/in"], {}, "--use-raw"),
    ("in-output-exists", [*IN, "-o", "{d}/taken"], {}, "--force"),
    (
        "in-garbage",
        ["bench", "integration", "{d}/garbage.h5ad", "--batch-key", "b", "--label-key", "l", "-o", "{d}/in"],
        {},
        "h5ad",
    ),
    ("in-obsm-key", [*IN, "--obsm-key", "X_nope", "-o", "{d}/in"], {}, "X_nope"),
    # embed-cells
    (
        "ec-missing",
        ["embed-cells", "{d}/nope.h5ad", "-e", "{d}/emb.parquet", "-o", "{d}/o.h5ad"],
        {},
        "does not exist",
    ),
    (
        "ec-garbage",
        ["embed-cells", "{d}/garbage.h5ad", "-e", "{d}/emb.parquet", "-o", "{d}/o.h5ad"],
        {},
        "h5ad",
    ),
    (
        "ec-truncated",
        ["embed-cells", "{d}/truncated.h5ad", "-e", "{d}/emb.parquet", "-o", "{d}/o.h5ad"],
        {},
        "h5ad",
    ),
    ("ec-output-parquet", [*EC, "-o", "{d}/o.parquet"], {}, ".h5ad"),
    ("ec-output-exists", [*EC, "-o", "{d}/cells.h5ad"], {}, "--force"),
    ("ec-output-is-input", [*EC, "-o", "{d}/cells.h5ad", "--force"], {}, "differ"),
    ("ec-output-folder", [*EC, "-o", "{d}/folder"], {}, "h5ad"),
    ("ec-use-raw", [*EC, "--use-raw", "-o", "{d}/o.h5ad"], {}, "--use-raw"),
    ("ec-method", [*EC, "--method", "nope", "-o", "{d}/o.h5ad"], {}, "nope"),
    (
        "ec-garbage-embeddings",
        ["embed-cells", "{d}/cells.h5ad", "-e", "{d}/garbage.parquet", "-o", "{d}/o.h5ad"],
        {},
        "not a readable",
    ),
    # diagnose
    ("dw-missing", [*DW, "{d}/nope.jsonl", "-o", "{d}/dx"], {}, "does not exist"),
    ("dw-broken-json", [*DW, "{d}/broken.jsonl", "-o", "{d}/dx"], {}, "JSON"),
    ("dw-output-file", [*DW, "{d}/set.jsonl", "-o", "{d}/set.jsonl"], {}, "--output"),
    ("dw-output-exists", [*DW, "{d}/set.jsonl", "-o", "{d}/diag"], {}, "--force"),
    ("dg-output-exists", [*DG, "{d}/set.jsonl", "-o", "{d}/diag"], {}, "--force"),
    ("dg-index", [*DG, "{d}/set.jsonl", "--index", "9", "-o", "{d}/dx"], {}, "--index"),
    ("dg-output-under-file", [*DG, "{d}/set.jsonl", "-o", "{d}/set.jsonl/sub"], {}, "not a folder"),
    # train
    ("train-missing", ["train", "{d}/nope.yaml"], {}, "does not exist"),
    ("train-syntax", ["train", "{d}/badsyntax.yaml"], {}, "YAML"),
    ("train-config-latin1", ["train", "{d}/latin1.yaml"], {}, "not UTF-8"),
    # click's own usage errors: one line too, not typer's multi-line panel
    ("usage-bad-int", [E, "TP53", "--batch-size", "0", "-o", "{d}/new.parquet"], {}, "--batch-size"),
    ("usage-unknown-option", [E, "TP53", "--nope", "-o", "{d}/new.parquet"], {}, "No such option"),
    ("usage-missing-argument", ["bench", "clustering"], {}, "Missing argument"),
    ("usage-unknown-command", ["embed-gene", "TP53"], {}, "No such command"),
    ("usage-bad-choice-type", [*DW, "{d}/set.jsonl", "--window", "x"], {}, "--window"),
    ("diagnose-jsonl-latin1", [*DW, "{d}/latin1.jsonl", "-o", "{d}/diag-latin1"], {}, "not UTF-8"),
    ("train-set", ["train", "{d}/train.yaml", "--set", "oops"], {}, "key=value"),
    ("train-unknown-key", ["train", "{d}/train.yaml", "--set", "max_stepz=1"], {}, "max_stepz"),
    ("train-output-exists", ["train", "{d}/train.yaml"], {}, "--force"),
    ("train-output-missing-dir", ["train", "{d}/train.yaml", "-o", "{d}/nowhere/run"], {}, "does not exist"),
    ("train-output-file", ["train", "{d}/train.yaml", "-o", "{d}/set.jsonl"], {}, "file"),
    # data fetch
    ("data-unknown", ["data", "fetch", "nope"], {"BIOPROFILE_MANIFEST_DIR": "{d}/m_ok"}, "toy"),
    (
        "data-traversal",
        ["data", "fetch", "toy", "--trust-unverified"],
        {"BIOPROFILE_MANIFEST_DIR": "{d}/m_traversal"},
        "outside",
    ),
    (
        "data-absolute",
        ["data", "fetch", "toy", "--trust-unverified"],
        {"BIOPROFILE_MANIFEST_DIR": "{d}/m_absolute"},
        "outside",
    ),
    (
        "data-file-url",
        ["data", "fetch", "toy", "--trust-unverified"],
        {"BIOPROFILE_MANIFEST_DIR": "{d}/m_file"},
        "--data-dir",
    ),
    (
        "data-unverified",
        ["data", "fetch", "toy"],
        {"BIOPROFILE_MANIFEST_DIR": "{d}/m_unverified"},
        "--trust-unverified",
    ),
    ("data-kept", ["data", "fetch", "toy"], {"BIOPROFILE_MANIFEST_DIR": "{d}/m_kept"}, "--force"),
    # analyze-responses (no model: every file is read before one would load)
    ("responses-binary", [AR, "{d}/garbage.h5ad", "-o", "{d}/ar"], {}, "response file"),
    ("responses-not-jsonl", [AR, "{d}/summaries.txt", "-o", "{d}/ar"], {}, "line 1: not JSON"),
    ("responses-latin1", [AR, "{d}/latin1.jsonl", "-o", "{d}/ar"], {}, "not UTF-8"),
    ("responses-broken-json", [AR, "{d}/broken.jsonl", "-o", "{d}/ar"], {}, "line 2: not JSON"),
    ("responses-no-model-field", [AR, "{d}/set.jsonl", "-o", "{d}/ar"], {}, "'model'"),
    ("responses-folder", [AR, "{d}/folder", "-o", "{d}/ar"], {}, "response file"),
    ("responses-output-exists", [AR, "{d}/set.jsonl", "-o", "{d}/taken"], {}, "--force"),
    (
        "responses-prompts-binary",
        [AR, "--prompts", "{d}/garbage.h5ad", "--temperature", "0", "--max-new-tokens", "4", "-o", "{d}/ar"],
        {},
        "prompts file",
    ),
    (
        "data-dir-missing",
        ["data", "fetch", "toy", "--data-dir", "{d}/nope"],
        {"BIOPROFILE_MANIFEST_DIR": "{d}/m_ok"},
        "--data-dir",
    ),
]


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_the_table_is_large_and_names_are_unique():
    assert len(CASES) >= 60
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "env", "needle"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(template, tmp_path, monkeypatch, argv, env, needle):
    d = tmp_path / "case"
    shutil.copytree(template, d, symlinks=True)
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(d / "cache"))
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(d=d))
    before = _snapshot(d)
    result = CliRunner().invoke(app, [arg.format(d=d) for arg in argv])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in result.output
    assert len(line) < 1500 and "\x00" not in line
    assert needle in line, line
    after = _snapshot(d)
    assert {path: after.get(path) for path in before} == before  # nothing there was changed or removed
    assert not (d / "ran").exists()  # the hostile pickle did not run
    assert not (d.parent / "escaped.csv").exists() and not Path("/tmp/bioprofile-escaped.csv").exists()


def test_a_second_run_without_force_keeps_the_first_result(template, tmp_path):
    runner = CliRunner()
    argv = ["bench", "clustering", str(template / "cells.h5ad"), "--label-key", "cell_type", "--no-pca"]
    first = runner.invoke(app, [*argv, "-o", str(tmp_path / "cl")])
    assert first.exit_code == 0, first.output
    before = _snapshot(tmp_path)
    assert "cl.md" in before and "cl.json" in before and any(p.startswith("cl_umap") for p in before)
    again = runner.invoke(app, [*argv, "-o", str(tmp_path / "cl")])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert _snapshot(tmp_path) == before
    forced = runner.invoke(app, [*argv, "-o", str(tmp_path / "cl"), "--force"])
    assert forced.exit_code == 0, forced.output


def test_outputs_follow_the_umask_and_leave_no_temporary_file(template, tmp_path):
    import os

    from bioprofile.evaluate.report import write_json

    table = EntityEmbeddings.read(template / "emb.parquet")
    old = os.umask(0o027)
    try:
        for fmt in ("parquet", "npz", "h5ad", "pt"):
            path = table.write(tmp_path / f"t.{fmt}")
            assert path.stat().st_mode & 0o777 == 0o640, fmt
        assert write_json({"a": 1}, tmp_path / "r.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "t.h5ad", "t.npz", "t.parquet", "t.pt"]
