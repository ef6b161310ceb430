"""The OpenAI-compatible HTTP backend against a real HTTP server on localhost.

The server speaks the chat-completions protocol and writes with a tiny random Llama through the transformers
backend, so the texts that come back over HTTP can be checked against local generation. (`vllm serve` is the
same protocol; it is measured where vLLM is installed, see docs/benchmarks.md.)
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import redact_url, url_host
from bioprofile.profiles.generate import GenerationSettings
from bioprofile.profiles.hf import TransformersGenerator
from bioprofile.profiles.http import OpenAIChatGenerator
from bioprofile.profiles.prompts import get_template

SECRET = "sk-test-7f3a9c-never-in-files"
SERVED_NAME = "tiny-llama"
GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC"]


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model_dir, api_key: str | None, fail_tenths: int = 0):
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.model_dir, self.api_key = model_dir, api_key
        self.generators: dict[int, TransformersGenerator] = {}
        self.lock = threading.Lock()  # one generation at a time on the shared model
        self.requests: list[dict] = []
        # Faults: of every 10 requests, the first ``fail_tenths`` fail (429 with Retry-After, 500, or a dropped
        # connection, in turn); deterministic, so each rerun is bound to get some answers.
        self.fail_tenths = fail_tenths
        self.answered: list[str] = []  # the user prompt of every 200 sent

    def fault(self) -> str | None:
        with self.lock:
            number = len(self.requests) - 1
        if number % 10 >= self.fail_tenths:
            return None
        return ("429", "500", "drop")[number % 3]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def complete(self, body: dict) -> str:
        with self.lock:
            max_tokens = int(body.get("max_tokens") or 16)
            generator = self.generators.setdefault(
                max_tokens,
                TransformersGenerator(self.model_dir, settings=GenerationSettings(max_new_tokens=max_tokens)),
            )
            return generator.generate([body["messages"]])[0]


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"body": body, "authorization": self.headers.get("Authorization")})
        if self.server.api_key and self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            return self._reply(
                401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}}
            )
        if self.path != "/v1/chat/completions" or body.get("model") != SERVED_NAME:
            return self._reply(404, {"error": {"message": "model not found", "type": "not_found_error"}})
        fault = self.server.fault()
        if fault == "drop":
            self.close_connection = True  # no reply at all: the client sees the connection dropped
            return None
        if fault == "429":
            return self._reply(
                429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": "0.01"}
            )
        if fault == "500":
            return self._reply(500, {"error": {"message": "worker crashed", "type": "server_error"}})
        text = self.server.complete(body)
        self.server.answered.append(body["messages"][-1]["content"])
        return self._reply(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": SERVED_NAME,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
        )


@pytest.fixture
def server(tiny_llama_dir):
    srv = ChatServer(tiny_llama_dir, api_key=SECRET)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_texts_over_http_equal_local_generation(server, tiny_llama_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    messages = [get_template("concise").messages(gene) for gene in GENES]
    remote = OpenAIChatGenerator(
        SERVED_NAME, settings=GenerationSettings(batch_size=3, max_new_tokens=12), base_url=server.base_url
    )
    assert remote.generate(messages) == TransformersGenerator(
        tiny_llama_dir, settings=GenerationSettings(max_new_tokens=12)
    ).generate(messages)
    assert len(server.requests) == len(GENES)
    assert all(r["body"]["temperature"] == 0 and r["body"]["max_tokens"] == 12 for r in server.requests)
    assert remote.id == f"openai:{SERVED_NAME}@http://127.0.0.1:{server.server_address[1]}/v1"
    assert SECRET not in repr(remote) and SECRET not in json.dumps(remote.params)


def test_cli_backend_openai_keeps_the_key_out_of_every_file(server, tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = tmp_path / "genes.parquet"
    args = [
        "embed-genes",
        *GENES,
        "-o",
        str(out),
        "--backend",
        "openai",
        "--model",
        SERVED_NAME,
        "--base-url",
        server.base_url,
        "--encoder",
        f"hf:{tiny_bert_dir}",
        "--cache-dir",
        str(tmp_path),
        "--max-new-tokens",
        "12",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert all(
        r["authorization"] == f"Bearer {SECRET}" for r in server.requests
    )  # the key did go to the server
    assert SECRET not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        generators = {row[0] for row in conn.execute("SELECT DISTINCT generator FROM profiles")}
    assert generators == {f"openai:{SERVED_NAME}@http://127.0.0.1:{server.server_address[1]}/v1"}

    again = CliRunner().invoke(app, args + ["--force"])  # every text cached: no request goes out
    assert again.exit_code == 0 and len(server.requests) == len(GENES)


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("wrong key", "refused the API key in $OPENAI_API_KEY"),
        ("unknown model", "does not serve a model named 'other'"),
        ("server down", "cannot reach http://127.0.0.1:9/v1"),
    ],
)
def test_cli_server_errors_are_one_line(server, tmp_path, monkeypatch, case, needle):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong" if case == "wrong key" else SECRET)
    base_url = "http://127.0.0.1:9/v1" if case == "server down" else server.base_url
    model = "other" if case == "unknown model" else SERVED_NAME
    out = tmp_path / "genes.parquet"
    result = CliRunner().invoke(
        app,
        [
            "embed-genes",
            "TP53",
            "-o",
            str(out),
            "--backend",
            "openai",
            "--model",
            model,
            "--base-url",
            base_url,
            "--cache-dir",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "sk-wrong" not in result.output and SECRET not in result.output
    assert not out.exists()


def test_settings_checked_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BioprofileInputError, match="set the environment variable OPENAI_API_KEY"):
        OpenAIChatGenerator("gpt-4o-mini", base_url="https://api.example.org/v1")
    with pytest.raises(BioprofileInputError, match="needs model"):
        OpenAIChatGenerator(None, base_url="http://localhost:8000/v1")
    with pytest.raises(BioprofileInputError, match="not an http"):
        OpenAIChatGenerator("m", base_url="localhost:8000")
    # a local server may run without a key
    assert (
        OpenAIChatGenerator("m", base_url="http://localhost:8000/v1").id
        == "openai:m@http://localhost:8000/v1"
    )


PASSWORD = "Pa55-never-shown"


def test_credentials_in_base_url_never_show(tiny_llama_dir, tiny_bert_dir, tmp_path, monkeypatch):
    """``http://user:PASS@host/v1``: PASS reaches neither the error line, the store, the output nor the summary."""
    srv = ChatServer(
        tiny_llama_dir, api_key=None
    )  # the credentials go as Basic auth, which this server ignores
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        out = tmp_path / "genes.parquet"
        base = ["embed-genes", "TP53", "BRCA1", "--backend", "openai", "--cache-dir", str(tmp_path)]
        ok = CliRunner().invoke(
            app,
            [
                *base,
                "-o",
                str(out),
                "--model",
                SERVED_NAME,
                "--max-new-tokens",
                "8",
                "--encoder",
                f"hf:{tiny_bert_dir}",
            ]
            + ["--base-url", f"http://user:{PASSWORD}@127.0.0.1:{port}/v1"],
        )
        assert ok.exit_code == 0, ok.output
        assert PASSWORD not in ok.output
        failed = CliRunner().invoke(  # the error line of an unknown model names the URL
            app,
            [*base, "-o", str(tmp_path / "other.parquet"), "--model", "other", "--quiet"]
            + ["--base-url", f"http://user:{PASSWORD}@127.0.0.1:{port}/v1"],
        )
        assert failed.exit_code == 2 and "http://127.0.0.1:" in failed.stderr, failed.output
        down = CliRunner().invoke(
            app,
            [*base, "-o", str(tmp_path / "down.parquet"), "--model", SERVED_NAME, "--quiet"]
            + ["--base-url", f"http://user:{PASSWORD}@127.0.0.1:9/v1"],
        )
        assert down.exit_code == 2 and "cannot reach http://127.0.0.1:9/v1" in down.stderr, down.output
        for result in (failed, down):
            assert PASSWORD not in result.output and "user:" not in result.output
        assert any(r["authorization"] for r in srv.requests)  # the credentials did go to the server
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path
        with sqlite3.connect(tmp_path / "store.sqlite") as conn:
            generators = {row[0] for row in conn.execute("SELECT DISTINCT generator FROM profiles")}
        assert generators == {f"openai:{SERVED_NAME}@http://127.0.0.1:{port}/v1"}
    finally:
        srv.shutdown()
        srv.server_close()


def test_url_credentials_are_redacted_in_reprs_and_messages(monkeypatch):

    assert redact_url("http://user:PASS@127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert redact_url("https://h.example/v1?api-key=PASS&x=1") == "https://h.example/v1?api-key=***&x=1"
    assert url_host("http://user:PASS@127.0.0.1:8000/v1") == "127.0.0.1:8000"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    generator = OpenAIChatGenerator("m", base_url="http://u:PASS@localhost:8000/v1")
    assert "PASS" not in repr(generator) + repr(generator.endpoint) + generator.id + generator.base_url
    for url in ("ftp://u:PASS@host/v1", "https://u:PASS@api.example.org/v1"):
        with pytest.raises(BioprofileInputError) as err:
            OpenAIChatGenerator("m", base_url=url)
        assert "PASS" not in str(err.value)


FAULT_GENES = [*GENES, "PTEN", "CDKN2A", "APOE", "CFTR", "HBB", "INS", "GAPDH"]


@pytest.mark.parametrize("fail_tenths", [6, 9])
def test_failing_server_keeps_every_reply_and_reruns_complete(
    tiny_llama_dir, tiny_bert_dir, tmp_path, monkeypatch, fail_tenths
):
    """60 % and 90 % of requests fail: each run keeps what came back, ends in one line, and reruns finish."""
    import openai._base_client

    # The client's back-off after a 500 or a dropped connection (no Retry-After) starts at 0.5 s: keep it short.
    monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", 0.005)
    monkeypatch.setattr(openai._base_client, "MAX_RETRY_DELAY", 0.02)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    srv = ChatServer(tiny_llama_dir, api_key=None, fail_tenths=fail_tenths)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    # Load the server's model now, so its loading bar is not in the stderr of the first run.
    srv.complete({"messages": [{"role": "user", "content": "warm up"}], "max_tokens": 4})
    out = tmp_path / "genes.parquet"
    args = ["embed-genes", *FAULT_GENES, "-o", str(out), "--backend", "openai", "--model", SERVED_NAME]
    args += ["--base-url", srv.base_url, "--encoder", f"hf:{tiny_bert_dir}", "--cache-dir", str(tmp_path)]
    args += ["--max-new-tokens", "4", "--batch-size", "4", "--quiet"]
    try:
        failures = 0
        for _ in range(40):
            result = CliRunner().invoke(app, args)
            if result.exit_code == 0:
                break
            failures += 1
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            match = re.search(
                r"(\d+) of 12 profiles done \(kept in the store\), rerun to resume; last error: ", lines[0]
            )
            assert "http://127.0.0.1" in lines[0], lines[0]
            # Every reply the server sent before the give-up is in the store, and nothing else.
            with sqlite3.connect(tmp_path / "store.sqlite") as conn:
                stored = conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
            assert stored == len(srv.answered)
            # With nothing done yet, the server's error stands alone.
            assert (int(match.group(1)) == stored) if match else (stored == 0 and " done" not in lines[0]), (
                lines[0]
            )
            assert not out.exists()
        else:
            pytest.fail("40 reruns did not finish")
        assert failures >= 1  # the faults did make runs give up
        # Reruns sent only what was missing: no prompt was answered twice, and none was asked again once answered.
        assert len(srv.answered) == len(set(srv.answered)) == len(FAULT_GENES)
        for prompt in srv.answered:
            asked = [k for k, r in enumerate(srv.requests) if r["body"]["messages"][-1]["content"] == prompt]
            answered_at = max(asked)
            assert all(k <= answered_at for k in asked)
        with sqlite3.connect(tmp_path / "store.sqlite") as conn:
            rows = conn.execute("SELECT COUNT(*), COUNT(DISTINCT entity) FROM profiles").fetchone()
        assert rows == (len(FAULT_GENES), len(FAULT_GENES))
        assert out.exists()
    finally:
        srv.shutdown()
        srv.server_close()
