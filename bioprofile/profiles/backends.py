"""One place that builds a profile writer: the transformers, vLLM or OpenAI-compatible backend, by name."""

from __future__ import annotations

from pathlib import Path

from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import DEFAULT_API_KEY_ENV
from bioprofile.profiles.generate import GenerationSettings, ProfileGenerator
from bioprofile.profiles.hf import TransformersGenerator
from bioprofile.profiles.http import OpenAIChatGenerator
from bioprofile.profiles.vllm import VLLMGenerator

__all__ = ["BACKENDS", "make_generator"]

#: Generation engines :func:`make_generator` builds, by name.
BACKENDS = ("transformers", "vllm", "openai")


def make_generator(
    model: str | Path | None = None,
    *,
    backend: str = "transformers",
    base_url: str | None = None,
    settings: GenerationSettings | None = None,
    api_key_env: str = DEFAULT_API_KEY_ENV,
    max_retries: int | None = None,
) -> ProfileGenerator:
    """A profile writer for ``model`` on ``backend``.

    Parameters
    ----------
    model
        For the local backends, what :func:`~bioprofile.profiles.models.resolve_model` accepts (``None`` for the
        bundled SmolLM2, a model or adapter directory, a cached hub id); for ``"openai"``, the served model name.
    backend
        ``"transformers"`` (:class:`~bioprofile.profiles.hf.TransformersGenerator`), ``"vllm"``
        (:class:`~bioprofile.profiles.vllm.VLLMGenerator`, the ``[vllm]`` extra) or ``"openai"``
        (:class:`~bioprofile.profiles.http.OpenAIChatGenerator`, an OpenAI-compatible server, the ``[openai]``
        extra; its key is read from ``$OPENAI_API_KEY``).
    base_url
        API root of the ``"openai"`` backend (default ``$OPENAI_BASE_URL``, else OpenAI's); only that backend
        takes one.
    settings
        Decoding and placement settings; ``None`` for the defaults (greedy, 256 new tokens, float32, the
        backend's batch size), which write the same tokens on the transformers and vLLM backends.
    api_key_env
        The environment variable the ``"openai"`` backend reads its key from (the key itself is never passed).
    max_retries
        Retries of a failed request of the ``"openai"`` backend (by the ``openai`` client, with back-off);
        ``None``: 3. Only that backend takes one.

    Returns
    -------
    ProfileGenerator
        The backend, not yet loaded: a local model loads (an engine starts) on its first ``generate``.

    Raises
    ------
    BioprofileInputError
        An unknown backend, a ``base_url`` for a local backend, or what the backend refuses.
    """
    if backend not in BACKENDS:
        # No argument= here: the CLI would turn the word "backend" of this message into its flag.
        raise BioprofileInputError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")
    if backend == "openai":
        retries = {} if max_retries is None else {"max_retries": max_retries}
        return OpenAIChatGenerator(
            model, base_url=base_url, api_key_env=api_key_env, settings=settings, **retries
        )
    for name, value in (("base_url", base_url), ("max_retries", max_retries)):
        if value is not None:
            raise BioprofileInputError(f"{name} is for backend 'openai' only, not {backend!r}", argument=name)
    if backend == "vllm":
        return VLLMGenerator(model, settings=settings)
    return TransformersGenerator(model, settings=settings)
