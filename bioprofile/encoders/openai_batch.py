"""OpenAI embeddings through the Batch API: half the price, for large runs (20k genes, 100k cell sentences).

:class:`OpenAIBatchEncoder` wraps an :class:`~bioprofile.encoders.openai.OpenAIEncoder` and gets the same vectors
under the same encoder id (so they land in the store beside the online path's, and a later run of either path
sends nothing), by way of the Batch API:

1. the texts the store lacks are prepared as the online path prepares them (truncated to the per-input limit and
   recorded) and cut into ``/v1/embeddings`` request lines within the same per-request limits (inputs and
   tokens), and into batches within the Batch API's own limits (:class:`BatchSettings`);
2. what will be sent is announced before sending (:class:`BatchPlan`: inputs, tokens, requests and the price at
   the batch rate given as :attr:`BatchSettings.batch_price`, else the published one of :data:`BATCH_PRICES`,
   dated :data:`PRICES_AS_OF`);
3. each JSONL file is uploaded (``client.files.create``), its batch created (``client.batches.create``) and the
   batch id, input-file id and ``custom_id -> text hashes`` map recorded in the store (:meth:`Store.put_batch_job
   <bioprofile.store.Store.put_batch_job>`) before anything waits;
4. open batches are polled (``client.batches.retrieve``) and, once ended, collected (``client.files.content``):
   their vectors are stored by text hash, lines that failed (the error file, a non-200 line, or lines an expired
   batch never ran) are sent again as a new batch of only those, up to ``max_resubmits`` times.

A rerun of the same command (after a kill, or after ``wait`` ran out) finds the recorded batches, polls and
collects them instead of submitting again. The one unguarded moment is between the server creating a batch and
the store recording it (one request's time): a kill exactly then leaves a batch the store does not know, and the
rerun submits its texts again.

:meth:`OpenAIBatchEncoder.fill_store` takes the whole list at once; :func:`~bioprofile.encoders.cached.encode_texts`
hands it every uncached text in one call (not chunk by chunk), so a command sends as few batches as the limits allow.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bioprofile.encoders.openai import OpenAIEncoder
from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import api_errors
from bioprofile.redact import redact_secrets
from bioprofile.store import Store, text_hash

__all__ = [
    "BATCH_PRICES",
    "PRICES_AS_OF",
    "BatchPlan",
    "BatchSettings",
    "OpenAIBatchEncoder",
]

#: Published OpenAI prices in US dollars per million input tokens: (online, Batch API), as of :data:`PRICES_AS_OF`
#: (openai.com/api/pricing, as copied by embeddingcost.com and costgoat.com that month): the default of
#: :attr:`BatchSettings.batch_price`. Check them before a large run, and give today's rate there when it changed;
#: a model not listed is announced without a price unless one is given.
BATCH_PRICES: dict[str, tuple[float, float]] = {
    "text-embedding-3-small": (0.02, 0.01),
    "text-embedding-3-large": (0.13, 0.065),
    "text-embedding-ada-002": (0.10, 0.05),
}
PRICES_AS_OF = "2026-05"

# The longest pause between two polls, and the longest wait for open batches unless told (24 h window + 1 h).
_LONGEST_POLL_INTERVAL = 3600.0
_LONGEST_WAIT = 25 * 3600.0
# Batch states after which a batch delivers nothing more.
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSettings:
    """How batches are cut, waited for and retried.

    Parameters
    ----------
    poll_interval
        Seconds between two polls of the open batches (finite, at most an hour).
    wait
        Seconds to wait for open batches before stopping with a line that says to rerun (which collects, never
        resubmits); ``None`` waits the completion window (24 h) and an hour more, never longer: a batch the server
        never ends is not polled forever.
    max_resubmits
        New batches of the failed lines, per run, before giving up on them.
    max_batch_inputs
        Texts in one batch (OpenAI: 50,000 embedding inputs across all request lines of a batch).
    max_batch_requests
        Request lines in one batch file (OpenAI: 50,000).
    completion_window
        The window asked for (OpenAI offers ``"24h"``).
    batch_price
        The Batch API's price in US dollars per million input tokens, for the announcement only (nothing is
        charged or refused by it); ``None``: the model's published rate in :data:`BATCH_PRICES`, dated
        :data:`PRICES_AS_OF` in the announcement.
    """

    poll_interval: float = 30.0
    wait: float | None = None
    max_resubmits: int = 3
    max_batch_inputs: int = 50_000
    max_batch_requests: int = 50_000
    completion_window: str = "24h"
    batch_price: float | None = None

    def __post_init__(self) -> None:
        if self.batch_price is not None and not 0 <= self.batch_price < math.inf:
            raise BioprofileInputError(
                f"batch_price must be a finite number of US dollars per 1M tokens, 0 or more, got {self.batch_price}",
                argument="batch_price",
            )
        if not 0 < self.poll_interval <= _LONGEST_POLL_INTERVAL:
            raise BioprofileInputError(
                f"poll_interval must be more than 0 and at most {_LONGEST_POLL_INTERVAL:g} seconds, got "
                f"{self.poll_interval}",
                argument="poll_interval",
            )
        if self.wait is not None and not 0 <= self.wait < math.inf:
            raise BioprofileInputError(
                f"wait must be a finite number of seconds, 0 or more, got {self.wait}", argument="wait"
            )
        if int(self.max_resubmits) < 0:
            raise BioprofileInputError(
                f"max_resubmits must be 0 or more, got {self.max_resubmits}", argument="max_resubmits"
            )
        for name in ("max_batch_inputs", "max_batch_requests"):
            if int(getattr(self, name)) < 1:
                raise BioprofileInputError(
                    f"{name} must be at least 1, got {getattr(self, name)}", argument=name
                )


@dataclass(frozen=True)
class BatchPlan:
    """What one submission sends: announced before sending.

    Parameters
    ----------
    model
        The embedding model.
    n_inputs
        Texts sent.
    n_tokens
        Their tokens as the encoder's token counter counts them (after truncation to the per-input limit).
    exact_tokens
        Whether that counter is exact; the default UTF-8 byte bound over-counts, so the price is then an upper
        bound.
    n_requests
        ``/v1/embeddings`` request lines.
    n_batches
        Batches (files) they are cut into.
    batch_price
        The batch rate in US dollars per million tokens the price is computed at; ``None``: the model's published
        rate in :data:`BATCH_PRICES` (as of :data:`PRICES_AS_OF`).
    """

    model: str
    n_inputs: int
    n_tokens: int
    exact_tokens: bool
    n_requests: int
    n_batches: int
    batch_price: float | None = None

    @property
    def rate(self) -> float | None:
        """The batch rate the price is computed at: :attr:`batch_price`, else the published one (``None``: none)."""
        if self.batch_price is not None:
            return self.batch_price
        rates = BATCH_PRICES.get(self.model)
        return None if rates is None else rates[1]

    @property
    def price_usd(self) -> float | None:
        """The price of :attr:`n_tokens` at :attr:`rate` (``None`` for an unlisted model and no rate given)."""
        return None if self.rate is None else self.n_tokens / 1e6 * self.rate

    def describe(self) -> str:
        """One line: inputs, tokens, requests, batches and the price at the given or the dated published rate."""
        bound = "" if self.exact_tokens else "at most "
        head = (
            f"OpenAI Batch API: sending {self.n_inputs:,} inputs, {bound}{self.n_tokens:,} tokens, in "
            f"{self.n_requests:,} requests and {self.n_batches} batch{'es' if self.n_batches != 1 else ''}"
        )
        price = self.price_usd
        if price is None:
            return f"{head}; no published price for {self.model} (as of {PRICES_AS_OF}), and none given"
        source = "as given" if self.batch_price is not None else f"published rate as of {PRICES_AS_OF}"
        return (
            f"{head}; {bound}${price:.4f} at {self.model}'s batch rate of ${self.rate:g} per 1M tokens "
            f"({source})"
        )


class OpenAIBatchEncoder:
    """An :class:`~bioprofile.encoders.openai.OpenAIEncoder` whose vectors come through the Batch API.

    Parameters
    ----------
    encoder
        The online encoder: its model, dimensions, endpoint, key, limits and token counter are used as they are,
        and its :attr:`id` is this encoder's (the vectors are the same).
    store
        Where vectors and the records of submitted batches go (the store the run uses).
    settings
        :class:`BatchSettings` (defaults: poll every 30 s, wait as long as it takes).
    say
        Called with each announcement (the plan before sending, each batch submitted, collected, resubmitted);
        default: the module's logger at INFO.

    Raises
    ------
    BioprofileInputError
        ``encoder`` is not an OpenAI encoder.
    """

    def __init__(
        self,
        encoder: OpenAIEncoder,
        store: Store,
        *,
        settings: BatchSettings | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(encoder, OpenAIEncoder):
            raise BioprofileInputError(
                f"the Batch API is for openai: encoders, not {getattr(encoder, 'id', encoder)!r}",
                argument="encoder",
            )
        self.encoder, self.store = encoder, store
        self.settings = settings or BatchSettings()
        self.say = say or _log.info
        #: Batches this object created: their ids, in order.
        self.submitted: list[str] = []

    @property
    def id(self) -> str:
        """The online encoder's id: the same vectors, so the same cache key."""
        return self.encoder.id

    @property
    def dim(self) -> int:
        """Vector width (the online encoder's)."""
        return self.encoder.dim

    @property
    def truncated(self) -> dict[str, int]:
        """Texts truncated to the per-input limit: original text -> its token count."""
        return self.encoder.truncated

    def over_limit(self, texts: Sequence[str]) -> list[int]:
        """Positions of the texts longer than the per-input limit (truncated when sent)."""
        return self.encoder.over_limit(texts)

    def __repr__(self) -> str:
        return f"OpenAIBatchEncoder({self.id!r}, store={self.store!r}, settings={self.settings})"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (``float32``, rows in input order): from the store, else through batches.

        Raises
        ------
        BioprofileInputError
            The server refused the key or a request; lines still failed after ``max_resubmits`` new batches; or
            batches were still running when ``wait`` ran out (a rerun collects them).
        """
        texts = [str(text) for text in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.fill_store(texts)
        found = self.store.get_vectors(texts, encoder=self.id)
        return np.stack([np.asarray(found[text], dtype=np.float32) for text in texts])

    def fill_store(self, texts: Sequence[str]) -> int:
        """Make the store hold a vector of every text: collect recorded batches, submit the rest, wait, retry.

        Returns
        -------
        int
            How many texts got their vector in this call.
        """
        unique = list(dict.fromkeys(str(text) for text in texts))
        missing = [t for t in unique if t not in self.store.get_vectors(unique, encoder=self.id)]
        wanted = len(missing)
        resubmits, first, failures = 0, True, {}
        waited = _LONGEST_WAIT if self.settings.wait is None else self.settings.wait
        deadline = time.monotonic() + waited
        while missing:
            pending = self._poll_open(failures)
            found = self.store.get_vectors(missing, encoder=self.id)
            missing = [t for t in missing if t not in found]
            if not missing:
                break
            unsent = [t for t in missing if text_hash(t) not in pending]
            if unsent:
                if not first and resubmits >= self.settings.max_resubmits:
                    reasons = "; ".join(sorted(set(failures.values()))[:3]) or "no answer for them"
                    raise BioprofileInputError(
                        f"{len(unsent)} texts still failed after {resubmits} new batches ({reasons}): rerun to "
                        "try them again; what was collected is kept"
                    )
                resubmits += 0 if first else 1
                self._submit(unsent, again=not first)
                first = False
                continue
            first = False
            if time.monotonic() >= deadline:
                open_ids = [job["batch_id"] for job in self.store.get_batch_jobs(encoder=self.id)]
                raise BioprofileInputError(
                    f"{len(missing)} texts are still in running batches ({', '.join(open_ids)}) after waiting "
                    f"{waited:g} s: rerun the same command to collect them (nothing is sent again)",
                    argument="wait",
                )
            time.sleep(self.settings.poll_interval)
        return wanted - len(missing)

    def plan(self, texts: Sequence[str]) -> tuple[BatchPlan, list[list[list[int]]], list[str]]:
        """What sending ``texts`` takes: the plan, the request groups of each batch, and the texts as sent."""
        encoder = self.encoder
        sent = encoder.prepare(list(texts))
        groups = encoder.batches(sent)
        limit, counter = encoder.limits.max_input_tokens, encoder.token_counter
        tokens = sum(max(1, min(counter.count(text), limit)) for text in sent)
        batches: list[list[list[int]]] = []
        inputs = 0
        for group in groups:
            if (
                not batches
                or len(batches[-1]) >= self.settings.max_batch_requests
                or inputs + len(group) > self.settings.max_batch_inputs
            ):
                batches.append([])
                inputs = 0
            batches[-1].append(group)
            inputs += len(group)
        plan = BatchPlan(
            model=encoder.model,
            n_inputs=len(sent),
            n_tokens=tokens,
            exact_tokens=counter.name != "utf8",
            n_requests=len(groups),
            n_batches=len(batches),
            batch_price=self.settings.batch_price,
        )
        return plan, batches, sent

    def _submit(self, texts: list[str], *, again: bool) -> None:
        """Announce, upload and create the batches of ``texts``, recording each before anything waits on it."""
        plan, batches, sent = self.plan(texts)
        self.say(("again, for the lines that failed: " if again else "") + plan.describe())
        encoder, client = self.encoder, self.encoder.client
        for groups in batches:
            requests, lines = {}, []
            for k, group in enumerate(groups):
                custom_id = f"req-{k}"
                requests[custom_id] = [text_hash(texts[i]) for i in group]
                body = encoder.request_body([sent[i] for i in group])
                lines.append(
                    json.dumps(
                        {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body},
                        ensure_ascii=False,
                        separators=(",", ":"),
                    )
                )
            data = ("\n".join(lines) + "\n").encode("utf-8")
            with api_errors(encoder.endpoint, encoder.model):
                uploaded = client.files.create(file=("bioprofile-embeddings.jsonl", data), purpose="batch")
                batch = client.batches.create(
                    input_file_id=uploaded.id,
                    endpoint="/v1/embeddings",
                    completion_window=self.settings.completion_window,
                )
            self.store.put_batch_job(
                {
                    "batch_id": batch.id,
                    "encoder": self.id,
                    "input_file_id": uploaded.id,
                    "status": "open",
                    "requests": requests,
                }
            )
            self.submitted.append(batch.id)
            n_inputs = sum(map(len, groups))
            self.say(f"submitted batch {batch.id} ({n_inputs:,} inputs in {len(groups):,} requests)")

    def _poll_open(self, failures: dict[str, str]) -> set[str]:
        """Poll the recorded open batches; collect those that ended. The text hashes still in running ones."""
        encoder, client = self.encoder, self.encoder.client
        pending: set[str] = set()
        for job in self.store.get_batch_jobs(encoder=self.id):
            with api_errors(encoder.endpoint, encoder.model):
                batch = client.batches.retrieve(job["batch_id"])
            if batch.status not in _ENDED:
                pending.update(digest for hashes in job["requests"].values() for digest in hashes)
                continue
            n_ok = self._collect(job, batch, failures)
            self.store.put_batch_job({**job, "status": "collected"})
            n_lines = len(job["requests"])
            detail = "" if batch.status == "completed" else f" ({batch.status}{_batch_errors(batch)})"
            self.say(f"collected batch {batch.id}{detail}: {n_ok} of {n_lines} requests answered")
        return pending

    def _collect(self, job: dict, batch, failures: dict[str, str]) -> int:
        """Store the vectors of an ended batch's answered lines; note why the others failed. Lines answered."""
        encoder, client = self.encoder, self.encoder.client
        answered = 0
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            with api_errors(encoder.endpoint, encoder.model):
                content = client.files.content(file_id).text
            for line in content.splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                hashes = job["requests"].get(record.get("custom_id"))
                if hashes is None:
                    continue
                response = record.get("response") or {}
                if record.get("error") or response.get("status_code") != 200:
                    failures[record["custom_id"]] = _line_error(record)
                    continue
                block = encoder.vectors_from(response["body"]["data"], len(hashes))
                self.store.put_hashed_vectors(dict(zip(hashes, block, strict=True)), encoder=self.id)
                answered += 1
        return answered


def _line_error(record: dict) -> str:
    """Why one batch line failed, short."""
    error = record.get("error") or ((record.get("response") or {}).get("body") or {}).get("error") or {}
    status = (record.get("response") or {}).get("status_code")
    said = str(error.get("message") or error.get("code") or "failed")[:480]  # cut first: a line may be huge
    message = redact_secrets(" ".join(said.split()))[:120]
    return f"{status}: {message}" if status else message


def _batch_errors(batch) -> str:
    """The first of a batch's own errors (a batch that failed validation), as ``: message``."""
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    if not errors:
        return ""
    return f": {redact_secrets(' '.join(str(errors[0].message)[:480].split()))[:120]}"
