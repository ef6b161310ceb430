"""Ray's side of :mod:`bioprofile.profiles.ray_fanout`: where the cluster is, the actors, the streamed answers.

:class:`RayOptions` says where and how wide; :func:`connect` reaches the cluster (in bounded time, in one line when
it does not answer); :class:`ChunkActor` is one actor of the pool (the backend built once, a chunk of prompts per
call, each failure kept with its prompt); :func:`stream_answers` runs the pool with ``Dataset.map_batches`` and
yields its answers as they finish. ``ray`` itself is imported only when a cluster is needed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bioprofile.errors import BioprofileInputError
from bioprofile.redact import redact_secrets

__all__ = ["ChunkActor", "RayOptions", "connect", "one_line_error", "pool_size", "stream_answers"]

# (Errors about reaching Ray name no argument: the CLI would turn every word "ray" of them, in an address too, into
# its flag.) Ray's own address words: a new instance on this machine, or the cluster `ray start --head` runs here.
_LOCAL, _AUTO = "local", "auto"
# Ray's ports when an address names none: the GCS of `ray start --head`, and the Ray Client server.
_GCS_PORT, _CLIENT_PORT = 6379, 10001
# How much of an error a failed prompt keeps (a server may answer with a page of HTML).
_ERROR_CHARS = 300
_INSTALL_HINT = "Ray is not installed: pip install 'bioprofile[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray fan-out runs.

    Parameters
    ----------
    address
        ``None``: the Ray this process is connected to, else a new one on this machine (``ray.init()``);
        ``"local"``: a new one on this machine; ``"auto"``: the cluster whose head node runs on this machine;
        ``"HOST:PORT"`` (port 6379 unless given) the head of a cluster; ``"ray://HOST:10001"`` its Ray Client server.
        A process already connected to Ray keeps that connection (an address given is still checked to answer).
    actors
        Backend actors in the pool (each loads the model once); ``None``: as many as the cluster's CPUs (or GPUs,
        with ``gpus_per_actor``) hold, never more than there are chunks to write.
    cpus_per_actor
        CPUs Ray reserves per actor (Ray also caps a local model's threads to it).
    gpus_per_actor
        GPUs per actor: 1 for a model on one GPU; the ``tensor_parallel_size`` of a vLLM engine spread over several.
    connect_timeout
        Seconds to wait for a cluster at ``address`` to answer before giving up.

    Raises
    ------
    BioprofileInputError
        A count or time that cannot be (named by its argument).
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    connect_timeout: float = 30.0

    def __post_init__(self) -> None:
        address = None if self.address is None else str(self.address).strip()
        object.__setattr__(self, "address", address or None)
        if self.actors is not None and int(self.actors) < 1:
            raise BioprofileInputError(f"actors must be at least 1, got {self.actors}", argument="actors")
        for name in ("cpus_per_actor", "gpus_per_actor"):
            if not float(getattr(self, name)) >= 0:
                raise BioprofileInputError(
                    f"{name} must be 0 or more, got {getattr(self, name)}", argument=name
                )
        if not float(self.connect_timeout) > 0:
            raise BioprofileInputError(
                f"connect_timeout must be positive, got {self.connect_timeout}", argument="connect_timeout"
            )

    @property
    def shown_address(self) -> str:
        """The address without credentials (a ``user:token@`` part), for messages and provenance."""
        if self.address is None or self.address in (_LOCAL, _AUTO):
            return self.address or _LOCAL
        parts = urlsplit(self.address if "://" in self.address else f"//{self.address}")
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        scheme = f"{parts.scheme}://" if parts.scheme else ""
        return redact_secrets(f"{scheme}{host}{port}")


class ChunkActor:
    """One actor of the pool: builds the backend once, then writes a chunk of prompts per call.

    Parameters
    ----------
    spec
        What builds the backend (:class:`~bioprofile.profiles.ray_fanout.GeneratorSpec`: anything with ``build()``).
    """

    def __init__(self, spec: Any) -> None:
        self.error: str | None = None
        try:
            self.writer = spec.build()
        except Exception as err:  # every chunk sent here is recorded with this error; the job goes on
            self.writer, self.error = None, one_line_error(err)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The answers to a batch of chunks (``payload``: JSON of keys, missing flags, chats), as JSON."""
        import numpy as np

        results = [json.dumps(self._chunk(json.loads(str(payload)))) for payload in batch["payload"]]
        return {"answer": np.array(results)}

    def _chunk(self, payload: dict[str, Any]) -> dict[str, dict[str, str]]:
        keys, messages = payload["keys"], payload["messages"]
        wanted = [key for key, missing in zip(keys, payload["missing"], strict=True) if missing]
        if self.writer is None:
            return {"texts": {}, "errors": dict.fromkeys(wanted, self.error)}
        outputs, error = self._generate(messages)
        error_at = {index: error for index, text in enumerate(outputs) if text is None} if error else {}
        if error_at and len(keys) > 1 and getattr(self.writer, "independent_prompts", False) is True:
            # each prompt is its own request: retry the unanswered ones alone, so only the failing ones fail
            for index in list(error_at):
                single, single_error = self._generate([messages[index]])
                if single[0] is None:
                    error_at[index] = single_error
                else:
                    outputs[index] = single[0]
                    del error_at[index]
        texts, errors = {}, {}
        for index, (key, missing, text) in enumerate(zip(keys, payload["missing"], outputs, strict=True)):
            if not missing:
                continue
            if text is None:
                errors[key] = error_at.get(index) or "no text"
            elif not text.strip():
                errors[key] = "the backend wrote an empty text"
            else:
                texts[key] = text
        return {"texts": texts, "errors": errors}

    def _generate(self, messages: list[list[dict]]) -> tuple[list[str | None], str | None]:
        """Each chat's text (``None`` where none came), and the error that stopped the rest, if any."""
        outputs: list[str | None] = [None] * len(messages)
        try:
            generate_iter = getattr(self.writer, "generate_iter", None)
            if generate_iter is not None:
                for index, text in generate_iter(messages):
                    outputs[index] = _checked_text(text)
            else:
                texts = self.writer.generate(messages)
                if not isinstance(texts, list) or len(texts) != len(messages):
                    raise ValueError(f"the backend returned {len(texts)} texts for {len(messages)} prompts")
                outputs = [_checked_text(text) for text in texts]
        except Exception as err:
            return outputs, one_line_error(err)
        return outputs, None


def _checked_text(text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"the backend returned a {type(text).__name__}, not a text")
    return text


def one_line_error(err: BaseException) -> str:
    """An error as one short line, without secrets."""
    cause = getattr(err, "cause", None)  # a RayTaskError carries the worker's exception
    if isinstance(cause, BaseException):
        err = cause
    lines = [line for line in str(err).splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")
    if isinstance(err, BioprofileInputError):
        text = lines[0] if lines else type(err).__name__
    text = redact_secrets(text)
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] part of the extra)
    except ImportError:
        raise BioprofileInputError(_INSTALL_HINT) from None
    return ray


def connect(options: RayOptions):
    """The ``ray`` module, connected: to the cluster at ``options.address``, or the one this process has."""
    ray = _import_ray()
    address = options.address
    if address not in (None, _LOCAL, _AUTO):
        _check_answers(address, options)
    if ray.is_initialized():  # a process is connected to one Ray at a time: the one it has
        return ray
    # the driver's own core worker logs at INFO/WARNING to stderr unless told otherwise (read when Ray starts)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        with _quiet_ray_logs():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    except Exception as err:
        raise BioprofileInputError(
            f"cannot connect to Ray at {options.shown_address}: {one_line_error(err)}"
        ) from None
    return ray


def _check_answers(address: str, options: RayOptions) -> None:
    """Fail in ``connect_timeout`` seconds, in one line, when nothing listens at ``address`` (Ray would wait longer)."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    default_port = _CLIENT_PORT if parts.scheme == "ray" else _GCS_PORT
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:
        host, port = None, None
    if not host:
        raise BioprofileInputError(
            f"not a Ray address: {options.shown_address} (use HOST:PORT, ray://HOST:10001, auto or local)"
        )
    try:
        with socket.create_connection((host, port), timeout=float(options.connect_timeout)):
            pass
    except OSError as err:
        raise BioprofileInputError(
            f"no Ray cluster answers at {options.shown_address} within {options.connect_timeout:g} s "
            f"({err.strerror or type(err).__name__}): check the address, and that the cluster's head node runs there"
        ) from None


@contextmanager
def _quiet_ray_logs() -> Iterator[None]:
    """Ray's and Ray Data's INFO lines (and Ray Data's progress bars) off for the block: bioprofile shows its own."""
    # ray.data's progress module warns that its bars are off: they are, on purpose
    quiet = {
        "ray": logging.WARNING,
        "ray.data": logging.WARNING,
        "ray.data._internal.progress": logging.ERROR,
    }
    loggers = [logging.getLogger(name) for name in quiet]
    levels = [logger.level for logger in loggers]
    for logger, level in zip(loggers, quiet.values(), strict=True):
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def pool_size(ray, options: RayOptions, chunks: int) -> int:
    """Actors in the pool: as asked, else as many as the cluster's CPUs (GPUs) hold; never more than chunks."""
    if options.actors is not None:
        return min(int(options.actors), chunks)
    resources = ray.cluster_resources()
    if options.gpus_per_actor > 0:
        fit = resources.get("GPU", 0) // options.gpus_per_actor
    elif options.cpus_per_actor > 0:
        fit = resources.get("CPU", 1) // options.cpus_per_actor
    else:
        fit = chunks
    return max(1, min(int(fit), chunks))


def stream_answers(
    ray, rows: list[dict], spec: Any, options: RayOptions, actors: int
) -> Iterator[list[dict]]:
    """The actors' answers, one list per result batch, in the order they finish (streamed, not collected)."""
    context = ray.data.DataContext.get_current()
    shown, context.enable_progress_bars = context.enable_progress_bars, False
    try:
        with _quiet_ray_logs():
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
            answers = dataset.map_batches(
                ChunkActor,
                fn_constructor_kwargs={"spec": spec},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=options.cpus_per_actor,
                num_gpus=options.gpus_per_actor or None,
                batch_format="numpy",
            )
            for batch in answers.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                yield [json.loads(str(answer)) for answer in batch["answer"]]
    finally:
        context.enable_progress_bars = shown
