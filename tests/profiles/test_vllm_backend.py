"""The vLLM backend: a clear error where vLLM is missing; where it is installed (the [vllm] extra, kept out of CI),
a real engine on a tiny Llama that writes the transformers backend's greedy texts."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import build_tiny_llama
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.vllm import VLLMGenerator, vllm_available

needs_vllm = pytest.mark.skipif(not vllm_available(), reason="vLLM is an optional extra, not installed here")


@pytest.mark.skipif(vllm_available(), reason="checks the message shown where vLLM is missing")
def test_backend_vllm_without_vllm_is_one_line_error(tmp_path):
    out = tmp_path / "genes.parquet"
    result = CliRunner().invoke(
        app,
        ["embed-genes", "TP53", "-o", str(out), "--backend", "vllm", "--quiet", "--cache-dir", str(tmp_path)],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "pip install 'bioprofile[vllm]'" in lines[0], result.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def vllm_llama_dir(tmp_path_factory, tiny_tokenizer):
    """A tiny random Llama with a head size vLLM's CPU attention kernels support (64)."""
    path = tmp_path_factory.mktemp("vllm-llama")
    build_tiny_llama(tiny_tokenizer, hidden_size=256).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@needs_vllm
def test_vllm_greedy_texts_match_transformers(vllm_llama_dir, tmp_path):
    from bioprofile import embed_genes
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.prompts import get_template
    from bioprofile.store import Store

    genes = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CDKN2A"]
    engine = VLLMGenerator(
        vllm_llama_dir,
        settings=GenerationSettings(max_new_tokens=16),
        dtype="float32",
        engine_kwargs={"max_model_len": 2048, "enforce_eager": True},
    )
    reference = TransformersGenerator(vllm_llama_dir, settings=GenerationSettings(max_new_tokens=16))
    messages = [get_template("concise").messages(gene) for gene in genes]
    vllm_tokens = engine.generate_token_ids(messages)
    assert vllm_tokens == reference.generate_token_ids(messages)
    assert len({tuple(t) for t in vllm_tokens}) > 1  # continuations depend on the prompt
    with Store(tmp_path / "store.sqlite") as store:
        kwargs = {"encoder": "minilm", "store": store}
        by_vllm = embed_genes(genes, generator=engine, **kwargs)
        by_hf = embed_genes(genes, generator=reference, **kwargs)
        again = embed_genes(genes, generator=engine, **kwargs)  # from the store, under the vLLM key
    assert all(by_vllm.texts)
    assert by_vllm.texts == by_hf.texts
    assert again.texts == by_vllm.texts
    assert by_vllm.provenance["generation_params"]["backend"] == "vllm"
    assert "backend" not in by_hf.provenance["generation_params"]


@needs_vllm
def test_vllm_serves_a_lora_adapter_like_transformers(vllm_llama_dir, tmp_path):
    """A peft LoRA adapter (as `bioprofile train` writes) runs as a LoRA request on its base model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.prompts import get_template

    base = AutoModelForCausalLM.from_pretrained(vllm_llama_dir)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)  # LoRA B starts at zero; make the adapter change the output
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)

    messages = [get_template("concise").messages(gene) for gene in ["TP53", "BRCA1", "EGFR", "KRAS"]]
    engine = VLLMGenerator(
        adapter_dir,
        settings=GenerationSettings(max_new_tokens=16),
        dtype="float32",
        engine_kwargs={"max_model_len": 2048, "enforce_eager": True},
    )
    assert engine.id.endswith(VLLMGenerator(vllm_llama_dir).id)
    adapted = engine.generate_token_ids(messages)
    assert adapted == TransformersGenerator(
        adapter_dir, settings=GenerationSettings(max_new_tokens=16)
    ).generate_token_ids(messages)
    assert adapted != TransformersGenerator(
        vllm_llama_dir, settings=GenerationSettings(max_new_tokens=16)
    ).generate_token_ids(messages)


@needs_vllm
def test_vllm_refuses_a_non_lora_adapter(tmp_path, vllm_llama_dir):
    from bioprofile.errors import BioprofileInputError

    (tmp_path / "adapter_config.json").write_text(
        f'{{"peft_type": "IA3", "base_model_name_or_path": "{vllm_llama_dir}"}}'
    )
    with pytest.raises(BioprofileInputError, match="LoRA adapters only"):
        VLLMGenerator(tmp_path)


def test_vllm_settings_and_cache_key_without_starting_an_engine(tiny_llama_dir, monkeypatch):
    """The engine's id and params (its cache key) come from the settings alone; no vLLM is needed to read them."""
    from bioprofile.profiles import vllm as vllm_backend
    from bioprofile.profiles.hf import TransformersGenerator

    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: True)
    engine = VLLMGenerator(tiny_llama_dir)
    assert engine.batch_size == vllm_backend.DEFAULT_BATCH_SIZE == 64
    assert engine.params == {"backend": "vllm", "max_new_tokens": 256, "do_sample": False, "dtype": "float32"}
    assert engine.id == TransformersGenerator(tiny_llama_dir).id
    sampled = VLLMGenerator(
        tiny_llama_dir, settings=GenerationSettings(batch_size=8, do_sample=True, seed=2), dtype="float32"
    )
    assert sampled.batch_size == 8 and sampled.params["seed"] == 2 and sampled.params["dtype"] == "float32"


@needs_vllm
def test_cli_transformers_and_vllm_write_the_same_texts(vllm_llama_dir, tiny_bert_dir, tmp_path):
    """The README's claim on the CLI path: the same flags (defaults: float32) give the same texts on both."""
    genes = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CDKN2A"]
    texts = {}
    for backend in ("transformers", "vllm"):
        out = tmp_path / f"{backend}.parquet"
        args = ["embed-genes", *genes, "-o", str(out), "--model", str(vllm_llama_dir), "--backend", backend]
        args += ["--encoder", f"hf:{tiny_bert_dir}", "--max-new-tokens", "16", "--cache-dir", str(tmp_path)]
        args.append("-q")
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        texts[backend] = pd.read_parquet(out)["text"].tolist()
    assert texts["vllm"] == texts["transformers"]
    assert len(set(texts["vllm"])) > 1
