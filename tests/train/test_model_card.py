"""A trained model's or adapter's model card names the Hub id of its base model, never a local cache path."""

from __future__ import annotations

import json
import shutil

import pytest

from bioprofile.train.card import DEFAULT_MODEL_HUB_ID, MODEL_CARD, RUN_RECORD, base_model_hub_id
from bioprofile.train.config import BFTConfig
from bioprofile.train.stages import train_from_config

RECORDS = [
    {"messages": [{"role": "user", "content": "gene A?"}, {"role": "assistant", "content": "a kinase."}]},
    {"messages": [{"role": "user", "content": "gene B?"}, {"role": "assistant", "content": "an ion pump."}]},
]


def _front_matter(card: str) -> dict[str, str]:
    head = card.split("---\n")[1]
    return dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)


def _train(model_dir, tmp_path, **kwargs):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    config = BFTConfig(
        model=str(model_dir), train_file=str(data), output_dir=str(tmp_path / "out"), max_steps=1,
        per_device_train_batch_size=2, lora={"r": 2, "target_modules": ["q_proj"]}, **kwargs,
    )  # fmt: skip
    return train_from_config(config)


def test_hub_id_of_default_hub_and_local_models(tmp_path):
    default_copy = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    assert base_model_hub_id("default", str(default_copy)) == DEFAULT_MODEL_HUB_ID
    assert base_model_hub_id(str(default_copy), str(default_copy)) == DEFAULT_MODEL_HUB_ID
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert base_model_hub_id(str(snapshot), str(snapshot)) == "Qwen/Qwen2.5-0.5B-Instruct"
    assert base_model_hub_id("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct") == (
        "Qwen/Qwen2.5-0.5B-Instruct"
    )
    local = tmp_path / "my-model"
    local.mkdir()
    assert base_model_hub_id(str(local), str(local)) is None


@pytest.mark.parametrize("merge", [True, False])
def test_card_of_a_model_trained_from_the_default_names_its_hub_id(tiny_llama_dir, tmp_path, merge):
    # The default writer lives in bioprofile's cache under this folder name; a copy of the tiny model stands in.
    default_copy = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    shutil.copytree(tiny_llama_dir, default_copy)
    out = _train(default_copy, tmp_path, merge_adapter=merge)
    cards = [out / MODEL_CARD] + ([out / "adapter" / MODEL_CARD] if merge else [])
    for path in cards:
        card = path.read_text()
        meta = _front_matter(card)
        assert meta["base_model"] == DEFAULT_MODEL_HUB_ID, card
        assert str(tmp_path) not in card and "/cache/" not in card, card  # no local path anywhere
    assert _front_matter(cards[0].read_text())["library_name"] == ("transformers" if merge else "peft")
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["base_model"] == str(default_copy)  # the run record keeps where it really came from


def test_card_of_a_model_from_a_local_folder_names_no_path(tiny_llama_dir, tmp_path):
    out = _train(tiny_llama_dir, tmp_path, merge_adapter=False)
    card = (out / MODEL_CARD).read_text()
    assert "base_model" not in _front_matter(card)
    assert str(tiny_llama_dir) not in card and "no Hub id known" in card
    assert "- bioprofile" in card and _front_matter(card)["library_name"] == "peft"
