"""The SQLite store: keys, round trips, persistence, and writers in several processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store, canonical_params, default_store_path, open_store, text_hash

KEY = {
    "template": "gene-v1",
    "generator": "tiny-llama@abc",
    "params": {"max_new_tokens": 64, "temperature": 0.0},
}


def test_text_hash_is_sha256_of_utf8():
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert text_hash("TP53 – p53") != text_hash("TP53 - p53")
    assert len(text_hash("x")) == 64


def test_params_canonical_whatever_the_order():
    assert canonical_params({"b": 1, "a": {"y": 2, "x": 1}}) == canonical_params(
        {"a": {"x": 1, "y": 2}, "b": 1}
    )
    assert canonical_params(None) == canonical_params({}) == "{}"
    assert canonical_params({"path": Path("/m")}) == '{"path":"/m"}'


def test_profiles_round_trip_and_keying(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        assert store.journal_mode == "wal"
        store.put_profiles({"TP53": "tumour suppressor", "EGFR": "receptor"}, **KEY)
        assert store.get_profiles(["TP53", "BRCA1", "EGFR"], **KEY) == {
            "TP53": "tumour suppressor",
            "EGFR": "receptor",
        }
        # Same params in another order hit the same rows; any other key part misses.
        reordered = dict(KEY, params={"temperature": 0.0, "max_new_tokens": 64})
        assert store.get_profiles(["TP53"], **reordered) == {"TP53": "tumour suppressor"}
        assert (
            store.get_profiles(["TP53"], **dict(KEY, params={"max_new_tokens": 65, "temperature": 0.0})) == {}
        )
        assert store.get_profiles(["TP53"], **dict(KEY, template="gene-v2")) == {}
        assert store.get_profiles(["TP53"], **dict(KEY, generator="other")) == {}
        # A rerun writing the same key keeps the first text and adds no row.
        store.put_profiles({"TP53": "a different sample"}, **KEY)
        assert store.get_profiles(["TP53"], **KEY) == {"TP53": "tumour suppressor"}
        assert store.counts() == {"profiles": 2, "vectors": 0}


def test_many_entities_beyond_sqlite_variable_limit(tmp_path):
    texts = {f"G{i}": f"profile {i}" for i in range(2500)}
    with Store(tmp_path / "s.sqlite") as store:
        store.put_profiles(texts, **KEY)
        got = store.get_profiles(list(texts) + ["missing"], **KEY)
    assert got == texts


def test_vectors_round_trip_float32_with_shape(tmp_path):
    rng = np.random.default_rng(0)
    flat = rng.normal(size=384)  # float64 in, float32 out
    grid = rng.normal(size=(3, 8)).astype(np.float32)
    with Store(tmp_path / "s.sqlite") as store:
        store.put_vectors({"text a": flat, "text b": grid}, encoder="minilm")
        got = store.get_vectors(["text a", "text b", "text c", "text a"], encoder="minilm")
        assert set(got) == {"text a", "text b"}
        assert got["text a"].dtype == np.float32 and got["text a"].shape == (384,)
        np.testing.assert_array_equal(got["text a"], flat.astype(np.float32))
        np.testing.assert_array_equal(got["text b"], grid)
        got["text a"][0] = 123.0  # returned arrays are writable copies
        assert store.get_vectors(["text b"], encoder="other") == {}
        # Re-putting replaces in place: still one row per (text, encoder).
        store.put_vectors({"text a": np.zeros(384)}, encoder="minilm")
        np.testing.assert_array_equal(
            store.get_vectors(["text a"], encoder="minilm")["text a"], np.zeros(384)
        )
        assert store.counts()["vectors"] == 2


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "nested" / "dir" / "s.sqlite"
    with Store(path) as store:
        store.put_profiles({"TP53": "p53"}, **KEY)
        store.put_vectors({"p53": np.ones(4)}, encoder="e")
    with Store(path) as store:
        assert store.get_profiles(["TP53"], **KEY) == {"TP53": "p53"}
        np.testing.assert_array_equal(store.get_vectors(["p53"], encoder="e")["p53"], np.ones(4, np.float32))


def test_default_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    assert default_store_path() == tmp_path / "cache" / "store.sqlite"
    with Store() as store:
        assert store.path == tmp_path / "cache" / "store.sqlite"
    assert (tmp_path / "cache" / "store.sqlite").is_file()
    monkeypatch.delenv("BIOPROFILE_CACHE_DIR")
    assert default_store_path().name == "store.sqlite"
    assert "bioprofile" in str(default_store_path())


def test_unusable_path_is_an_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BioprofileInputError, match="cannot open the cache"):
        Store(blocker / "s.sqlite")
    not_sqlite = tmp_path / "garbage.sqlite"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    # A broken file is named as such, with what to do: not "point at a writable folder".
    with pytest.raises(BioprofileInputError, match="is damaged .*move it away") as err:
        Store(not_sqlite)
    assert "writable" not in str(err.value)


def test_a_damaged_page_inside_the_store_is_one_line_at_read_time(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        texts = {f"G{i}": "profile text " * 40 + str(i) for i in range(2000)}
        store.put_profiles(texts, template="t", generator="g", params={})
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page : 14 * page] = b"\xff" * (4 * page)  # pages of the profiles table, header intact
    path.write_bytes(bytes(data))
    with pytest.raises(BioprofileInputError, match="is damaged") as err:
        with Store(path) as store:
            store.get_profiles(list(texts), template="t", generator="g", params={})
            store.counts()
    assert "\n" not in str(err.value)


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from bioprofile.store import Store
    path, tag = sys.argv[1], sys.argv[2]
    with Store(path) as store:
        for batch in range(40):
            texts = {f"{tag}-{batch}-{i}": f"text {tag} {batch} {i}" for i in range(25)}
            store.put_profiles(texts, template="t", generator="g", params={})
            store.put_vectors({t: np.full(8, batch, np.float32) for t in texts.values()}, encoder="e")
            store.get_profiles(list(texts), template="t", generator="g", params={})
    """
)


def test_concurrent_writers_in_separate_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    Store(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag]) for tag in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0] == 3 * 40 * 25
        assert conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 3 * 40 * 25


def test_open_store_keeps_a_given_store_open_and_closes_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    with Store(tmp_path / "mine.sqlite") as mine:
        with open_store(mine) as store:
            assert store is mine
        assert mine._conn is not None  # the caller's store outlives the block
    with open_store() as store:
        assert store.path == tmp_path / "cache" / "store.sqlite"
        opened = store
    assert opened._conn is None
