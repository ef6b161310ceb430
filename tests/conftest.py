"""Shared fixtures: tiny random models saved like local checkpoints, and the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests talk to 127.0.0.1 only: the OpenAI SDK's own base-URL variable points at a dead loopback port (discard, 9),
# so a client built without the user's base URL fails instead of reaching OpenAI; no real key is ever sent.
os.environ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
os.environ.pop("OPENAI_API_KEY", None)

from helpers import SHARED_DATA, build_tiny_bert, build_tiny_llama, build_tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random Llama saved like any local checkpoint (config, weights, tokenizer)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_llama(tiny_tokenizer).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random BERT saved like a BioBERT checkpoint a user would point at."""
    path = tmp_path_factory.mktemp("tiny-bert")
    build_tiny_bert(tiny_tokenizer).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}: check out the project beside shared/")
    return SHARED_DATA
