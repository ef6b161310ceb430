"""Two CPU processes (torchrun, gloo) train the tiny llama with DDP: both ranks end with identical weights, and they
equal one process training on the whole global batch (the per-sample loss scaling holds across ranks)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import TESTS, VARIED_LENGTH_RECORDS, build_tiny_llama, build_tiny_tokenizer, run_workers

WORKER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    import torch

    sys.path.insert(0, {tests!r})
    from helpers import build_tiny_llama, build_tiny_tokenizer
    from transformers import TrainingArguments

    from bioprofile.train.data import ChatDataset, CompletionCollator, read_jsonl_records
    from bioprofile.train.trainer import BFTTrainer

    out, per_device_batch = Path(sys.argv[1]), int(sys.argv[2])
    records = read_jsonl_records(sys.argv[3])
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_llama(tokenizer, seed=4).double()
    args = TrainingArguments(
        output_dir=str(out / "ckpt"), report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
        remove_unused_columns=False, logging_steps=1, max_steps=3, per_device_train_batch_size=per_device_batch,
        optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", max_grad_norm=0.0,
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        seed=0,
    )
    trainer = BFTTrainer(
        model=model, args=args, train_dataset=ChatDataset(records, tokenizer, max_length=128),
        data_collator=CompletionCollator(tokenizer.pad_token_id), loss_method="bft",
    )
    trainer.train()
    rank = int(os.environ.get("RANK", 0))
    torch.save(
        {{
            "world_size": trainer.args.world_size,
            "params": {{n: p.detach().clone() for n, p in model.named_parameters()}},
            "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
        }},
        out / f"rank{{rank}}.pt",
    )
    """
).format(tests=str(TESTS))

RECORDS = VARIED_LENGTH_RECORDS


def _run(tmp_path: Path, nproc: int, per_device_batch: int) -> list[dict]:
    out = tmp_path / f"np{nproc}"
    out.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    run_workers(script, [str(out), str(per_device_batch), str(data)], nproc)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(nproc)]


def test_two_gloo_ranks_match_each_other_and_one_big_batch(tmp_path):
    if not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    rank0, rank1 = _run(tmp_path, nproc=2, per_device_batch=2)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert len(rank0["losses"]) == 3 and rank0["losses"] == rank1["losses"]
    for name, value in rank0["params"].items():
        assert torch.equal(value, rank1["params"][name]), name

    (single,) = _run(tmp_path, nproc=1, per_device_batch=4)
    assert single["world_size"] == 1
    start = build_tiny_llama(build_tiny_tokenizer(), seed=4).double().state_dict()
    moved = max((value - start[name]).abs().max().item() for name, value in single["params"].items())
    assert moved > 1e-3
    # TRL's fused LM head reduces in float32 whatever the model's dtype: the float64 runs agree to float32 rounding,
    # within 1e-6 of the largest weight change (a wrong scale across ranks is off by a factor of 2).
    for name, value in single["params"].items():
        torch.testing.assert_close(rank0["params"][name], value, rtol=0.0, atol=1e-6 * moved, msg=name)
    assert rank0["losses"] == pytest.approx(single["losses"], rel=1e-6)
