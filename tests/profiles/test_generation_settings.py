"""Generation settings shared by every backend: dtype, device and threads, and the OpenAI backend's retries.

The same settings must write the same texts on every local backend: float32 is the default on transformers and
vLLM alike (vLLM would choose bf16 on CPU); the CLI path is checked in test_vllm_backend.py, where vLLM is installed.
"""

from __future__ import annotations

import threading

import pytest
import torch
from test_http_backend import SERVED_NAME, ChatServer
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.backends import make_generator
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.hf import TransformersGenerator


def test_defaults_are_float32_and_the_engines_placement():
    settings = GenerationSettings()
    assert (settings.dtype, settings.device, settings.threads) == ("float32", None, None)
    assert settings.local_only == {}
    assert GenerationSettings(dtype=torch.bfloat16).dtype == "bfloat16"
    assert GenerationSettings(dtype=None).dtype == "auto"
    assert GenerationSettings(threads=2, device="cuda:1").local_only == {"device": "cuda:1", "threads": 2}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"dtype": "float8"}, "dtype"), ({"device": "gpu0"}, "device"), ({"threads": 0}, "threads")],
)
def test_bad_placement_names_its_argument(kwargs, argument):
    with pytest.raises(BioprofileInputError) as err:
        GenerationSettings(**kwargs)
    assert err.value.argument == argument and argument in str(err.value)


def test_default_cache_key_is_unchanged_and_dtype_from_settings(tiny_llama_dir):
    default = TransformersGenerator(tiny_llama_dir)
    # "auto" was the key of default runs before the dtype was a setting: their cached texts stay valid.
    assert default.params == {"max_new_tokens": 256, "do_sample": False, "dtype": "auto"}
    assert default.dtype == torch.float32
    half = TransformersGenerator(tiny_llama_dir, settings=GenerationSettings(dtype="bfloat16", device="cpu"))
    assert half.params["dtype"] == "bfloat16" and half.dtype == torch.bfloat16 and half.device == "cpu"
    # The constructor's own dtype still replaces the settings'.
    assert (
        TransformersGenerator(
            tiny_llama_dir, settings=GenerationSettings(dtype="float16"), dtype="bfloat16"
        ).params["dtype"]
        == "bfloat16"
    )


def test_provenance_records_the_dtype_in_use_and_the_key_stays_auto(tiny_llama_dir, tiny_bert_dir, tmp_path):
    from bioprofile import embed_genes
    from bioprofile.encoders import get_encoder
    from bioprofile.profiles.generate import generation_provenance
    from bioprofile.store import Store

    generator = TransformersGenerator(tiny_llama_dir, settings=GenerationSettings(max_new_tokens=4))
    with Store(tmp_path / "store.sqlite") as store:
        emb = embed_genes(
            ["TP53", "BRCA1"], generator=generator, encoder=get_encoder(f"hf:{tiny_bert_dir}"), store=store
        )
    assert emb.provenance["generation_params"]["dtype"] == "float32"
    assert generator.params["dtype"] == "auto"  # the cache key of earlier versions
    # The device's default: "auto" until a model is loaded, then the dtype it was loaded in.
    engine_default = TransformersGenerator(
        tiny_llama_dir, settings=GenerationSettings(dtype=None, device="cpu")
    )
    assert generation_provenance(engine_default)["dtype"] == "auto"
    assert generation_provenance(engine_default.load())["dtype"] == "float32"


def test_threads_set_torch_threads_and_leave_texts_alone(tiny_llama_dir):
    from bioprofile.profiles.prompts import get_template

    messages = [get_template("concise").messages(gene) for gene in ["TP53", "EGFR"]]
    before = torch.get_num_threads()
    try:
        one = TransformersGenerator(
            tiny_llama_dir, settings=GenerationSettings(max_new_tokens=8, threads=1, device="cpu")
        )
        texts = one.generate(messages)
        assert torch.get_num_threads() == 1
        assert (
            one.params
            == TransformersGenerator(tiny_llama_dir, settings=GenerationSettings(max_new_tokens=8)).params
        )
    finally:
        torch.set_num_threads(before)
    assert texts == TransformersGenerator(
        tiny_llama_dir, settings=GenerationSettings(max_new_tokens=8)
    ).generate(messages)


def test_served_model_refuses_local_placement_in_one_line(tmp_path):
    out = tmp_path / "genes.parquet"
    args = ["embed-genes", "TP53", "-o", str(out), "--backend", "openai", "--model", SERVED_NAME]
    args += ["--base-url", "http://127.0.0.1:9/v1", "--cache-dir", str(tmp_path)]
    for extra, flag in ((["--dtype", "bfloat16"], "--dtype"), (["--threads", "2"], "--threads")):
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0] and "backend 'openai'" in lines[0], result.stderr
    assert not out.exists()


def test_max_retries_is_for_the_served_backend_only(tiny_llama_dir):
    assert (
        make_generator(
            "served", backend="openai", base_url="http://127.0.0.1:9/v1", max_retries=5
        ).endpoint.max_retries
        == 5
    )
    assert (
        make_generator("served", backend="openai", base_url="http://127.0.0.1:9/v1").endpoint.max_retries == 3
    )
    with pytest.raises(BioprofileInputError, match="max_retries is for backend 'openai' only") as err:
        make_generator(tiny_llama_dir, max_retries=2)
    assert err.value.argument == "max_retries"


@pytest.mark.parametrize("retries", [0, 2])
def test_cli_max_retries_sets_the_requests_per_prompt(tiny_llama_dir, tmp_path, monkeypatch, retries):
    """Against a server that fails every request, a prompt is asked 1 + max_retries times, then one line."""
    import openai._base_client

    monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", 0.005)
    monkeypatch.setattr(openai._base_client, "MAX_RETRY_DELAY", 0.02)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    srv = ChatServer(tiny_llama_dir, api_key=None, fail_tenths=10)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "genes.parquet"
        args = ["embed-genes", "TP53", "-o", str(out), "--backend", "openai", "--model", SERVED_NAME]
        args += [
            "--base-url",
            srv.base_url,
            "--cache-dir",
            str(tmp_path),
            "--max-retries",
            str(retries),
            "-q",
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
        assert len(srv.requests) == 1 + retries
        assert not out.exists()
    finally:
        srv.shutdown()
        srv.server_close()


def test_cli_local_backend_refuses_max_retries(tiny_llama_dir, tmp_path):
    out = tmp_path / "genes.parquet"
    args = ["embed-genes", "TP53", "-o", str(out), "--model", str(tiny_llama_dir), "--max-retries", "2"]
    result = CliRunner().invoke(app, [*args, "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "--max-retries is for backend 'openai' only" in result.stderr and not out.exists()


def test_cli_dtype_choices_are_listed_in_help():
    import typer.main

    for path in (["embed-genes"], ["embed-proteins"], ["bench", "gene-sets"]):
        command = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        (dtype,) = [param for param in command.params if param.name == "dtype"]
        context = command.make_context(path[-1], [], resilient_parsing=True)
        assert dtype.display_type(context) == "<float32|bfloat16|float16|auto>", path
        assert {"device", "threads", "max_retries"} <= {param.name for param in command.params}, path
