"""The ``openai`` backend's own options and its factory: an OpenAI-compatible server, built from those options.

:class:`OpenAIBackendOptions` holds what only this backend understands (the API root, the environment variable of
the key, the retry count), so the local backends never carry them; :func:`openai_generator` is the factory
:mod:`bioprofile.profiles.backends` registers under ``"openai"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioprofile.openai_api import DEFAULT_API_KEY_ENV
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.http import OpenAIChatGenerator

__all__ = ["OpenAIBackendOptions", "openai_generator"]


@dataclass(frozen=True)
class OpenAIBackendOptions:
    """Options of the ``openai`` backend (an OpenAI-compatible chat-completions server).

    Parameters
    ----------
    base_url
        The API root (default ``$OPENAI_BASE_URL``, else OpenAI's).
    api_key_env
        The environment variable the key is read from (the key itself is never passed).
    max_retries
        Retries of a failed request (by the ``openai`` client, with back-off); ``None``: the client's 3.
    timeout
        Seconds one try may wait for the server (``None``: 300).
    total_timeout
        Seconds one request may take in all, retries included (``None``: three tries' worth, at most 600).
    """

    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    max_retries: int | None = None
    timeout: float | None = None
    total_timeout: float | None = None


def openai_generator(
    model: str | None, *, settings: GenerationSettings | None, options: OpenAIBackendOptions
) -> OpenAIChatGenerator:
    """The writer of the ``openai`` backend for the served ``model``.

    Parameters
    ----------
    model
        The name the server serves.
    settings
        Decoding settings.
    options
        The backend's options.

    Returns
    -------
    OpenAIChatGenerator
        Not yet connected: the client is made on the first request.
    """
    given = {name: getattr(options, name) for name in ("max_retries", "timeout", "total_timeout")}
    return OpenAIChatGenerator(
        model,
        base_url=options.base_url,
        api_key_env=options.api_key_env,
        settings=settings,
        **{name: value for name, value in given.items() if value is not None},
    )
