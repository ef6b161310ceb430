"""Every shipped config in ``bioprofile/configs/`` runs in the mode its comment documents, at tiny sizes.

A tiny random Llama saved to disk replaces the model, a few chat records replace the data, ``max_steps`` is 2. The
GPU-only files (``train_fsdp_gpu.yaml``, ``deepspeed_zero3.json``) are parsed and validated here and skipped for
running, with the reason, where the machine lacks what they need.

``accelerate_ddp.yaml`` once ran four separate trainings into one folder on CPU: ``accelerate launch`` starts its
processes with torchrun whatever the device, but the Trainer, asked for no CPU run and finding no GPU, sets up a
non-distributed state in each process, so each trained the whole data set alone (``world_size`` 1) and all wrote the
same ``output_dir``. On CPU processes the training YAML needs ``use_cpu: true`` and ``ddp_backend: gloo``, which
the config now says; the test below runs it that way and checks that the ranks trained together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import TESTS, VARIED_LENGTH_RECORDS, free_port, worker_env
from transformers import AutoModelForCausalLM

from bioprofile.train.card import RUN_RECORD
from bioprofile.train.config import load_config
from bioprofile.train.stages import train_from_config

CONFIGS = TESTS.parent / "bioprofile" / "configs"

# What each shipped file is and how this module covers it.
COVERED = {
    "accelerate_ddp.yaml": "accelerate launch, DDP: run on 2 CPU processes",
    "accelerate_fsdp.yaml": "accelerate launch, FSDP2: run on 2 CPU processes (the CPU device check lifted)",
    "train_chat_jsonl.yaml": "own chat JSONL, BFT + LoRA, adapter only: run in-process",
    "train_refseq_bft.yaml": "RefSeq summaries, BFT + LoRA, merged: run in-process",
    "train_fsdp_cpu.yaml": "torchrun on 2 CPU processes: DDP with a warning, as its caveat says",
    "train_fsdp_gpu.yaml": "parsed and validated; run only with 2 GPUs",
    "deepspeed_zero3.json": "parsed and validated; run only with DeepSpeed and a GPU",
    "grpo_de_reasoning.yaml": "stage: grpo, parsed and validated in test_grpo_stage.py (GRPO runs there on a tiny model)",
}


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _record(out: Path) -> dict:
    return json.loads((out / RUN_RECORD).read_text())


def _launch(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a multi-process training command offline, one thread a process; fail with its output."""
    # the checkout, helpers (tests/) and this folder's test modules (the launched scripts import test_fsdp)
    folders = [TESTS.parent, TESTS, Path(__file__).resolve().parent]
    env = {**worker_env(), "PYTHONPATH": os.pathsep.join(map(str, folders))}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _accelerate(config: str, *args: str) -> list[str]:
    accelerate = Path(sys.executable).parent / "accelerate"
    return [str(accelerate), "launch", "--config_file", str(CONFIGS / config), "--num_processes", "2",
            "--main_process_port", str(free_port()), *args]  # fmt: skip


def _needs_gloo() -> None:
    if not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")


def test_every_shipped_config_is_covered_here():
    shipped = {p.name for p in CONFIGS.iterdir() if p.suffix in (".yaml", ".json")}
    assert shipped == set(COVERED)


@pytest.mark.parametrize("name", ["accelerate_ddp.yaml", "accelerate_fsdp.yaml"])
def test_accelerate_configs_parse_as_accelerate_reads_them(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / name))
    assert config.num_machines == 1 and config.num_processes > 1
    if name == "accelerate_ddp.yaml":
        assert config.distributed_type == "MULTI_GPU"
    else:
        assert config.distributed_type == "FSDP" and config.fsdp_config["fsdp_version"] == 2
    # The comment's command line names this very file.
    assert f"--config_file bioprofile/configs/{name}" in (CONFIGS / name).read_text()


def test_train_chat_jsonl_writes_an_adapter_only(tiny_llama_dir, tmp_path):
    out = train_from_config(
        CONFIGS / "train_chat_jsonl.yaml",
        model=str(tiny_llama_dir),
        train_file=str(_write_jsonl(tmp_path / "train.jsonl", VARIED_LENGTH_RECORDS)),
        eval_file=str(_write_jsonl(tmp_path / "eval.jsonl", VARIED_LENGTH_RECORDS[:2])),
        output_dir=str(tmp_path / "adapter"),
        max_steps=2,
        max_length=128,
    )
    record = _record(out)
    assert record["method"] == "bft" and record["template"] is None and record["global_steps"] == 2
    assert record["saved_as"] == "adapter" and record["world_size"] == 1
    assert (out / "adapter_config.json").is_file() and not (out / "config.json").exists()
    assert record["metrics"]["eval"]["n_tokens"] > 0


def test_train_refseq_bft_writes_a_merged_model_asked_with_the_concise_template(tiny_llama_dir, tmp_path):
    refseq = tmp_path / "refseq.txt"
    refseq.write_text(
        "TP53: tumour suppressor that guards the genome.\n////\nBRCA1: repairs DNA double-strand breaks.\n"
        "EGFR: a receptor tyrosine kinase.\nKRAS: a small GTPase.\nMYC: a transcription factor.\n"
    )
    out = train_from_config(
        CONFIGS / "train_refseq_bft.yaml",
        model=str(tiny_llama_dir),
        refseq_file=str(refseq),
        eval_size=1,
        output_dir=str(tmp_path / "merged"),
        max_steps=2,
        per_device_eval_batch_size=2,
        eval_before_training=False,
        max_length=1024,  # byte-level tokens: the concise prompt alone is a few hundred
    )
    record = _record(out)
    assert record["method"] == "bft" and record["window"] == 9 and record["template"] == "concise"
    assert record["saved_as"] == "merged" and record["n_train"] == 4 and record["n_eval"] == 1
    assert (out / "adapter" / "adapter_config.json").is_file()
    AutoModelForCausalLM.from_pretrained(out)  # the merged model loads as a plain model


@pytest.mark.slow
def test_accelerate_ddp_on_cpu_processes_trains_once_on_two_ranks(tiny_llama_dir, tmp_path):
    _needs_gloo()
    train = tmp_path / "train.yaml"
    train.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_llama_dir),
                "train_file": str(_write_jsonl(tmp_path / "train.jsonl", VARIED_LENGTH_RECORDS)),
                "output_dir": str(tmp_path / "ddp"),
                "max_steps": 2,
                "per_device_train_batch_size": 1,
                "max_length": 128,
                "logging_steps": 1,
                "lora": None,
                # what the accelerate config's comment says CPU processes need
                "use_cpu": True,
                "ddp_backend": "gloo",
            }
        )
    )
    _launch(_accelerate("accelerate_ddp.yaml", "-m", "bioprofile.cli", "train", str(train)), tmp_path)
    record = _record(tmp_path / "ddp")
    # One training on two ranks: 2 steps of 2 x 1 records cover the 4 records once (one epoch).
    assert record["world_size"] == 2 and record["global_steps"] == 2
    assert [e["step"] for e in record["metrics"]["train_loss_curve"]] == [1, 2]


# accelerate launch runs a script: this one lifts accelerate's device check for FSDP (tests/train/test_fsdp.py) and then
# runs the CLI, so FSDP2 really shards on CPU processes.
FSDP_CLI = """
import sys
from test_fsdp import ALLOW_FSDP_ON_CPU
exec(ALLOW_FSDP_ON_CPU)
allow_fsdp_on_cpu()
from bioprofile.cli import app
app(sys.argv[1:])
"""


@pytest.mark.slow
def test_accelerate_fsdp_on_cpu_processes_shards_and_saves_a_full_model(tiny_llama_dir, tmp_path):
    _needs_gloo()
    script = tmp_path / "fsdp_cli.py"
    script.write_text(FSDP_CLI)
    out = tmp_path / "fsdp"
    # train_fsdp_cpu.yaml (CPU, gloo, full fine-tune) with its own fsdp keys off: the accelerate file sets FSDP.
    result = _launch(
        _accelerate(
            "accelerate_fsdp.yaml", str(script), "train", str(CONFIGS / "train_fsdp_cpu.yaml"), "-o", str(out),
            "--set", f"model={tiny_llama_dir}",
            "--set", f"train_file={_write_jsonl(tmp_path / 'train.jsonl', VARIED_LENGTH_RECORDS)}",
            "--set", "eval_file=null", "--set", "max_steps=2", "--set", "fsdp=false", "--set", "fsdp_config=null",
        ),
        tmp_path,
    )  # fmt: skip
    assert "FSDP2-wrapped module" in result.stderr  # torch's fully_shard wrapped the model
    assert "FSDP was asked for but accelerate did not enable it" not in result.stderr
    record = _record(out)
    assert record["world_size"] == 2 and record["global_steps"] == 2 and record["saved_as"] == "full"
    AutoModelForCausalLM.from_pretrained(out)


@pytest.mark.slow
def test_train_fsdp_cpu_under_torchrun_trains_ddp_and_says_fsdp_was_dropped(tiny_llama_dir, tmp_path):
    _needs_gloo()
    out = tmp_path / "fsdp-cpu"
    # The config's own command line, at tiny sizes.
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "bioprofile.cli", "train", str(CONFIGS / "train_fsdp_cpu.yaml"), "-o", str(out),
        "--set", f"model={tiny_llama_dir}",
        "--set", f"train_file={_write_jsonl(tmp_path / 'train.jsonl', VARIED_LENGTH_RECORDS)}",
        "--set", f"eval_file={_write_jsonl(tmp_path / 'eval.jsonl', VARIED_LENGTH_RECORDS[:2])}",
        "--set", "max_steps=2",
    ]  # fmt: skip
    result = _launch(command, tmp_path)
    assert "FSDP was asked for but accelerate did not enable it" in result.stderr
    record = _record(out)
    assert record["world_size"] == 2 and record["global_steps"] == 2 and record["saved_as"] == "full"
    assert record["metrics"]["eval"]["n_tokens"] > 0


def test_train_fsdp_gpu_parses_and_asks_for_sharded_bf16_training():
    config = load_config(CONFIGS / "train_fsdp_gpu.yaml", bf16=False)  # bf16 itself is checked on a GPU below
    assert config.fsdp and config.fsdp_config["version"] == 2 and config.lora is None
    assert config.chunked_loss and config.activation_checkpointing
    assert yaml.safe_load((CONFIGS / "train_fsdp_gpu.yaml").read_text())["bf16"] is True
    if torch.cuda.device_count() < 2:
        pytest.skip("train_fsdp_gpu.yaml runs FSDP on GPUs: this machine has fewer than 2")


def test_deepspeed_zero3_parses_as_a_zero3_config_the_trainer_fills_in():
    config = json.loads((CONFIGS / "deepspeed_zero3.json").read_text())
    assert config["zero_optimization"]["stage"] == 3
    # "auto" values are filled in from TrainingArguments by the Trainer's DeepSpeed integration.
    autos = {k for k, v in config.items() if v == "auto"}
    assert {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"} <= autos
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        pytest.skip("deepspeed_zero3.json runs with DeepSpeed on a GPU: deepspeed is not installed here")
    if not torch.cuda.is_available():
        pytest.skip("deepspeed_zero3.json runs with DeepSpeed on a GPU: this machine has none")
    load_config(CONFIGS / "train_fsdp_gpu.yaml", deepspeed=str(CONFIGS / "deepspeed_zero3.json"), fsdp=False)
