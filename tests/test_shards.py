"""Shards for job arrays: the split by a hash of the key, the SLURM script of docs/scale.md run locally, the merge."""

from __future__ import annotations

import os
import re
import shlex

import numpy as np
import pytest
from helpers import REPO
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import EntityEmbeddings
from bioprofile.entities import Entity, EntityResolution
from bioprofile.errors import BioprofileInputError
from bioprofile.shards import Shard, as_shard, merge_tables, select_shard, shard_of

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CD4", "CD8A", "PTEN", "GAPDH"]
N = 3
SCALE_DOC = (REPO / "docs" / "scale.md").read_text(encoding="utf-8")


def _script_line(prefix: str) -> str:
    """The one line of docs/scale.md's bash blocks that starts with ``prefix``."""
    blocks = re.findall(r"```bash\n(.*?)```", SCALE_DOC, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, lines
    return lines[0]


def _resolution(keys: list[str]) -> EntityResolution:
    return EntityResolution(entities=[Entity(key=k, symbol=k.split(":")[-1]) for k in keys])


def test_the_split_is_stable_under_list_order_and_length():
    keys = [f"HGNC:{n}" for n in range(1, 400)]
    whole = {e.key: i for i in range(5) for e in select_shard(_resolution(keys), (i, 5))[0].entities}
    assert sorted(whole) == sorted(keys)  # every key in exactly one shard
    assert set(whole.values()) == set(range(5))
    shuffled = keys[::-1][:150]
    for i in range(5):
        part, info = select_shard(_resolution(shuffled), Shard(i, 5))
        assert all(whole[e.key] == i for e in part.entities)
        assert info["entities"] == len(part.entities) and info["of"] == 150
    assert (
        shard_of("HGNC:11998", 7)
        == shard_of("HGNC:11998", 7)
        == whole.get("HGNC:11998", shard_of("HGNC:11998", 7))
    )


@pytest.mark.parametrize("value", ["3/3", "-1/3", "1/0", "1", "a/b", "1/2/3", (2, 2), (0, 0)])
def test_bad_shards_are_refused(value):
    with pytest.raises(BioprofileInputError) as err:
        as_shard(value)
    assert err.value.argument == "shard" and "\n" not in str(err.value)
    assert as_shard("2/3") == Shard(2, 3) == as_shard((2, 3))


@pytest.mark.parametrize("flag", ["3/3", "x/3", "1/0"])
def test_a_bad_shard_flag_is_one_line_exit_2_before_any_work(tmp_path, flag):
    result = CliRunner().invoke(
        app, ["embed-genes", "TP53", "--shard", flag, "-o", str(tmp_path / "o.parquet")]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--shard" in lines[0], lines


@pytest.fixture(scope="module")
def shard_run(tmp_path_factory, tiny_bert_dir):
    """The shard commands of docs/scale.md's array script, run for i = 0..N-1 (texts given, so no writer)."""
    work = tmp_path_factory.mktemp("slurm")
    (work / "all.txt").write_text("\n".join(GENES) + "\n")
    (work / "summaries.tsv").write_text(
        "symbol\ttext\n" + "".join(f"{g}\t{g} is a gene with role {k}\n" for k, g in enumerate(GENES))
    )
    (work / "out").mkdir()
    texts = ["--summaries", str(work / "summaries.tsv"), "--encoder", str(tiny_bert_dir)]
    command = _script_line("bioprofile embed-genes")
    runner = CliRunner()
    here = os.getcwd()
    os.chdir(work)
    try:
        for i in range(N):
            line = command.replace("$SLURM_ARRAY_TASK_ID", str(i)).replace("$N", str(N)).replace("$i", str(i))
            result = runner.invoke(app, [*shlex.split(line)[1:], *texts])
            assert result.exit_code == 0, result.output
        whole = runner.invoke(
            app,
            ["embed-genes", "-f", "all.txt", "--cache-dir", "cache/all", "-o", "whole.parquet", "-q", *texts],
        )
        assert whole.exit_code == 0, whole.output
    finally:
        os.chdir(here)
    return work


def test_merged_shards_equal_the_unsharded_run(shard_run):
    shards = [EntityEmbeddings.read(shard_run / "out" / f"shard-{i}.parquet") for i in range(N)]
    assert [s.provenance["shard"]["index"] for s in shards] == list(range(N))
    assert sum(len(s) for s in shards) == len(GENES)
    assert all(s.provenance["shard"]["of"] == len(GENES) for s in shards)
    assert all(len(s) for s in shards)  # the split of these genes leaves no shard empty
    # the merge line of docs/scale.md, its glob expanded as the shell would
    argv = shlex.split(_script_line("bioprofile merge"))[1:]
    argv = [
        argv[0],
        argv[1],
        *sorted(str(p.relative_to(shard_run)) for p in (shard_run / "out").glob("shard-*")),
    ]
    result = CliRunner().invoke(app, [str(shard_run / a) if "/" in a else a for a in argv])
    assert result.exit_code == 0, result.output
    merged = EntityEmbeddings.read(shard_run / "out" / "genes.parquet")
    whole = EntityEmbeddings.read(shard_run / "whole.parquet")
    assert merged.ids == whole.ids and merged.symbols == whole.symbols and merged.texts == whole.texts
    # texts byte for byte; vectors to float32 rounding: batch padding differs between a shard and the whole run
    np.testing.assert_allclose(merged.vectors, whole.vectors, rtol=0, atol=1e-6)
    assert merged.provenance["n_genes"] == len(GENES)
    assert "shard" not in merged.provenance and merged.provenance["merged_shards"]["count"] == N
    # never replaced without --force
    again = CliRunner().invoke(app, ["merge", str(shard_run / "out" / "genes.parquet"), *argv[2:]])
    assert again.exit_code == 2


def _merge_error(tables, names) -> str:
    with pytest.raises(BioprofileInputError) as err:
        merge_tables(tables, names=names)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_merge_refuses_other_runs_overlaps_and_gaps(shard_run):
    paths = [shard_run / "out" / f"shard-{i}.parquet" for i in range(N)]
    tables = [EntityEmbeddings.read(p) for p in paths]
    names = [p.name for p in paths]
    other = EntityEmbeddings.read(paths[1])
    other.provenance["encoder"] = "another-encoder"
    assert "differ in encoder" in _merge_error([tables[0], other, tables[2]], names)
    assert "shard 1/3 given twice" in _merge_error(
        [tables[0], tables[1], tables[1], tables[2]], [*names, "copy"]
    )
    stolen = EntityEmbeddings(
        ids=[*tables[2].ids, tables[0].ids[0]],
        symbols=[*tables[2].symbols, tables[0].symbols[0]],
        texts=[*tables[2].texts, tables[0].texts[0]],
        vectors=np.vstack([tables[2].vectors, tables[0].vectors[:1]]),
        provenance={**tables[2].provenance},
    )
    stolen.provenance["shard"] = {
        **stolen.provenance["shard"],
        "positions": [*stolen.provenance["shard"]["positions"], 0],
    }
    assert "is in two shards" in _merge_error([tables[0], tables[1], stolen], names)
    assert (
        _merge_error([tables[2], tables[0]], [names[2], names[0]])
        == "missing shards 1 of 3 (indices from 0): run them, then merge all 3"
    )
    result = CliRunner().invoke(app, ["merge", str(shard_run / "gap.parquet"), str(paths[0]), str(paths[2])])
    assert result.exit_code == 2 and not (shard_run / "gap.parquet").exists()
    assert result.stderr.strip().splitlines() == [
        "error: missing shards 1 of 3 (indices from 0): run them, then merge all 3"
    ]
    whole = EntityEmbeddings.read(shard_run / "whole.parquet")
    assert "records no shard" in _merge_error([whole], ["whole.parquet"])


def test_a_rerun_shard_resumes_from_its_own_store(shard_run, tiny_bert_dir):
    from bioprofile.cache_admin import cache_info

    store = shard_run / "cache" / "shard-0" / "store.sqlite"
    before = cache_info(store)
    first = EntityEmbeddings.read(shard_run / "out" / "shard-0.parquet")
    argv = [
        "embed-genes",
        "-f",
        str(shard_run / "all.txt"),
        "--shard",
        f"0/{N}",
        "--cache-dir",
        str(store.parent),
    ]
    argv += [
        "--summaries",
        str(shard_run / "summaries.tsv"),
        "--encoder",
        str(tiny_bert_dir),
        "-q",
        "--force",
    ]
    result = CliRunner().invoke(app, [*argv, "-o", str(shard_run / "again.parquet")])
    assert result.exit_code == 0, result.output
    again = EntityEmbeddings.read(shard_run / "again.parquet")
    after = cache_info(store)
    assert (after.n_profiles, after.n_vectors) == (
        before.n_profiles,
        before.n_vectors,
    )  # nothing stored twice
    assert again.ids == first.ids and np.array_equal(again.vectors, first.vectors)  # served from the store
    assert again.provenance["shard"] == first.provenance["shard"]


def test_protein_shards_merge_into_the_unsharded_table(tmp_path, tiny_bert_dir):
    from bioprofile.pipeline import embed_proteins
    from bioprofile.store import Store

    targets = ["CD45RA", "CD45RO", "HLA-DR", "CD3", "CD4", "CD8"]
    texts = {t: f"{t} marks some immune cells" for t in targets}
    with Store(tmp_path / "store.sqlite") as store:
        options = {"summaries": texts, "encoder": str(tiny_bert_dir), "store": store}
        whole = embed_proteins(targets, **options)
        shards = [embed_proteins(list(reversed(targets)), shard=f"{i}/2", **options) for i in (1, 0)]
    # a reversed list gives other positions: its shards merge in its order, the same rows
    merged = merge_tables(shards)
    assert merged.ids == list(reversed(whole.ids)) and merged.kind == "protein"
    assert sorted(merged.provenance["protein_targets"]) == sorted(targets)
    assert merged.provenance["n_entities"] == len(targets)
    np.testing.assert_array_equal(
        merged.select(whole.symbols).vectors, whole.vectors
    )  # vectors from the store
