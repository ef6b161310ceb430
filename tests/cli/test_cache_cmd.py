"""`bioprofile cache info|prune|export|import` on a real SQLite store."""

from __future__ import annotations

import json
import pickle
import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bioprofile.cache_admin import PruneRule, cache_info, export_cache, id_matches, import_cache, prune_cache
from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store

SMOL = "smollm2-135m-instruct@3f2a9c01"
OTHER = "qwen2.5-0.5b@77aa00bb"
MINILM = "all-MiniLM-L6-v2@1a2b"
BERT = "hf:biobert@9c9c"
KEY = {"template": "concise@1", "params": {"max_new_tokens": 256, "do_sample": False, "dtype": "auto"}}


def _vector(text: str, dim: int) -> np.ndarray:
    return np.random.default_rng(len(text) * dim).standard_normal(dim).astype(np.float32)


def _fill(path) -> None:
    """Two models (one text shared by both), two encoders, and one profile stored long ago."""
    smol = {
        "HGNC:11998": "TP53 guards the genome.",
        "HGNC:1100": "BRCA1 repairs DNA.",
        "HGNC:3236": "shared text",
    }
    other = {"HGNC:11998": "p53, a tumour suppressor.", "HGNC:3236": "shared text"}
    with Store(path) as store:
        store.put_profiles(smol, generator=SMOL, **KEY)
        store.put_profiles(other, generator=OTHER, **KEY)
        texts = set(smol.values()) | set(other.values())
        store.put_vectors({t: _vector(t, 8) for t in texts}, encoder=MINILM)
        store.put_vectors({t: _vector(t, 4) for t in texts}, encoder=BERT)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE profiles SET created = '2020-01-01T00:00:00.000Z' WHERE entity = 'HGNC:1100'")


def _rows(path) -> tuple[list, list]:
    with sqlite3.connect(path) as conn:
        profiles = sorted(conn.execute("SELECT entity, template, generator, params, text FROM profiles"))
        vectors = sorted(conn.execute("SELECT text_sha256, encoder, shape, dim, vector FROM vectors"))
    return profiles, vectors


def _run(*args: str):
    return CliRunner().invoke(app, ["cache", *args])


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def store_dir(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    _fill(folder / "store.sqlite")
    return folder


def test_info_counts_per_model_and_encoder(store_dir):
    result = _run("info", "--cache-dir", str(store_dir), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["n_profiles"] == 5 and info["n_vectors"] == 8 and info["journal_mode"] == "wal"
    assert {g["generator"]: g["profiles"] for g in info["generators"]} == {SMOL: 3, OTHER: 2}
    assert {e["encoder"]: (e["vectors"], e["dim"], e["bytes"]) for e in info["encoders"]} == {
        MINILM: (4, 8, 4 * 8 * 4),
        BERT: (4, 4, 4 * 4 * 4),
    }
    assert info["size_bytes"] > 0
    shown = _run("info", "--cache-dir", str(store_dir))
    assert "…" not in shown.stdout  # ids (what prune and export take) and dates are shown whole
    assert (
        shown.exit_code == 0
        and SMOL in shown.stdout
        and MINILM in shown.stdout
        and "5 profiles" in shown.stdout
    )


def test_info_of_a_missing_store_creates_nothing(tmp_path):
    result = _run("info", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0 and "no store" in result.stdout
    assert not (tmp_path / "store.sqlite").exists()
    assert not cache_info(tmp_path / "store.sqlite").exists


def test_patterns_match_ids_names_and_globs():
    assert id_matches(SMOL, SMOL) and id_matches(SMOL, "smollm2-135m-instruct") and id_matches(SMOL, "smol*")
    assert not id_matches(SMOL, "smollm2") and not id_matches(OTHER, "smol*")


def test_prune_needs_a_criterion_and_force(store_dir):
    before = _rows(store_dir / "store.sqlite")
    assert "say what to prune" in _one_error_line(_run("prune", "--cache-dir", str(store_dir)))
    line = _one_error_line(_run("prune", "--model", "smollm2-135m-instruct", "--cache-dir", str(store_dir)))
    assert "3 profiles and 4 vectors" in line and "--force" in line and "--dry-run" in line
    dry = _run("prune", "--model", "smollm2-135m-instruct", "--dry-run", "--cache-dir", str(store_dir))
    assert (
        dry.exit_code == 0
        and f"3 profiles of {SMOL}" in dry.stdout
        and f"2 vectors of {MINILM}" in dry.stdout
    )
    assert _rows(store_dir / "store.sqlite") == before  # neither removed anything
    with pytest.raises(BioprofileInputError, match="older_than_days must be"):
        PruneRule(older_than_days=float("nan"))


def test_prune_a_model_keeps_the_vectors_other_profiles_share(store_dir):
    path = store_dir / "store.sqlite"
    result = _run("prune", "--model", "smollm2-135m-instruct", "--force", "--cache-dir", str(store_dir))
    assert result.exit_code == 0, result.output
    assert "removed 3 profiles and 4 vectors" in result.stdout
    profiles, vectors = _rows(path)
    assert {row[2] for row in profiles} == {OTHER}
    with Store(path) as store:
        kept = store.get_vectors(
            ["shared text", "p53, a tumour suppressor.", "TP53 guards the genome."], encoder=MINILM
        )
    assert set(kept) == {"shared text", "p53, a tumour suppressor."}  # the shared text's vector stays
    assert len(vectors) == 4


def test_prune_by_age_and_by_encoder(store_dir):
    path = store_dir / "store.sqlite"
    with Store(path) as store:
        old = prune_cache(store, PruneRule(older_than_days=365))
        assert old.profiles == {SMOL: 1} and old.vectors == {MINILM: 1, BERT: 1} and not old.dry_run
        assert store.get_profiles(["HGNC:1100"], generator=SMOL, **KEY) == {}
        bert = prune_cache(store, PruneRule(encoder="hf:*"), dry_run=True)
        assert bert.vectors == {BERT: 3} and bert.profiles == {}
    assert len(_rows(path)[1]) == 6  # the dry run removed nothing
    result = _run("prune", "--encoder", BERT, "--force", "--cache-dir", str(store_dir))
    assert result.exit_code == 0, result.output
    profiles, vectors = _rows(path)
    assert len(profiles) == 4 and {row[1] for row in vectors} == {MINILM}


def test_export_import_round_trip_between_machines(store_dir, tmp_path):
    out = tmp_path / "cache.parquet"
    result = _run("export", str(out), "--cache-dir", str(store_dir))
    assert result.exit_code == 0, result.output and "wrote 5 profiles and 8 vectors" in result.stdout
    assert pd.read_parquet(out)["kind"].value_counts().to_dict() == {"vector": 8, "profile": 5}
    other_machine = tmp_path / "b"
    result = _run("import", str(out), "--cache-dir", str(other_machine))
    assert result.exit_code == 0, result.output
    assert "added 5 profiles and 8 vectors" in result.stdout
    assert _rows(other_machine / "store.sqlite") == _rows(store_dir / "store.sqlite")
    again = _run("import", str(out), "--cache-dir", str(other_machine))
    assert (
        again.exit_code == 0
        and "added 0 profiles and 0 vectors" in again.stdout
        and "13 already" in again.stdout
    )
    with Store(other_machine / "store.sqlite") as store:
        texts = store.get_profiles(["HGNC:11998"], generator=SMOL, **KEY)
        vector = store.get_vectors(["TP53 guards the genome."], encoder=MINILM)["TP53 guards the genome."]
    assert texts == {"HGNC:11998": "TP53 guards the genome."}
    np.testing.assert_array_equal(vector, _vector("TP53 guards the genome.", 8))


def test_export_of_one_model_carries_only_its_texts_vectors(store_dir, tmp_path):
    with Store(store_dir / "store.sqlite") as store:
        result = export_cache(store, tmp_path / "other.parquet", model=OTHER, encoder="all-MiniLM-L6-v2")
    assert (result.profiles, result.vectors) == (2, 2)
    table = pd.read_parquet(tmp_path / "other.parquet")
    assert set(table["generator"].dropna()) == {OTHER} and set(table["encoder"].dropna()) == {MINILM}


def test_import_never_replaces_a_differing_entry_silently(store_dir, tmp_path):
    out = tmp_path / "cache.parquet"
    with Store(store_dir / "store.sqlite") as store:
        export_cache(store, out)
    target = tmp_path / "b" / "store.sqlite"
    with Store(target) as store:
        store.put_profiles({"HGNC:11998": "a different text"}, generator=SMOL, **KEY)
    before = _rows(target)
    line = _one_error_line(_run("import", str(out), "--cache-dir", str(target.parent)))
    assert "1 entries" in line and "nothing imported" in line and "--force" in line
    assert _rows(target) == before  # not one row added
    with Store(target) as store:
        done = import_cache(store, out, overwrite=True)
        assert (done.profiles, done.replaced) == (4, 1)
        assert store.get_profiles(["HGNC:11998"], generator=SMOL, **KEY) == {
            "HGNC:11998": "TP53 guards the genome."
        }


@pytest.mark.parametrize("kind", ["garbage", "pickle", "plain-parquet", "bad-vector", "folder", "missing"])
def test_import_refuses_what_is_not_an_export_in_one_line(store_dir, tmp_path, kind):
    path = tmp_path / f"{kind}.parquet"
    if kind == "garbage":
        path.write_bytes(b"PAR1 not really")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "plain-parquet":
        pd.DataFrame({"kind": ["profile"], "text": ["x"]}).to_parquet(path)
    elif kind == "bad-vector":
        with Store(store_dir / "store.sqlite") as store:
            export_cache(store, path)
        table = pd.read_parquet(path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        original = pq.read_table(path)
        table.loc[table["kind"] == "vector", "shape"] = "999"
        pq.write_table(
            pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(
                original.schema.metadata
            ),
            path,
        )
    elif kind == "folder":
        path.mkdir()
    target = tmp_path / "b"
    _one_error_line(_run("import", str(path), "--cache-dir", str(target)))
    if kind in ("folder", "missing"):
        assert not (target / "store.sqlite").exists()
    else:
        assert _rows(target / "store.sqlite") == ([], [])


def test_export_checks_its_output_before_reading(store_dir, tmp_path):
    existing = tmp_path / "old.parquet"
    existing.write_bytes(b"keep me")
    assert "already exists" in _one_error_line(_run("export", str(existing), "--cache-dir", str(store_dir)))
    assert existing.read_bytes() == b"keep me"
    assert "parquet" in _one_error_line(
        _run("export", str(tmp_path / "x.csv"), "--cache-dir", str(store_dir))
    )
    assert not (tmp_path / "x.csv").exists()
    missing = tmp_path / "none"
    assert "no store" in _one_error_line(
        _run("export", str(tmp_path / "y.parquet"), "--cache-dir", str(missing))
    )
    assert not missing.exists()
