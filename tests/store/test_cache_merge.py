"""cache merge: shard stores joined into one with the checks of cache import, all or nothing."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cache_admin import cache_info
from bioprofile.cache_rows import merge_stores
from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store

KEY = {"template": "concise", "generator": "writer@1", "params": {"max_new_tokens": 64}}
ENCODER = "minilm@1"


def _shard(folder, texts: dict[str, str]):
    folder.mkdir(parents=True)
    with Store(folder / "store.sqlite") as store:
        store.put_profiles(texts, **KEY)
        store.put_vectors({t: np.full(4, len(t), dtype=np.float32) for t in texts.values()}, encoder=ENCODER)
    return folder


@pytest.fixture
def shards(tmp_path):
    return [
        _shard(tmp_path / "shard-0", {"HGNC:1": "a gene", "HGNC:2": "another gene"}),
        _shard(tmp_path / "shard-1", {"HGNC:3": "a third gene"}),
    ]


def test_the_cli_merges_shard_stores_into_one(tmp_path, shards):
    result = CliRunner().invoke(
        app, ["cache", "merge", *map(str, shards), "--cache-dir", str(tmp_path / "all")]
    )
    assert result.exit_code == 0, result.output
    assert "added 3 profiles and 3 vectors of 2 stores" in result.stdout
    with Store(tmp_path / "all" / "store.sqlite") as store:
        assert store.get_profiles(["HGNC:1", "HGNC:2", "HGNC:3"], **KEY) == {
            "HGNC:1": "a gene",
            "HGNC:2": "another gene",
            "HGNC:3": "a third gene",
        }
        assert len(store.get_vectors(["a gene", "a third gene"], encoder=ENCODER)) == 2
    again = CliRunner().invoke(
        app, ["cache", "merge", *map(str, shards), "--cache-dir", str(tmp_path / "all")]
    )
    assert again.exit_code == 0 and "(6 already there)" in again.stdout


def test_two_shards_with_one_key_of_different_text_are_refused_and_nothing_is_written(tmp_path, shards):
    clash = _shard(tmp_path / "shard-2", {"HGNC:1": "not the same text"})
    with Store(tmp_path / "all" / "store.sqlite") as store:
        with pytest.raises(BioprofileInputError) as err:
            merge_stores(store, [*shards, clash])
    message = str(err.value)
    assert "shard-0" in message and "shard-2" in message and "HGNC:1" in message and "\n" not in message
    assert cache_info(tmp_path / "all" / "store.sqlite").n_profiles == 0
    result = CliRunner().invoke(
        app, ["cache", "merge", *map(str, [*shards, clash]), "--cache-dir", str(tmp_path / "cli")]
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_row_that_differs_from_the_target_store_is_refused_without_force(tmp_path, shards):
    target = _shard(tmp_path / "all", {"HGNC:3": "an older text"})
    with Store(target / "store.sqlite") as store:
        with pytest.raises(BioprofileInputError, match="differ from those in the store"):
            merge_stores(store, shards)
        assert store.get_profiles(["HGNC:1"], **KEY) == {}
        merge_stores(store, shards, overwrite=True)
        assert store.get_profiles(["HGNC:3"], **KEY) == {"HGNC:3": "a third gene"}


def test_an_unfit_vector_is_refused(tmp_path, shards):
    with sqlite3.connect(shards[1] / "store.sqlite") as conn:
        conn.execute("UPDATE vectors SET vector = ?", (np.array([np.nan] * 4, dtype="<f4").tobytes(),))
    with Store(tmp_path / "all" / "store.sqlite") as store:
        with pytest.raises(BioprofileInputError, match="vector row 0 is incomplete or malformed"):
            merge_stores(store, shards)
        with pytest.raises(BioprofileInputError, match="no store at"):
            merge_stores(store, [tmp_path / "nowhere"])
