"""The OpenAI embeddings encoder against a real OpenAI-compatible server on 127.0.0.1 (tests/openai_server.py).

The server answers each text with a vector seeded by its hash, checks every request against the API's limits, and
injects 429s with Retry-After, 500s, slow answers, time-outs and dropped connections.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from openai_server import EmbeddingServer, expected_vector
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.encoders import encoder_from_id, get_encoder
from bioprofile.encoders.cached import encode_texts
from bioprofile.encoders.openai import EmbeddingLimits, OpenAIEncoder, Utf8ByteBound
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store

SECRET = "sk-test-embed-4c1d-never-in-files"
MODEL = "text-embedding-3-small"
SMALL = {"max_inputs": 8, "max_request_tokens": 400, "max_input_tokens": 100}


def _texts(n: int) -> list[str]:
    """Texts of varied length (some over 100 bytes, some not ASCII) and one repeated."""
    texts = [
        f"gene {i}: " + "kinase activity " * (i % 9) + ("\u00e9\u03b1\u4e2d" * (i % 4)) for i in range(n)
    ]
    return texts + texts[:3]


def test_every_vector_arrives_once_and_matches_its_text_under_faults(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    faults = ["429", "500", "drop", "slow", None, "hang", "429", "drop", None, "500", "slow"]
    texts = _texts(60)
    with EmbeddingServer(api_key=SECRET, faults=faults, **SMALL) as server:
        encoder = OpenAIEncoder(
            MODEL,
            dimensions=16,
            base_url=server.base_url,
            limits=EmbeddingLimits(**SMALL),
            concurrency=3,
            timeout=1.0,
            max_retries=8,
        )
        with Store(tmp_path / "store.sqlite") as store, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vectors = encode_texts(texts, encoder, store)
        counter = Utf8ByteBound()
        sent = [counter.truncate(t, 100) for t in texts]
        np.testing.assert_array_equal(vectors, np.stack([expected_vector(s, 16) for s in sent]))
        long = [t for t in dict.fromkeys(texts) if len(t.encode()) > 100]
        assert long and set(encoder.truncated) == set(long)
        assert encoder.over_limit(texts) == [i for i, t in enumerate(texts) if t in encoder.truncated]
        assert any("truncated" in str(w.message) for w in caught)
        assert server.violations == []
        assert not server.faults  # every fault was met, and retried past
        assert set(server.delivered) == set(sent) and set(server.delivered.values()) == {1}
        assert all(r["authorization"] == f"Bearer {SECRET}" for r in server.requests)

        n_requests = len(server.requests)
        again = OpenAIEncoder(MODEL, dimensions=16, base_url=server.base_url, limits=EmbeddingLimits(**SMALL))
        with Store(tmp_path / "store.sqlite") as store:
            np.testing.assert_array_equal(encode_texts(texts, again, store), vectors)
        assert len(server.requests) == n_requests  # a rerun sends no request
    for path in tmp_path.rglob("*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_retry_after_is_honoured(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with EmbeddingServer(api_key=SECRET, faults=["429"], retry_after="1") as server:
        encoder = OpenAIEncoder(MODEL, dimensions=16, base_url=server.base_url, max_retries=2)
        encoder.encode(["TP53 is a tumour suppressor."])
        first, second = (r["time"] for r in server.requests)
    # without the header the client's first back-off is at most 0.5 s
    assert second - first >= 0.95


def test_batches_respect_input_and_token_limits():
    encoder = OpenAIEncoder(MODEL, base_url="http://127.0.0.1:9/v1")
    assert [len(b) for b in encoder.batches(["a"] * 5000)] == [2048, 2048, 904]
    big = ["x" * 8191] * 80  # 36 fit in 300,000 tokens
    assert [len(b) for b in encoder.batches(big)] == [36, 36, 8]
    cut = encoder.batches(["y" * 20_000, "z"])  # an over-long text counts only what is sent
    assert cut == [[0, 1]]
    tight = OpenAIEncoder(MODEL, base_url="http://127.0.0.1:9/v1", limits=EmbeddingLimits(**SMALL))
    groups = tight.batches(_texts(40))
    sizes = [min(len(t.encode()), 100) for t in _texts(40)]
    assert all(len(g) <= 8 and sum(sizes[i] for i in g) <= 400 for g in groups)
    assert [i for g in groups for i in g] == list(range(len(_texts(40))))


def test_bad_request_and_wrong_key_fail_at_once(monkeypatch):
    with EmbeddingServer(api_key=SECRET, max_input_tokens=10) as server:
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        encoder = OpenAIEncoder(MODEL, base_url=server.base_url, max_retries=5)
        with pytest.raises(BioprofileInputError, match=r"refused the request .*\(400\): an input of"):
            encoder.encode(["a text longer than ten bytes"])
        assert len(server.requests) == 1  # not retried
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        start = time.monotonic()
        with pytest.raises(BioprofileInputError, match=r"refused the API key in \$OPENAI_API_KEY") as err:
            OpenAIEncoder(MODEL, base_url=server.base_url, max_retries=5).encode(["short"])
        assert time.monotonic() - start < 5 and len(server.requests) == 2
        assert "sk-wrong" not in str(err.value)


def test_exhausted_retries_end_in_one_honest_line(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with EmbeddingServer(api_key=SECRET, faults=["429"] * 10) as server:
        encoder = OpenAIEncoder(MODEL, base_url=server.base_url, max_retries=2)
        with pytest.raises(BioprofileInputError, match="429 rate limited after 2 retries") as err:
            encoder.encode(["TP53"])
        assert "\n" not in str(err.value) and len(server.requests) == 3


def test_specs_ids_and_reprs_hold_no_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:PASS@127.0.0.1:8011/v1")
    encoder = get_encoder("openai:text-embedding-3-small?dimensions=256")
    assert (
        encoder.id == "openai:text-embedding-3-small?dimensions=256@http://127.0.0.1:8011/v1"
        and encoder.dim == 256
    )
    assert SECRET not in repr(encoder) + encoder.id and "PASS" not in repr(encoder) + encoder.id
    assert encoder_from_id(encoder.id).id == encoder.id
    assert get_encoder("openai:text-embedding-ada-002").dim == 1536
    assert get_encoder("openai:text-embedding-3-large").dim == 3072
    assert encoder_from_id("openai:text-embedding-3-small@elsewhere.example:443") is None
    with pytest.raises(BioprofileInputError, match="dimensions is for the text-embedding-3"):
        get_encoder("openai:text-embedding-ada-002?dimensions=256")
    with pytest.raises(BioprofileInputError, match="the one option is dimensions"):
        get_encoder("openai:text-embedding-3-small?dims=3")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(BioprofileInputError, match="set the environment variable OPENAI_API_KEY"):
        get_encoder("openai:text-embedding-3-small")


def test_compatible_server_model_width_comes_from_the_server(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with EmbeddingServer(dim=12) as server:
        encoder = get_encoder("openai:BAAI/bge-small-en", base_url=server.base_url)
        assert encoder.encode(["a", "b"]).shape == (2, 12) and encoder.dim == 12


def _embed(tmp_path, summaries, out, *extra):
    return CliRunner().invoke(
        app,
        ["embed-genes", "TP53", "BRCA1", "EGFR", "--summaries", str(summaries), "-o", str(out)]
        + ["--encoder", f"openai:{MODEL}?dimensions=8", "--cache-dir", str(tmp_path), *extra],
    )


def test_cli_encoder_openai_key_and_credentials_never_shown(tmp_path, monkeypatch):
    summaries = tmp_path / "summaries.txt"
    summaries.write_text(
        "TP53: tumour suppressor.\nBRCA1: DNA repair.\nEGFR: receptor tyrosine kinase.\n", encoding="utf-8"
    )
    out = tmp_path / "genes.parquet"
    with EmbeddingServer(api_key=SECRET, faults=["429", "drop"]) as server:
        port = server.server_address[1]
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = _embed(tmp_path, summaries, out)
        assert result.exit_code == 0, result.output
        table = pd.read_parquet(out)
        assert len(table) == 3
        n_requests = len(server.requests)
        again = _embed(tmp_path, summaries, out, "--force")
        assert again.exit_code == 0 and len(server.requests) == n_requests  # every vector cached
        assert SECRET not in result.output + again.output
        assert f"openai:{MODEL}?dimensions=8@http://127.0.0.1:{port}/v1" in result.output

        monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:PASS@127.0.0.1:{port}/v1")
        other = tmp_path / "other.parquet"
        creds = _embed(tmp_path, summaries, other, "--quiet")
        assert creds.exit_code == 0, creds.output
        assert "PASS" not in creds.output

        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
        summaries.write_text("TP53: a text never sent before.\n", encoding="utf-8")
        start = time.monotonic()
        wrong = _embed(tmp_path, summaries, tmp_path / "wrong.parquet", "--quiet")
        assert time.monotonic() - start < 30
        assert wrong.exit_code == 2, wrong.output
        lines = [line for line in wrong.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "refused the API key in $OPENAI_API_KEY" in lines[0], wrong.stderr
        assert "sk-wrong-key" not in wrong.output and "Traceback" not in wrong.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and b"PASS" not in data and b"sk-wrong" not in data, path


def test_cli_base_url_and_api_key_env_reach_the_encoder(tmp_path, monkeypatch):
    """--base-url and --api-key-env configure an openai: encoder as they configure --backend openai."""
    summaries = tmp_path / "summaries.txt"
    # BRCA1's text is over the 8,191-token input limit (by the UTF-8 byte bound): cut, and counted
    summaries.write_text("TP53: tumour suppressor.\nBRCA1: " + "DNA repair " * 900 + "\n", encoding="utf-8")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_EMBEDDING_KEY", SECRET)
    with EmbeddingServer(api_key=SECRET) as server:
        flags = ["--base-url", server.base_url, "--api-key-env", "MY_EMBEDDING_KEY", "--quiet"]
        result = _embed(tmp_path, summaries, tmp_path / "genes.parquet", *flags)
        assert result.exit_code == 0, result.output
        assert len(pd.read_parquet(tmp_path / "genes.parquet")) == 2 and server.requests
        provenance = GeneEmbeddings.read(tmp_path / "genes.parquet").provenance
        assert provenance["truncated_texts"] == 1
        # the key variable is the one named: with it unset, one line names it
        monkeypatch.delenv("MY_EMBEDDING_KEY")
        summaries.write_text("TP53: a text never sent before.\n", encoding="utf-8")
        missing = _embed(tmp_path, summaries, tmp_path / "missing.parquet", *flags)
        assert missing.exit_code == 2 and "MY_EMBEDDING_KEY" in missing.stderr, missing.output
    # --base-url that nothing uses is refused before any work
    unused = CliRunner().invoke(app, ["embed-genes", "TP53", "--base-url", "http://127.0.0.1:9/v1"])
    assert unused.exit_code == 2 and "--base-url is for --backend openai" in unused.stderr
