"""A real OpenAI-compatible embeddings server on 127.0.0.1 for the tests: deterministic vectors, checked limits, faults.

``POST /v1/embeddings`` answers each text with :func:`expected_vector` (a vector seeded by the text's hash, so a
test can check that every vector belongs to its text). The server checks every request against its limits (inputs,
tokens per input and per request, counted in UTF-8 bytes like the client's bound; strings only, never token ids)
and records each violation, answering it with a 400. Faults are injected from a script, one per request in order:
``"429"`` (with ``Retry-After``), ``"500"``, ``"drop"`` (the connection closes without an answer), ``"slow"`` (an
answer after a short wait) and ``"hang"`` (no answer within the client's time-out, then the connection closes).

The Batch API too: ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}/content``, ``POST /v1/batches`` and
``GET /v1/batches/{id}``. A batch is ``validating`` when created, ``in_progress`` on the first poll, and ends after
``batch_polls`` polls: each line is checked against the same limits as an online request (a violation is recorded and
answered with a 400 line in the error file), the first ``batch_failures[k]`` lines of the k-th batch fail with a
500 line in the error file, and a batch whose number is in ``batch_expire`` ends ``expired`` with only its first
half of lines run. Faults from the script hit these requests too.
"""

from __future__ import annotations

import email.parser
import email.policy
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
        batch_polls: int = 2,
        batch_failures: list[int] | None = None,
        batch_expire: set[int] | None = None,
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
        self.batch_polls = batch_polls
        self.batch_failures = list(batch_failures or [])
        self.batch_expire = set(batch_expire or ())
        #: Uploaded files: id -> bytes (batch inputs, and the output and error files the server writes).
        self.files: dict[str, bytes] = {}
        #: Batches: id -> the batch object as served, plus ``polls`` and ``number`` (0 for the first batch).
        self.batches: dict[str, dict] = {}

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

    def _authorized(self, record: dict) -> bool:
        srv = self.server
        auth = self.headers.get("Authorization")
        record["authorization"] = auth
        with srv.lock:
            srv.requests.append(record)
        if srv.api_key and auth != f"Bearer {srv.api_key}" and not str(auth).startswith("Basic "):
            record["status"] = 401
            self._error(401, "Incorrect API key provided")
            return False
        return True

    def _faulted(self, record: dict) -> bool:
        """Apply the next scripted fault; whether it took the place of the answer."""
        srv = self.server
        fault = srv.next_fault()
        record["status"] = fault or 200
        if fault == "429":
            self._error(429, "Rate limit reached", {"Retry-After": srv.retry_after})
            return True
        if fault == "500":
            self._error(500, "internal error")
            return True
        if fault in ("drop", "hang"):
            if fault == "hang":
                time.sleep(srv.hang_s)
            self.close_connection = True
            return True
        if fault == "slow":
            time.sleep(srv.slow_s)
        return False

    def do_GET(self):
        srv = self.server
        record = {"time": time.monotonic(), "path": self.path, "method": "GET", "body": None}
        if not self._authorized(record) or self._faulted(record):
            return None
        parts = self.path.strip("/").split("/")
        if (
            len(parts) == 4
            and parts[:2] == ["v1", "files"]
            and parts[3] == "content"
            and parts[2] in srv.files
        ):
            data = srv.files[parts[2]]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if len(parts) == 3 and parts[:2] == ["v1", "batches"] and parts[2] in srv.batches:
            with srv.lock:
                batch = srv.batches[parts[2]]
                batch["polls"] += 1
                if batch["status"] == "validating":
                    batch["status"] = "in_progress"
                if batch["status"] == "in_progress" and batch["polls"] >= srv.batch_polls:
                    self._run_batch(batch)
            return self._reply(200, _served(batch))
        record["status"] = 404
        return self._error(404, f"no route {self.path}")

    def _run_batch(self, batch: dict) -> None:
        """End a batch (under the lock): answer its lines into an output and an error file."""
        srv = self.server
        lines = [json.loads(line) for line in srv.files[batch["input_file_id"]].decode().splitlines() if line]
        n_fail = srv.batch_failures[batch["number"]] if batch["number"] < len(srv.batch_failures) else 0
        expired = batch["number"] in srv.batch_expire
        run = lines[: len(lines) // 2] if expired else lines
        out, err = [], []
        for k, line in enumerate(run):
            body, custom_id = line["body"], line["custom_id"]
            problem = srv.check(body) if line.get("url") == "/v1/embeddings" else f"url {line.get('url')}"
            if problem is not None:
                srv.violations.append(problem)
                status, answer = 400, {"error": {"message": problem, "type": "invalid_request_error"}}
            elif k < n_fail:
                status, answer = 500, {"error": {"message": "internal error", "type": "server_error"}}
            else:
                dim = int(body.get("dimensions") or srv.dim)
                data = [
                    {"object": "embedding", "index": i, "embedding": expected_vector(text, dim).tolist()}
                    for i, text in enumerate(body["input"])
                ]
                status, answer = 200, {"object": "list", "data": data, "model": body.get("model")}
                srv.delivered.update(body["input"])
            entry = {
                "id": f"batch_req_{len(out) + len(err)}",
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": "req", "body": answer},
                "error": None,
            }
            (out if status == 200 else err).append(json.dumps(entry))
        for key, entries in (("output_file_id", out), ("error_file_id", err)):
            if entries:
                file_id = f"file-{key[:3]}-{batch['id']}"
                srv.files[file_id] = ("\n".join(entries) + "\n").encode()
                batch[key] = file_id
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}

    def do_POST(self):
        srv = self.server
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/files":
            body = self._form(raw)
        else:
            body = json.loads(raw)
        record = {"time": time.monotonic(), "path": self.path, "method": "POST", "body": body}
        if not self._authorized(record):
            return None
        if self.path == "/v1/files":
            if self._faulted(record):
                return None
            with srv.lock:
                file_id = f"file-{len(srv.files)}"
                srv.files[file_id] = body["file"]
            return self._reply(
                200,
                {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(body["file"]),
                    "created_at": int(time.time()),
                    "filename": body.get("filename") or "upload.jsonl",
                    "purpose": body.get("purpose"),
                    "status": "processed",
                },
            )
        if self.path == "/v1/batches":
            if self._faulted(record):
                return None
            if body.get("input_file_id") not in srv.files or body.get("endpoint") != "/v1/embeddings":
                record["status"] = 400
                return self._error(400, "unknown input_file_id or endpoint")
            with srv.lock:
                number = len(srv.batches)
                batch = {
                    "id": f"batch_{number}",
                    "object": "batch",
                    "endpoint": body["endpoint"],
                    "input_file_id": body["input_file_id"],
                    "completion_window": body.get("completion_window"),
                    "status": "validating",
                    "created_at": int(time.time()),
                    "output_file_id": None,
                    "error_file_id": None,
                    "polls": 0,
                    "number": number,
                }
                srv.batches[batch["id"]] = batch
            return self._reply(200, _served(batch))
        if not self.path.endswith("/v1/embeddings"):  # any API root on this port: /v1, /other/v1
            record["status"] = 404
            return self._error(404, f"no route {self.path}")
        problem = srv.check(body)
        if problem is not None:
            with srv.lock:
                srv.violations.append(problem)
            record["status"] = 400
            return self._error(400, problem)
        if self._faulted(record):
            return None
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

    def _form(self, raw: bytes) -> dict:
        """The fields of a multipart/form-data upload: ``purpose``, ``filename`` and ``file`` (bytes)."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        fields: dict = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                fields["file"] = part.get_payload(decode=True)
                fields["filename"] = part.get_filename()
            else:
                fields[name] = part.get_content().strip()
        return fields


def _served(batch: dict) -> dict:
    """A batch as the API shows it (without the server's own bookkeeping)."""
    return {k: v for k, v in batch.items() if k not in ("polls", "number")}
