"""Profile generation through an OpenAI-compatible chat-completions server (``vllm serve``, OpenAI, and others).

The optional ``[openai]`` extra. Requests go out concurrently (``batch_size`` at a time) through the client of
:class:`~bioprofile.openai_api.OpenAIEndpoint` (shared with the embeddings encoder), which retries with back-off
and time-outs. The API key is read from an environment variable when the client is built and is never stored,
logged or put in a cache key or provenance record; the server's URL is shown and stored without credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import DEFAULT_API_KEY_ENV, OpenAIEndpoint, api_errors
from bioprofile.profiles.generate import GenerationSettings

__all__ = ["OpenAIChatGenerator"]

#: Requests in flight at once unless the settings say.
DEFAULT_BATCH_SIZE = 16


class OpenAIChatGenerator:
    """Write profile texts with a model served behind ``POST {base_url}/chat/completions``.

    Parameters
    ----------
    model
        The model name the server serves (the served model name of ``vllm serve``, ``gpt-4o-mini``...).
    base_url
        The API root, e.g. ``http://localhost:8000/v1``; default ``$OPENAI_BASE_URL``, else OpenAI's.
    api_key_env
        Name of the environment variable holding the API key. A local server (localhost) may run without one.
    settings
        Decoding settings (:class:`~bioprofile.profiles.generate.GenerationSettings`); ``batch_size`` is the
        number of requests in flight at once (16 unless set). Greedy decoding is sent as ``temperature=0``,
        reproducible on servers that decode deterministically (vLLM does).
    timeout, max_retries
        Per-request time-out in seconds, and retries of failed requests (with back-off, by the ``openai`` client).

    Notes
    -----
    A served model cannot be fingerprinted from here, so :attr:`id` is the model name and the server's host:
    if a server starts serving other weights under the same name, clear the cache for that id.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        settings: GenerationSettings | None = None,
        timeout: float = 600.0,
        max_retries: int = 3,
    ) -> None:
        import importlib.util

        if importlib.util.find_spec("openai") is None:
            raise BioprofileInputError(
                "backend 'openai' needs the openai client: pip install 'bioprofile[openai]', or use backend "
                "'transformers'",
                argument="backend",
            )
        if not model or not str(model).strip():
            raise BioprofileInputError(
                "the openai backend needs model: the name the server serves", argument="model"
            )
        #: The decoding settings in use (a frozen object: replace it to change them).
        self.settings = (settings or GenerationSettings()).with_default_batch_size(DEFAULT_BATCH_SIZE)
        self.model = str(model).strip()
        #: Where requests go, with the retry policy (its URL may hold credentials; it never shows them).
        self.endpoint = OpenAIEndpoint(
            base_url, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries
        )
        self._client = None

    @property
    def batch_size(self) -> int:
        """Requests in flight at once."""
        return self.settings.batch_size

    @property
    def base_url(self) -> str:
        """The API root without credentials (as shown and recorded)."""
        return self.endpoint.shown_url

    @property
    def id(self) -> str:
        """``openai:<model>@<host[:port]>``: the served name and where it is served (a cache key part)."""
        return f"openai:{self.model}@{self.endpoint.host}"

    @property
    def params(self) -> dict[str, Any]:
        """Settings that change the output (cache key part); sampling settings only when sampling."""
        return {"backend": "openai", **self.settings.text_params()}

    def __repr__(self) -> str:  # no key here: reprs end up in logs
        return f"OpenAIChatGenerator({self.id!r}, batch_size={self.batch_size}, params={self.params})"

    @property
    def client(self):
        """The ``openai.OpenAI`` client, built on first use with the key read from the environment then."""
        if self._client is None:
            self._client = self.endpoint.client()
        return self._client

    def _request_kwargs(self) -> dict[str, Any]:
        settings = self.settings
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": settings.max_new_tokens}
        if settings.do_sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
        else:
            kwargs.update(temperature=0.0)
        return kwargs

    def _complete(self, messages: list[dict]) -> str:
        with api_errors(self.endpoint, self.model):
            response = self.client.chat.completions.create(messages=messages, **self._request_kwargs())
        return (response.choices[0].message.content or "").strip()

    def generate(self, messages_list: Sequence[Sequence[dict]]) -> list[str]:
        """Profile texts for each chat, in input order.

        Parameters
        ----------
        messages_list
            One chat (a list of ``{"role", "content"}`` dicts) per profile.

        Returns
        -------
        list of str
            The assistant replies, stripped of surrounding whitespace.
        """
        if not messages_list:
            return []
        with ThreadPoolExecutor(max_workers=min(self.batch_size, len(messages_list))) as pool:
            return list(pool.map(self._complete, [list(m) for m in messages_list]))
