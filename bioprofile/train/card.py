"""What a training run leaves beside its model: the model card, the Hub id of the base model, the merged adapter.

The run record itself (``bioprofile_train.json``, :data:`RUN_RECORD`) is written by :mod:`bioprofile.train.run`;
the card is drawn from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bioprofile._version import __version__
from bioprofile.profiles.models import (
    DEFAULT_MODEL_ALIASES,
    DEFAULT_MODEL_DIRNAME,
    DEFAULT_MODEL_HUB_ID,
    TRAIN_RECORD_FILE,
)
from bioprofile.progress import quiet_model_loading

RUN_RECORD = TRAIN_RECORD_FILE  # the serving side (profiles.models) reads the learned template from it
MODEL_CARD = "README.md"


def base_model_hub_id(model: str, model_path: str) -> str | None:
    """The Hugging Face Hub id of the model a run trained from, or ``None`` when it is only a local folder.

    Parameters
    ----------
    model
        The model as the config names it (``"default"``, a hub id, a path).
    model_path
        What :func:`resolve_training_model` made of it (a local directory or the hub id).

    Returns
    -------
    str or None
        ``HuggingFaceTB/SmolLM2-135M-Instruct`` for the bundled default (its converted copy lives in bioprofile's
        cache); ``org/name`` for a hub id or a folder of the Hugging Face cache (``models--org--name/snapshots/``);
        else ``None``: a local path is no name another machine can load.
    """
    path = Path(model_path)
    if str(model).strip().lower() in DEFAULT_MODEL_ALIASES or path.name == DEFAULT_MODEL_DIRNAME:
        return DEFAULT_MODEL_HUB_ID
    if not path.is_dir():
        return str(model_path)  # resolve_model returns a hub id unchanged
    for part in path.parts:
        if part.startswith("models--") and part.count("--") >= 2:
            return "/".join(part.removeprefix("models--").split("--", 1))
    return None


def model_card(record: dict[str, Any], *, name: str, hub_id: str | None) -> str:
    """The model card (README.md with Hub metadata) of a trained model or adapter, from its run record.

    Parameters
    ----------
    record
        The run record written beside it (:data:`RUN_RECORD`).
    name
        The folder's name, the card's title.
    hub_id
        :func:`base_model_hub_id`; the card's ``base_model`` (left out when ``None``, never a local path).
    """
    adapter = record["saved_as"] == "adapter"
    meta = []
    if hub_id is not None:
        meta.append(f"base_model: {hub_id}")
    meta += [
        f"library_name: {'peft' if adapter else 'transformers'}",
        "pipeline_tag: text-generation",
        "tags:",
    ]
    meta += [f"- {tag}" for tag in ("bioprofile", str(record["method"]).lower(), "gene-profiles")]
    base = hub_id or f"a local model folder ({Path(str(record['base_model'])).name}; no Hub id known)"
    eval_metrics = (record.get("metrics") or {}).get("eval") or {}
    accuracy = eval_metrics.get("token_accuracy")
    lines = [
        "---",
        *meta,
        "---",
        "",
        f"# {name}",
        "",
        f"A gene-profile writer fine-tuned from {base} by bioprofile {__version__} with the {record['method']} "
        f"loss (window {record['window']}, {record['normalization']} normalisation).",
        "",
        f"- saved as: {record['saved_as']}",
        f"- prompt template: {record['template'] or 'the prompts of the JSONL records'}",
        f"- training records: {record['n_train']}, held out: {record['n_eval']}, steps: {record['global_steps']}",
        f"- held-out token accuracy: {'n/a' if accuracy is None else f'{accuracy:.4f}'}",
        "",
        f"The run record `{RUN_RECORD}` beside this card holds the whole configuration and the loss curve.",
        "",
        "```python",
    ]
    if adapter:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "",
            f'model = AutoPeftModelForCausalLM.from_pretrained("{name}")',
        ]
    else:
        lines += [
            "from transformers import AutoModelForCausalLM",
            "",
            f'model = AutoModelForCausalLM.from_pretrained("{name}")',
        ]
    lines += ["```", ""]
    return "\n".join(lines)


def merge_adapter(base_path: str, adapter_dir: Path, out: Path) -> None:
    """Fold a saved adapter into a fresh copy of the base model (works whatever sharding training used).

    Parameters
    ----------
    base_path
        The base model the adapter was trained on (a local folder or a hub id).
    adapter_dir
        The saved peft adapter.
    out
        Where the merged dense model is written.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    with quiet_model_loading():  # and its "Writing model shards" bar
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        merged.save_pretrained(out)


__all__ = [
    "DEFAULT_MODEL_HUB_ID",
    "MODEL_CARD",
    "RUN_RECORD",
    "base_model_hub_id",
    "merge_adapter",
    "model_card",
]
