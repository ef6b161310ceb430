"""Model resolution and the one-time GGUF -> dense conversion of the default generator."""

from __future__ import annotations

import json
import os

import pytest
from helpers import TESTS, build_tiny_llama, build_tiny_tokenizer

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles import models


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BIOPROFILE_CACHE_DIR")
    assert models.cache_dir().name.lower() == "bioprofile"


def test_resolve_local_model_dir(tiny_llama_dir):
    assert models.resolve_model(str(tiny_llama_dir)) == str(tiny_llama_dir.resolve())
    assert models.resolve_model(tiny_llama_dir) == str(tiny_llama_dir.resolve())


def test_resolve_adapter_dir(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    assert models.resolve_model(str(tmp_path)) == str(tmp_path.resolve())


def test_resolve_dir_without_config(tmp_path):
    with pytest.raises(BioprofileInputError, match="is not a model directory") as err:
        models.resolve_model(str(tmp_path))
    assert "\n" not in str(err.value)


def test_resolve_file_is_not_a_model(tmp_path):
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(BioprofileInputError, match="is not a model directory"):
        models.resolve_model(str(file))


@pytest.mark.parametrize("name", ["./no/such/model", "/no/such/model", "a/b/c", "~/no-such-model-dir/"])
def test_resolve_missing_path(name):
    with pytest.raises(BioprofileInputError, match="does not exist"):
        models.resolve_model(name)


def test_resolve_uncached_hub_id_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BioprofileInputError, match="not in the Hugging Face cache") as err:
        models.resolve_model("bioprofile-test/definitely-not-cached-model")
    assert "\n" not in str(err.value)


def test_resolve_invalid_hub_id():
    with pytest.raises(BioprofileInputError, match="valid Hugging Face hub id"):
        models.resolve_model("not a model!")


def test_fingerprint_changes_with_weights(tmp_path, tiny_tokenizer):
    model_dir = tmp_path / "m"
    build_tiny_llama(tiny_tokenizer, seed=0).save_pretrained(model_dir)
    first = models.model_fingerprint(str(model_dir))
    assert first == models.model_fingerprint(str(model_dir))
    assert first.startswith("m@")
    build_tiny_llama(tiny_tokenizer, seed=1, hidden_size=48).save_pretrained(model_dir)
    assert models.model_fingerprint(str(model_dir)) != first


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    """Point the conversion at a tiny model in place of the 100 MB GGUF, so its file handling runs in seconds."""
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF tiny stand-in")
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_llama(tokenizer)
    monkeypatch.setattr(models, "smollm2_gguf_path", lambda: gguf)
    monkeypatch.setattr(models, "_load_from_gguf", lambda path: (model, tokenizer))
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    return model, tokenizer


def test_conversion_writes_complete_copy_once(fake_gguf, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source_model, _ = fake_gguf
    path = models.default_generator_path()
    assert path == tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", models.MARKER_FILE} <= names
    marker = json.loads((path / models.MARKER_FILE).read_text())
    assert marker["source_size"] == len(b"GGUF tiny stand-in")
    # No temp dirs left beside it.
    assert [p.name for p in path.parent.iterdir()] == [path.name]

    reloaded = AutoModelForCausalLM.from_pretrained(path)
    for key, value in source_model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template

    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert models.default_generator_path() == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime  # not converted again
    assert models.resolve_model(None) == str(path)
    assert models.resolve_model("default") == str(path)
    assert models.resolve_model("SmolLM2") == str(path)


def test_conversion_killed_midway_leaves_nothing(fake_gguf, monkeypatch, tmp_path):
    _, tokenizer = fake_gguf

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # what a Ctrl-C mid-write looks like

    monkeypatch.setattr(tokenizer, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        models.default_generator_path()
    models_dir = tmp_path / "cache" / "models"
    assert list(models_dir.iterdir()) == []


_KILLED_CONVERSION = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from helpers import build_tiny_llama, build_tiny_tokenizer
from bioprofile.profiles import models

tokenizer = build_tiny_tokenizer()
models.smollm2_gguf_path = lambda: __import__("pathlib").Path(sys.argv[2])
models._load_from_gguf = lambda path: (build_tiny_llama(tokenizer), tokenizer)
# Killed for good after the weights are written, before the tokenizer: no finally, no cleanup can run.
tokenizer.save_pretrained = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
models.default_generator_path()
"""


def test_sigkilled_conversion_is_cleaned_up_and_the_next_run_converts(fake_gguf, tmp_path):
    import signal
    import subprocess
    import sys

    tests_dir = str(TESTS)
    gguf = models.smollm2_gguf_path()
    proc = subprocess.run([sys.executable, "-c", _KILLED_CONVERSION, tests_dir, str(gguf)], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    models_dir = tmp_path / "cache" / "models"
    leftovers = list(models_dir.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".smollm2-135m-instruct.")  # half-written
    assert (leftovers[0] / "model.safetensors").is_file()

    path = models.default_generator_path()
    assert [p.name for p in models_dir.iterdir()] == [path.name]  # the dead run's temp dir is gone
    assert (path / models.MARKER_FILE).is_file() and (path / "tokenizer.json").is_file()


def test_a_live_conversion_is_left_alone(fake_gguf, tmp_path):
    models_dir = tmp_path / "cache" / "models"
    running = models_dir / f".smollm2-135m-instruct.{os.getppid()}.abc"  # a process that exists
    running.mkdir(parents=True)
    models.default_generator_path()
    assert running.is_dir()


def test_two_at_once_convert_once(fake_gguf, tmp_path, monkeypatch):
    """A second caller waits on the conversion lock and takes the first one's copy (it used to convert it again)."""
    import threading
    import time

    conversions = []
    convert = models._convert_default

    def slow_convert(target):
        conversions.append(threading.get_ident())
        time.sleep(0.3)  # both callers are past the marker check by now
        convert(target)

    monkeypatch.setattr(models, "_convert_default", slow_convert)
    paths = []
    threads = [
        threading.Thread(target=lambda: paths.append(models.default_generator_path())) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(conversions) == 1 and len(paths) == 2 and paths[0] == paths[1]
    assert (paths[0] / models.MARKER_FILE).is_file()
    assert [p.name for p in paths[0].parent.iterdir()] == [paths[0].name]  # the lock file lies elsewhere


def test_unmarked_leftover_is_replaced(fake_gguf, tmp_path):
    target = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{half a copy")
    path = models.default_generator_path()
    assert (path / models.MARKER_FILE).is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "llama"


@pytest.mark.slow
def test_dense_default_matches_gguf_greedy():
    """The converted checkpoint generates exactly what the GGUF-loaded model generates."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models.default_generator_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    dense = AutoModelForCausalLM.from_pretrained(path).eval()
    gguf = models.smollm2_gguf_path()
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()

    messages = [{"role": "user", "content": "Tell me about gene TP53"}]
    enc = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        ours = dense.generate(**enc, max_new_tokens=32, do_sample=False)
        theirs = reference.generate(**enc, max_new_tokens=32, do_sample=False)
    assert torch.equal(ours, theirs)
    text = tokenizer.decode(ours[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "TP53" in text or "p53" in text
    assert models.model_fingerprint(str(path)).startswith("smollm2-135m-instruct@")


def test_trained_template_reads_the_training_record(tmp_path):
    assert models.trained_template(None) is None
    assert models.trained_template("HuggingFaceTB/SmolLM2-135M-Instruct") is None  # a hub id: no folder here
    assert models.trained_template(tmp_path) is None  # a folder without the record
    record = tmp_path / models.TRAIN_RECORD_FILE
    record.write_text(json.dumps({"template": " genept ", "method": "bft"}))
    assert models.trained_template(tmp_path) == "genept"
    assert models.trained_template(str(tmp_path)) == "genept"
    record.write_text(json.dumps({"method": "bft"}))
    assert models.trained_template(tmp_path) is None
    for bad, match in (
        ("{not json", "not readable JSON"),
        ("[1]", "not a JSON object"),
        ('{"template": 3}', "no"),
    ):
        record.write_text(bad)
        with pytest.raises(BioprofileInputError, match=match) as err:
            models.trained_template(tmp_path)
        assert "\n" not in str(err.value)


def test_dtype_name_is_checked_without_torch():
    import torch

    assert models.dtype_name(None) == "auto"
    assert models.dtype_name("bfloat16") == models.dtype_name(torch.bfloat16) == "bfloat16"
    with pytest.raises(BioprofileInputError, match="unknown dtype") as err:
        models.dtype_name("float8")
    assert err.value.argument == "dtype"
