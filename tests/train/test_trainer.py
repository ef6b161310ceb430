"""The BFT trainer: every method trains, accumulation is exact, labels cover only responses, configs fail clearly,
and the output directory loads back (merged model or peft adapter)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from helpers import REPO, build_tiny_llama
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.profiles.prompts import get_template
from bioprofile.train.card import RUN_RECORD
from bioprofile.train.config import BFTConfig, config_from_dict, load_config
from bioprofile.train.data import (
    ChatDataset,
    CompletionCollator,
    read_jsonl_records,
    refseq_records,
    refseq_sft_records,
    split_records,
    tokenize_chat,
)
from bioprofile.train.losses import METHODS
from bioprofile.train.run import check_processes_train_together
from bioprofile.train.stages import train_from_config
from bioprofile.train.trainer import BFTTrainer

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
    loss_kwargs = {
        k: kwargs.pop(k)
        for k in ("loss_method", "loss_window", "loss_normalization", "chunked_loss")
        if k in kwargs
    }
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
    tokenizer,
    tmp_path,
    method: str,
    batch: int,
    accumulation: int,
    chunked: bool = False,
    normalization: str = "sample_mean",
) -> dict:
    model = build_tiny_llama(tokenizer, seed=2).double()
    # token_mean divides by ~36 tokens per sample where sample_mean divides by 1: a larger step moves as far.
    learning_rate = 30.0 if normalization == "token_mean" else 1.0
    trainer = _trainer(
        tokenizer, model, tmp_path, loss_method=method, chunked_loss=chunked, loss_normalization=normalization,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=learning_rate,
        lr_scheduler_type="constant", max_grad_norm=0.0,
    )  # fmt: skip
    trainer.train()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# TRL's fused LM head (the default training path) reduces in float32 whatever the model's dtype, so two float64
# steps through it agree to float32 rounding: within 6e-8 of the step's largest weight change here (1e-6 allowed).
# bioprofile's chunked path keeps float64 and agrees to 1e-15. A wrong accumulation scale is off by a factor.
FUSED_STEP_TOLERANCE = 1e-6
EXACT_TOLERANCE = {"rtol": 1e-9, "atol": 1e-10}


def _largest_change(after: dict, before: dict) -> float:
    return max((after[n] - before[n]).abs().max().item() for n in after)


@pytest.mark.parametrize("chunked", [False, True], ids=["trl-fused", "chunked"])
@pytest.mark.parametrize("normalization", ["sample_mean", "token_mean"])
@pytest.mark.parametrize("method", ["sft", "bft", "bft-v1"])
def test_accumulation_gives_the_same_update_as_one_big_batch(
    tiny_tokenizer, tmp_path, method, normalization, chunked
):
    start = {
        n: p.detach().clone() for n, p in build_tiny_llama(tiny_tokenizer, seed=2).double().named_parameters()
    }
    big = _one_sgd_step(
        tiny_tokenizer,
        tmp_path,
        method,
        batch=4,
        accumulation=1,
        chunked=chunked,
        normalization=normalization,
    )
    accumulated = _one_sgd_step(
        tiny_tokenizer,
        tmp_path,
        method,
        batch=2,
        accumulation=2,
        chunked=chunked,
        normalization=normalization,
    )
    moved = _largest_change(big, start)
    assert moved > 1e-3  # the step did something, so agreement below means something
    tolerance = EXACT_TOLERANCE if chunked else {"rtol": 0.0, "atol": FUSED_STEP_TOLERANCE * moved}
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], **tolerance, msg=name)


@pytest.mark.parametrize("normalization", ["sample_mean", "token_mean"])
def test_chunked_loss_gives_the_same_update_as_full_logits(tiny_tokenizer, tmp_path, normalization):
    """bioprofile's chunked path and TRL's fused LM head (neither builds full logits) take the same step."""
    start = {
        n: p.detach().clone() for n, p in build_tiny_llama(tiny_tokenizer, seed=2).double().named_parameters()
    }
    fused = _one_sgd_step(
        tiny_tokenizer, tmp_path, "bft", batch=2, accumulation=2, normalization=normalization
    )
    chunked = _one_sgd_step(
        tiny_tokenizer, tmp_path, "bft", batch=2, accumulation=2, chunked=True, normalization=normalization
    )
    tolerance = FUSED_STEP_TOLERANCE * _largest_change(fused, start)
    for name in fused:
        torch.testing.assert_close(chunked[name], fused[name], rtol=0.0, atol=tolerance, msg=name)


@pytest.mark.parametrize("normalization", ["sample_mean", "token_mean"])
@pytest.mark.parametrize("method", METHODS)
def test_training_loss_from_trl_log_probs_equals_the_full_logit_loss(
    tiny_tokenizer, tmp_path, method, normalization
):
    """The loss BFTTrainer trains on (TRL's per-token log-probs) is causal_lm_loss of the full logits, value and grad."""
    from bioprofile.train.losses import causal_lm_loss

    model = build_tiny_llama(tiny_tokenizer, seed=5).double()
    trainer = _trainer(tiny_tokenizer, model, tmp_path, loss_method=method, loss_normalization=normalization)
    batch = CompletionCollator(tiny_tokenizer.pad_token_id)(
        [tokenize_chat(tiny_tokenizer, r["messages"], max_length=128) for r in RECORDS]
    )
    model.train()
    fused = trainer.compute_loss(model, dict(batch))
    (fused_grad,) = torch.autograd.grad(fused, model.lm_head.weight)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    full = causal_lm_loss(model(**inputs).logits, batch["labels"], method=method, normalization=normalization)
    (full_grad,) = torch.autograd.grad(full, model.lm_head.weight)
    torch.testing.assert_close(fused, full, rtol=1e-6, atol=0.0, check_dtype=False)  # TRL returns float32
    torch.testing.assert_close(
        fused_grad, full_grad, rtol=0.0, atol=1e-6 * full_grad.abs().max().item(), check_dtype=False
    )


def test_the_step_count_hook_is_what_compute_loss_receives(tiny_tokenizer, tmp_path, monkeypatch):
    """Pins the transformers contract BFTTrainer relies on: get_batch_samples' count reaches compute_loss.

    The accumulated batch of 4 rows in micro-batches of 2 counts 4 samples (sample_mean) or its valid label tokens
    (token_mean), for every micro-batch of the step.
    """
    for normalization in ("sample_mean", "token_mean"):
        model = build_tiny_llama(tiny_tokenizer, seed=2)
        trainer = _trainer(
            tiny_tokenizer, model, tmp_path, loss_normalization=normalization, per_device_train_batch_size=2,
            gradient_accumulation_steps=2, max_steps=1,
        )  # fmt: skip
        seen = []
        original = BFTTrainer.compute_loss

        def spy(
            self, model, inputs, return_outputs=False, num_items_in_batch=None, _seen=seen, _original=original
        ):
            _seen.append((int(num_items_in_batch), inputs["labels"].clone()))
            return _original(self, model, inputs, return_outputs, num_items_in_batch)

        monkeypatch.setattr(BFTTrainer, "compute_loss", spy)
        trainer.train()
        monkeypatch.undo()
        assert len(seen) == 2
        if normalization == "sample_mean":
            expected = sum(labels.shape[0] for _, labels in seen)
        else:
            expected = sum(int((labels[:, 1:] != -100).sum()) for _, labels in seen)
        assert [count for count, _ in seen] == [expected, expected]


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
    good.write_text(
        good.read_text()
        + json.dumps({"prompt": RECORDS[0]["messages"][:1], "completion": RECORDS[0]["messages"][1:]})
        + "\n"
        + json.dumps({"prompt": "gene A?", "completion": "kinase."})
        + "\n"
    )
    records = read_jsonl_records(good)
    assert [m["role"] for m in records[0]["messages"]] == ["system", "user", "assistant"]
    assert records[1] == records[2] == records[3] == RECORDS[0]  # TRL's prompt/completion forms read the same

    bad = tmp_path / "bad.jsonl"
    for line, fragment in [
        ("{not json", "not valid JSON"),
        (json.dumps({"instruction": "q"}), "'instruction' and 'response'"),
        (json.dumps({"messages": [{"role": "user", "content": "q"}]}), "no 'assistant' message"),
        (json.dumps({"messages": [{"role": "user"}]}), "string 'content'"),
        (json.dumps({"text": "x"}), "expected a 'messages' list"),
        (
            json.dumps({"prompt": [{"role": "user", "content": "q"}], "completion": []}),
            "'completion' must be",
        ),
    ]:
        bad.write_text(json.dumps(RECORDS[1]) + "\n" + line + "\n")
        with pytest.raises(BioprofileInputError, match=f"bad.jsonl line 2: .*{fragment}"):
            read_jsonl_records(bad)


def test_refseq_records_and_split(shared_data):
    records = refseq_sft_records(shared_data / "geneagent" / "gene_narrative_synopsis.txt")
    assert len(records) > 4000  # unique symbols; the file repeats genes across gene sets
    first = records[0]
    assert first["gene"] == "ZMPSTE24"
    # Asked as embed_genes asks by default: the concise template, filled from the resolved gene (symbol and name).
    (gene,) = normalize_genes(["ZMPSTE24"]).genes
    assert first["messages"][:-1] == get_template("concise").messages(gene)
    assert first["messages"][-2] == {"role": "user", "content": f"Tell me about gene ZMPSTE24 ({gene.name})."}
    assert first["messages"][-1]["role"] == "assistant"
    assert first["messages"][-1]["content"].startswith(
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
    genept = refseq_sft_records(path, template="genept")
    assert genept[0]["messages"] == [
        {"role": "user", "content": "Tell me about gene TP53"},
        {"role": "assistant", "content": "tumour suppressor."},
    ]
    with pytest.raises(BioprofileInputError, match="'Summary' is not a gene symbol"):
        refseq_sft_records(path, strict=True)
    path.write_text("////\n")
    with pytest.raises(BioprofileInputError, match="holds no summaries"):
        refseq_sft_records(path)


def test_refseq_symbols_that_do_not_resolve_are_skipped_and_counted(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("TP53: tumour suppressor.\nNOTAGENE1: nothing.\nP53: an alias of TP53, repeated.\n")
    refseq = refseq_records(path)
    assert [r["gene"] for r in refseq.records] == ["TP53"]
    assert refseq.unresolved == ["NOTAGENE1"] and refseq.repeated == ["P53"]
    assert refseq.template is get_template("concise")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("train_file: x.jsonl\nlerning_rate: 0.1\n", "unknown config key 'lerning_rate'"),
        ("train_file: x.jsonl\ntrainer_args: {bf16: true}\n", "'trainer_args'.*top level"),
        ("train_file: x.jsonl\nfsdpp: full_shard\n", "unknown config key 'fsdpp'"),
        ("train_file: x.jsonl\nuse_lora: false\n", "'use_lora'.*lora: null"),
        ("train_file: x.jsonl\nlora: {rank: 4}\n", "unknown LoRA key 'lora.rank'"),
        ("train_file: x.jsonl\nlora: {target_modules: 5}\n", "'lora.target_modules' must be str | list"),
        ("train_file: x.jsonl\nlora: 5\n", "'lora' must be"),
        ("train_file: x.jsonl\nmax_steps: .inf\n", "'max_steps' must be int, got inf"),
        ("train_file: x.jsonl\nsave_strategy: sometimes\n", "bad config value: sometimes is not a valid"),
        ("train_file: x.jsonl\nloss_normalization: tokens\n", "'tokens'.*sample_mean, token_mean"),
        ("train_file: x.jsonl\ntemplate: chatty\n", "unknown prompt template 'chatty'"),
        ("refseq_file: s.txt\nsystem_prompt: hi\n", "system_prompt applies to train_file"),
        (
            "refseq_file: s.txt\ntemplate: protein-concise\n",
            "asks about a protein, but refseq_file holds genes",
        ),
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
    with pytest.raises(BioprofileInputError, match=message) as caught:
        load_config(config)
    assert "\n" not in str(caught.value)  # one line


def test_missing_config_file(tmp_path):
    with pytest.raises(BioprofileInputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_valid_config_round_trips(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train_file: x.jsonl\nlearning_rate: 1e-4\nloss_window: 5\nbf16: false\nlora: {r: 4}\n")
    loaded = load_config(config, max_steps=3)
    assert loaded.learning_rate == 1e-4 and loaded.loss_window == 5 and loaded.max_steps == 3
    assert loaded.bf16 is False and loaded.lora == {"r": 4} and loaded.lora_config().r == 4
    assert isinstance(loaded, TrainingArguments)  # the config is the Trainer's arguments
    assert config_from_dict(loaded.to_config_dict()) == loaded
    # bioprofile's defaults where they differ from Hugging Face's
    default = config_from_dict({"train_file": "x.jsonl"})
    assert default.learning_rate == 2e-4 and default.report_to == [] and default.save_strategy == "no"
    assert default.disable_tqdm and not default.remove_unused_columns and default.template == "concise"
    assert default.loss_normalization == "sample_mean" and default.lora["r"] == 16
    assert config_from_dict({"train_file": "x.jsonl", "lora": None}).use_lora is False


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_train_from_config_writes_a_merged_model_that_loads(tiny_llama_dir, tmp_path):
    data = _write_jsonl(tmp_path / "train.jsonl", RECORDS * 3)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_llama_dir}\ntrain_file: {data}\noutput_dir: {tmp_path / 'out'}\neval_size: 4\n"
        "loss_method: bft\nlora: {r: 4, target_modules: all-linear}\nmax_steps: 4\n"
        "per_device_train_batch_size: 4\nlogging_steps: 1\nlearning_rate: 0.01\neval_before_training: true\n"
    )
    out = train_from_config(config)
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["method"] == "bft" and record["window"] == 9 and record["saved_as"] == "merged"
    assert record["n_train"] == 8 and record["n_eval"] == 4
    assert record["template"] is None and record["template_key"] is None  # JSONL records carry their prompts
    assert record["normalization"] == "sample_mean"
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
        merge_adapter=False, lora={"r": 2, "target_modules": ["q_proj", "v_proj"]}, max_steps=2,
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
        f"model: {tiny_llama_dir}\ntrain_file: {data}\nlora: null\nper_device_train_batch_size: 2\n"
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
    (tmp_path / "a-file").write_text("in the way of the output folder")
    result = runner.invoke(app, ["train", str(config), "-o", str(tmp_path / "a-file" / "out")])
    assert result.exit_code == 2 and "cannot be created" in result.output and "is a file" in result.output


def test_trl_prompt_completion_rows_mask_the_prompt_and_accumulate_exactly(tiny_tokenizer, tmp_path):
    """TRL's conversational prompt/completion rows: prompt labels masked, per-sample accumulation exact.

    (This checked the TRL ``SFTTrainer`` variant, which is gone: the one trainer reads TRL's row format instead.)
    """
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"prompt": r["messages"][:-1], "completion": r["messages"][-1:]}) + "\n"
            for r in RECORDS
        )
    )
    records = read_jsonl_records(rows)

    def step(batch: int, accumulation: int) -> dict:
        model = build_tiny_llama(tiny_tokenizer, seed=3).double()
        trainer = _trainer(
            tiny_tokenizer, model, tmp_path, records=records, loss_method="bft", per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
            lr_scheduler_type="constant", max_grad_norm=0.0,
        )  # fmt: skip
        batch_labels = next(iter(trainer.get_train_dataloader()))["labels"]
        assert (batch_labels == -100).any(), "the prompt should be masked"
        trainer.train()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    big, accumulated = step(4, 1), step(2, 2)
    start = dict(build_tiny_llama(tiny_tokenizer, seed=3).double().named_parameters())
    tolerance = FUSED_STEP_TOLERANCE * _largest_change(big, start)  # TRL's fused LM head: float32 reductions
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=0.0, atol=tolerance, msg=name)


def _served_prompt_ids(generator, messages) -> list[int]:
    """The prompt token ids the transformers backend sends for one chat (bioprofile.profiles.hf)."""
    return generator.prompt_token_ids([messages])[0]


def _trained_prompt_ids(tokenizer, record) -> list[int]:
    feature = tokenize_chat(tokenizer, record["messages"], max_length=4096)
    first = next(i for i, label in enumerate(feature["labels"]) if label != -100)
    return feature["input_ids"][:first]


def _check_prompt_identity(model_dir, synopsis: Path, template: str) -> None:
    from transformers import AutoTokenizer

    from bioprofile.profiles.hf import TransformersGenerator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    generator = TransformersGenerator(str(model_dir), device="cpu")
    records = refseq_sft_records(synopsis, template=template)
    genes = normalize_genes([r["gene"] for r in records]).genes
    assert len(genes) == len(records) >= 2
    for record, gene in zip(records, genes, strict=True):
        served = get_template(template).messages(gene)  # what embed_genes sends for this gene
        expected = tokenizer.apply_chat_template(served, add_generation_prompt=True, tokenize=True)
        expected = list(expected["input_ids"] if hasattr(expected, "keys") else expected)
        trained = _trained_prompt_ids(tokenizer, record)
        assert trained == expected, (template, gene.symbol)
        assert trained == _served_prompt_ids(generator, served), (template, gene.symbol)


@pytest.mark.parametrize("template", ["concise", "genept"])
def test_training_prompt_tokens_equal_the_served_prompt(tiny_llama_dir, tmp_path, template):
    """The chat-templated prompt of a RefSeq training record is, token for token, what embed_genes sends."""
    synopsis = tmp_path / "syn.txt"
    synopsis.write_text("TP53: tumour suppressor.\nBRCA1: DNA repair.\nC1orf112: open reading frame.\n")
    _check_prompt_identity(tiny_llama_dir, synopsis, template)


def test_refseq_run_records_its_template(tiny_llama_dir, tmp_path):
    synopsis = tmp_path / "syn.txt"
    synopsis.write_text("TP53: tumour suppressor.\nNOTAGENE1: nothing.\nBRCA1: DNA repair.\n")
    config = BFTConfig(
        model=str(tiny_llama_dir), refseq_file=str(synopsis), output_dir=str(tmp_path / "run"), template="genept",
        lora=None, max_steps=1, per_device_train_batch_size=2, max_length=64,
    )  # fmt: skip
    record = json.loads((train_from_config(config) / RUN_RECORD).read_text())
    assert record["template"] == "genept" and record["template_key"] == get_template("genept").key
    assert record["n_unresolved_genes"] == 1 and record["unresolved_genes"] == ["NOTAGENE1"]
    assert record["n_train"] == 2 and record["config"]["template"] == "genept"


def test_responses_cut_at_max_length_are_counted_said_and_recorded(tiny_llama_dir, tmp_path):
    """A max_length shorter than prompt + response trains the start of each answer only: said, and recorded."""
    long_answer = {"role": "assistant", "content": "a kinase that " * 40}
    records = [
        {"messages": [{"role": "user", "content": "gene A?"}, long_answer]},
        {"messages": [{"role": "user", "content": "gene B?"}, {"role": "assistant", "content": "short."}]},
        {
            "messages": [{"role": "user", "content": "gene C? " * 40}, long_answer]
        },  # the prompt alone is too long
        {"messages": [{"role": "user", "content": "gene D?"}, long_answer]},
    ]
    data = _write_jsonl(tmp_path / "train.jsonl", records)
    config = BFTConfig(
        model=str(tiny_llama_dir), train_file=str(data), output_dir=str(tmp_path / "run"), eval_size=1,
        eval_strategy="no", lora=None, max_steps=1, per_device_train_batch_size=2, max_length=48,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="max_length 48 cuts responses") as seen:
        out = train_from_config(config)
    message = next(str(w.message) for w in seen if "cuts responses" in str(w.message))
    # the seed holds out record C, whose prompt alone fills max_length; A and D train on their first tokens
    assert "training records: 2 of 3 cut short, 0 dropped" in message
    assert "held-out records: 0 of 1 cut short, 1 dropped" in message
    record = json.loads((out / RUN_RECORD).read_text())
    assert (record["n_truncated_at_max_length"], record["n_dropped_over_max_length"]) == (2, 1)
    assert (record["n_train"], record["n_eval"]) == (3, 0)


def test_output_dir_is_checked_before_the_model_loads(tmp_path):
    data = _write_jsonl(tmp_path / "train.jsonl", RECORDS)
    # The model does not exist either: the output directory is what is checked first.
    (tmp_path / "a").write_text("a file where the output's parent folder would go")
    config = BFTConfig(
        model=str(tmp_path / "no-model"), train_file=str(data), output_dir=str(tmp_path / "a" / "b")
    )
    with pytest.raises(BioprofileInputError, match="output_dir .* cannot be created: .* is a file"):
        train_from_config(config)
    # a folder that does not exist yet is made by the trainer, as Hugging Face's is: not refused
    config.output_dir = str(tmp_path / "new" / "run")
    with pytest.raises(BioprofileInputError, match="no-model"):
        train_from_config(config)
    with pytest.raises(BioprofileInputError, match="does not exist"):
        train_from_config(config, output_dir=str(tmp_path / "out"))  # now the model


@pytest.mark.slow
def test_bioprofile_train_on_smollm2_with_refseq(shared_data, tmp_path):
    from typer.testing import CliRunner

    from bioprofile.cli import app
    from bioprofile.profiles.models import default_generator_path

    base = default_generator_path()
    config = tmp_path / "smol.yaml"
    config.write_text(
        f"model: {base}\nrefseq_file: {shared_data / 'geneagent' / 'gene_narrative_synopsis.txt'}\n"
        "eval_size: 4\nmax_train_samples: 16\nloss_method: bft\nlora: {r: 8}\nmax_steps: 5\n"
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
    assert record["template"] == "concise" and record["template_key"] == get_template("concise").key
    assert 0.0 < record["metrics"]["eval"]["token_accuracy"] < 1.0
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    (tp53,) = normalize_genes(["TP53"]).genes
    prompt = tokenizer.apply_chat_template(
        get_template(record["template"]).messages(tp53), add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )  # fmt: skip
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow
def test_smollm2_training_prompt_tokens_equal_the_served_prompt(tmp_path):
    """The prompt identity with the default generator's real tokenizer and chat template (SmolLM2)."""
    from bioprofile.profiles.models import default_generator_path

    synopsis = tmp_path / "syn.txt"
    synopsis.write_text("TP53: tumour suppressor.\nBRCA1: DNA repair.\nC1orf112: open reading frame.\n")
    for template in ("concise", "genept"):
        _check_prompt_identity(default_generator_path(), synopsis, template)


@pytest.mark.parametrize("name", ["train_refseq_bft.yaml", "train_chat_jsonl.yaml", "train_fsdp_gpu.yaml"])
def test_example_configs_are_valid(name):
    # bf16 is refused by TrainingArguments on a machine without a GPU unless it trains on the CPU.
    on_cpu = {} if torch.cuda.is_available() else {"use_cpu": True}
    config = load_config(REPO / "bioprofile" / "configs" / name, **on_cpu)
    # load_config checked every key and value against BFTConfig (TrainingArguments) and the lora section
    assert config.loss_method in METHODS


def test_processes_that_would_each_train_alone_are_refused(monkeypatch, tmp_path):
    # a launcher said 4 processes, but without use_cpu on a CPU machine the Trainer does not join them
    config = config_from_dict({"train_file": "x.jsonl", "output_dir": str(tmp_path / "out")})
    check_processes_train_together(config)  # one process: fine
    monkeypatch.setenv("WORLD_SIZE", "4")
    config = config_from_dict({"train_file": "x.jsonl", "output_dir": str(tmp_path / "out")})
    with pytest.raises(BioprofileInputError, match="launched as 4 processes.*use_cpu: true") as err:
        check_processes_train_together(config)
    assert err.value.argument == "config" and "\n" not in str(err.value)


BAD_CONFIGS = {
    "unknown key": ("max_stepz: 3\n", "unknown config key 'max_stepz'"),
    "wrong type": ("max_steps: three\n", "config key 'max_steps' must be int, got 'three'"),
    "wrong type, not carried as text": ("lora: [4]\n", "config key 'lora' must be"),
    "SFTConfig key bioprofile does not use": (
        "packing: true\n",
        "'packing' belongs to TRL's own SFT pipeline",
    ),
    "unknown stage": ("stage: rlhf\n", "unknown training stage 'rlhf': use one of sft"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_through_the_parser_and_the_cli(tmp_path, case):
    """Through the library (HfArgumentParser underneath) and through `bioprofile train`: one line, exit 2."""
    from typer.testing import CliRunner

    from bioprofile.cli import app

    text, message = BAD_CONFIGS[case]
    config = tmp_path / "bad.yaml"
    config.write_text(f"train_file: x.jsonl\noutput_dir: {tmp_path / 'out'}\n{text}")
    with pytest.raises(BioprofileInputError, match=re.escape(message)) as caught:
        train_from_config(config)
    assert "\n" not in str(caught.value)
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists()  # refused before any work


def test_the_parser_converts_each_value_as_hugging_face_does():
    """Values go through HfArgumentParser's own conversion: YAML 1.1 strings to numbers, lists, bools, mappings."""
    config = config_from_dict(
        {
            "train_file": "x.jsonl",
            "learning_rate": "1e-4",  # YAML 1.1 reads 1e-4 as a string
            "max_steps": 7,
            "label_names": ["labels"],
            "report_to": ["tensorboard"],
            "fsdp_config": {"min_num_params": 0},
            "loss_window": None,
            "eval_before_training": True,
        }
    )
    assert config.learning_rate == 1e-4 and config.max_steps == 7 and config.label_names == ["labels"]
    assert config.report_to == ["tensorboard"] and config.loss_window is None and config.eval_before_training
    for values, message in [
        ({"max_steps": 2.5}, "'max_steps' must be int, got 2.5"),
        ({"max_steps": True}, "'max_steps' must be int, got True"),
        ({"learning_rate": "fast"}, "'learning_rate' must be float, got 'fast'"),
        ({"max_steps": None}, "'max_steps' must be int, got None"),
        ({"eval_before_training": "maybe"}, "'eval_before_training' must be bool"),
    ]:
        with pytest.raises(BioprofileInputError, match=re.escape(message)):
            config_from_dict({"train_file": "x.jsonl", **values})


def test_train_from_config_dispatches_on_the_stage_key(tmp_path):
    """stage: picks the registered runner (sft when absent); a registered stage is one register_stage line."""
    from bioprofile.train import stages

    runs = []

    def fake_run(config, *, overwrite=False, progress=None):
        runs.append((type(config).__name__, config.max_steps, overwrite))
        return tmp_path / "done"

    sft = stages.get_stage("sft")
    try:
        stages.register_stage("sft", BFTConfig, config_from_dict, fake_run, replace=True)
        stages.register_stage("toy", BFTConfig, config_from_dict, fake_run)
        with pytest.raises(BioprofileInputError, match="'toy' is already registered"):
            stages.register_stage("toy", BFTConfig, config_from_dict, fake_run)
        config = tmp_path / "c.yaml"
        config.write_text("train_file: x.jsonl\nmax_steps: 3\n")
        assert train_from_config(config) == tmp_path / "done"
        config.write_text("stage: sft\ntrain_file: x.jsonl\nmax_steps: 3\n")
        train_from_config(config, overwrite=True, max_steps=4)
        train_from_config(config_from_dict({"train_file": "x.jsonl"}), max_steps=5)
        assert runs == [("BFTConfig", 3, False), ("BFTConfig", 4, True), ("BFTConfig", 5, False)]
        assert stages.stages() == ("sft", "grpo", "toy")
        config.write_text("stage: toy\ntrain_file: x.jsonl\nmax_steps: 6\n")
        train_from_config(config)
        assert runs[-1] == ("BFTConfig", 6, False)
        with pytest.raises(
            BioprofileInputError, match="unknown training stage 'rlhf': use one of sft, grpo, toy"
        ):
            train_from_config(config, stage="rlhf")
        with pytest.raises(BioprofileInputError, match="for training stage 'toy', not sft"):
            load_config(config)
    finally:
        stages.STAGES.unregister("toy")
        stages.STAGES.register("sft", sft, replace=True)
    assert stages.stages() == ("sft", "grpo") and stages.get_stage("sft") is sft


def test_the_registry_runs_the_sft_stage():
    from bioprofile.train import stages
    from bioprofile.train.run import run_sft

    stage = stages.get_stage("sft")
    assert stages.DEFAULT_STAGE == "sft"
    assert stage.config_class is BFTConfig and stage.from_dict is config_from_dict and stage.run is run_sft


def test_bft_config_and_trainer_are_trl_s():
    import trl

    import bioprofile.train as train

    assert issubclass(train.BFTTrainer, trl.SFTTrainer) and issubclass(train.BFTConfig, trl.SFTConfig)
    # TRL's defaults that would change a run are Hugging Face's again: no bf16, no activation checkpointing.
    default = config_from_dict({"train_file": "x.jsonl"})
    assert default.bf16 is False and default.activation_checkpointing is False
    assert default.dataset_kwargs == {"skip_prepare_dataset": True}  # the records come tokenised


def test_any_arguments_run_with_trl_s_preparation_skipped(tmp_path):
    """BFTTrainer's records come tokenised and labelled: TRL must neither prepare nor prune them."""
    import trl

    from bioprofile.train.trainer import sft_arguments

    plain = sft_arguments(_args(tmp_path, remove_unused_columns=True, learning_rate=0.5))
    assert isinstance(plain, trl.SFTConfig) and plain.learning_rate == 0.5
    assert plain.dataset_kwargs == {"skip_prepare_dataset": True} and not plain.remove_unused_columns
    assert plain.bf16 is False and plain.activation_checkpointing is False  # TrainingArguments' values kept
    theirs = trl.SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_length=64)
    ours = sft_arguments(theirs)
    assert ours is not theirs and theirs.dataset_kwargs is None and theirs.remove_unused_columns
    assert ours.dataset_kwargs == {"skip_prepare_dataset": True} and ours.max_length == 64
    config = config_from_dict({"train_file": "x.jsonl", "output_dir": str(tmp_path)})
    assert sft_arguments(config) is config
    assert sft_arguments(None).bf16 is False  # Hugging Face's defaults, not TRL's bf16
