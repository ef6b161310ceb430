"""Profile generation through an OpenAI-compatible chat-completions server (``vllm serve``, OpenAI, and others).

The optional ``[openai]`` extra. Requests go out concurrently (``batch_size`` at a time) through the client of
:class:`~bioprofile.openai_api.OpenAIEndpoint` (shared with the embeddings encoder), which retries with back-off
and time-outs. The API key is read from an environment variable when the client is built and is never stored,
logged or put in a cache key or provenance record; the server's URL is shown and stored without credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import DEFAULT_API_KEY_ENV, OpenAIEndpoint, api_error, malformed_answer
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
        Seconds one try may wait for the server (a request gives up after three tries' worth, at most 10 minutes in
        all: :class:`~bioprofile.openai_api.OpenAIEndpoint`), and retries of failed requests (with back-off).
    total_timeout
        Seconds one request may take in all, retries included (``None``: three tries' worth of ``timeout``, at
        most 10 minutes); a server that drips bytes trips it.

    Notes
    -----
    A served model cannot be fingerprinted from here, so :attr:`id` is the model name and the server's API root
    (without credentials): if a server starts serving other weights under the same name, clear the cache for that
    id.

    Each reply is handed over as it arrives (:meth:`generate_iter`), so what the server answered is kept even
    when a later request fails for good.
    """

    #: Each prompt is its own request: its text does not depend on the other prompts sent with it.
    independent_prompts = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        settings: GenerationSettings | None = None,
        timeout: float = 300.0,
        max_retries: int = 3,
        total_timeout: float | None = None,
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
        local = self.settings.local_only
        if local:
            # The server decides these; accepting them would promise texts this backend cannot deliver.
            name, value = next(iter(local.items()))
            raise BioprofileInputError(
                f"{name} {value!r} is for a local model: the server of backend 'openai' sets its own dtype, device "
                "and threads; drop it",
                argument=name,
            )
        self.model = str(model).strip()
        #: Where requests go, with the retry policy (its URL may hold credentials; it never shows them).
        self.endpoint = OpenAIEndpoint(
            base_url,
            api_key_env=api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            total_timeout=total_timeout,
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
        """``openai:<model>@<API root>``: the served name and where it is served (a cache key part).

        The whole API root without credentials (``http://host:port/path/v1``): two servers on one host and port
        never share cached texts.
        """
        return f"openai:{self.model}@{self.endpoint.cache_url}"

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
        try:
            response = self.endpoint.call(
                self.client.chat.completions.create, messages=messages, **self._request_kwargs()
            )
            content = response.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:  # HTML, broken JSON...
            if isinstance(err, BioprofileInputError):
                raise
            raise malformed_answer(self.endpoint, "a chat completion", err) from None
        if not isinstance(content, str):  # null or another type: an empty profile would be stored as a text
            raise malformed_answer(
                self.endpoint, f"a chat completion with text (its content was {type(content).__name__})"
            )
        return content.strip()

    def _give_up(self, err: Exception, answered: int) -> BioprofileInputError | None:
        """The one line for a request that failed for good, ``answered`` replies into this call."""
        import openai

        if answered and type(err) is openai.APIConnectionError:
            # Other requests got answers: the server is up, it dropped this one (a proxy, an overloaded worker).
            return BioprofileInputError(
                f"{self.base_url} dropped the connection of one request {self.endpoint.max_retries + 1} times in "
                f"a row, while it answered {answered} others"
            )
        return api_error(err, self.endpoint, self.model)

    def generate_iter(self, messages_list: Sequence[Sequence[dict]]) -> Iterator[tuple[int, str]]:
        """``(index, text)`` for each chat, in the order the replies arrive (``index`` into ``messages_list``).

        Parameters
        ----------
        messages_list
            One chat (a list of ``{"role", "content"}`` dicts) per profile.

        Yields
        ------
        tuple of (int, str)
            The chat's index and the assistant reply, stripped of surrounding whitespace.

        Raises
        ------
        BioprofileInputError
            A request still failed after its retries. No new request is sent after that; the replies of those
            already in flight are yielded first.
        """
        if not messages_list:
            return
        import openai

        error: BioprofileInputError | None = None
        answered = 0
        pool = ThreadPoolExecutor(max_workers=min(self.batch_size, len(messages_list)))
        try:
            pending = {pool.submit(self._complete, list(m)): i for i, m in enumerate(messages_list)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        text = future.result()
                    except (openai.OpenAIError, BioprofileInputError) as err:
                        if error is None:
                            error = (
                                err if isinstance(err, BioprofileInputError) else self._give_up(err, answered)
                            )
                            if error is None:  # not an API failure: a bug, with its traceback
                                raise
                            # Stop sending: the server keeps failing. Requests in flight still finish.
                            for other in pending:
                                other.cancel()
                        continue
                    answered += 1
                    yield index, text
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if error is not None:
            if answered:  # what arrived was handed over (and stored by the caller) before this line
                raise BioprofileInputError(
                    f"{error} ({answered} answers received before it are kept)"
                ) from None
            raise error from None

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

        Raises
        ------
        BioprofileInputError
            A request still failed after its retries (every reply is lost: use :meth:`generate_iter`, as
            :func:`~bioprofile.profiles.generate.generate_profiles` does, to keep them).
        """
        texts = [""] * len(messages_list)
        for index, text in self.generate_iter(messages_list):
            texts[index] = text
        return texts
