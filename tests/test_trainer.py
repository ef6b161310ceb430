"""The BFT trainer: every method trains, accumulation is exact, labels cover only responses, configs fail clearly,
and the output directory loads back (merged model or peft adapter)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import build_tiny_llama
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

from bioprofile.errors import BioprofileInputError
from bioprofile.train.config import BFTConfig, config_from_dict, load_config
from bioprofile.train.data import (
    ChatDataset,
    CompletionCollator,
    read_jsonl_records,
    refseq_sft_records,
    split_records,
    tokenize_chat,
)
from bioprofile.train.losses import METHODS
from bioprofile.train.trainer import RUN_RECORD, BFTTrainer, train_from_config

# Responses of very different lengths, so a token-count normalisation would not match a per-sample mean.
RECORDS = [
    {"messages": [{"role": "user", "content": "gene A?"}, {"role": "assistant", "content": "kinase."}]},
    {
        "messages": [
            {"role": "user", "content": "gene B?"},
            {"role": "assistant", "content": "a transcription factor that binds DNA at many promoters."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "tell me about gene C"},
            {"role": "assistant", "content": "ion pump"},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "D?"},
            {
                "role": "assistant",
                "content": "a secreted ligand of the TGF-beta family, involved in bone growth.",
            },
        ]
    },
]


def _args(tmp_path: Path, **kwargs) -> TrainingArguments:
    values = {
        "output_dir": str(tmp_path / "ckpt"),
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "logging_steps": 1,
        "seed": 0,
        "data_seed": 0,
    }
    values.update(kwargs)
    return TrainingArguments(**values)


def _trainer(tokenizer, model, tmp_path, records=RECORDS, **kwargs) -> BFTTrainer:
    loss_kwargs = {k: kwargs.pop(k) for k in ("loss_method", "loss_window", "chunked_loss") if k in kwargs}
    return BFTTrainer(
        model=model,
        args=_args(tmp_path, **kwargs),
        train_dataset=ChatDataset(records, tokenizer, max_length=128),
        data_collator=CompletionCollator(tokenizer.pad_token_id),
        **loss_kwargs,
    )


def _batch_cross_entropy(model, tokenizer, records=RECORDS) -> float:
    from bioprofile.train.losses import causal_lm_loss

    batch = CompletionCollator(tokenizer.pad_token_id)(
        [tokenize_chat(tokenizer, r["messages"], max_length=128) for r in records]
    )
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return causal_lm_loss(logits, batch["labels"], method="sft").item()


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_on_a_repeated_batch(tiny_tokenizer, tmp_path, method):
    """Every objective gives finite losses and lowers the response cross-entropy.

    (The objective itself need not fall: with DFT's ``p * ce`` it rises while p climbs from 1/V towards 1/e.)
    """
    model = build_tiny_llama(tiny_tokenizer, seed=1)
    before = _batch_cross_entropy(model, tiny_tokenizer)
    trainer = _trainer(
        tiny_tokenizer, model, tmp_path, loss_method=method, per_device_train_batch_size=4, max_steps=8,
        learning_rate=1e-2, lr_scheduler_type="constant",
    )  # fmt: skip
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    after = _batch_cross_entropy(model.eval(), tiny_tokenizer)
    assert after < before - 0.5, (before, after)


def _one_sgd_step(
    tokenizer, tmp_path, method: str, batch: int, accumulation: int, chunked: bool = False
) -> dict:
    model = build_tiny_llama(tokenizer, seed=2).double()
    trainer = _trainer(
        tokenizer, model, tmp_path, loss_method=method, chunked_loss=chunked, per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
        lr_scheduler_type="constant", max_grad_norm=0.0,
    )  # fmt: skip
    trainer.train()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("method", ["sft", "bft", "bft-v1"])
def test_accumulation_gives_the_same_update_as_one_big_batch(tiny_tokenizer, tmp_path, method):
    start = {
        n: p.detach().clone() for n, p in build_tiny_llama(tiny_tokenizer, seed=2).double().named_parameters()
    }
    big = _one_sgd_step(tiny_tokenizer, tmp_path, method, batch=4, accumulation=1)
    accumulated = _one_sgd_step(tiny_tokenizer, tmp_path, method, batch=2, accumulation=2)
    moved = max((big[n] - start[n]).abs().max().item() for n in big)
    assert moved > 1e-3  # the step did something, so agreement below means something
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-9, atol=1e-10, msg=name)


def test_chunked_loss_gives_the_same_update_as_full_logits(tiny_tokenizer, tmp_path):
    full = _one_sgd_step(tiny_tokenizer, tmp_path, "bft", batch=2, accumulation=2)
    chunked = _one_sgd_step(tiny_tokenizer, tmp_path, "bft", batch=2, accumulation=2, chunked=True)
    for name in full:
        torch.testing.assert_close(chunked[name], full[name], rtol=1e-9, atol=1e-10, msg=name)


def test_labels_cover_only_assistant_turns(tiny_tokenizer):
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "second answer"},
    ]
    feature = tokenize_chat(tiny_tokenizer, messages, max_length=512)
    assert len(feature["input_ids"]) == len(feature["labels"]) == len(feature["attention_mask"])
    trained = [t for t, label in zip(feature["input_ids"], feature["labels"], strict=False) if label != -100]
    assert tiny_tokenizer.decode(trained) == "first answer<|im_end|>\nsecond answer<|im_end|>\n"
    labelled = [label for label in feature["labels"] if label != -100]
    assert labelled == trained

    cut = tokenize_chat(tiny_tokenizer, messages, max_length=20)
    assert len(cut["input_ids"]) == 20 and all(label == -100 for label in cut["labels"])
    assert len(ChatDataset([{"messages": messages}], tiny_tokenizer, max_length=20)) == 0


def test_prompt_tokens_get_no_gradient_signal(tiny_tokenizer):
    """Changing only the prompt's labels cannot change the loss: they are -100 and never read."""
    from bioprofile.train.trainer import BalancedCausalLMLoss

    batch = CompletionCollator(tiny_tokenizer.pad_token_id)(
        [tokenize_chat(tiny_tokenizer, r["messages"], max_length=128) for r in RECORDS]
    )
    model = build_tiny_llama(tiny_tokenizer)
    with torch.no_grad():
        outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    loss_fn = BalancedCausalLMLoss("bft")
    reference = loss_fn(outputs, batch["labels"])
    corrupted = batch["input_ids"].clone()
    prompt = batch["labels"] == -100
    corrupted[prompt] = (corrupted[prompt] + 1) % len(tiny_tokenizer)
    assert prompt.any() and (~prompt).any()
    # Same logits, labels still -100 on the prompt: the loss depends only on response labels.
    assert torch.equal(loss_fn(outputs, batch["labels"]), reference)
    shifted = batch["labels"].clone()
    shifted[~prompt] = (shifted[~prompt] + 1) % len(tiny_tokenizer)
    assert not torch.equal(loss_fn(outputs, shifted), reference)


def test_jsonl_reader_formats_and_line_errors(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"instruction": "q", "response": "a", "system": "s"})
        + "\n\n"
        + json.dumps(RECORDS[0])
        + "\n"
    )
    records = read_jsonl_records(good)
    assert [m["role"] for m in records[0]["messages"]] == ["system", "user", "assistant"]
    assert records[1] == RECORDS[0]

    bad = tmp_path / "bad.jsonl"
    for line, fragment in [
        ("{not json", "not valid JSON"),
        (json.dumps({"instruction": "q"}), "'instruction' and 'response'"),
        (json.dumps({"messages": [{"role": "user", "content": "q"}]}), "no 'assistant' message"),
        (json.dumps({"messages": [{"role": "user"}]}), "string 'content'"),
        (json.dumps({"text": "x"}), "expected a 'messages' list"),
    ]:
        bad.write_text(json.dumps(RECORDS[1]) + "\n" + line + "\n")
        with pytest.raises(BioprofileInputError, match=f"bad.jsonl line 2: .*{fragment}"):
            read_jsonl_records(bad)


def test_refseq_records_and_split(shared_data):
    records = refseq_sft_records(shared_data / "geneagent" / "gene_narrative_synopsis.txt")
    assert len(records) > 4000  # unique symbols; the file repeats genes across gene sets
    first = records[0]
    assert first["gene"] == "ZMPSTE24"
    assert first["messages"][0] == {"role": "user", "content": "Tell me about gene ZMPSTE24."}
    assert first["messages"][1]["content"].startswith(
        "This gene encodes a member of the peptidase M48A family."
    )
    train, held = split_records(records, 200, seed=0)
    assert len(held) == 200 and len(train) == len(records) - 200
    assert not {r["gene"] for r in held} & {r["gene"] for r in train}
    assert [r["gene"] for r in split_records(records, 200, seed=0)[1]] == [r["gene"] for r in held]


def test_refseq_bad_line(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("TP53: tumour suppressor.\n////\nSummary: not a gene\nC1orf112: open reading frame.\n")
    assert [r["gene"] for r in refseq_sft_records(path)] == ["TP53", "C1orf112"]
    with pytest.raises(BioprofileInputError, match="'Summary' is not a gene symbol"):
        refseq_sft_records(path, strict=True)
    path.write_text("////\n")
    with pytest.raises(BioprofileInputError, match="holds no summaries"):
        refseq_sft_records(path)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("train_file: x.jsonl\nlerning_rate: 0.1\n", "unknown config key 'lerning_rate'"),
        ("train_file: x.jsonl\nbf16: true\n", "'bf16'.*trainer_args"),
        ("train_file: x.jsonl\ntrainer_args: {fsdpp: full_shard}\n", "'fsdpp'"),
        ("train_file: x.jsonl\nloss_method: bfd\n", "'bfd'"),
        ("train_file: x.jsonl\nloss_window: 8\n", "odd"),
        ("train_file: x.jsonl\nmax_steps: many\n", "'max_steps' must be int"),
        ("train_file: [x\n", "not valid YAML"),
        ("loss_method: sft\n", "train_file"),
    ],
)
def test_config_errors_name_the_problem(tmp_path, yaml_text, message):
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    with pytest.raises(BioprofileInputError, match=message):
        load_config(config)


def test_missing_config_file(tmp_path):
    with pytest.raises(BioprofileInputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_valid_config_round_trips(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "train_file: x.jsonl\nlearning_rate: 1e-4\nloss_window: 5\ntrainer_args: {bf16: false}\n"
    )
    loaded = load_config(config, max_steps=3)
    assert loaded.learning_rate == 1e-4 and loaded.loss_window == 5 and loaded.max_steps == 3
    assert loaded.trainer_args == {"bf16": False}
    assert config_from_dict(loaded.to_dict()) == loaded


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_train_from_config_writes_a_merged_model_that_loads(tiny_llama_dir, tmp_path):
    data = _write_jsonl(tmp_path / "train.jsonl", RECORDS * 3)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_llama_dir}\ntrain_file: {data}\noutput_dir: {tmp_path / 'out'}\neval_size: 4\n"
        "loss_method: bft\nlora_r: 4\nlora_target_modules: all-linear\nmax_steps: 4\n"
        "per_device_train_batch_size: 4\nlogging_steps: 1\nlearning_rate: 0.01\neval_before_training: true\n"
    )
    out = train_from_config(config)
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["method"] == "bft" and record["window"] == 9 and record["saved_as"] == "merged"
    assert record["n_train"] == 8 and record["n_eval"] == 4
    assert [p["step"] for p in record["metrics"]["train_loss_curve"]] == [1, 2, 3, 4]
    assert 0.0 <= record["metrics"]["eval"]["token_accuracy"] <= 1.0
    assert record["metrics"]["eval_before"]["n_tokens"] == record["metrics"]["eval"]["n_tokens"] > 0

    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert AutoTokenizer.from_pretrained(out).chat_template
    assert not (out / "adapter_config.json").exists() and (out / "adapter" / "adapter_config.json").exists()
    changed = [n for n, p in merged.named_parameters() if not torch.equal(p, base.state_dict()[n])]
    assert any("q_proj" in n for n in changed)

    # The merged weights predict what base + adapter predicts.
    from peft import PeftModel

    adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
    ids = torch.tensor([[5, 17, 40, 99, 120]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, rtol=1e-4, atol=1e-5)


def test_train_from_config_adapter_only(tiny_llama_dir, tmp_path):
    data = _write_jsonl(tmp_path / "train.jsonl", RECORDS)
    config = BFTConfig(
        model=str(tiny_llama_dir), train_file=str(data), output_dir=str(tmp_path / "adapter-out"), loss_method="dft",
        merge_adapter=False, lora_r=2, lora_target_modules=["q_proj", "v_proj"], max_steps=2,
        per_device_train_batch_size=2,
    )  # fmt: skip
    out = train_from_config(config, loss_window=3)
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["saved_as"] == "adapter" and record["method"] == "dft" and record["window"] == 3
    assert record["metrics"]["eval"] is None

    from peft import PeftModel

    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), out)
    assert adapted.peft_config["default"].r == 2
    assert not (out / "checkpoints").exists()


def test_cli_train_and_its_errors(tiny_llama_dir, tmp_path):
    from typer.testing import CliRunner

    from bioprofile.cli import app

    data = _write_jsonl(tmp_path / "train.jsonl", RECORDS)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_llama_dir}\ntrain_file: {data}\nuse_lora: false\nper_device_train_batch_size: 2\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train",
            str(config),
            "-o",
            str(tmp_path / "full"),
            "--set",
            "max_steps=1",
            "--set",
            "loss_method=sft",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "full" / RUN_RECORD).read_text())["saved_as"] == "full"
    AutoModelForCausalLM.from_pretrained(tmp_path / "full")

    result = runner.invoke(app, ["train", str(config), "--set", "max_stepz=1"])
    assert result.exit_code == 2 and "unknown config key 'max_stepz'" in result.output
    result = runner.invoke(app, ["train", str(config), "--set", "oops"])
    assert result.exit_code == 2 and "key=value" in result.output


def test_trl_sft_trainer_variant_accumulates_exactly(tiny_tokenizer, tmp_path):
    """TRL's SFTTrainer with our loss: completion-only labels from TRL, per-sample accumulation from us."""
    from datasets import Dataset
    from trl import SFTConfig

    from bioprofile.train.trainer import BFTSFTTrainer

    rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in RECORDS]

    def step(batch: int, accumulation: int) -> dict:
        model = build_tiny_llama(tiny_tokenizer, seed=3).double()
        args = SFTConfig(
            output_dir=str(tmp_path / "sft"), report_to="none", save_strategy="no", use_cpu=True, max_steps=1,
            per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, optim="sgd",
            learning_rate=1.0, lr_scheduler_type="constant", max_grad_norm=0.0, max_length=128, disable_tqdm=True,
            completion_only_loss=True,
        )  # fmt: skip
        trainer = BFTSFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tiny_tokenizer,
            loss_method="bft",
        )  # fmt: skip
        batch_labels = next(iter(trainer.get_train_dataloader()))["labels"]
        assert (batch_labels == -100).any(), "TRL should mask the prompt"
        trainer.train()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    big, accumulated = step(4, 1), step(2, 2)
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.slow
def test_bioprofile_train_on_smollm2_with_refseq(shared_data, tmp_path):
    from typer.testing import CliRunner

    from bioprofile.cli import app
    from bioprofile.profiles.models import default_generator_path

    base = default_generator_path()
    config = tmp_path / "smol.yaml"
    config.write_text(
        f"model: {base}\nrefseq_file: {shared_data / 'geneagent' / 'gene_narrative_synopsis.txt'}\n"
        "eval_size: 4\nmax_train_samples: 16\nloss_method: bft\nlora_r: 8\nmax_steps: 5\n"
        "per_device_train_batch_size: 4\nper_device_eval_batch_size: 4\nmax_length: 192\nlogging_steps: 1\n"
        "learning_rate: 0.001\n"
    )
    result = CliRunner().invoke(app, ["train", str(config), "-o", str(tmp_path / "smol-out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "smol-out"
    record = json.loads((out / RUN_RECORD).read_text())
    curve = [p["loss"] for p in record["metrics"]["train_loss_curve"]]
    assert record["global_steps"] == 5 and len(curve) == 5 and all(math.isfinite(v) for v in curve)
    assert record["n_train"] == 16 and record["n_eval"] == 4
    assert 0.0 < record["metrics"]["eval"]["token_accuracy"] < 1.0
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me about gene TP53."}], add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )  # fmt: skip
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.parametrize("name", ["train_refseq_bft.yaml", "train_chat_jsonl.yaml", "train_fsdp_gpu.yaml"])
def test_example_configs_are_valid(name):
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert (
        config.loss_method in METHODS
    )  # load_config also checked every trainer_args key against TrainingArguments
