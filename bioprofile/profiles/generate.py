"""Write a profile text per entity, resumably: cached texts are reused, each new one is committed as it arrives."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from bioprofile.display import display_value
from bioprofile.entities import EntityLike, entity_key
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.models import dtype_name

if TYPE_CHECKING:
    from bioprofile.store import Store

__all__ = [
    "GenerationSettings",
    "ProfileGenerator",
    "PromptTemplateLike",
    "chat_prompt_token_ids",
    "cut_at_stop",
    "entity_key",
    "generate_profiles",
    "generation_provenance",
    "prompt_chunks",
    "stop_token_ids",
]

# Chunk size when neither the caller nor the generator says: small enough that a kill loses little work on CPU.
_DEFAULT_CHUNK = 32
# Devices a local backend can be placed on (a typo fails here, before any model loads).
_DEVICE = re.compile(r"cpu|mps|(cuda|xpu)(:[0-9]+)?")
# With a generator that batches itself, hand it a few of its batches per chunk so it can pack them.
_BATCHES_PER_CHUNK = 4


class ProfileGenerator(Protocol):
    """What :func:`generate_profiles` needs from a backend (e.g. ``profiles.hf.TransformersGenerator``).

    Notes
    -----
    A backend may also have ``generate_iter(messages_list)``, an iterator of ``(index, text)`` pairs in the order
    the texts finish (``index`` into ``messages_list``): :func:`generate_profiles` then commits each text as it
    arrives instead of when the whole chunk is done. A backend whose texts do not depend on which prompts share a
    batch (a served model: one request per prompt) sets ``independent_prompts = True``, and is then sent only the
    prompts whose texts are missing.
    """

    id: str
    params: Mapping[str, Any]

    def generate(self, messages_list: list[list[dict]]) -> list[str]:
        """One profile text per chat, in input order."""
        ...


class PromptTemplateLike(Protocol):
    """What :func:`generate_profiles` needs from a prompt template (``profiles.prompts.PromptTemplate``)."""

    name: str

    def messages(self, entity: Any) -> list[dict]:
        """The chat messages asking for a profile of ``entity``."""
        ...


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings every backend shares, checked when they are made.

    Parameters
    ----------
    batch_size
        Prompts per generation batch (transformers), requests in the engine at once (vLLM) or in flight (OpenAI);
        ``None`` takes the backend's default (16, 64 and 16).
    max_new_tokens
        Most tokens generated per profile.
    do_sample
        Sample instead of greedy decoding. Greedy (the default) is reproducible, so cached texts stay valid.
    temperature, top_p
        Sampling settings; ignored (and left out of :meth:`text_params`) when ``do_sample`` is false.
    seed
        Seed of the sampler; ignored when ``do_sample`` is false.
    dtype
        Weights' dtype on the local backends: ``"float32"`` (the default on every backend and device, so
        transformers and vLLM write the same tokens), ``"bfloat16"``, ``"float16"``, or ``"auto"`` for the
        engine's own choice (bf16 on a GPU; vLLM also picks bf16 on CPU). A ``torch.dtype`` is accepted too.
    device
        Where a local model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); ``None``: a GPU if there is one.
    threads
        CPU threads of a local model (``torch.set_num_threads`` for transformers, the engine's OpenMP threads
        for vLLM on CPU); ``None``: the CPUs this process may use. On a loaded machine fewer can be faster.

    Raises
    ------
    BioprofileInputError
        A setting no backend can run; the message names the argument.

    Notes
    -----
    ``dtype`` changes the texts (it is part of the cache key); ``device`` and ``threads`` change only speed.
    A served model (backend ``"openai"``) has its own dtype, device and threads: it refuses other values.
    """

    batch_size: int | None = None
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    dtype: Any = "float32"
    device: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise BioprofileInputError(
                f"batch_size must be at least 1, got {self.batch_size}", argument="batch_size"
            )
        if self.max_new_tokens < 1:
            raise BioprofileInputError(
                f"max_new_tokens must be at least 1, got {self.max_new_tokens}", argument="max_new_tokens"
            )
        if self.do_sample and not self.temperature > 0:
            raise BioprofileInputError(
                f"temperature must be positive when sampling, got {self.temperature}", argument="temperature"
            )
        if self.do_sample and not 0 < self.top_p <= 1:
            raise BioprofileInputError(f"top_p must be in (0, 1], got {self.top_p}", argument="top_p")
        if self.threads is not None and int(self.threads) < 1:
            raise BioprofileInputError(f"threads must be at least 1, got {self.threads}", argument="threads")
        device = None if self.device is None else str(self.device).strip()
        if device is not None and not _DEVICE.fullmatch(device):
            raise BioprofileInputError(
                f"unknown device {device!r}: use cpu, cuda, cuda:N, mps or xpu", argument="device"
            )
        # Plain Python numbers (not numpy scalars or strings of digits): they go into JSON cache keys.
        coerced = {
            "batch_size": None if self.batch_size is None else int(self.batch_size),
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": bool(self.do_sample),
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "seed": int(self.seed),
            # None is the engine's choice, as "auto"; names are checked without importing torch.
            "dtype": dtype_name(self.dtype),
            "device": device,
            "threads": None if self.threads is None else int(self.threads),
        }
        for name, value in coerced.items():
            object.__setattr__(self, name, value)

    @property
    def local_only(self) -> dict[str, Any]:
        """The settings only a local model has, where they differ from the defaults (a served model refuses them)."""
        defaults = GenerationSettings()
        return {
            name: getattr(self, name)
            for name in ("dtype", "device", "threads")
            if getattr(self, name) != getattr(defaults, name)
        }

    def with_default_batch_size(self, batch_size: int) -> GenerationSettings:
        """These settings with ``batch_size`` filled in where it was left to the backend."""
        return self if self.batch_size is not None else replace(self, batch_size=batch_size)

    def text_params(self) -> dict[str, Any]:
        """The settings that change the output (the cache-key part); sampling settings only when sampling."""
        params: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            params.update(temperature=self.temperature, top_p=self.top_p, seed=self.seed)
        return params


def stop_token_ids(*eos_ids: int | Sequence[int] | None) -> set[int]:
    """The end-of-turn ids of a model, from the places that name them (tokenizer, generation config).

    Each source may give one id, a list of ids, or ``None``.
    """
    ids: set[int] = set()
    for source in eos_ids:
        if source is not None:
            ids.update(source if isinstance(source, (list, tuple)) else [source])
    return ids


def cut_at_stop(tokens: Sequence[int], stop_ids: set[int]) -> list[int]:
    """The tokens before the first stop token (all of them when none stops)."""
    cut = next((k for k, token in enumerate(tokens) if token in stop_ids), len(tokens))
    return list(tokens[:cut])


def chat_prompt_token_ids(
    tokenizer: Any, messages_list: Sequence[Sequence[dict]], *, model: Any
) -> list[list[int]]:
    """Token ids of each chat rendered with the tokenizer's chat template, the assistant turn opened.

    The one rendering of the local backends (transformers and vLLM), so both prompt a model with the same tokens.

    Parameters
    ----------
    tokenizer
        A Hugging Face tokenizer with a chat template (or one that behaves like it, as vLLM's does).
    messages_list
        One chat (a list of ``{"role", "content"}`` dicts) per prompt.
    model
        The model the tokenizer belongs to, named in the error.

    Returns
    -------
    list of list of int
        One list of prompt token ids per chat.

    Raises
    ------
    BioprofileInputError
        The chat template fails, or Jinja's sandbox stopped it (it tried to reach outside the template).
    """
    try:
        texts = [
            tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
            for messages in messages_list
        ]
    except Exception as err:
        if not type(err).__module__.startswith("jinja2"):
            raise
        reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 160)
        raise BioprofileInputError(
            f"the chat template of {model} cannot be used ({reason}): fix its chat_template"
        ) from None
    # The template already writes any BOS/special tokens the model expects.
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _prompt_length(messages: list[dict]) -> int:
    return sum(len(str(message.get("content", ""))) for message in messages)


def generate_profiles(
    entities: Sequence[EntityLike | str],
    *,
    generator: ProfileGenerator,
    template: PromptTemplateLike,
    store: Store | None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Profile texts for entities (genes, proteins...), generating only those not in the store.

    Missing entities are sorted by prompt length (longest first, so batches pad little and a prompt too long for
    memory fails at once) and generated in chunks. Each text is written to the store as soon as the backend hands
    it over (per request for a served model, per generated batch for a local one), so a killed or failed run loses
    only what was in flight and a rerun resumes where it stopped.

    Parameters
    ----------
    entities
        Genes or other entities a template accepts (or bare symbols); repeated entries are generated once.
    generator
        Backend with ``id``, ``params`` and ``generate(messages_list) -> list[str]`` (and optionally
        ``generate_iter``, see :class:`ProfileGenerator`); it batches internally.
    template
        Prompt template with ``name`` and ``messages(entity) -> list[dict]``.
    store
        Cache keyed by (entity key, template key, generator id, generator params); a gene's key is its HGNC id
        (:func:`bioprofile.entities.entity_key`). ``None`` generates everything and keeps nothing.
    batch_size
        Entities per chunk handed to the generator. Default: four of the generator's own ``batch_size`` if it has
        one, else 32.
    progress
        Called as texts arrive with the number of texts newly generated (cached texts are not reported).

    Returns
    -------
    list of str
        One text per entry of ``entities``, in the same order.

    Raises
    ------
    BioprofileInputError
        The backend gave up (e.g. a server still failing after its retries). When some profiles are done, one
        line saying how many of how many (kept in the store), that a rerun resumes, and the backend's last error;
        else the backend's error as it is.
    ValueError
        The generator returned a different number of texts than prompts, or something that is not a string.
    """
    keys = [entity_key(entity) for entity in entities]
    first_of: dict[str, Any] = {}
    for key, entity in zip(keys, entities, strict=False):
        first_of.setdefault(key, entity)
    cache_key = profile_cache_key(template, generator)

    texts: dict[str, str] = store.get_profiles(list(first_of), **cache_key) if store is not None else {}
    prompts = {key: template.messages(entity) for key, entity in first_of.items()}
    chunks = prompt_chunks(prompts, generator, batch_size)
    # A backend that answers each prompt alone needs no batch-mates: it is sent only what is missing.
    independent = getattr(generator, "independent_prompts", False) is True
    empty: list[str] = []
    try:
        for chunk in chunks:
            missing = {key for key in chunk if key not in texts}
            if not missing:
                continue
            sent = [key for key in chunk if key in missing] if independent else chunk
            for index, text in _results(generator, [prompts[key] for key in sent]):
                key = sent[index]
                if key not in missing:  # a cached text generated again only to fill its batch
                    continue
                texts[key] = text
                if not text.strip():
                    # An empty text is a failed generation: return it, but don't cache it, so a rerun retries.
                    empty.append(key)
                elif store is not None:
                    store.put_profiles({key: text}, **cache_key)
                if progress is not None:
                    progress(1)
    except BioprofileInputError as err:
        done = sum(1 for key in first_of if texts.get(key, "").strip())
        if not done:  # nothing to resume from (a model that does not load, a server down): the error alone
            raise
        kept = "kept in the store" if store is not None else "not kept: no store"
        raise BioprofileInputError(
            f"{done} of {len(first_of)} profiles done ({kept}), rerun to resume; last error: {err}",
            argument=err.argument,
        ) from None
    finally:
        if empty:
            warnings.warn(
                f"{generator.id} wrote empty profiles for {len(empty)} genes ({', '.join(empty[:5])}"
                f"{', ...' if len(empty) > 5 else ''}); they were not cached and will be retried on the next run",
                stacklevel=2,
            )
    return [texts[key] for key in keys]


def prompt_chunks(
    prompts: Mapping[str, list[dict]], generator: ProfileGenerator, batch_size: int | None = None
) -> list[list[str]]:
    """The keys of ``prompts`` cut into the chunks :func:`generate_profiles` hands ``generator``, in that order.

    Chunks are cut from ALL entities sorted by prompt length (longest first, so batches pad little and a prompt
    too long for memory fails at once), not from the missing ones: a resumed run then generates each one in
    exactly the batch an uninterrupted run would have, so padding cannot change a single greedy token. A writer
    that runs chunks elsewhere (:mod:`bioprofile.profiles.ray_fanout`) cuts the same ones.

    Parameters
    ----------
    prompts
        Entity key -> its chat messages, one per entity.
    generator
        The backend (its ``batch_size``, if it has one, sets the default chunk size).
    batch_size
        Entities per chunk; ``None``: four of the generator's own ``batch_size``, else 32.

    Returns
    -------
    list of list of str
        The chunks of keys.
    """
    ordered = sorted(prompts, key=lambda key: _prompt_length(prompts[key]), reverse=True)
    chunk_size = batch_size or _default_chunk(generator)
    if chunk_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {chunk_size}")
    return [ordered[start : start + chunk_size] for start in range(0, len(ordered), chunk_size)]


def _results(generator: ProfileGenerator, messages_list: list[list[dict]]) -> Iterator[tuple[int, str]]:
    """``(index, text)`` for each prompt, as the generator finishes them; checked like :func:`_check_outputs`."""
    generate_iter = getattr(generator, "generate_iter", None)
    if generate_iter is None:
        outputs = generator.generate(messages_list)
        _check_outputs(outputs, len(messages_list), generator)
        yield from enumerate(outputs)
        return
    seen: set[int] = set()
    for index, text in generate_iter(messages_list):
        if not isinstance(index, int) or not 0 <= index < len(messages_list) or index in seen:
            raise ValueError(
                f"generator {generator.id!r} returned a second text for prompt {index!r} or one it was not given"
            )
        if not isinstance(text, str):
            raise ValueError(
                f"generator {generator.id!r} returned non-string outputs ({type(text).__name__})"
            )
        seen.add(index)
        yield index, text
    if len(seen) != len(messages_list):
        raise ValueError(
            f"generator {generator.id!r} returned {len(seen)} texts for {len(messages_list)} prompts"
        )


def generation_provenance(generator: ProfileGenerator) -> dict[str, Any]:
    """The generation settings to record beside texts: :attr:`params`, with the dtype in use where it differs.

    A backend may keep a cache-key value that is not what it runs (the transformers backend keys float32 as
    ``"auto"``); its ``params_in_use``, when it has one, says what it runs.

    Parameters
    ----------
    generator
        Any profile generator.

    Returns
    -------
    dict
        The settings, JSON-ready.
    """
    return dict(getattr(generator, "params_in_use", generator.params))


def profile_cache_key(template: PromptTemplateLike, generator: ProfileGenerator) -> dict[str, Any]:
    """The store key fields shared by every profile of one run: template (name and text), generator, params."""
    return {
        "template": getattr(template, "key", template.name),
        "generator": generator.id,
        "params": dict(generator.params),
    }


def _default_chunk(generator: ProfileGenerator) -> int:
    backend_batch = getattr(generator, "batch_size", None)
    if isinstance(backend_batch, int) and backend_batch > 0:
        return backend_batch * _BATCHES_PER_CHUNK
    return _DEFAULT_CHUNK


def _check_outputs(outputs: Any, expected: int, generator: ProfileGenerator) -> None:
    if not isinstance(outputs, list) or len(outputs) != expected:
        got = len(outputs) if hasattr(outputs, "__len__") else type(outputs).__name__
        raise ValueError(f"generator {generator.id!r} returned {got} texts for {expected} prompts")
    bad = [type(text).__name__ for text in outputs if not isinstance(text, str)]
    if bad:
        raise ValueError(
            f"generator {generator.id!r} returned non-string outputs ({', '.join(sorted(set(bad)))})"
        )
