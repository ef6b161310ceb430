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
        Decoding settings; ``None`` for the defaults (greedy, 256 new tokens, the backend's batch size).
    api_key_env
        The environment variable the ``"openai"`` backend reads its key from (the key itself is never passed).

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
        return OpenAIChatGenerator(model, base_url=base_url, api_key_env=api_key_env, settings=settings)
    if base_url is not None:
        raise BioprofileInputError(
            f"base_url is for backend 'openai' only, not {backend!r}", argument="base_url"
        )
    if backend == "vllm":
        return VLLMGenerator(model, settings=settings)
    return TransformersGenerator(model, settings=settings)
