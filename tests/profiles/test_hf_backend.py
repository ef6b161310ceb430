"""TransformersGenerator on tiny random Llamas: batching, order, identity, adapters."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import build_tiny_llama

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.hf import TransformersGenerator
from bioprofile.profiles.prompts import get_template

# Prompt lengths differ a lot, so batches need real padding.
GENES = [
    "TP53",
    "A",
    "BRCA1",
    "HLA-DRB1 with a much longer user message " * 3,
    "EGFR",
    "KRAS",
    "CDKN2A",
    "MYC",
    "X",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a shared CI machine spinning threads slow them badly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _spread_weights(model, std: float = 0.3):
    """A freshly initialised model's logits are nearly flat (greedy repeats one token whatever the prompt);
    larger weights make each prompt's continuation differ, so order or padding mistakes show."""
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, std)
    return model


@pytest.fixture(scope="module")
def lively_llama_dir(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("lively-llama")
    _spread_weights(build_tiny_llama(tiny_tokenizer)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _messages(genes=GENES):
    template = get_template("genept")
    return [template.messages(gene) for gene in genes]


def test_batched_equals_one_at_a_time(lively_llama_dir):
    """Left-padded batches of mixed lengths give exactly the tokens of unpadded single prompts (fp32)."""
    messages = _messages()
    single = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(batch_size=1, max_new_tokens=16)
    ).generate_token_ids(messages)
    batched = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(batch_size=4, max_new_tokens=16)
    ).generate_token_ids(messages)
    assert batched == single
    # The continuations really depend on the prompt (otherwise the comparison above proves little).
    assert len({tuple(tokens) for tokens in single}) == len(GENES)


def test_output_follows_input_order(lively_llama_dir):
    generator = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(batch_size=3, max_new_tokens=6)
    )
    messages = _messages(GENES[:6])
    forward = generator.generate(messages)
    backward = generator.generate(messages[::-1])
    assert backward == forward[::-1]
    assert generator.generate([]) == []


def test_text_excludes_prompt_and_special_tokens(lively_llama_dir, tiny_tokenizer):
    generator = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(batch_size=2, max_new_tokens=16)
    )
    messages = _messages(["TP53", "EGFR"])
    tokens = generator.generate_token_ids(messages)
    texts = generator.generate(messages)
    for token_ids, text in zip(tokens, texts, strict=False):
        assert len(token_ids) <= 16
        assert text == tiny_tokenizer.decode(token_ids, skip_special_tokens=True).strip()
        assert "<|im_start|>" not in text and "Tell me about gene" not in text


def test_stops_at_any_stop_token(lively_llama_dir, tmp_path):
    """Every eos id in generation_config ends a profile; the stop token and what follows are dropped."""
    from transformers import GenerationConfig

    messages = _messages()
    free = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(batch_size=4, max_new_tokens=24)
    ).generate_token_ids(messages)
    stop = free[0][5]  # a token the model really produces, made a stop token below
    stopped_dir = tmp_path / "stopping"
    shutil.copytree(lively_llama_dir, stopped_dir)
    GenerationConfig(eos_token_id=[2, stop], pad_token_id=0).save_pretrained(stopped_dir)

    stopped = TransformersGenerator(
        stopped_dir, settings=GenerationSettings(batch_size=4, max_new_tokens=24)
    ).generate_token_ids(messages)
    expected = [tokens[: tokens.index(stop)] if stop in tokens else tokens for tokens in free]
    assert stopped == expected
    assert len(stopped[0]) == free[0].index(stop) <= 5


def test_id_and_params(lively_llama_dir, tiny_tokenizer, tmp_path):
    greedy = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(max_new_tokens=64, temperature=0.3, seed=5)
    )
    assert greedy.params == {"max_new_tokens": 64, "do_sample": False, "dtype": "auto"}
    assert str(greedy.dtype) == "torch.float32"  # auto is fp32 on CPU
    assert TransformersGenerator(lively_llama_dir, dtype="bfloat16").params["dtype"] == "bfloat16"
    with pytest.raises(BioprofileInputError, match="unknown dtype"):
        TransformersGenerator(lively_llama_dir, dtype="float8")
    sampled = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(do_sample=True, temperature=0.7, top_p=0.9, seed=3)
    )
    assert sampled.params["temperature"] == 0.7 and sampled.params["seed"] == 3
    assert greedy.id == sampled.id == TransformersGenerator(str(lively_llama_dir)).id
    assert greedy.id.startswith(lively_llama_dir.name + "@")
    assert greedy._model is None  # the id needs no model load

    other = tmp_path / lively_llama_dir.name
    _spread_weights(build_tiny_llama(tiny_tokenizer, seed=1)).save_pretrained(other)
    tiny_tokenizer.save_pretrained(other)
    assert TransformersGenerator(other).id != greedy.id


def test_sampling_is_seeded(lively_llama_dir):
    messages = _messages(["TP53", "BRCA1"])
    first = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(do_sample=True, seed=1, max_new_tokens=8)
    )
    again = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(do_sample=True, seed=1, max_new_tokens=8)
    )
    other = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(do_sample=True, seed=2, max_new_tokens=8)
    )
    assert first.generate_token_ids(messages) == again.generate_token_ids(messages)
    assert first.generate_token_ids(messages) != other.generate_token_ids(messages)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"do_sample": True, "temperature": 0.0}, "temperature"),
        ({"do_sample": True, "top_p": 1.5}, "top_p"),
    ],
)
def test_bad_settings(kwargs, match):
    """Refused when the settings are made, naming the Python argument (the CLI turns it into its flag)."""
    with pytest.raises(BioprofileInputError, match=match) as err:
        GenerationSettings(**kwargs)
    assert err.value.argument == match and "--" not in str(err.value)


def test_bad_dtype(lively_llama_dir):
    with pytest.raises(BioprofileInputError, match="dtype") as err:
        TransformersGenerator(lively_llama_dir, dtype="float99")
    assert err.value.argument == "dtype"


def test_not_a_model_dir(tmp_path):
    with pytest.raises(BioprofileInputError, match="not a model directory"):
        TransformersGenerator(tmp_path)


def test_model_without_chat_template(tiny_tokenizer, tmp_path):
    build_tiny_llama(tiny_tokenizer).save_pretrained(tmp_path)
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(
        tokenizer_object=tiny_tokenizer.backend_tokenizer, pad_token="<pad>", eos_token="<|im_end|>"
    )
    plain.save_pretrained(tmp_path)
    generator = TransformersGenerator(tmp_path)
    with pytest.raises(BioprofileInputError, match="chat template"):
        generator.load()


def test_peft_adapter(lively_llama_dir, tmp_path):
    """An adapter directory loads its base from adapter_config.json and changes the output."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(lively_llama_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)  # LoRA B starts at zero; make the adapter actually do something
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(lively_llama_dir)

    messages = _messages(["TP53", "BRCA1", "EGFR"])
    adapted = TransformersGenerator(adapter_dir, settings=GenerationSettings(batch_size=2, max_new_tokens=16))
    base_gen = TransformersGenerator(
        lively_llama_dir, settings=GenerationSettings(batch_size=2, max_new_tokens=16)
    )
    assert adapted.id != base_gen.id and adapted.id.startswith("adapter@")
    assert adapted.id.endswith(base_gen.id)
    adapted_tokens = adapted.generate_token_ids(messages)
    assert adapted_tokens != base_gen.generate_token_ids(messages)

    # Same tokens as the unmerged peft model generating one prompt at a time.
    peft_model.eval()
    tokenizer = adapted.tokenizer
    for chat, tokens in zip(messages, adapted_tokens, strict=False):
        ids = tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.no_grad():
            out = peft_model.generate(
                **ids,
                max_new_tokens=16,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        expected = out[0, ids["input_ids"].shape[1] :].tolist()
        if tokenizer.eos_token_id in expected:
            expected = expected[: expected.index(tokenizer.eos_token_id)]
        assert tokens == expected


def test_adapter_without_base(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(BioprofileInputError, match="base_model_name_or_path"):
        TransformersGenerator(tmp_path)


@pytest.mark.slow
def test_default_model_writes_about_the_gene():
    generator = TransformersGenerator(None, settings=GenerationSettings(batch_size=2, max_new_tokens=48))
    assert generator.id.startswith("smollm2-135m-instruct@")
    genes = ["TP53", "BRCA1"]
    texts = generator.generate([get_template("genept").messages(g) for g in genes])
    assert all(len(text) > 50 for text in texts)
    assert "TP53" in texts[0] or "p53" in texts[0]
    assert "BRCA" in texts[1]
    single = TransformersGenerator(
        None, settings=GenerationSettings(batch_size=1, max_new_tokens=48)
    ).generate([get_template("genept").messages(g) for g in genes])
    assert single == texts


def test_adapter_on_default_model_from_another_machine(tmp_path, monkeypatch, lively_llama_dir):
    """An adapter trained on the default model names its base by the trainer's cache path; ours is used."""
    monkeypatch.setenv("BIOPROFILE_CACHE_DIR", str(tmp_path / "cache"))
    ours = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    from bioprofile.profiles.models import MARKER_FILE

    shutil.copytree(lively_llama_dir, ours)
    (ours / MARKER_FILE).write_text("{}")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "base_model_name_or_path": "/home/someone/.cache/bioprofile/models/smollm2-135m-instruct",
            }
        )
    )
    assert TransformersGenerator(adapter)._adapter_base == str(ours)
