"""Two CPU processes (torchrun, gloo) fine-tune the tiny llama with FSDP2 full_shard through `train_from_config` and
bioprofile/configs/train_fsdp_cpu.yaml: the parameters really are sharded, both ranks agree, the saved model loads, and the
update equals one process training on the whole global batch (sample-count scaling across accumulation and ranks).

accelerate (1.15) enables its FSDP plugin only for accelerator devices: on CPU it keeps ``MULTI_CPU`` and the Trainer
silently runs DDP. The worker lifts exactly that device check (``ALLOW_FSDP_ON_CPU`` below); everything else (FSDP2
``fully_shard``, gloo collectives, the Trainer's FSDP code paths, our loss and the final save) runs as it would on
GPUs.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import TESTS, VARIED_LENGTH_RECORDS, build_tiny_llama, build_tiny_tokenizer, run_workers
from transformers import AutoModelForCausalLM

from bioprofile.train.card import RUN_RECORD
from bioprofile.train.config import load_config
from bioprofile.train.run import _warn_if_fsdp_was_dropped

CONFIG = TESTS.parent / "bioprofile" / "configs" / "train_fsdp_cpu.yaml"

# What accelerate's AcceleratorState does for GPU-like device types (state.py: "self.distributed_type =
# DistributedType.FSDP ... PartialState._shared_state['distributed_type'] = ..."), done for CPU processes too.
ALLOW_FSDP_ON_CPU = textwrap.dedent(
    """
    def allow_fsdp_on_cpu():
        from accelerate.state import AcceleratorState, PartialState
        from accelerate.utils import DistributedType

        original = AcceleratorState.__init__

        def init(self, *args, fsdp_plugin=None, **kwargs):
            original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
            if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
                self.distributed_type = DistributedType.FSDP
                self.fsdp_plugin = fsdp_plugin
                PartialState._shared_state["distributed_type"] = DistributedType.FSDP

        AcceleratorState.__init__ = init
    """
)

WORKER = (
    textwrap.dedent(
        """
    import json, os, sys
    from pathlib import Path

    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.tensor import DTensor

    from bioprofile.train import stages, trainer as bft
    """
    )
    + ALLOW_FSDP_ON_CPU
    + textwrap.dedent(
        """
    torch.set_num_threads(1)
    config, overrides, record = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        allow_fsdp_on_cpu()

    # train_from_config keeps its trainer to itself: remember it to read each rank's view afterwards.
    built = []
    original_init = bft.BFTTrainer.__init__

    def remember(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        built.append(self)

    bft.BFTTrainer.__init__ = remember
    stages.train_from_config(config, **overrides)
    (trainer,) = built
    model = trainer.model
    rank = int(os.environ.get("RANK", 0))
    # Every rank gathers the full parameters (collective), so ranks can be compared with each other.
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    torch.save(
        {
            "world_size": trainer.args.world_size,
            "fsdp": trainer.is_fsdp_enabled,
            "sharded": {n: isinstance(p, DTensor) for n, p in model.named_parameters()},
            "local_rows": {
                n: (p.to_local() if isinstance(p, DTensor) else p).shape[0] for n, p in model.named_parameters()
            },
            "params": {n: v.detach().clone() for n, v in full.items()},
            "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
            "grad_norms": [e["grad_norm"] for e in trainer.state.log_history if "grad_norm" in e],
            "eval_loss": [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e],
        },
        record.with_name(f"{record.stem}-rank{rank}.pt"),
    )
    """
    )
)

# Responses of very different lengths: a token-count normalisation would not match a per-sample mean.
TRAIN = VARIED_LENGTH_RECORDS
EVAL = [
    {"instruction": "gene E?", "response": "a membrane channel."},
    {"instruction": "and gene F?", "response": "a ribosomal protein of the large subunit."},
]


def _write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _train(tmp_path: Path, model_dir: Path, nproc: int, **overrides) -> tuple[Path, list[dict]]:
    """Run ``train_from_config(bioprofile/configs/train_fsdp_cpu.yaml)`` in ``nproc`` fresh processes; one record per rank."""
    out = tmp_path / f"np{nproc}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    values = {
        "model": str(model_dir),
        "train_file": _write_jsonl(tmp_path / "train.jsonl", TRAIN),
        "eval_file": _write_jsonl(tmp_path / "eval.jsonl", EVAL),
        "output_dir": str(out),
        # Plain SGD at a large step: the update is linear in the gradient, so small rounding stays small.
        "optim": "sgd",
        "learning_rate": 0.5,
        "lr_scheduler_type": "constant",
        # Clipping runs (it needs the norm over all shards) but never bites: a clipped step would hide a wrongly
        # scaled gradient.
        "max_grad_norm": 1.0e6,
        "max_steps": 3,
        "seed": 0,
        **overrides,
    }
    run_workers(script, [str(CONFIG), json.dumps(values), str(tmp_path / f"np{nproc}.pt")], nproc)
    return out, [torch.load(tmp_path / f"np{nproc}-rank{rank}.pt") for rank in range(nproc)]


def test_fsdp_on_two_gloo_ranks_matches_one_big_batch_and_saves_a_full_model(tiny_llama_dir, tmp_path):
    if not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    # Outside torchrun there is no process group, which TrainingArguments wants for a gloo backend.
    config = load_config(CONFIG, ddp_backend=None)
    assert config.fsdp and config.fsdp_config["state_dict_type"] == "SHARDED_STATE_DICT"
    per_device, accumulation = config.per_device_train_batch_size, config.gradient_accumulation_steps
    assert 2 * per_device * accumulation == len(TRAIN)  # one optimiser step covers the whole training set

    out, (rank0, rank1) = _train(tmp_path, tiny_llama_dir, nproc=2)

    # Really sharded: FSDP is on and every parameter is a DTensor holding about half of its rows on each rank.
    assert rank0["world_size"] == rank1["world_size"] == 2 and rank0["fsdp"] and rank1["fsdp"]
    assert all(rank0["sharded"].values()) and all(rank1["sharded"].values())
    embed = "model.embed_tokens.weight"
    assert rank0["local_rows"][embed] + rank1["local_rows"][embed] == rank0["params"][embed].shape[0]
    # Both ranks agree on the loss curve and on the gathered parameters.
    assert len(rank0["losses"]) == 3 and rank0["losses"] == rank1["losses"]
    assert len(rank0["grad_norms"]) == 3 and rank0["grad_norms"] == rank1["grad_norms"]
    assert rank0["eval_loss"] == rank1["eval_loss"] and len(rank0["eval_loss"]) == 1
    for name, value in rank0["params"].items():
        assert torch.equal(value, rank1["params"][name]), name

    # The final model is gathered into full weights (even though checkpoints are sharded) and loads back.
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["world_size"] == 2 and record["saved_as"] == "full" and record["global_steps"] == 3
    saved = AutoModelForCausalLM.from_pretrained(out).state_dict()
    for name, value in rank0["params"].items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=0, msg=name)

    # One process (no FSDP: the Trainer wants a process group for it), the same global batch of 4 at once: the
    # same update, up to float32 reduction order.
    single_out, (single,) = _train(
        tmp_path, tiny_llama_dir, nproc=1, per_device_train_batch_size=4, gradient_accumulation_steps=1,
        use_cpu=True, ddp_backend=None, fsdp=None, fsdp_config=None,
    )  # fmt: skip
    assert single["world_size"] == 1 and not single["fsdp"]
    start = build_tiny_llama(build_tiny_tokenizer()).state_dict()
    assert max((value - start[name]).abs().max().item() for name, value in single["params"].items()) > 1e-2
    for name, value in single["params"].items():
        torch.testing.assert_close(rank0["params"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert rank0["losses"] == pytest.approx(single["losses"], rel=1e-5)
    assert rank0["grad_norms"] == pytest.approx(single["grad_norms"], rel=1e-5)
    assert rank0["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-5)
    single_record = json.loads((single_out / RUN_RECORD).read_text())
    assert record["metrics"]["eval"]["n_tokens"] == single_record["metrics"]["eval"]["n_tokens"] > 0
    assert record["metrics"]["eval"]["token_accuracy"] == pytest.approx(
        single_record["metrics"]["eval"]["token_accuracy"]
    )


def _fake_trainer(fsdp: bool, world_size: int, enabled: bool) -> SimpleNamespace:
    return SimpleNamespace(args=SimpleNamespace(fsdp=fsdp, world_size=world_size), is_fsdp_enabled=enabled)


def test_a_dropped_fsdp_request_is_reported():
    with pytest.warns(UserWarning, match="FSDP was asked for but accelerate did not enable it"):
        _warn_if_fsdp_was_dropped(_fake_trainer(fsdp=True, world_size=2, enabled=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_fsdp_was_dropped(_fake_trainer(fsdp=True, world_size=2, enabled=True))
        _warn_if_fsdp_was_dropped(_fake_trainer(fsdp=True, world_size=1, enabled=False))  # nothing to shard
        _warn_if_fsdp_was_dropped(_fake_trainer(fsdp=False, world_size=2, enabled=False))
