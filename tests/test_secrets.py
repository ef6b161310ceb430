"""API keys: never shown when a server echoes them, never sent to a host the user did not name, one cache per server.

The servers here are real HTTP servers on 127.0.0.1; the SDK's own base-URL variable points at a dead loopback
port for the whole suite (conftest), so a client built without the user's base URL fails instead of reaching out.
"""

from __future__ import annotations

import ast
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openai_server import EmbeddingServer
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.encoders.openai import OpenAIEncoder
from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import MAX_RETRIES, OpenAIEndpoint, _said
from bioprofile.profiles.http import OpenAIChatGenerator
from bioprofile.redact import MASK, redact_secrets, watch_secret_env

SECRET = "sk-test-0123456789abcdefSECRET"
PACKAGE = Path(__file__).resolve().parents[1] / "bioprofile"


class EchoKeyServer(ThreadingHTTPServer):
    """Answers every request with a 400 whose message quotes the request's Authorization header, as a proxy might."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _EchoKeyHandler)
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _EchoKeyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = str(self.headers.get("Authorization"))
        self.server.requests.append(self.path)
        data = json.dumps(
            {"error": {"message": f"Bad request made with key {auth.split()[-1]} ({auth})", "type": "x"}}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


def _embed_genes(args: list[str], tmp_path: Path):
    return CliRunner().invoke(
        app,
        ["embed-genes", "TP53", "-o", str(tmp_path / "g.parquet"), "--cache-dir", str(tmp_path), "--quiet"]
        + args,
    )


def _files_hold(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_the_sdk_base_url_points_at_a_dead_loopback_port():
    import os

    # the suite's guard: a client that misses the user's base URL goes here and fails, it never reaches out
    assert os.environ["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")


def test_only_openai_api_builds_clients():
    """Every OpenAI client is built in one place (OpenAIEndpoint.client), from one resolved base URL."""
    builders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(getattr(node, "func", None), "id", None) or getattr(
                getattr(node, "func", None), "attr", None
            )
            if isinstance(node, ast.Call) and name in ("OpenAI", "AsyncOpenAI", "AzureOpenAI"):
                builders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert builders and all(b.startswith("openai_api.py:") for b in builders), builders


@pytest.mark.parametrize(
    "text",
    [
        f"Bad request made with key {SECRET}",
        f"Authorization: Bearer {SECRET}.",
        "token sk-proj-AbCdEfGh12345678_xyz in the body",
        "Authorization: bearer abc.def-ghi_jkl~mno",
    ],
)
def test_keys_and_bearer_tokens_are_masked(key, text):
    shown = redact_secrets(text)
    assert SECRET not in shown and "sk-proj-AbCd" not in shown and "abc.def" not in shown
    assert MASK in shown


def test_a_key_from_a_named_variable_is_masked_once_an_endpoint_used_it(monkeypatch):
    monkeypatch.setenv("MY_PROXY_KEY", "proxy-credential-42")
    OpenAIEndpoint("http://127.0.0.1:9/v1", api_key_env="MY_PROXY_KEY")
    assert redact_secrets("it said proxy-credential-42") == f"it said {MASK}"
    # and every library error is masked, whoever wrote its message
    assert "proxy-credential-42" not in str(BioprofileInputError("echo: proxy-credential-42"))


def test_short_values_and_plain_words_are_left_alone(monkeypatch):
    monkeypatch.setenv("SHORT_KEY", "abc")
    watch_secret_env("SHORT_KEY")
    assert redact_secrets("abc: a skeleton key, sk-short") == "abc: a skeleton key, sk-short"


def test_a_huge_server_message_is_handled_in_linear_time(key):
    class Err:
        body = {"message": "x" * 1_000_000 + " " + SECRET}

    start = time.perf_counter()
    said = _said(Err())
    # the old shortener took 6.8 s on 80 kB (quadratic); a linear one takes milliseconds on 1 MB
    assert time.perf_counter() - start < 1.0
    assert len(said) <= 200 and SECRET not in said
    url_run = "http://" + "a" * 500_000
    start = time.perf_counter()
    _said(type("E", (), {"body": {"message": url_run}})())
    assert time.perf_counter() - start < 1.0


def test_retries_have_an_upper_bound():
    with pytest.raises(BioprofileInputError, match=f"between 0 and {MAX_RETRIES}") as err:
        OpenAIEndpoint("http://127.0.0.1:9/v1", max_retries=MAX_RETRIES + 1)
    assert err.value.argument == "max_retries"


def test_echoed_key_never_shown_by_the_encoder(key, tmp_path):
    with EchoKeyServer() as server:
        result = _embed_genes(
            [
                "--summaries",
                str(_summaries(tmp_path)),
                "--encoder",
                "openai:m",
                "--base-url",
                server.base_url,
            ],
            tmp_path,
        )
    assert result.exit_code == 2, result.output
    assert server.requests == ["/v1/embeddings"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and MASK in lines[0], result.stderr
    assert SECRET not in result.output and not _files_hold(tmp_path, SECRET)


def test_echoed_key_never_shown_by_the_chat_backend(key, tmp_path):
    with EchoKeyServer() as server:
        result = _embed_genes(
            ["--backend", "openai", "--model", "m", "--base-url", server.base_url], tmp_path
        )
    assert result.exit_code == 2, result.output
    assert server.requests and set(server.requests) == {"/v1/chat/completions"}
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and MASK in lines[0], result.stderr
    assert SECRET not in result.output and not _files_hold(tmp_path, SECRET)


def test_bench_gene_sets_sends_its_encoder_requests_to_the_base_url(key, tmp_path, tiny_llama_dir):
    sets = tmp_path / "sets.csv"
    sets.write_text("GO,Genes,Term_Description\nGO:1,TP53 MDM2,apoptotic process\n")
    with EmbeddingServer(api_key=SECRET, dim=8) as server:
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "gene-sets",
                str(sets),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(tiny_llama_dir),
                "--max-new-tokens",
                "4",
                "--encoder",
                "openai:emb",
                "--base-url",
                server.base_url,
                "--no-baseline",
                "--cache-dir",
                str(tmp_path),
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
        # every embeddings request went to the server the user named, with the key (the SDK's own base URL,
        # a dead loopback port here, was never used)
        assert server.requests and all(r["authorization"] == f"Bearer {SECRET}" for r in server.requests)
    assert json.loads((tmp_path / "out.json").read_text())  # the table was written
    assert SECRET not in result.output and not _files_hold(tmp_path, SECRET)


def test_two_servers_on_one_host_and_port_are_two_cache_keys(key):
    ok = OpenAIEncoder("m", base_url="http://u:pw@127.0.0.1:8000/ok/v1")
    other = OpenAIEncoder("m", base_url="http://127.0.0.1:8000/other/v1")
    assert (
        ok.id == "openai:m@http://127.0.0.1:8000/ok/v1"
        and other.id == "openai:m@http://127.0.0.1:8000/other/v1"
    )
    chat_ok = OpenAIChatGenerator("m", base_url="http://127.0.0.1:8000/ok/v1")
    chat_other = OpenAIChatGenerator("m", base_url="http://127.0.0.1:8000/other/v1")
    assert chat_ok.id != chat_other.id and "pw" not in chat_ok.id + ok.id


def test_texts_cached_for_one_path_are_not_served_for_another(key, tmp_path):
    """Two embedding servers behind one host and port (a path each): the second gets its own requests."""
    with EmbeddingServer(dim=8) as server:
        summaries = _summaries(tmp_path)
        first = _embed_genes(
            ["--summaries", str(summaries), "--encoder", "openai:m", "--base-url", server.base_url], tmp_path
        )
        assert first.exit_code == 0, first.output
        sent = len(server.requests)
        other_root = server.base_url.replace("/v1", "/other/v1")
        (tmp_path / "g.parquet").unlink()
        second = _embed_genes(
            ["--summaries", str(summaries), "--encoder", "openai:m", "--base-url", other_root], tmp_path
        )
        assert second.exit_code == 0, second.output
        # the text was cached for the first root only: the second root was asked for its own vector
        asked = [r["path"] for r in server.requests[sent:]]
        assert asked and all(path.startswith("/other/v1/") for path in asked)


def _summaries(tmp_path: Path) -> Path:
    path = tmp_path / "summaries.tsv"
    path.write_text("symbol\tsummary\nTP53\tA tumour suppressor.\n")
    return path
