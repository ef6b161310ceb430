"""Fine-tuning the profile writer: reweighted losses (SFT, DFT, BFT...), data, config and the trainer.

Modules
-------
losses
    SFT, DFT and BFT objectives from logits or per-token cross-entropy (pure torch).
chunked
    The same objectives from final hidden states, chunk by chunk, without full logits.
data
    Records: JSONL readers, the RefSeq set asked with a prompt template, completion-only tokenisation, padding.
config
    :class:`BFTConfig`, a TRL ``SFTConfig`` subclass, and its strict YAML reader (``HfArgumentParser``).
trainer
    The one trainer (:class:`BFTTrainer`, a TRL ``SFTTrainer`` with bioprofile's losses), its metrics and progress bar.
run
    One ``sft`` run: records in; model, tokenizer, run record and model card out.
card
    The model card, the base model's Hub id and the adapter merge.
stages
    :func:`train_from_config` and the stage registry (``register_stage("sft", ...)``) it dispatches on.
grpo
    The ``grpo`` stage: :class:`GRPOStageConfig` (a TRL ``GRPOConfig``) and :func:`run_grpo` on TRL's
    ``GRPOTrainer``, from a model or a LoRA adapter loaded trainable.
grpo_data
    Its records: DE questions (pert, cell_line, gene, label) asked with a DE-question template.
grpo_log
    Its per-step log (:class:`GRPOLog`): mean reward, share of all-equal groups, malformed rate, KL.
rewards
    Reward functions by name (``answer``, ``answer_format``; :func:`register_reward`), TRL's reward signature.

Names are imported on first use, so ``import bioprofile.train`` stays cheap (the Hugging Face trainer is slow to
import).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "METHODS": "bioprofile.train.losses",
    "NORMALIZATIONS": "bioprofile.train.losses",
    "causal_lm_loss": "bioprofile.train.losses",
    "reweighted_loss": "bioprofile.train.losses",
    "BFTConfig": "bioprofile.train.config",
    "load_config": "bioprofile.train.config",
    "config_from_dict": "bioprofile.train.config",
    "read_jsonl_records": "bioprofile.train.data",
    "refseq_records": "bioprofile.train.data",
    "refseq_sft_records": "bioprofile.train.data",
    "split_records": "bioprofile.train.data",
    "tokenize_chat": "bioprofile.train.data",
    "ChatDataset": "bioprofile.train.data",
    "CompletionCollator": "bioprofile.train.data",
    "BFTTrainer": "bioprofile.train.trainer",
    "BalancedCausalLMLoss": "bioprofile.train.trainer",
    "RUN_RECORD": "bioprofile.train.card",
    "run_sft": "bioprofile.train.run",
    "register_stage": "bioprofile.train.stages",
    "train_from_config": "bioprofile.train.stages",
    "GRPOStageConfig": "bioprofile.train.grpo",
    "run_grpo": "bioprofile.train.grpo",
    "GRPOLog": "bioprofile.train.grpo_log",
    "read_de_questions": "bioprofile.train.grpo_data",
    "register_reward": "bioprofile.train.rewards",
}

__all__ = [
    "METHODS",
    "NORMALIZATIONS",
    "RUN_RECORD",
    "BFTConfig",
    "BFTTrainer",
    "BalancedCausalLMLoss",
    "ChatDataset",
    "CompletionCollator",
    "GRPOLog",
    "GRPOStageConfig",
    "causal_lm_loss",
    "config_from_dict",
    "load_config",
    "read_de_questions",
    "read_jsonl_records",
    "refseq_records",
    "refseq_sft_records",
    "register_reward",
    "register_stage",
    "reweighted_loss",
    "run_grpo",
    "run_sft",
    "split_records",
    "tokenize_chat",
    "train_from_config",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
