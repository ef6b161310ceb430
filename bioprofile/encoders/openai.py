"""OpenAI embeddings (``text-embedding-ada-002``, ``text-embedding-3-small|large``) on any ``/v1/embeddings`` API.

The optional ``[openai]`` extra. Requests carry text, never token ids (a compatible server such as vLLM or TEI
tokenizes with its own model), and respect the API's limits (:class:`EmbeddingLimits`): batches are cut by input
count and token count, over-long texts are truncated to the per-input limit and the truncation is recorded
(:attr:`OpenAIEncoder.truncated`, a warning), never silent. Batches go out a few at a time (``concurrency``) through
the client of :class:`~bioprofile.openai_api.OpenAIEndpoint`, shared with the chat backend, which retries 429/5xx,
time-outs and dropped connections with back-off and jitter and honours ``Retry-After``.

Token counting works offline. The default :class:`Utf8ByteBound` counts UTF-8 bytes, an upper bound of the tokens
of every byte-level BPE (cl100k_base and the rest: each token covers at least one byte), so a request cut by it
never exceeds a limit; it over-counts English about fourfold, so a text is truncated only past 8,191 bytes (about
1,800 words) instead of 8,191 tokens. An exact counter (e.g. wrapping ``tiktoken``, whose encoding files download
from the internet) can be passed as ``token_counter``; it is named in the encoder id, since it changes truncation.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import DEFAULT_API_KEY_ENV, OpenAIEndpoint, api_errors, malformed_answer

__all__ = [
    "KNOWN_MODELS",
    "EmbeddingLimits",
    "OpenAIEncoder",
    "TokenCounter",
    "Utf8ByteBound",
    "parse_openai_spec",
]

#: Vector width of OpenAI's embedding models, and whether they take ``dimensions`` (the 3-series does).
KNOWN_MODELS: dict[str, tuple[int, bool]] = {
    "text-embedding-ada-002": (1536, False),
    "text-embedding-3-small": (1536, True),
    "text-embedding-3-large": (3072, True),
}
_SPEC = re.compile(r"^openai:(?P<model>[^?@\s]+)(?:\?(?P<query>[^@\s]*))?$")


@dataclass(frozen=True)
class EmbeddingLimits:
    """What one ``/v1/embeddings`` request may carry (OpenAI's published limits by default).

    Parameters
    ----------
    max_inputs
        Texts per request (OpenAI: 2,048).
    max_request_tokens
        Tokens summed over the texts of one request (OpenAI: 300,000).
    max_input_tokens
        Tokens of one text (OpenAI: 8,191); longer texts are truncated to it, and recorded.
    """

    max_inputs: int = 2048
    max_request_tokens: int = 300_000
    max_input_tokens: int = 8191

    def __post_init__(self) -> None:
        for name in ("max_inputs", "max_request_tokens", "max_input_tokens"):
            value = getattr(self, name)
            if int(value) < 1:
                raise BioprofileInputError(f"{name} must be at least 1, got {value}", argument=name)
            object.__setattr__(self, name, int(value))
        if self.max_input_tokens > self.max_request_tokens:
            raise BioprofileInputError(
                f"max_input_tokens ({self.max_input_tokens}) cannot exceed max_request_tokens "
                f"({self.max_request_tokens})",
                argument="max_input_tokens",
            )


class TokenCounter(Protocol):
    """Counts and cuts text in the model's tokens (or in a unit that bounds them from above)."""

    #: Short name, part of the encoder id when it is not the default.
    name: str

    def count(self, text: str) -> int:
        """The number of tokens of ``text`` (an upper bound is fine)."""
        ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest start of ``text`` that counts at most ``max_tokens``."""
        ...


class Utf8ByteBound:
    """Tokens bounded by UTF-8 bytes: never fewer than a byte-level BPE's count, and needs no download."""

    name = "utf8"

    def count(self, text: str) -> int:
        """The UTF-8 length of ``text`` in bytes."""
        return len(text.encode("utf-8"))

    def truncate(self, text: str, max_tokens: int) -> str:
        """The first ``max_tokens`` bytes of ``text``, cut back to a whole character."""
        return text.encode("utf-8")[:max_tokens].decode("utf-8", errors="ignore")


def parse_openai_spec(spec: str) -> tuple[str, dict[str, int]]:
    """The model name and options of a spec such as ``openai:text-embedding-3-small?dimensions=256``.

    Raises
    ------
    BioprofileInputError
        Not an ``openai:NAME`` spec, or an option other than ``dimensions``.
    """
    match = _SPEC.match(str(spec).strip())
    if not match:
        raise BioprofileInputError(
            f"encoder {spec!r} is not openai:MODEL or openai:MODEL?dimensions=N", argument="encoder"
        )
    options: dict[str, int] = {}
    for key, value in parse_qsl(match["query"] or "", keep_blank_values=True):
        if key != "dimensions" or not value.isdigit():
            raise BioprofileInputError(
                f"encoder {spec!r}: the one option is dimensions=N (a whole number)", argument="encoder"
            )
        options["dimensions"] = int(value)
    return match["model"], options


class OpenAIEncoder:
    """Text vectors from ``POST {base_url}/embeddings``: OpenAI's or any compatible server's.

    Parameters
    ----------
    model
        ``text-embedding-ada-002``, ``text-embedding-3-small``, ``text-embedding-3-large``, or any name a
        compatible server serves.
    dimensions
        Vector width asked of the 3-series (shortened embeddings); ``None`` for the model's own. Refused for
        ``text-embedding-ada-002``, which has one width.
    base_url
        The API root; ``None`` takes ``$OPENAI_BASE_URL``, else OpenAI's. Credentials in it are never shown.
    api_key_env
        Name of the environment variable holding the key (default ``OPENAI_API_KEY``); read when the client is
        built, never stored.
    limits
        Per-request limits (:class:`EmbeddingLimits`, OpenAI's by default).
    concurrency
        Requests in flight at once.
    timeout, max_retries
        Seconds per request, and retries of a failed one (429, 5xx, time-out, dropped connection).
    token_counter
        A :class:`TokenCounter`; default :class:`Utf8ByteBound` (offline, conservative).
    total_timeout
        Seconds one request may take in all, retries included (``None``: three tries' worth of ``timeout``);
        a server that drips bytes trips it.

    Raises
    ------
    BioprofileInputError
        A bad setting, a base URL that is not http(s), or no key for a remote server.
    """

    def __init__(
        self,
        model: str,
        *,
        dimensions: int | None = None,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        limits: EmbeddingLimits | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        token_counter: TokenCounter | None = None,
        total_timeout: float | None = None,
    ) -> None:
        self.model = str(model or "").strip()
        if not self.model:
            raise BioprofileInputError("the openai encoder needs a model name", argument="encoder")
        known = KNOWN_MODELS.get(self.model)
        if dimensions is not None:
            if int(dimensions) < 1:
                raise BioprofileInputError(
                    f"dimensions must be at least 1, got {dimensions}", argument="dimensions"
                )
            if known and not known[1]:
                raise BioprofileInputError(
                    f"{self.model} has one width ({known[0]}); dimensions is for the text-embedding-3 models",
                    argument="dimensions",
                )
            if known and int(dimensions) > known[0]:
                raise BioprofileInputError(
                    f"dimensions of {self.model} must be at most {known[0]}, got {dimensions}",
                    argument="dimensions",
                )
        if int(concurrency) < 1:
            raise BioprofileInputError(
                f"concurrency must be at least 1, got {concurrency}", argument="concurrency"
            )
        self.dimensions = None if dimensions is None else int(dimensions)
        self.limits = limits or EmbeddingLimits()
        self.concurrency = int(concurrency)
        self.token_counter = token_counter or Utf8ByteBound()
        #: Where requests go and the retry policy (shared with the chat backend).
        self.endpoint = OpenAIEndpoint(
            base_url,
            api_key_env=api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            total_timeout=total_timeout,
        )
        #: Texts truncated to ``limits.max_input_tokens`` by this object: original text -> its token count.
        self.truncated: dict[str, int] = {}
        self._dim = self.dimensions or (known[0] if known else None)
        self._client = None

    @property
    def id(self) -> str:
        """``openai:MODEL[?dimensions=N]@API_ROOT``: what decides the vectors, without key or credentials (cache key).

        The API root is the whole base URL without credentials, so two servers on one host and port (``/ok/v1``,
        ``/other/v1``) never share cached vectors.

        A per-input limit other than 8,191 and a token counter other than :class:`Utf8ByteBound` are added to
        the options, since they change what an over-long text is cut to.
        """
        options = []
        if self.dimensions is not None:
            options.append(f"dimensions={self.dimensions}")
        if self.limits.max_input_tokens != EmbeddingLimits.max_input_tokens:
            options.append(f"max_input_tokens={self.limits.max_input_tokens}")
        if self.token_counter.name != Utf8ByteBound.name:
            options.append(f"tokens={self.token_counter.name}")
        query = f"?{'&'.join(options)}" if options else ""
        return f"openai:{self.model}{query}@{self.endpoint.cache_url}"

    @property
    def dim(self) -> int:
        """Vector width: known for OpenAI's models; for others, asked of the server once (one short request)."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def __repr__(self) -> str:  # no key, no credentials: reprs end up in logs
        return f"OpenAIEncoder({self.id!r}, concurrency={self.concurrency}, limits={self.limits})"

    @property
    def client(self):
        """The ``openai.OpenAI`` client, built on first use with the key read from the environment then."""
        if self._client is None:
            self._client = self.endpoint.client()
        return self._client

    def over_limit(self, texts: Sequence[str]) -> list[int]:
        """Positions of the texts longer than ``limits.max_input_tokens``: those :meth:`encode` truncates."""
        limit = self.limits.max_input_tokens
        return [i for i, text in enumerate(texts) if self.token_counter.count(text) > limit]

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Positions of ``texts`` grouped into requests, in order, within the input and token limits.

        Each text counts at most ``limits.max_input_tokens`` (it is truncated to that when sent).
        """
        limits, groups, tokens = self.limits, [], 0
        for i, text in enumerate(texts):
            n = max(1, min(self.token_counter.count(text), limits.max_input_tokens))
            if groups and len(groups[-1]) < limits.max_inputs and tokens + n <= limits.max_request_tokens:
                groups[-1].append(i)
                tokens += n
            else:
                groups.append([i])
                tokens = n
        return groups

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts``: a ``float32`` array of shape ``(len(texts), dim)``, rows in input order.

        Over-long texts are truncated to ``limits.max_input_tokens`` (recorded in :attr:`truncated`, with a
        warning); an empty text is sent as one space (the API refuses empty strings).

        Raises
        ------
        BioprofileInputError
            The server refused the key or the request, or kept failing after the retries (one line).
        """
        texts = [str(text) for text in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        sent = self.prepare(texts)
        groups = self.batches(sent)
        rows: list[np.ndarray | None] = [None] * len(groups)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
            futures = {
                pool.submit(self._request, [sent[i] for i in group]): k for k, group in enumerate(groups)
            }
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:  # a refused key or request fails every batch: send no more of them
                future.cancel()
            for future in done | pending:
                if future.cancelled():
                    continue
                rows[futures[future]] = future.result()  # raises the first failure, after the rest finished
        if (
            self._dim is None
        ):  # a compatible server's model: its width is what it sent, the same in every batch
            widths = {block.shape[1] for block in rows}
            if len(widths) != 1:
                raise BioprofileInputError(
                    f"{self.endpoint.shown_url} returned vectors of widths {sorted(widths)} for {self.model}"
                )
            self._dim = widths.pop()
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for group, block in zip(groups, rows, strict=True):
            vectors[group] = block
        return vectors

    def prepare(self, texts: Sequence[str]) -> list[str]:
        """The texts as sent: truncated to the per-input limit (and recorded), empty ones as one space."""
        limit, counter, cut = self.limits.max_input_tokens, self.token_counter, []
        sent = []
        for text in texts:
            n = counter.count(text)
            if n > limit:
                self.truncated[text] = n
                cut.append(n)
                text = counter.truncate(text, limit)
            sent.append(text or " ")
        if cut:
            warnings.warn(
                f"{self.id}: {len(cut)} texts were longer than {limit} tokens ({counter.name} count; longest "
                f"{max(cut)}) and were truncated to it before encoding",
                stacklevel=3,
            )
        return sent

    def request_body(self, batch: Sequence[str]) -> dict:
        """The JSON body of one ``/v1/embeddings`` request for texts already :meth:`prepare`-d."""
        body = {"model": self.model, "input": list(batch), "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        return body

    def vectors_from(self, data: Sequence, n_texts: int) -> np.ndarray:
        """The ``(n_texts, dim)`` block of an embeddings answer's ``data`` items (objects or dicts), checked.

        Raises
        ------
        BioprofileInputError
            Not one embedding per text, or vectors of a width other than the expected one.
        """
        server = self.endpoint.shown_url
        try:
            items = [
                item if isinstance(item, dict) else {"index": item.index, "embedding": item.embedding}
                for item in data
            ]
            items.sort(key=lambda item: int(item["index"]))
            indices = [int(item["index"]) for item in items]
        except (AttributeError, KeyError, TypeError, ValueError):
            indices = None
        if indices != list(range(n_texts)):
            count = "malformed" if indices is None else str(len(indices))
            raise BioprofileInputError(
                f"{server} returned {count} embeddings for {n_texts} texts: is it an OpenAI-compatible "
                "embeddings server?"
            )
        try:  # numbers only: a string, a null or a nested list in an embedding is a malformed answer
            block = np.asarray([item["embedding"] for item in items])
        except ValueError:  # rows of two lengths
            widths = sorted({len(e) for item in items if isinstance(e := item["embedding"], list)})
            raise BioprofileInputError(
                f"{server} returned vectors of widths {widths} in one answer for {self.model}: nothing of that "
                "answer is kept"
            ) from None
        if block.size and block.dtype.kind not in "fiu":
            raise BioprofileInputError(
                f"{server} returned embeddings that are not lists of numbers for {self.model}"
            )
        block = block.astype(np.float32)
        if block.ndim == 2 and not np.isfinite(block).all():
            raise BioprofileInputError(
                f"{server} returned vectors with NaN or infinite values for {self.model}: nothing of that answer "
                "is kept"
            )
        expected = self._dim
        if block.ndim != 2 or (expected is not None and block.shape[1] != expected):
            width = block.shape[1] if block.ndim == 2 else "ragged"
            raise BioprofileInputError(
                f"{self.endpoint.shown_url} returned vectors of width {width} for {self.model}, expected "
                f"{expected}: check the model name and dimensions",
                argument="dimensions",
            )
        return block

    def _request(self, batch: list[str]) -> np.ndarray:
        """The vectors of one request's texts, in their order."""
        with api_errors(self.endpoint, self.model):
            try:
                response = self.endpoint.call(self.client.embeddings.create, **self.request_body(batch))
                data = response.data
            except (AttributeError, TypeError, ValueError) as err:  # HTML, broken JSON, no data
                if isinstance(err, BioprofileInputError):
                    raise
                raise malformed_answer(self.endpoint, "an embeddings list", err) from None
        return self.vectors_from(data, len(batch))
