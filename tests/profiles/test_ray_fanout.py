"""Profiles written on a local Ray cluster: the local path's texts and vectors, resume after a kill, failed prompts.

One cluster (``ray.init(num_cpus=2)``) serves the module: Ray takes seconds to start.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

import numpy as np
import pytest
import ray_backends
from helpers import TESTS
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.pipeline import embed_genes
from bioprofile.profiles import GenerationSettings, get_template
from bioprofile.profiles.ray_fanout import GeneratorSpec, RayOptions, RayProfileWriter, as_ray_options
from bioprofile.store import Store

ray = pytest.importorskip("ray", reason="Ray is the optional [ray] extra, not installed here")

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CD4", "CD8A", "PTEN", "GAPDH"]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs whose workers import the tests' helper modules (the logged backend).

    Yields the log of a logged backend built with default options (as the command line builds it), which fails on
    EGFR until the file ``<log>.fixed`` exists.
    """
    log = tmp_path_factory.mktemp("ray") / "defaults.log"
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, ray_backends.LOG_ENV: str(log), ray_backends.FAIL_ENV: "EGFR"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
        runtime_env={"env_vars": env},
    )
    yield log
    ray.shutdown()


@pytest.fixture
def logged(tmp_path):
    """The logged backend registered for one test; its spec writes its log into ``tmp_path``."""
    ray_backends.register()
    yield tmp_path / "written.log"
    ray_backends.unregister()


def _written(log) -> Counter:
    """How often each text was written (by any actor)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(line.split("\t")[1] for line in lines)


def test_ray_texts_and_vectors_equal_the_local_path(ray_cluster, tiny_llama_dir, tiny_bert_dir, tmp_path):
    # batch_size 1: chunks of 4 prompts, so 6 genes are 2 chunks, each generated in the batches of the local path
    genes = GENES[:6]
    options = {
        "generator": str(tiny_llama_dir),
        "settings": GenerationSettings(max_new_tokens=6, batch_size=1, threads=1),
        "encoder": f"hf:{tiny_bert_dir}",
    }
    with Store(tmp_path / "local.sqlite") as store:
        local = embed_genes(genes, store=store, **options)
    with Store(tmp_path / "ray.sqlite") as store:
        # one actor: each actor imports torch and loads the model, seconds a test need not spend twice
        on_ray = embed_genes(genes, store=store, ray=RayOptions(actors=1), **options)
        assert store.counts()["profiles"] == len(genes)
    assert on_ray.ids == local.ids and on_ray.texts == local.texts
    np.testing.assert_array_equal(on_ray.vectors, local.vectors)
    for key in ("generator", "generation_params", "template", "encoder"):
        assert on_ray.provenance[key] == local.provenance[key]
    assert on_ray.provenance["ray"] == {
        "address": "local",
        "actors": 1,
        "generated": len(genes),
        "failed": {},
    }
    assert "ray" not in local.provenance


def test_a_killed_run_resumes_from_the_store_without_duplicates(ray_cluster, logged, tmp_path):
    spec = GeneratorSpec(backend=ray_backends.NAME, options={"log": str(logged), "fail_on": ""})
    writer = RayProfileWriter(spec, RayOptions(actors=1))
    genes = normalize_genes(GENES).genes
    template = get_template("concise")
    stored_batches = []

    def killed_after_the_first_batch(n: int) -> None:
        stored_batches.append(n)
        raise KeyboardInterrupt  # the driver dies right after committing one batch

    with Store(tmp_path / "store.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            writer.write_profiles(
                genes, template=template, store=store, progress=killed_after_the_first_batch
            )
        kept = store.counts()["profiles"]
        assert kept == stored_batches[0] == 4  # one chunk of 4, committed before the kill
        before = _written(logged)
        texts = writer.write_profiles(genes, template=template, store=store)
        assert store.counts()["profiles"] == len(GENES)
    expected = [ray_backends.logged_text(template.messages(g)) for g in genes]
    assert texts == expected
    resumed = _written(logged) - before
    # the rerun wrote only what the store lacked, each text once
    assert sum(resumed.values()) == len(GENES) - kept and set(resumed.values()) == {1}
    assert writer.last_run["generated"] == len(GENES) - kept


def test_a_failed_prompt_is_recorded_and_retried_on_the_next_run(
    ray_cluster, logged, tmp_path, tiny_bert_dir
):
    log = ray_cluster  # the actors' logged backend fails on EGFR
    argv = ["embed-genes", *GENES, "--backend", ray_backends.NAME, "--ray", "local", "-q", "--force"]
    argv += ["--encoder", f"hf:{tiny_bert_dir}", "--cache-dir", str(tmp_path / "cache")]
    output = tmp_path / "genes.parquet"
    first = CliRunner().invoke(app, [*argv, "-o", str(output)])
    assert first.exit_code == 0, first.output
    table = GeneEmbeddings.read(output)
    assert "EGFR" not in table.symbols and len(table) == len(GENES) - 1
    failed = table.provenance["ray"]["failed"]
    assert table.provenance["ray"]["actors"] == 2  # a pool as wide as the cluster's 2 CPUs
    assert list(failed) == ["HGNC:3236"] and "injected failure on EGFR" in failed["HGNC:3236"]
    assert table.provenance["genes_without_text"] == ["EGFR"]
    warning = [line for line in first.stderr.splitlines() if "failed on Ray" in line]
    assert len(warning) == 1, first.stderr
    assert warning[0].startswith("warning: 1 profiles failed on Ray (HGNC:3236")
    before = _written(log)
    # the failing prompt was retried alone: its chunk-mates got their texts
    assert sum(before.values()) == len(GENES) - 1

    log.with_name(f"{log.name}.fixed").touch()
    again = CliRunner().invoke(app, [*argv, "-o", str(output)])
    assert again.exit_code == 0, again.output
    table = GeneEmbeddings.read(output)
    assert table.symbols == GENES and table.provenance["ray"]["failed"] == {}
    assert table.provenance["ray"]["generated"] == 1  # only the failed prompt was sent again
    assert sum((_written(log) - before).values()) == 1


def test_an_address_that_does_not_answer_is_one_line_in_bounded_time(logged, tmp_path):
    started = time.monotonic()
    argv = ["embed-genes", "TP53", "--backend", ray_backends.NAME, "--ray", "127.0.0.1:9", "-q"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "o.parquet")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and time.monotonic() - started < 20
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Ray cluster answers at 127.0.0.1:9"), lines
    assert not (tmp_path / "o.parquet").exists()


def test_without_ray_installed_one_line_names_the_extra(monkeypatch, logged, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as where it is not installed
    writer = RayProfileWriter(GeneratorSpec(backend=ray_backends.NAME, options={"log": str(logged)}))
    with pytest.raises(BioprofileInputError) as err:
        writer.generate([[{"role": "user", "content": "q"}]])
    assert str(err.value) == "Ray is not installed: pip install 'bioprofile[ray]'"


def test_ray_options_are_checked_and_credentials_never_shown():
    assert (
        as_ray_options("ray://user:s3cret-token@head.example:10001").shown_address
        == "ray://head.example:10001"
    )
    assert as_ray_options(True) == RayOptions() and as_ray_options(None) is None
    assert as_ray_options(" auto ").address == "auto"
    for bad in ({"actors": 0}, {"gpus_per_actor": -1}, {"connect_timeout": 0}):
        with pytest.raises(BioprofileInputError) as err:
            RayOptions(**bad)
        assert err.value.argument == next(iter(bad))
    with pytest.raises(BioprofileInputError, match="each Ray actor builds its own"):
        embed_genes(["TP53"], generator=object(), ray=True)
