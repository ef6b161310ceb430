"""A loopback server that misbehaves on purpose, one mode per server, for the no-hang and malformed-answer tests.

Modes (``HostileServer(mode)``), each answering ``POST .../chat/completions`` and ``POST .../embeddings``:

- ``echo-key``: 400 whose message quotes the request's ``Authorization`` header.
- ``hang``: reads the request, then sends nothing until the test ends.
- ``drip``: sends a 200 head and then the body one byte every ``drip_s`` seconds, never finishing in time.
- ``huge``: 400 with a 1 MB error message.
- ``html``: 200 ``text/html``.
- ``garbage``: 200 ``application/json`` that is not JSON.
- ``no-choices``: a chat answer without ``choices`` (and an embeddings answer without ``data``).
- ``null-content``: a chat answer whose message content is ``null``.
- ``string-embedding``: an embedding given as a string.
- ``two-widths``: two embeddings of different widths in one answer.
- ``nan``: an embedding holding ``NaN``.

Every mode ends when the server is stopped (:meth:`stop` releases a hanging or dripping handler at once).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str, drip_s: float = 0.2):
        super().__init__(("127.0.0.1", 0), _HostileHandler)
        self.mode, self.drip_s = mode, drip_s
        self.requests: list[str] = []
        self.stopped = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        self.shutdown()
        self.server_close()


def _chat(content) -> dict:
    message = {"role": "assistant", "content": content}
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


def _embeddings(vectors: list) -> dict:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {"object": "list", "model": "m", "data": data, "usage": {"prompt_tokens": 0, "total_tokens": 0}}


class _HostileHandler(BaseHTTPRequestHandler):
    server: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        srv, mode = self.server, self.server.mode
        srv.requests.append(self.path)
        chat = self.path.endswith("/chat/completions")
        n = len(body.get("input") or []) if not chat else 1
        if mode == "echo-key":
            auth = str(self.headers.get("Authorization"))
            return self._send(
                400, json.dumps({"error": {"message": f"Bad request made with key {auth}"}}).encode()
            )
        if mode == "hang":
            srv.stopped.wait(120)
            self.close_connection = True
            return None
        if mode == "drip":
            payload = json.dumps(_chat("x" * 100) if chat else _embeddings([[0.0] * 4] * n)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            for byte in payload:
                if srv.stopped.wait(srv.drip_s):
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            self.close_connection = True
            return None
        if mode == "huge":
            return self._send(400, json.dumps({"error": {"message": "x" * 1_000_000}}).encode())
        if mode == "html":
            return self._send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
        if mode == "garbage":
            return self._send(200, b"{not json at all")
        if mode == "no-choices":
            return self._send(
                200,
                json.dumps({"id": "x", "object": "chat.completion"} if chat else {"object": "list"}).encode(),
            )
        if mode == "null-content":
            return self._send(200, json.dumps(_chat(None) if chat else _embeddings([None] * n)).encode())
        if mode == "string-embedding":
            return self._send(
                200, json.dumps(_chat(["a", "list"]) if chat else _embeddings(["0.1,0.2"] * n)).encode()
            )
        if mode == "two-widths":
            vectors = [[0.5] * (4 + (i % 2)) for i in range(max(n, 2))][:n] if n > 1 else [[0.5] * 4]
            return self._send(200, json.dumps(_chat("fine") if chat else _embeddings(vectors)).encode())
        if mode == "nan":
            text = json.dumps(_chat("fine") if chat else _embeddings([[0.5, 0.5, 0.5, 0.5]] * n))
            return self._send(200, text.replace("0.5, 0.5, 0.5, 0.5", "NaN, 0.5, 0.5, 0.5").encode())
        raise AssertionError(f"unknown mode {mode}")


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
