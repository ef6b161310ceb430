"""The OpenAI Batch API path against a real OpenAI-compatible server on 127.0.0.1 (tests/openai_server.py).

The server serves ``/v1/files`` and ``/v1/batches``, ends a batch after a poll or two, fails some lines, expires
batches on request, checks every line against the per-request limits, and injects 429s, 500s and dropped
connections into the file and batch requests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from openai_server import EmbeddingServer, expected_vector
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.encoders.cached import ENCODE_CHUNK, encode_texts
from bioprofile.encoders.openai import EmbeddingLimits, OpenAIEncoder, Utf8ByteBound
from bioprofile.encoders.openai_batch import PRICES_AS_OF, BatchPlan, BatchSettings, OpenAIBatchEncoder
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store

SECRET = "sk-test-batch-77aa-never-in-files"
MODEL = "text-embedding-3-small"
SMALL = {"max_inputs": 8, "max_request_tokens": 400, "max_input_tokens": 100}
FAST = BatchSettings(poll_interval=0.02, wait=120)  # generous: the machine may be loaded
ROOT = REPO


def _texts(n: int) -> list[str]:
    """Texts of varied length (some over 100 bytes, some not ASCII) and one repeated."""
    texts = [
        f"gene {i}: " + "kinase activity " * (i % 9) + ("\u00e9\u03b1\u4e2d" * (i % 4)) for i in range(n)
    ]
    return texts + texts[:3]


def _encoder(server: EmbeddingServer, **kwargs) -> OpenAIEncoder:
    return OpenAIEncoder(
        MODEL,
        dimensions=16,
        base_url=server.base_url,
        limits=EmbeddingLimits(**SMALL),
        max_retries=8,
        **kwargs,
    )


def _posts(server: EmbeddingServer, path: str) -> int:
    """Answered POSTs to ``path`` (faulted tries not counted)."""
    return sum(
        1 for r in server.requests if r["path"] == path and r.get("method") == "POST" and r["status"] == 200
    )


def test_every_vector_arrives_once_through_batches_with_failed_lines_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    faults = ["429", "500", "drop", "slow", None, "429", None, "500", "drop", "slow"]
    texts = _texts(60)
    said: list[str] = []
    server = EmbeddingServer(api_key=SECRET, faults=faults, batch_failures=[2, 1], batch_expire={1}, **SMALL)
    with server, Store(tmp_path / "store.sqlite") as store:
        batch = OpenAIBatchEncoder(_encoder(server), store, settings=FAST, say=said.append)
        with pytest.warns(UserWarning, match="truncated"):
            vectors = encode_texts(texts, batch, store)
        sent = [Utf8ByteBound().truncate(t, 100) for t in texts]
        np.testing.assert_array_equal(vectors, np.stack([expected_vector(s, 16) for s in sent]))
        assert server.violations == [] and not server.faults
        # every text answered exactly once, across the first batch and the retries of the failed lines
        assert set(server.delivered) == set(sent) and set(server.delivered.values()) == {1}
        assert (
            len(batch.submitted) == 3 and len(server.batches) == 3
        )  # first, its failures, the expired half's
        assert said[0].startswith("OpenAI Batch API: sending 60 inputs, at most ")
        assert "batch rate of $0.01 per 1M tokens" in said[0]
        assert any(line.startswith("again, for the lines that failed") for line in said)
        assert all(
            job["status"] == "collected" for job in store.get_batch_jobs(encoder=batch.id, status=None)
        )
        assert set(batch.truncated) == {t for t in texts if len(t.encode()) > 100}
        assert all(r["authorization"] == f"Bearer {SECRET}" for r in server.requests)

        # the vectors are the online path's: an online run and a batch run afterwards send nothing
        n_requests = len(server.requests)
        online = _encoder(server)
        np.testing.assert_array_equal(encode_texts(texts, online, store), vectors)
        again = OpenAIBatchEncoder(_encoder(server), store, settings=FAST)
        np.testing.assert_array_equal(encode_texts(texts, again, store), vectors)
        assert len(server.requests) == n_requests
    for path in tmp_path.rglob("*"):
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in "".join(said) + repr(batch)


def test_a_stopped_run_collects_on_rerun_instead_of_resubmitting(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    texts = _texts(20)
    with (
        EmbeddingServer(api_key=SECRET, batch_polls=6, **SMALL) as server,
        Store(tmp_path / "s.sqlite") as store,
    ):
        first = OpenAIBatchEncoder(
            _encoder(server), store, settings=BatchSettings(poll_interval=0.01, wait=0)
        )
        with pytest.raises(BioprofileInputError, match="rerun the same command to collect") as err:
            first.encode(texts)
        assert err.value.argument == "wait"
        (job,) = store.get_batch_jobs(encoder=first.id)
        assert job["batch_id"] == "batch_0" and job["input_file_id"] in server.files
        assert sum(map(len, job["requests"].values())) == len(set(texts))
        rerun = OpenAIBatchEncoder(_encoder(server), store, settings=FAST)
        vectors = rerun.encode(texts)
        assert rerun.submitted == [] and len(server.batches) == 1 and _posts(server, "/v1/files") == 1
        sent = [Utf8ByteBound().truncate(t, 100) for t in texts]
        np.testing.assert_array_equal(vectors, np.stack([expected_vector(s, 16) for s in sent]))


def test_encode_texts_sends_every_uncached_text_in_one_batch_not_one_per_chunk(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    texts = [f"gene {i}" for i in range(ENCODE_CHUNK + 40)]  # two of encode_texts' chunks
    with EmbeddingServer(api_key=SECRET, **SMALL) as server, Store(tmp_path / "s.sqlite") as store:
        batch = OpenAIBatchEncoder(_encoder(server), store, settings=FAST)
        vectors = encode_texts(texts, batch, store)
        assert len(server.batches) == 1 and _posts(server, "/v1/files") == 1
        np.testing.assert_array_equal(vectors, np.stack([expected_vector(t, 16) for t in texts]))


def test_lines_that_keep_failing_end_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with EmbeddingServer(api_key=SECRET, batch_failures=[1, 1, 1], **SMALL) as server:
        with Store(tmp_path / "s.sqlite") as store:
            settings = BatchSettings(poll_interval=0.01, wait=120, max_resubmits=1)
            batch = OpenAIBatchEncoder(_encoder(server), store, settings=settings)
            texts = [f"TP53 text {i}" for i in range(20)]
            with pytest.raises(
                BioprofileInputError, match=r"still failed after 1 new batches \(500: internal"
            ) as err:
                batch.encode(texts)
            assert "\n" not in str(err.value) and len(server.batches) == 2
            # what was collected is kept: only the failed line's texts are left to send
            assert len(store.get_vectors(texts, encoder=batch.id)) == len(texts) - SMALL["max_inputs"]


def test_batches_respect_the_request_and_batch_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with EmbeddingServer(api_key=SECRET, **SMALL) as server, Store(tmp_path / "s.sqlite") as store:
        settings = BatchSettings(poll_interval=0.01, wait=120, max_batch_inputs=20, max_batch_requests=3)
        batch = OpenAIBatchEncoder(_encoder(server), store, settings=settings)
        texts = _texts(50)
        plan, batches, sent = batch.plan(list(dict.fromkeys(texts)))
        sizes = [min(len(t.encode()), 100) for t in sent]
        assert all(len(b) <= 3 and sum(map(len, b)) <= 20 for b in batches)
        assert all(len(g) <= 8 and sum(sizes[i] for i in g) <= 400 for b in batches for g in b)
        assert [i for b in batches for g in b for i in g] == list(range(len(sent)))
        assert plan.n_batches == len(batches) and plan.n_tokens == sum(max(1, s) for s in sizes)
        with pytest.warns(UserWarning, match="truncated"):
            batch.encode(texts)
        assert server.violations == [] and len(server.batches) == plan.n_batches


def test_plan_prices_and_settings():
    plan = BatchPlan(
        MODEL, n_inputs=20_000, n_tokens=3_000_000, exact_tokens=True, n_requests=10, n_batches=1
    )
    assert plan.price_usd == pytest.approx(0.03)
    assert "$0.0300 at text-embedding-3-small's batch rate" in plan.describe()
    other = BatchPlan("BAAI/bge-small-en", 1, 1, exact_tokens=False, n_requests=1, n_batches=1)
    assert other.price_usd is None and "no published price" in other.describe()
    with pytest.raises(BioprofileInputError, match="poll_interval must be more than 0"):
        BatchSettings(poll_interval=0)


def test_a_given_batch_price_replaces_the_dated_table():
    dated = BatchPlan(MODEL, 1, 2_000_000, exact_tokens=True, n_requests=1, n_batches=1)
    assert f"(published rate as of {PRICES_AS_OF})" in dated.describe()
    given = BatchPlan(MODEL, 1, 2_000_000, exact_tokens=True, n_requests=1, n_batches=1, batch_price=0.5)
    assert given.price_usd == pytest.approx(1.0)
    assert (
        "$1.0000 at text-embedding-3-small's batch rate of $0.5 per 1M tokens (as given)" in given.describe()
    )
    unlisted = BatchPlan("BAAI/bge-small-en", 1, 1_000_000, True, 1, 1, batch_price=0.02)
    assert unlisted.price_usd == pytest.approx(0.02)
    assert BatchSettings(batch_price=0.5).batch_price == 0.5
    with pytest.raises(BioprofileInputError, match="batch_price must be a finite number"):
        BatchSettings(batch_price=-1)
    with pytest.raises(BioprofileInputError, match="the Batch API is for openai: encoders"):
        OpenAIBatchEncoder("minilm", store=None)  # type: ignore[arg-type]


def _embed(tmp_path, summaries, out, *extra):
    return CliRunner().invoke(
        app,
        ["embed-genes", "TP53", "BRCA1", "EGFR", "--summaries", str(summaries), "-o", str(out)]
        + [
            "--encoder",
            f"openai:{MODEL}?dimensions=8",
            "--cache-dir",
            str(tmp_path),
            "--openai-batch",
            *extra,
        ],
    )


def _summaries(tmp_path) -> Path:
    path = tmp_path / "summaries.txt"
    path.write_text(
        "TP53: tumour suppressor.\nBRCA1: DNA repair.\nEGFR: receptor tyrosine kinase.\n", encoding="utf-8"
    )
    return path


def test_cli_openai_batch_says_the_price_then_a_rerun_sends_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("BIOPROFILE_BATCH_POLL_INTERVAL", "0.02")
    summaries, out = _summaries(tmp_path), tmp_path / "genes.parquet"
    with EmbeddingServer(api_key=SECRET, faults=["429", "drop"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = _embed(tmp_path, summaries, out)
        assert result.exit_code == 0, result.output
        assert "OpenAI Batch API: sending 3 inputs" in result.stderr and "per 1M tokens" in result.stderr
        assert f"as of {PRICES_AS_OF}" in result.stderr
        table = pd.read_parquet(out)
        assert len(table) == 3 and len(server.batches) == 1 and _posts(server, "/v1/embeddings") == 0
        n_requests = len(server.requests)
        again = _embed(tmp_path, summaries, out, "--force")
        assert again.exit_code == 0 and len(server.requests) == n_requests
        assert SECRET not in result.output + again.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    refused = CliRunner().invoke(
        app, ["embed-genes", "TP53", "--openai-batch", "-o", str(tmp_path / "x.parquet")]
    )
    assert refused.exit_code == 2 and "--openai-batch is for an openai: --encoder" in refused.stderr
    unbatched = CliRunner().invoke(
        app, ["embed-genes", "TP53", "--batch-price", "0.5", "-o", str(tmp_path / "x.parquet")]
    )
    assert (
        unbatched.exit_code == 2
        and "--batch-price" in unbatched.stderr
        and "--openai-batch" in unbatched.stderr
    )


def test_cli_batch_price_is_the_announced_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("BIOPROFILE_BATCH_POLL_INTERVAL", "0.02")
    with EmbeddingServer(api_key=SECRET) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = _embed(tmp_path, _summaries(tmp_path), tmp_path / "g.parquet", "--batch-price", "7")
    assert result.exit_code == 0, result.output
    assert "batch rate of $7 per 1M tokens (as given)" in result.stderr


def test_cli_killed_while_waiting_then_rerun_collects(tmp_path):
    """A real process killed (SIGKILL) while its batch runs; the rerun polls and collects, submitting nothing."""
    summaries, out = _summaries(tmp_path), tmp_path / "genes.parquet"
    with EmbeddingServer(api_key=SECRET, batch_polls=10**6) as server:
        env = {
            **os.environ,
            "OPENAI_API_KEY": SECRET,
            "OPENAI_BASE_URL": server.base_url,
            "BIOPROFILE_BATCH_POLL_INTERVAL": "0.05",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        args = ["embed-genes", "TP53", "BRCA1", "EGFR", "--summaries", str(summaries), "-o", str(out)]
        args += ["--encoder", f"openai:{MODEL}?dimensions=8", "--cache-dir", str(tmp_path), "--openai-batch"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "bioprofile.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(b["polls"] >= 2 for b in server.batches.values()):
                time.sleep(0.05)
            assert server.batches, "the command never created a batch"
        finally:
            proc.send_signal(signal.SIGKILL)
            _, stderr = proc.communicate(timeout=30)
        assert SECRET.encode() not in stderr
        assert not out.exists()
        server.batch_polls = 0  # the batch ends on the next poll
        rerun = subprocess.run(
            [sys.executable, "-m", "bioprofile.cli", *args], env=env, capture_output=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr.decode()
        assert len(server.batches) == 1 and _posts(server, "/v1/files") == 1
        assert b"collected batch batch_0" in rerun.stderr and b"sending" not in rerun.stderr
        assert len(pd.read_parquet(out)) == 3
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
