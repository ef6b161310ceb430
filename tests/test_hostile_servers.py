"""Servers that misbehave on purpose: every case is one line, exit 2, bounded in time, nothing written or leaked.

Each mode of :class:`hostile_server.HostileServer` against the chat backend (``--backend openai``) and the
embeddings encoder (``--encoder openai:...``), through the CLI; the key in the environment is never shown or stored.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hostile_server import HostileServer
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.encoders.openai_batch import BatchSettings
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store

SECRET = "sk-hostile-0123456789abcdef"
MODES = [
    "echo-key",
    "hang",
    "drip",
    "huge",
    "html",
    "garbage",
    "no-choices",
    "null-content",
    "string-embedding",
    "two-widths",
    "nan",
]
# what each mode's line must say (chat backend, encoder)
NEEDLES = {
    "echo-key": ("***", "***"),
    "hang": ("did not answer in time", "did not answer in time"),
    "drip": ("did not answer in time", "did not answer in time"),
    "huge": ("refused the request", "refused the request"),
    "html": ("not a chat completion", "not an embeddings list"),
    "garbage": ("not a chat completion", "not an embeddings list"),
    "no-choices": ("not a chat completion", "malformed embeddings"),
    "null-content": ("with text", "not lists of numbers"),
    "string-embedding": ("with text", "not lists of numbers"),
    "two-widths": (None, "widths [4, 5]"),
    "nan": (None, "NaN"),
}
LIMITS = ["--timeout", "1", "--total-timeout", "2", "--max-retries", "0"]


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """A store holding one earlier profile and vector, and the key in the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    folder = tmp_path / "cache"
    with Store(folder / "store.sqlite") as store:
        store.put_profiles({"HGNC:0": "earlier"}, template="t", generator="g", params={})
        store.put_vectors({"earlier": np.ones(4)}, encoder="e")
    return folder


def _summaries(tmp_path: Path) -> Path:
    path = tmp_path / "summaries.tsv"
    path.write_text("symbol\tsummary\nTP53\tGuardian.\nBRCA1\tRepair.\nEGFR\tReceptor.\n")
    return path


def _embed_tp53(tmp_path: Path, store_dir: Path) -> list[str]:
    """embed-genes TP53 into tmp_path/out.parquet on the store of store_dir, quietly: the common head of a run."""
    return [
        "embed-genes",
        "TP53",
        "-o",
        str(tmp_path / "out.parquet"),
        "--cache-dir",
        str(store_dir),
        "--quiet",
    ]


def _check_one_line(
    result, needle: str, started: float, tmp_path: Path, before: bytes, store_dir: Path
) -> None:
    assert time.monotonic() - started < 20, "not bounded in time"
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert len(lines[0]) < 600
    assert SECRET not in result.output
    assert not (tmp_path / "out.parquet").exists()
    assert (store_dir / "store.sqlite").read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


@pytest.mark.parametrize("mode", [m for m in MODES if NEEDLES[m][0] is not None])
def test_chat_backend_against_a_hostile_server(mode, store_dir, tmp_path):
    before = (store_dir / "store.sqlite").read_bytes()
    with HostileServer(mode) as server:
        started = time.monotonic()
        result = CliRunner().invoke(
            app,
            _embed_tp53(tmp_path, store_dir)
            + ["--backend", "openai", "--model", "m", "--base-url", server.base_url, *LIMITS],
        )
    assert server.requests
    _check_one_line(result, NEEDLES[mode][0], started, tmp_path, before, store_dir)


@pytest.mark.parametrize("mode", MODES)
def test_encoder_against_a_hostile_server(mode, store_dir, tmp_path):
    before = (store_dir / "store.sqlite").read_bytes()
    with HostileServer(mode) as server:
        started = time.monotonic()
        result = CliRunner().invoke(
            app,
            ["embed-genes", "TP53", "BRCA1", "EGFR", "-o", str(tmp_path / "out.parquet"), "--quiet"]
            + ["--cache-dir", str(store_dir), "--summaries", str(_summaries(tmp_path))]
            + ["--encoder", "openai:m", "--base-url", server.base_url, *LIMITS],
        )
    assert server.requests
    _check_one_line(result, NEEDLES[mode][1], started, tmp_path, before, store_dir)


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--timeout", "inf"], "--timeout must be a positive, finite number"),
        (["--total-timeout", "0"], "--total-timeout must be a positive, finite number"),
        (["--max-retries", "1000"], "--max-retries must be between 0 and 20"),
    ],
)
def test_unbounded_waits_are_refused_before_any_request(flags, needle, store_dir, tmp_path):
    before = (store_dir / "store.sqlite").read_bytes()
    with HostileServer("hang") as server:
        started = time.monotonic()
        result = CliRunner().invoke(
            app,
            _embed_tp53(tmp_path, store_dir)
            + ["--backend", "openai", "--model", "m", "--base-url", server.base_url, *flags],
        )
    assert not server.requests
    _check_one_line(result, needle, started, tmp_path, before, store_dir)


def test_batch_polling_is_bounded(monkeypatch, store_dir, tmp_path):
    for value in ("inf", "nan", "0", "7200"):
        with pytest.raises(BioprofileInputError, match="poll_interval must be more than 0 and at most 3600"):
            BatchSettings(poll_interval=float(value))
    with pytest.raises(BioprofileInputError, match="wait must be a finite number"):
        BatchSettings(wait=float("inf"))
    monkeypatch.setenv("BIOPROFILE_BATCH_POLL_INTERVAL", "inf")
    before = (store_dir / "store.sqlite").read_bytes()
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        ["embed-genes", "TP53", "-o", str(tmp_path / "out.parquet"), "--cache-dir", str(store_dir), "--quiet"]
        + ["--summaries", str(_summaries(tmp_path)), "--encoder", "openai:m", "--openai-batch"]
        + ["--base-url", "http://127.0.0.1:9/v1"],
    )
    _check_one_line(result, "BIOPROFILE_BATCH_POLL_INTERVAL", started, tmp_path, before, store_dir)
