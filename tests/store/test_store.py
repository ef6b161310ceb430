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
from bioprofile.store import (
    DamagedStoreWarning,
    Store,
    canonical_params,
    default_store_path,
    open_store,
    text_hash,
)

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
        store.put_vectors({"text a": flat}, encoder="minilm")
        store.put_vectors({"text b": grid}, encoder="grid")  # one encoder's vectors share one width
        got = store.get_vectors(["text a", "text b", "text c", "text a"], encoder="minilm")
        assert set(got) == {"text a"}
        assert got["text a"].dtype == np.float32 and got["text a"].shape == (384,)
        np.testing.assert_array_equal(got["text a"], flat.astype(np.float32))
        np.testing.assert_array_equal(store.get_vectors(["text b"], encoder="grid")["text b"], grid)
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


def _damaged_store(path: Path, n: int = 2000) -> dict[str, str]:
    with Store(path) as store:
        texts = {f"G{i}": "profile text " * 40 + str(i) for i in range(n)}
        store.put_profiles(texts, template="t", generator="g", params={})
        store.put_vectors({"kept text": np.ones(4)}, encoder="e")
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(path) as conn:  # three leaf pages of the profiles table in the middle of the file
        leaves = [
            n
            for (n,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'profiles' AND pagetype = 'leaf' ORDER BY pageno"
            )
        ]
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for number in leaves[len(leaves) // 2 : len(leaves) // 2 + 3]:
        data[(number - 1) * page : number * page] = b"\xff" * page  # the header stays intact
    path.write_bytes(bytes(data))
    return texts


def test_a_damaged_page_is_quarantined_and_the_readable_rows_kept(tmp_path):
    path = tmp_path / "s.sqlite"
    texts = _damaged_store(path)
    with pytest.warns(DamagedStoreWarning, match="was damaged .*moved to .*s.sqlite.damaged-") as caught:
        with Store(path) as store:
            found = store.get_profiles(list(texts), template="t", generator="g", params={})
            aside = store.quarantined
            assert store.counts()["profiles"] == len(found)
            # the work goes on in the fresh store: writes and reads as usual
            store.put_profiles({"NEW": "new text"}, template="t", generator="g", params={})
            assert store.get_vectors(["kept text"], encoder="e")["kept text"].tolist() == [1.0] * 4
    assert len(caught) == 1 and str(aside) in str(caught[0].message)
    assert aside.is_file() and aside.name.startswith("s.sqlite.damaged-")
    # most rows were on readable pages (read forward up to the damage and backward from the end); none invented
    assert len(texts) // 2 < len(found) < len(texts) and all(texts[k] == v for k, v in found.items())
    with Store(path) as store:  # the next session finds a sound store
        assert store.get_profiles(["NEW"], template="t", generator="g", params={}) == {"NEW": "new text"}
        assert store.quarantined is None


def test_a_damaged_page_seen_by_a_maintenance_read_is_one_line(tmp_path):
    path = tmp_path / "s.sqlite"
    _damaged_store(path)
    with pytest.raises(BioprofileInputError, match="was damaged and was moved to .*run again") as err:
        with Store(path) as store, store.reading() as conn:
            conn.execute("SELECT COUNT(*), SUM(LENGTH(text)) FROM profiles").fetchall()
    assert "\n" not in str(err.value)


def test_unfit_vector_rows_are_never_served(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.put_vectors({f"t{i}": np.full(4, i, dtype=np.float32) for i in range(5)}, encoder="e")
        # poisoned by hand, as an older version or a raw SQL write could: NaN, wrong width, bytes not matching
        store._conn.execute(
            "UPDATE vectors SET vector = ? WHERE text_sha256 = ?",
            (np.array([1, np.nan, 0, 0], dtype="<f4").tobytes(), text_hash("t1")),
        )
        store._conn.execute(
            "UPDATE vectors SET vector = ?, shape = '3', dim = 3 WHERE text_sha256 = ?",
            (np.ones(3, dtype="<f4").tobytes(), text_hash("t2")),
        )
        store._conn.execute("UPDATE vectors SET shape = '5' WHERE text_sha256 = ?", (text_hash("t3"),))
        with pytest.warns(DamagedStoreWarning, match="3 vectors of e .* damaged"):
            got = store.get_vectors([f"t{i}" for i in range(5)], encoder="e")
        assert sorted(got) == ["t0", "t4"] and store.rejected_vectors == {"e": 3}
        with pytest.warns(
            DamagedStoreWarning
        ):  # the caller knows the width: a lone row of another is refused
            assert store.get_vectors(["t2"], encoder="e", width=4) == {}


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
