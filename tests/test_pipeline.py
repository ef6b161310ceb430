"""embed_genes and the embed-genes command, end to end on tiny random models (real code paths, seconds)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC"]


@pytest.fixture
def tiny_args(tiny_llama_dir, tiny_bert_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    return [
        "--model",
        str(tiny_llama_dir),
        "--encoder",
        f"hf:{tiny_bert_dir}",
        "--cache-dir",
        str(cache),
        "--max-new-tokens",
        "12",
        "--quiet",
    ]


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_embed_genes_python_api(tiny_llama_dir, tiny_bert_dir, tmp_path):
    from bioprofile import embed_genes
    from bioprofile.encoders import get_encoder
    from bioprofile.profiles.generate import GenerationSettings
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.store import Store

    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_genes(
            GENES + ["ENSG00000141510", "not-a-gene"],  # TP53 again by Ensembl id, and an unknown id
            generator=TransformersGenerator(tiny_llama_dir, settings=GenerationSettings(max_new_tokens=12)),
            encoder=get_encoder(f"hf:{tiny_bert_dir}"),
            store=store,
        )
    assert emb.symbols == GENES
    assert all(i.startswith("HGNC:") for i in emb.ids)
    assert all(isinstance(t, str) and t for t in emb.texts)
    assert np.isfinite(emb.vectors).all()
    assert len({v.tobytes() for v in emb.vectors}) == len(GENES), "vectors must be distinct"
    assert emb.provenance["unknown_ids"] == ["not-a-gene"]
    assert emb.provenance["template"].startswith("concise@")


def test_cli_writes_output_and_second_run_is_cached(tmp_path, tiny_args):
    out = tmp_path / "genes.parquet"
    first = run_cli("embed-genes", *GENES, "-o", str(out), *tiny_args)
    assert first.exit_code == 0, first.output
    emb = GeneEmbeddings.read(out)
    assert emb.symbols == GENES and emb.vectors.shape[0] == 5

    store = Path(tiny_args[tiny_args.index("--cache-dir") + 1]) / "store.sqlite"
    with sqlite3.connect(store) as conn:
        rows_before = conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    second = run_cli("embed-genes", *GENES, "-o", str(out), "--force", *tiny_args)
    assert second.exit_code == 0, second.output
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0] == rows_before == 5
    again = GeneEmbeddings.read(out)
    assert again.texts == emb.texts
    np.testing.assert_array_equal(again.vectors, emb.vectors)


@pytest.mark.parametrize("fmt", ["npz", "h5ad", "pt"])
def test_cli_formats(tmp_path, tiny_args, fmt):
    out = tmp_path / f"genes.{fmt}"
    result = run_cli("embed-genes", "TP53", "MYC", "-o", str(out), *tiny_args)
    assert result.exit_code == 0, result.output
    assert GeneEmbeddings.read(out).symbols == ["TP53", "MYC"]


def test_cli_bad_input_one_line_exit_2(tmp_path, tiny_args):
    existing = tmp_path / "existing.parquet"
    existing.write_bytes(b"keep me")
    not_a_model = tmp_path / "empty-dir"
    not_a_model.mkdir()
    cases = {
        "no genes": (["embed-genes", "-o", str(tmp_path / "a.parquet")], "no genes"),
        "only unknown": (
            ["embed-genes", "NOTAGENE1", "NOTAGENE2", "-o", str(tmp_path / "b.parquet")],
            "not found",
        ),
        "unreadable file": (
            ["embed-genes", "-f", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "c.parquet")],
            "missing.txt",
        ),
        "missing output dir": (
            ["embed-genes", "TP53", "-o", str(tmp_path / "nope" / "d.parquet")],
            "does not exist",
        ),
        "existing output": (["embed-genes", "TP53", "-o", str(existing)], "--force"),
        "not a model": (
            ["embed-genes", "TP53", "-o", str(tmp_path / "e.parquet"), "--model", str(not_a_model)],
            "not a model",
        ),
        "unknown backend": (
            ["embed-genes", "TP53", "-o", str(tmp_path / "f.parquet"), "--backend", "onnx"],
            "unknown backend",
        ),
    }
    for name, (args, needle) in cases.items():
        if name != "not a model":
            args = args + tiny_args
        else:
            args = args + [a for a in tiny_args if a not in ("--model", tiny_args[1])]
        result = run_cli(*args)
        assert result.exit_code == 2, (name, result.output)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], (name, result.stderr)
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "e.parquet").exists()


def _profile_rows(store: Path) -> int:
    try:
        with sqlite3.connect(store, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_midway_then_rerun_gives_identical_output(
    tmp_path, tiny_llama_dir, tiny_bert_dir, shared_data
):
    import pandas as pd

    table = pd.read_csv(shared_data / "genept" / "dosage_sens_tf_labels.csv")
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(table["gene_name"].head(100)) + "\n")

    def command(cache: Path, out: Path) -> list[str]:
        return [
            str(Path(sys.executable).parent / "bioprofile"),
            "embed-genes",
            "-f",
            str(genes_file),
            "-o",
            str(out),
            "--model",
            str(tiny_llama_dir),
            "--encoder",
            f"hf:{tiny_bert_dir}",
            "--cache-dir",
            str(cache),
            "--batch-size",
            "8",
            "--max-new-tokens",
            "24",
            "--quiet",
        ]

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    clean_cache, killed_cache = tmp_path / "clean", tmp_path / "killed"
    clean_cache.mkdir(), killed_cache.mkdir()
    subprocess.run(command(clean_cache, tmp_path / "clean.parquet"), check=True, env=env, timeout=600)
    n_genes = _profile_rows(clean_cache / "store.sqlite")
    assert n_genes >= 95

    proc = subprocess.Popen(command(killed_cache, tmp_path / "killed.parquet"), env=env)
    deadline = time.time() + 300
    while (
        _profile_rows(killed_cache / "store.sqlite") < 16 and time.time() < deadline and proc.poll() is None
    ):
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make the test workload bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _profile_rows(killed_cache / "store.sqlite")
    assert 0 < partial < n_genes
    assert not (tmp_path / "killed.parquet").exists()

    subprocess.run(command(killed_cache, tmp_path / "killed.parquet"), check=True, env=env, timeout=600)
    assert _profile_rows(killed_cache / "store.sqlite") == n_genes  # nothing lost, nothing duplicated
    clean, resumed = (
        GeneEmbeddings.read(tmp_path / "clean.parquet"),
        GeneEmbeddings.read(tmp_path / "killed.parquet"),
    )
    assert resumed.symbols == clean.symbols and resumed.texts == clean.texts
    np.testing.assert_array_equal(resumed.vectors, clean.vectors)
    assert (tmp_path / "killed.parquet").read_bytes() == (tmp_path / "clean.parquet").read_bytes()


@pytest.mark.slow
def test_default_models_end_to_end(tmp_path):
    """The real default generator and encoder on five genes; the second run comes from the cache."""
    cache = tmp_path / "cache"
    cache.mkdir()
    out = tmp_path / "genes.parquet"
    args = [
        "embed-genes",
        *GENES,
        "-o",
        str(out),
        "--cache-dir",
        str(cache),
        "--max-new-tokens",
        "64",
        "--quiet",
    ]
    start = time.perf_counter()
    assert run_cli(*args).exit_code == 0
    cold = time.perf_counter() - start
    emb = GeneEmbeddings.read(out)
    assert emb.symbols == GENES and emb.dim == 384
    assert np.isfinite(emb.vectors).all() and len({v.tobytes() for v in emb.vectors}) == 5
    assert all(len(t.split()) >= 5 for t in emb.texts), emb.texts
    assert emb.provenance["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    start = time.perf_counter()
    assert run_cli(*args, "--force").exit_code == 0
    warm = time.perf_counter() - start
    np.testing.assert_array_equal(GeneEmbeddings.read(out).vectors, emb.vectors)
    assert warm < cold  # the 20x target is measured in benchmarks/embed_cold_warm.py, not asserted here


# -- the entity seam, settings objects and the served template ---------------------------------------------------


def _protein_template():
    from bioprofile.profiles.prompts import PromptTemplate

    return PromptTemplate(
        name="protein-test",
        system=None,
        user="Tell me about the protein {symbol} ({name}).",
        entity="protein",
    )


def _adt_targets():
    from bioprofile.entities import Entity

    return [
        Entity(key="adt:CD45RA", symbol="CD45RA", name="CD45RA isoform of PTPRC", kind="protein"),
        Entity(key="adt:CD45RO", symbol="CD45RO", name="CD45RO isoform of PTPRC", kind="protein"),
    ]


def test_gene_store_key_is_still_the_hgnc_id(tiny_llama_dir, tmp_path):
    """A profile cached under a gene's HGNC id (as every earlier version stored it) is found, not regenerated."""
    from bioprofile import embed_genes
    from bioprofile.entities import EntityLike, entity_key
    from bioprofile.genes import normalize_genes
    from bioprofile.profiles.generate import profile_cache_key
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.prompts import get_template
    from bioprofile.store import Store

    (tp53,) = normalize_genes(["TP53"]).genes
    assert isinstance(tp53, EntityLike) and tp53.kind == "gene"
    assert entity_key(tp53) == tp53.key == tp53.hgnc_id == "HGNC:11998"
    generator = TransformersGenerator(tiny_llama_dir)
    key = profile_cache_key(get_template("concise"), generator)
    assert key == {
        "template": "concise@d21d63dd",
        "generator": generator.id,
        "params": {"max_new_tokens": 256, "do_sample": False, "dtype": "auto"},
    }
    with Store(tmp_path / "store.sqlite") as store:
        store.put_profiles({"HGNC:11998": "TP53 encodes p53, a tumour suppressor."}, **key)
        emb = embed_genes(["TP53"], generator=generator, encoder="minilm", store=store)
    assert emb.texts == ["TP53 encodes p53, a tumour suppressor."] and emb.ids == ["HGNC:11998"]
    assert generator._model is None  # served from the store: the model never loaded
    assert emb.kind == "gene" and emb.provenance["entity_kind"] == "gene"
    assert emb.provenance["n_genes"] == emb.provenance["n_entities"] == 1


def test_default_generator_id_and_params_unchanged(tmp_path, monkeypatch, tiny_llama_dir):
    """make_generator builds what the old keyword arguments built: same id, same cache-key params."""
    import shutil

    from bioprofile import GenerationSettings, make_generator
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.models import MARKER_FILE, model_fingerprint

    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    default_dir = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    shutil.copytree(
        tiny_llama_dir, default_dir
    )  # stands in for the converted SmolLM2 (the slow tests use it)
    (default_dir / MARKER_FILE).write_text("{}")

    default = make_generator()
    assert isinstance(default, TransformersGenerator) and default.batch_size == 16
    assert default.id.startswith("smollm2-135m-instruct@") and default.id == model_fingerprint(
        str(default_dir)
    )
    assert default.params == {"max_new_tokens": 256, "do_sample": False, "dtype": "auto"}
    shorter = make_generator(None, settings=GenerationSettings(max_new_tokens=64, batch_size=4))
    assert shorter.id == default.id and shorter.batch_size == 4
    assert shorter.params == {"max_new_tokens": 64, "do_sample": False, "dtype": "auto"}
    sampled = make_generator(settings=GenerationSettings(do_sample=True, temperature=0.7, top_p=0.9, seed=3))
    assert sampled.params == {
        "max_new_tokens": 256,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 3,
        "dtype": "auto",
    }
    served = make_generator("m", backend="openai", base_url="http://localhost:8000/v1")
    assert served.id == "openai:m@http://localhost:8000/v1" and served.batch_size == 16
    assert served.params == {"backend": "openai", "max_new_tokens": 256, "do_sample": False}


def test_generation_settings_are_frozen_and_checked():
    import dataclasses

    from bioprofile import GenerationSettings, make_generator
    from bioprofile.errors import BioprofileInputError

    settings = GenerationSettings(max_new_tokens=12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_new_tokens = 13
    assert settings.with_default_batch_size(8).batch_size == 8
    assert GenerationSettings(batch_size=2).with_default_batch_size(8).batch_size == 2
    assert GenerationSettings(max_new_tokens=np.int64(12)).text_params() == settings.text_params()
    with pytest.raises(BioprofileInputError, match="unknown backend 'onnx'"):
        make_generator(backend="onnx")
    with pytest.raises(BioprofileInputError, match="base_url is for backend 'openai' only") as err:
        make_generator(backend="transformers", base_url="http://localhost:8000/v1")
    assert err.value.argument == "base_url"


def test_a_protein_entity_flows_through_the_same_path(tiny_llama_dir, tiny_bert_dir, tmp_path):
    """Antibody targets (kind "protein") are generated, encoded, stored and written like genes, under their keys."""
    from bioprofile import (
        EntityEmbeddings,
        GeneEmbeddings,
        GenerationSettings,
        embed_entities,
        make_generator,
    )
    from bioprofile.store import Store

    targets = _adt_targets()
    generator = make_generator(tiny_llama_dir, settings=GenerationSettings(max_new_tokens=12))
    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_entities(
            targets + targets[:1],  # a repeated entity collapses
            generator=generator,
            template=_protein_template(),
            encoder=f"hf:{tiny_bert_dir}",
            store=store,
        )
    assert emb.ids == ["adt:CD45RA", "adt:CD45RO"] and emb.symbols == ["CD45RA", "CD45RO"]
    assert emb.kind == "protein" and emb.provenance["entity_kind"] == "protein"
    assert emb.provenance["template"].startswith("protein-test@") and "n_genes" not in emb.provenance
    assert all(emb.texts) and np.isfinite(emb.vectors).all()
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        keys = sorted(row[0] for row in conn.execute("SELECT entity FROM profiles"))
    assert keys == ["adt:CD45RA", "adt:CD45RO"]  # two isoforms of one gene: two store keys

    out = emb.write(tmp_path / "proteins.parquet")
    back = GeneEmbeddings.read(out)
    assert isinstance(back, EntityEmbeddings) and back.kind == "protein"
    assert back.ids == emb.ids and back.symbols == emb.symbols and back.texts == emb.texts
    np.testing.assert_array_equal(back.vectors, emb.vectors)


def test_a_template_for_another_kind_is_an_error(tiny_llama_dir):
    from bioprofile import Entity, embed_entities, embed_genes
    from bioprofile.errors import BioprofileInputError

    for template in ("concise", None):  # None: the default, a gene template
        with pytest.raises(BioprofileInputError, match="describes a gene, not a protein") as err:
            embed_entities(_adt_targets(), generator=tiny_llama_dir, template=template)
        assert err.value.argument == "template"
    with pytest.raises(BioprofileInputError, match="describes a protein, not a gene"):
        embed_genes(["TP53"], generator=tiny_llama_dir, template=_protein_template())
    gene_like = Entity(key="HGNC:11998", symbol="TP53")
    with pytest.raises(BioprofileInputError, match="2 kinds"):
        embed_entities([gene_like, *_adt_targets()], generator=tiny_llama_dir)
    with pytest.raises(BioprofileInputError, match="is not an entity"):
        embed_entities(["CD45RA"], generator=tiny_llama_dir)


def test_settings_beside_a_ready_generator_are_refused(tiny_llama_dir):
    from bioprofile import GenerationSettings, embed_genes, make_generator
    from bioprofile.errors import BioprofileInputError

    with pytest.raises(BioprofileInputError, match="ready generator carries its own") as err:
        embed_genes(["TP53"], generator=make_generator(tiny_llama_dir), settings=GenerationSettings())
    assert err.value.argument == "settings"


@pytest.fixture
def trained_dir(tiny_llama_dir, tmp_path):
    """A model folder as `bioprofile train` leaves it: weights, tokenizer, and the record of its template."""
    import json
    import shutil

    folder = tmp_path / "trained"
    shutil.copytree(tiny_llama_dir, folder)
    (folder / "bioprofile_train.json").write_text(json.dumps({"template": "genept", "method": "bft"}))
    return folder


def test_the_template_a_model_learned_is_the_one_it_serves(
    trained_dir, tiny_llama_dir, tiny_bert_dir, tmp_path
):
    import warnings

    from bioprofile import GenerationSettings, embed_genes
    from bioprofile.store import Store

    kwargs = {"encoder": f"hf:{tiny_bert_dir}", "settings": GenerationSettings(max_new_tokens=12)}
    with Store(tmp_path / "store.sqlite") as store:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the learned template, unasked: no warning
            learned = embed_genes(["TP53", "MYC"], generator=trained_dir, store=store, **kwargs)
            plain = embed_genes(["TP53", "MYC"], generator=tiny_llama_dir, store=store, **kwargs)
            same = embed_genes(["TP53"], generator=trained_dir, template="GenePT", store=store, **kwargs)
        with pytest.warns(UserWarning, match="'concise' is not 'genept', the template .* was trained with"):
            other = embed_genes(["TP53"], generator=trained_dir, template="concise", store=store, **kwargs)
    assert learned.provenance["template"] == "genept@5870d0d2"
    assert learned.provenance["template_source"] == "model"
    assert plain.provenance["template"] == "concise@d21d63dd"
    assert plain.provenance["template_source"] == "default"
    assert same.provenance["template_source"] == "argument" and same.texts == learned.texts[:1]
    assert other.provenance["template"] == "concise@d21d63dd"
    assert other.provenance["template_source"] == "argument"


def test_cli_embed_genes_uses_the_learned_template(trained_dir, tiny_args, tmp_path):
    args = list(tiny_args)
    args[args.index("--model") + 1] = str(trained_dir)
    out = tmp_path / "genes.parquet"
    result = run_cli("embed-genes", "TP53", "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    provenance = GeneEmbeddings.read(out).provenance
    assert provenance["template"] == "genept@5870d0d2" and provenance["template_source"] == "model"


def test_cli_names_flags_for_library_arguments(tmp_path, tiny_args):
    """Library errors name Python arguments; the embed-genes command shows its own flags instead."""
    out = tmp_path / "a.parquet"
    cases = {
        "--base-url is for --backend openai or an openai: --encoder": [
            "TP53",
            "--base-url",
            "http://localhost:8000/v1",
        ],
        "drop --strict to go on without them": ["TP53", "NOTAGENE1", "--strict"],
    }
    for needle, extra in cases.items():
        result = run_cli("embed-genes", "-o", str(out), *tiny_args, *extra)
        assert result.exit_code == 2, result.output
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert needle in line, line
    assert not out.exists()
