"""Write a profile text per gene, resumably: cached texts are reused, new ones are committed chunk by chunk."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bioprofile.genes import Gene
    from bioprofile.store import Store

__all__ = [
    "GenerationSettings",
    "ProfileGenerator",
    "PromptTemplateLike",
    "cut_at_stop",
    "entity_key",
    "generate_profiles",
    "stop_token_ids",
]

# Chunk size when neither the caller nor the generator says: small enough that a kill loses little work on CPU.
_DEFAULT_CHUNK = 32
# With a generator that batches itself, hand it a few of its batches per chunk so it can pack them.
_BATCHES_PER_CHUNK = 4


class ProfileGenerator(Protocol):
    """What :func:`generate_profiles` needs from a backend (e.g. ``profiles.hf.TransformersGenerator``)."""

    id: str
    params: Mapping[str, Any]

    def generate(self, messages_list: list[list[dict]]) -> list[str]: ...


class PromptTemplateLike(Protocol):
    """What :func:`generate_profiles` needs from a prompt template (``profiles.prompts.PromptTemplate``)."""

    name: str

    def messages(self, gene: Any) -> list[dict]: ...


class GenerationSettings:
    """Decoding settings every backend shares: checked once here, and the part of them that changes the texts.

    Backends call :meth:`_set_generation_settings` in ``__init__`` and build their ``params`` (the cache-key part)
    from :meth:`_text_params`.
    """

    batch_size: int
    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float
    seed: int

    def _set_generation_settings(
        self,
        *,
        batch_size: int,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> None:
        """Refuse settings no backend can run (naming the CLI option to change), then keep them."""
        from bioprofile.errors import BioprofileInputError

        if batch_size < 1:
            raise BioprofileInputError(f"--batch-size must be at least 1, got {batch_size}")
        if max_new_tokens < 1:
            raise BioprofileInputError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
        if do_sample and not temperature > 0:
            raise BioprofileInputError(f"--temperature must be positive when sampling, got {temperature}")
        if do_sample and not 0 < top_p <= 1:
            raise BioprofileInputError(f"--top-p must be in (0, 1], got {top_p}")
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.do_sample = bool(do_sample)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.seed = int(seed)

    def _text_params(self) -> dict[str, Any]:
        """The settings that change the output; sampling settings only when sampling (greedy ignores them)."""
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


def entity_key(gene: Gene | str) -> str:
    """The store key for an entity: a gene's HGNC id (stable across renames), else the string itself."""
    return getattr(gene, "hgnc_id", None) or str(gene)


def _prompt_length(messages: list[dict]) -> int:
    return sum(len(str(message.get("content", ""))) for message in messages)


def generate_profiles(
    genes: Sequence[Gene],
    *,
    generator: ProfileGenerator,
    template: PromptTemplateLike,
    store: Store | None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Profile texts for genes, generating only those not in the store.

    Missing genes are sorted by prompt length (longest first, so batches pad little and a prompt too long for
    memory fails at once) and generated in chunks; each chunk is written to the store as soon as it is done, so
    a killed run loses at most the chunk in flight and a rerun resumes where it stopped.

    Parameters
    ----------
    genes
        Genes (or other entities a template accepts); repeated entries are generated once.
    generator
        Backend with ``id``, ``params`` and ``generate(messages_list) -> list[str]``; it batches internally.
    template
        Prompt template with ``name`` and ``messages(gene) -> list[dict]``.
    store
        Cache keyed by (HGNC id, template name, generator id, generator params); ``None`` generates everything
        and keeps nothing.
    batch_size
        Genes per committed chunk. Default: four of the generator's own ``batch_size`` if it has one, else 32.
    progress
        Called after each chunk with the number of texts newly generated (cached texts are not reported).

    Returns
    -------
    list of str
        One text per entry of ``genes``, in the same order.

    Raises
    ------
    ValueError
        The generator returned a different number of texts than prompts, or something that is not a string.
    """
    keys = [entity_key(gene) for gene in genes]
    first_of: dict[str, Any] = {}
    for key, gene in zip(keys, genes, strict=False):
        first_of.setdefault(key, gene)
    cache_key = profile_cache_key(template, generator)

    texts: dict[str, str] = store.get_profiles(list(first_of), **cache_key) if store is not None else {}
    prompts = {key: template.messages(gene) for key, gene in first_of.items()}
    # Chunks are cut from ALL genes sorted by prompt length (longest first, so batches pad little and a prompt
    # too long for memory fails at once), not from the missing ones: a resumed run then generates each gene in
    # exactly the batch an uninterrupted run would have, so padding cannot change a single greedy token.
    ordered = sorted(first_of, key=lambda key: _prompt_length(prompts[key]), reverse=True)
    chunk_size = batch_size or _default_chunk(generator)
    if chunk_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {chunk_size}")
    chunks = [ordered[start : start + chunk_size] for start in range(0, len(ordered), chunk_size)]
    empty: list[str] = []
    for chunk in chunks:
        missing = [key for key in chunk if key not in texts]
        if not missing:
            continue
        outputs = generator.generate([prompts[key] for key in chunk])
        _check_outputs(outputs, len(chunk), generator)
        new = {key: text for key, text in zip(chunk, outputs, strict=False) if key in missing}
        texts.update(new)
        if store is not None:
            # An empty text is a failed generation: return it, but don't cache it, so a rerun retries.
            keep = {key: text for key, text in new.items() if text.strip()}
            store.put_profiles(keep, **cache_key)
        empty += [key for key, text in new.items() if not text.strip()]
        if progress is not None:
            progress(len(missing))
        if empty:
            warnings.warn(
                f"{generator.id} wrote empty profiles for {len(empty)} genes ({', '.join(empty[:5])}"
                f"{', ...' if len(empty) > 5 else ''}); they were not cached and will be retried on the next run",
                stacklevel=2,
            )
    return [texts[key] for key in keys]


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
