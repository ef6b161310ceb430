"""Nothing poisoned: bad vectors never enter by import nor leave by a read; a damaged store file is quarantined.

Through the CLI and the Python API, on real SQLite stores and the bundled encoder.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bioprofile.cache_admin import cache_info, export_cache, import_cache
from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.encoders.local import DEFAULT_ENCODER_ID
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store, text_hash

ENCODER = "enc@1"


def _store_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("store.sqlite*"))}


def _export(tmp_path: Path, rows: list[dict]) -> Path:
    """An export file (the real format, written by export_cache) whose rows are replaced by ``rows``."""
    source = tmp_path / "source" / "store.sqlite"
    with Store(source) as store:
        store.put_profiles({"HGNC:1": "one"}, template="t", generator="g", params={})
        store.put_vectors({"one": np.ones(4)}, encoder=ENCODER)
        path = tmp_path / "export.parquet"
        export_cache(store, path)
    original = pq.read_table(path)
    base = original.to_pylist()
    template = {
        "profile": next(r for r in base if r["kind"] == "profile"),
        "vector": next(r for r in base if r["kind"] == "vector"),
    }
    table = pa.Table.from_pylist([{**template[r["kind"]], **r} for r in rows], schema=original.schema)
    pq.write_table(table, path)
    return path


def _vector_row(text: str, values, shape: str | None = None) -> dict:
    array = np.asarray(values, dtype="<f4")
    return {
        "kind": "vector",
        "text_sha256": text_hash(text),
        "encoder": ENCODER,
        "shape": shape if shape is not None else ",".join(map(str, array.shape)),
        "dim": int(array.shape[-1]) if array.ndim else 1,
        "vector": array.tobytes(),
    }


BAD_IMPORTS = {
    "nan": [_vector_row("a", [1.0, np.nan, 0.0, 0.0])],
    "inf": [_vector_row("a", [1.0, np.inf, 0.0, 0.0])],
    "empty": [_vector_row("a", np.zeros(0, dtype=np.float32), shape="0")],
    "two-d": [_vector_row("a", np.ones((2, 4)))],
    "wrong-width": [_vector_row("a", np.ones(3))],  # the store holds width 4 for this encoder
    "two-widths-in-file": [
        _vector_row("x", np.ones(5) * 2) | {"encoder": "new@1"},
        _vector_row("y", np.ones(6)) | {"encoder": "new@1"},
    ],
    "one-key-two-texts": [
        {
            "kind": "profile",
            "entity": "HGNC:9",
            "template": "t",
            "generator": "g",
            "params": "{}",
            "text": "first",
        },
        {
            "kind": "profile",
            "entity": "HGNC:9",
            "template": "t",
            "generator": "g",
            "params": "{}",
            "text": "second",
        },
    ],
}


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_import_refuses_poisoned_rows_before_writing_any(tmp_path, case):
    target = tmp_path / "target"
    with Store(target / "store.sqlite") as store:
        store.put_vectors({"kept": np.ones(4)}, encoder=ENCODER)
    good = _vector_row("good text", np.ones(4) * 3)  # a sound row beside the bad one: all or nothing
    path = _export(tmp_path, [good, *BAD_IMPORTS[case]])
    before = _store_bytes(target)
    result = CliRunner().invoke(app, ["cache", "import", str(path), "--cache-dir", str(target)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output, (
        result.stderr
    )
    assert _store_bytes(target) == before
    with Store(target / "store.sqlite") as store, pytest.raises(BioprofileInputError):
        import_cache(store, path)


def test_import_takes_a_sound_file_with_an_identical_row_twice(tmp_path):
    row = _vector_row("a", np.ones(4))
    path = _export(tmp_path, [row, row])
    with Store(tmp_path / "t" / "store.sqlite") as store:
        assert import_cache(store, path).vectors == 1


def _poison(store_file: Path, text: str, blob: bytes, shape: str, dim: int, encoder: str) -> None:
    with sqlite3.connect(store_file) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO vectors (text_sha256, encoder, shape, dim, vector) VALUES (?, ?, ?, ?, ?)",
            (text_hash(text), encoder, shape, dim, blob),
        )
    conn.close()


def test_a_store_poisoned_by_raw_sql_is_reported_and_never_served(tmp_path):
    summaries = tmp_path / "summaries.tsv"
    summaries.write_text(
        "symbol\tsummary\nTP53\tGuardian of the genome.\nBRCA1\tRepairs DNA breaks.\nEGFR\tA growth factor receptor.\n"
    )
    run = [
        "embed-genes",
        "--summaries",
        str(summaries),
        "TP53",
        "BRCA1",
        "EGFR",
        "--cache-dir",
        str(tmp_path),
        "--quiet",
    ]
    first = CliRunner().invoke(app, [*run, "-o", str(tmp_path / "first.parquet")])
    assert first.exit_code == 0, first.output
    clean = GeneEmbeddings.read(tmp_path / "first.parquet")
    encoder = clean.provenance["encoder"]
    store_file = tmp_path / "store.sqlite"
    # NaN in TP53's vector, a wrong width for BRCA1's: as a hand edit or an older version could leave them
    nan = np.asarray(clean.vectors[0], dtype="<f4").copy()
    nan[3] = np.nan
    _poison(store_file, clean.texts[0], nan.tobytes(), str(nan.size), nan.size, encoder)
    _poison(store_file, clean.texts[1], np.ones(7, dtype="<f4").tobytes(), "7", 7, encoder)

    info = CliRunner().invoke(app, ["cache", "info", "--cache-dir", str(tmp_path)])
    assert info.exit_code == 0 and "damaged: 2 vectors" in info.stderr, info.output
    assert {row["encoder"]: row["damaged"] for row in cache_info(store_file).encoders} == {encoder: 2}

    second = CliRunner().invoke(app, [*run, "-o", str(tmp_path / "second.parquet")])
    assert second.exit_code == 0, second.output
    again = GeneEmbeddings.read(tmp_path / "second.parquet")
    assert np.isfinite(np.stack(again.vectors)).all()
    np.testing.assert_allclose(np.stack(again.vectors), np.stack(clean.vectors), atol=1e-5)
    # the poisoned rows were replaced by what the encoder makes
    assert {row["encoder"]: row["damaged"] for row in cache_info(store_file).encoders} == {encoder: 0}


def test_a_store_with_a_damaged_page_is_quarantined_and_the_run_completes(tmp_path):
    store_file = tmp_path / "store.sqlite"
    with Store(store_file) as store:
        store.put_profiles(
            {f"HGNC:{i}": "profile text " * 40 + str(i) for i in range(100_000, 102_000)},
            template="t",
            generator="g",
            params={},
        )
        rng = np.random.default_rng(0)
        store.put_vectors(
            {f"other {i}": rng.standard_normal(384) for i in range(60)}, encoder=DEFAULT_ENCODER_ID
        )
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(store_file) as conn:  # the root page of the vectors table: every lookup crosses it
        (root,) = conn.execute("SELECT pageno FROM dbstat WHERE name = 'vectors' AND path = '/'").fetchone()
    conn.close()
    data = bytearray(store_file.read_bytes())
    data[(root - 1) * 4096 : root * 4096] = b"\xff" * 4096
    store_file.write_bytes(bytes(data))
    summaries = tmp_path / "summaries.tsv"
    summaries.write_text("symbol\tsummary\nTP53\tGuardian of the genome.\n")
    result = CliRunner().invoke(
        app,
        [
            "embed-genes",
            "--summaries",
            str(summaries),
            "TP53",
            "-o",
            str(tmp_path / "g.parquet"),
            "--cache-dir",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    aside = [
        p
        for p in tmp_path.iterdir()
        if p.name.startswith("store.sqlite.damaged-") and not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(aside) == 1 and str(aside[0]) in result.stderr, result.stderr
    assert (tmp_path / "g.parquet").is_file()
    with Store(store_file) as store:  # the fresh store holds what was read back, and the new vector
        assert store.counts() == {"profiles": 2000, "vectors": 1}
