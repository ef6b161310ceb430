"""A real OpenAI-compatible embeddings server on 127.0.0.1 for the tests: deterministic vectors, checked limits, faults.

``POST /v1/embeddings`` answers each text with :func:`expected_vector` (a vector seeded by the text's hash, so a
test can check that every vector belongs to its text). The server checks every request against its limits (inputs,
tokens per input and per request, counted in UTF-8 bytes like the client's bound; strings only, never token ids)
and records each violation, answering it with a 400. Faults are injected from a script, one per request in order:
``"429"`` (with ``Retry-After``), ``"500"``, ``"drop"`` (the connection closes without an answer), ``"slow"`` (an
answer after a short wait) and ``"hang"`` (no answer within the client's time-out, then the connection closes).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def expected_vector(text: str, dim: int) -> np.ndarray:
    """The float32 vector the server answers ``text`` with."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class EmbeddingServer(ThreadingHTTPServer):
    """The server; start it with :meth:`start`, stop it with :meth:`stop` (or use it as a context manager)."""

    daemon_threads = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        dim: int = 16,
        max_inputs: int = 2048,
        max_request_tokens: int = 300_000,
        max_input_tokens: int = 8191,
        faults: list[str | None] | None = None,
        retry_after: str = "0.05",
        slow_s: float = 0.2,
        hang_s: float = 1.5,
    ):
        super().__init__(("127.0.0.1", 0), EmbeddingHandler)
        self.api_key, self.dim = api_key, dim
        self.limits = (max_inputs, max_request_tokens, max_input_tokens)
        self.faults = list(faults or [])
        self.retry_after, self.slow_s, self.hang_s = retry_after, slow_s, hang_s
        self.lock = threading.Lock()
        #: One entry per request: time, status (or the fault), inputs, Authorization header.
        self.requests: list[dict] = []
        #: How often each text was answered with a 200.
        self.delivered: Counter[str] = Counter()
        #: Requests that broke a limit (a test fails on any).
        self.violations: list[str] = []

    @property
    def base_url(self) -> str:
        """The API root of this server."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_fault(self) -> str | None:
        """The fault for the next request (``None``: answer normally)."""
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def check(self, body: dict) -> str | None:
        """What is wrong with a request body, or ``None``."""
        max_inputs, max_request_tokens, max_input_tokens = self.limits
        inputs = body.get("input")
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return "input must be a list of strings (text, not token ids)"
        sizes = [len(t.encode("utf-8")) for t in inputs]
        if not inputs or len(inputs) > max_inputs:
            return f"{len(inputs)} inputs, limit {max_inputs}"
        if min(sizes) == 0:
            return "empty string in input"
        if max(sizes) > max_input_tokens:
            return f"an input of {max(sizes)} tokens, limit {max_input_tokens}"
        if sum(sizes) > max_request_tokens:
            return f"{sum(sizes)} tokens in one request, limit {max_request_tokens}"
        return None

    def start(self) -> EmbeddingServer:
        """Serve in a daemon thread."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class EmbeddingHandler(BaseHTTPRequestHandler):
    """``POST /v1/embeddings`` with faults from the server's script."""

    server: EmbeddingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._reply(status, {"error": {"message": message, "type": "test_error", "code": None}}, headers)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        auth = self.headers.get("Authorization")
        record = {"time": time.monotonic(), "path": self.path, "authorization": auth, "body": body}
        with srv.lock:
            srv.requests.append(record)
        if srv.api_key and auth != f"Bearer {srv.api_key}" and not str(auth).startswith("Basic "):
            record["status"] = 401
            return self._error(401, "Incorrect API key provided")
        if self.path != "/v1/embeddings":
            record["status"] = 404
            return self._error(404, f"no route {self.path}")
        problem = srv.check(body)
        if problem is not None:
            with srv.lock:
                srv.violations.append(problem)
            record["status"] = 400
            return self._error(400, problem)
        fault = srv.next_fault()
        record["status"] = fault or 200
        if fault == "429":
            return self._error(429, "Rate limit reached", {"Retry-After": srv.retry_after})
        if fault == "500":
            return self._error(500, "internal error")
        if fault in ("drop", "hang"):
            if fault == "hang":
                time.sleep(srv.hang_s)
            self.close_connection = True
            return None
        if fault == "slow":
            time.sleep(srv.slow_s)
        dim = int(body.get("dimensions") or srv.dim)
        data = [
            {"object": "embedding", "index": i, "embedding": expected_vector(text, dim).tolist()}
            for i, text in enumerate(body["input"])
        ]
        self._reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            },
        )
        with srv.lock:
            srv.delivered.update(body["input"])
        return None
