"""One place that builds a profile writer: a registered backend by name (transformers, vLLM, OpenAI-compatible).

The built-in backends are registered below, one line each, the way a third-party package registers its own
(:func:`~bioprofile.profiles.registry.register_backend`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bioprofile.profiles.generate import GenerationSettings, ProfileGenerator
from bioprofile.profiles.hf import TransformersGenerator
from bioprofile.profiles.registry import get_backend, register_backend, registered_backends, split_options
from bioprofile.profiles.served import OpenAIBackendOptions, openai_generator
from bioprofile.profiles.vllm import VLLMBackendOptions, vllm_generator

__all__ = ["BACKENDS", "make_generator"]

register_backend("transformers", TransformersGenerator)
register_backend("vllm", vllm_generator, options=VLLMBackendOptions)
register_backend("openai", openai_generator, options=OpenAIBackendOptions)

#: The built-in backends' names (:func:`~bioprofile.profiles.registry.registered_backends` adds any registered
#: later).
BACKENDS: tuple[str, ...] = registered_backends()


def make_generator(
    model: str | Path | None = None,
    *,
    backend: str = "transformers",
    settings: GenerationSettings | None = None,
    **backend_options: Any,
) -> ProfileGenerator:
    """A profile writer for ``model`` on ``backend``.

    Parameters
    ----------
    model
        For the local backends, what :func:`~bioprofile.profiles.models.resolve_model` accepts (``None`` for the
        bundled SmolLM2, a model or adapter directory, a cached hub id); for ``"openai"``, the served model name.
    backend
        A registered backend: ``"transformers"`` (:class:`~bioprofile.profiles.hf.TransformersGenerator`),
        ``"vllm"`` (:class:`~bioprofile.profiles.vllm.VLLMGenerator`, the ``[vllm]`` extra), ``"openai"``
        (:class:`~bioprofile.profiles.http.OpenAIChatGenerator`, an OpenAI-compatible server, the ``[openai]``
        extra; its key is read from ``$OPENAI_API_KEY``), or one added with
        :func:`~bioprofile.profiles.registry.register_backend`.
    settings
        Decoding and placement settings; ``None`` for the defaults (greedy, 256 new tokens, float32, the
        backend's batch size), which write the same tokens on the transformers and vLLM backends.
    **backend_options
        Fields of the backend's own options class; for ``"openai"``
        (:class:`~bioprofile.profiles.served.OpenAIBackendOptions`): ``base_url`` (API root, default
        ``$OPENAI_BASE_URL``, else OpenAI's), ``api_key_env`` (the environment variable of the key) and
        ``max_retries`` (``None``: 3). An option of another backend is refused unless left at its default.

    Returns
    -------
    ProfileGenerator
        The backend, not yet loaded: a local model loads (an engine starts) on its first ``generate``.

    Raises
    ------
    BioprofileInputError
        An unknown backend, an option of another backend (a ``base_url`` for a local one), or what the backend
        refuses.
    """
    chosen = get_backend(backend)
    return chosen.build(model, settings, split_options(chosen, backend_options))
