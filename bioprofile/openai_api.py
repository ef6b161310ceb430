"""One way to reach an OpenAI-compatible server: where it is, the key, the client, the retries, the errors.

Shared by the chat backend (``profiles.http``) and the embeddings encoder (``encoders.openai``), so neither copies
client code. The API key is read from an environment variable named by the caller at the moment a client is built;
it is never stored on an object, put in a repr, a message, a cache key or provenance. URLs are shown and stored
only through :func:`redact_url`, which drops any ``user:password@`` part (and secret-looking query values).

Retries are the ``openai`` client's own: exponential back-off with jitter on 408/409/429/5xx, time-outs and dropped
connections, honouring the server's ``Retry-After`` (up to two minutes); 400, 401, 403 and 404 are not retried.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bioprofile.errors import BioprofileInputError
from bioprofile.redact import redact_secrets, watch_secret_env

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "MalformedAnswerError",
    "DEFAULT_BASE_URL",
    "LOCAL_HOSTS",
    "MAX_RETRIES",
    "OpenAIEndpoint",
    "api_error",
    "api_errors",
    "redact_url",
    "url_host",
]

T = TypeVar("T")

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Hosts of a server on this machine, which may run without an API key.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
# Query parameters whose values are credentials (Azure-style ``api-key=``, signed URLs, tokens).
_SECRET_QUERY = re.compile(r"key|token|secret|password|passwd|sig|auth", re.IGNORECASE)
# Longest server message quoted in an error line: enough to name the problem, never a whole echoed request.
_MESSAGE_CHARS = 200
# What of a server message is looked at at all: a 1 MB message is cut to this before any pattern runs on it.
_MESSAGE_READ_CHARS = 4 * _MESSAGE_CHARS
# The longest a request may take in all unless told otherwise: a server that never answers costs this.
_DEFAULT_TOTAL_CAP = 600.0
#: The most retries of one request: each may wait up to the server's Retry-After, so more is a hang.
MAX_RETRIES = 20
# A URL inside a message: a scheme of at most 20 characters, then "://" and one run of non-space characters.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}://\S+")


def redact_url(url: str) -> str:
    """``url`` without credentials: no ``user:password@`` part, secret-looking query values replaced by ``***``.

    Parameters
    ----------
    url
        Any URL (or a string that is not one, returned with an ``@``-prefix stripped the same way).

    Returns
    -------
    str
        The URL as it may be shown in a message, a repr, a cache key or a provenance record.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"^([^/]*//)?[^/@]*@", r"\1", text)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_host(url: str) -> str:
    """``host[:port]`` of ``url`` without credentials (cache keys use the whole root: :attr:`OpenAIEndpoint.cache_url`)."""
    return urlsplit(str(url)).netloc.rpartition("@")[2]


@dataclass(frozen=True)
class OpenAIEndpoint:
    """An OpenAI-compatible API root and how to call it; builds the one ``openai.OpenAI`` client.

    Parameters
    ----------
    base_url
        The API root, e.g. ``http://localhost:8000/v1``; ``None`` takes ``$OPENAI_BASE_URL``, else OpenAI's. It may
        hold credentials (``http://user:pass@host/v1``): they are used, never shown (:attr:`shown_url`).
    api_key_env
        Name of the environment variable holding the API key; a server on this machine may run without one.
    timeout
        Seconds one try of a request may wait for the server's next bytes before it is retried (read timeout).
    max_retries
        Retries of a failed request (429, 5xx, time-out, dropped connection), with back-off and jitter; at most
        :data:`MAX_RETRIES`.
    connect_timeout
        Seconds to open a connection.
    total_timeout
        Seconds one request may take in all, its retries and waits included: a server that sends a byte a second
        never trips the read timeout, but trips this. ``None``: three tries' worth of ``timeout``, at most 10
        minutes.

    Raises
    ------
    BioprofileInputError
        ``base_url`` is not an http(s) URL, or a remote server and no key in ``api_key_env``.
    """

    base_url: str | None = field(default=None, repr=False)
    api_key_env: str = DEFAULT_API_KEY_ENV
    timeout: float = 300.0
    max_retries: int = 3
    connect_timeout: float = 10.0
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.total_timeout is None and isinstance(self.timeout, int | float):
            object.__setattr__(self, "total_timeout", min(_DEFAULT_TOTAL_CAP, 3 * self.timeout))
        url = (self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        object.__setattr__(self, "base_url", url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BioprofileInputError(
                f"base_url {redact_url(url)} is not an http(s) URL, e.g. http://localhost:8000/v1",
                argument="base_url",
            )
        if not str(self.api_key_env or "").strip():
            raise BioprofileInputError(
                "api_key_env must name an environment variable, e.g. OPENAI_API_KEY", argument="api_key_env"
            )
        for name in ("timeout", "connect_timeout", "total_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise BioprofileInputError(
                    f"{name} must be a positive, finite number of seconds, got {value}", argument=name
                )
            object.__setattr__(self, name, float(value))
        if not 0 <= int(self.max_retries) <= MAX_RETRIES:
            raise BioprofileInputError(
                f"max_retries must be between 0 and {MAX_RETRIES}, got {self.max_retries}",
                argument="max_retries",
            )
        watch_secret_env(self.api_key_env)  # its value is masked in every message from now on
        object.__setattr__(self, "max_retries", int(self.max_retries))
        if not os.environ.get(self.api_key_env) and not self.is_local:
            raise BioprofileInputError(
                f"no API key for {self.shown_url}: set the environment variable {self.api_key_env} (it is never "
                "written to files or logs)"
            )

    @property
    def shown_url(self) -> str:
        """The API root as messages and records show it: without credentials."""
        return redact_url(self.base_url)

    @property
    def host(self) -> str:
        """``host[:port]`` without credentials."""
        return url_host(self.base_url)

    @property
    def cache_url(self) -> str:
        """The whole API root without credentials: the server part of a cache key.

        Two servers on one host and port (``/ok/v1`` and ``/other/v1``) are two keys: neither is served the
        other's texts or vectors.
        """
        return self.shown_url

    @property
    def is_local(self) -> bool:
        """Whether the server is on this machine (then it may run without a key)."""
        return urlsplit(self.base_url).hostname in LOCAL_HOSTS

    def __repr__(self) -> str:  # reprs end up in logs: the URL without credentials, never the key
        return (
            f"OpenAIEndpoint({self.shown_url!r}, api_key_env={self.api_key_env!r}, timeout={self.timeout}, "
            f"max_retries={self.max_retries}, connect_timeout={self.connect_timeout}, "
            f"total_timeout={self.total_timeout})"
        )

    def client(self):
        """A new ``openai.OpenAI`` client for this endpoint, with the key read from :attr:`api_key_env` now.

        Raises
        ------
        BioprofileInputError
            The ``openai`` package is not installed.
        """
        try:
            from openai import OpenAI
        except ImportError:
            raise BioprofileInputError(
                "the OpenAI-compatible API needs the openai client: pip install 'bioprofile[openai]'"
            ) from None
        from openai import Timeout

        return OpenAI(
            base_url=self.base_url,
            # vLLM and other local servers accept any key when started without one
            api_key=os.environ.get(self.api_key_env) or "no-key",
            timeout=Timeout(self.timeout, connect=self.connect_timeout),
            max_retries=self.max_retries,
        )

    def call(self, request: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``request(*args, **kwargs)`` (a client call), given up after :attr:`total_timeout` seconds.

        The call runs in a daemon thread: past the deadline it is left to end on its own (a server that drips
        bytes may keep it alive; it never keeps the process alive), and this raises the client's
        ``APITimeoutError``, which :func:`api_error` turns into one line.
        """
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = request(*args, **kwargs)
            except BaseException as err:  # handed to the caller's thread as it is
                outcome["error"] = err
            finally:
                finished.set()

        threading.Thread(target=run, name="bioprofile-request", daemon=True).start()
        if not finished.wait(self.total_timeout):
            import sys

            import openai

            # the HTTP library the client is built on (httpx2 in newer openai releases, httpx before) makes requests
            http = sys.modules.get("httpx2") or sys.modules.get("httpx")
            raise openai.APITimeoutError(request=http.Request("POST", self.shown_url))
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]


class MalformedAnswerError(BioprofileInputError):
    """A server answered, but not in the OpenAI API's shape (HTML, broken JSON, missing fields, wrong types)."""


def malformed_answer(
    endpoint: OpenAIEndpoint, what: str, err: BaseException | None = None
) -> MalformedAnswerError:
    """The one line for an answer that is not ``what`` (e.g. "a chat completion"), naming what was wrong.

    Parameters
    ----------
    endpoint
        The server that answered (shown without credentials).
    what
        What the answer should have been.
    err
        What reading it raised, if anything (its type and first words are shown).

    Returns
    -------
    MalformedAnswerError
        To raise; nothing of the answer is kept.
    """
    detail = ""
    if err is not None:
        said = " ".join(str(err)[:_MESSAGE_READ_CHARS].split())[:80]
        detail = f" ({type(err).__name__}: {said})" if said else f" ({type(err).__name__})"
    return MalformedAnswerError(
        f"{endpoint.shown_url} sent an answer that is not {what}{detail}: is base_url an OpenAI-compatible API "
        "root (it ends in /v1)?"
    )


def api_error(err: Exception, endpoint: OpenAIEndpoint, model: str) -> BioprofileInputError | None:
    """The one-line error for a failed request to ``endpoint``, or ``None`` when ``err`` is not an API error.

    Parameters
    ----------
    err
        What the ``openai`` client raised, after its own retries.
    endpoint
        Where the request went (its URL is shown without credentials).
    model
        The model the request named.

    Returns
    -------
    BioprofileInputError or None
        A message naming what the server said and what to do; no key, no credentials, no traceback.
    """
    import openai

    url, retries = endpoint.shown_url, endpoint.max_retries
    if isinstance(err, openai.AuthenticationError):
        return BioprofileInputError(
            f"{url} refused the API key in ${endpoint.api_key_env}: check it (it is not shown here)"
        )
    if isinstance(err, openai.PermissionDeniedError):
        return BioprofileInputError(
            f"{url} denied access to {model!r} with the key in ${endpoint.api_key_env}: {_said(err)}"
        )
    if isinstance(err, openai.NotFoundError):
        return BioprofileInputError(
            f"{url} does not serve a model named {model!r}: check the served name (GET {url}/models lists them)"
        )
    if isinstance(err, openai.RateLimitError):
        return BioprofileInputError(
            f"{url} still answered 429 rate limited after {retries} retries ({_said(err)}): wait, then rerun; "
            "what was finished is kept"
        )
    if isinstance(err, openai.APIStatusError) and err.status_code >= 500:
        return BioprofileInputError(
            f"{url} failed with {err.status_code} after {retries} retries ({_said(err)}): rerun later; what was "
            "finished is kept"
        )
    if isinstance(err, openai.APIStatusError):
        return BioprofileInputError(
            f"{url} refused the request for {model!r} ({err.status_code}): {_said(err)}"
        )
    if isinstance(err, openai.APITimeoutError):
        return BioprofileInputError(
            f"{url} did not answer in time ({endpoint.timeout:g} s for each of {retries + 1} tries, "
            f"{endpoint.total_timeout:g} s in all): raise timeout and total_timeout, or rerun later; what was "
            "finished is kept"
        )
    if isinstance(err, openai.APIConnectionError):
        return BioprofileInputError(
            f"cannot reach {url} (refused or dropped, {retries + 1} tries): is the server running, and is "
            "base_url right? What was finished is kept"
        )
    return None


@contextmanager
def api_errors(endpoint: OpenAIEndpoint, model: str) -> Iterator[None]:
    """Run a request to ``endpoint`` in this block: an API failure leaves it as :func:`api_error`'s one line.

    Anything else (a bug) keeps its traceback.
    """
    import openai

    try:
        yield
    except openai.OpenAIError as err:
        error = api_error(err, endpoint, model)
        if error is None:
            raise
        raise error from None


def _said(err: Any) -> str:
    """What the server said, on one line, short, without credentials."""
    body = getattr(err, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if message is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    raw = str(message or getattr(err, "message", "") or type(err).__name__)
    # Cut before any pattern runs (a server may send megabytes), then mask keys and URL credentials: linear.
    text = " ".join(raw[:_MESSAGE_READ_CHARS].split())
    text = redact_secrets(_URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text))
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."
