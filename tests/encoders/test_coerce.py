"""as_encoder / as_generator: one coercion from a spec or a ready object, used by evaluate and the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bioprofile.encoders.coerce as encoder_coerce
import bioprofile.profiles.coerce as generator_coerce
from bioprofile.encoders.coerce import as_encoder
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles import GenerationSettings, as_generator


class _Encoder:
    id = "toy-encoder"
    dim = 2

    def encode(self, texts):
        return np.zeros((len(texts), 2), dtype=np.float32)


class _Generator:
    id = "toy-generator"
    params: dict = {}

    def generate(self, messages_list):
        return ["text"] * len(messages_list)


def test_a_ready_encoder_or_generator_is_returned_as_it_is():
    encoder, generator = _Encoder(), _Generator()
    assert as_encoder(encoder) is encoder and as_generator(generator) is generator


@pytest.mark.parametrize("spec", [None, "hf:some/model", Path("a/model")])
def test_a_spec_is_built_by_get_encoder(monkeypatch, spec):
    seen = []
    monkeypatch.setattr(encoder_coerce, "get_encoder", lambda s: seen.append(s) or _Encoder())
    assert as_encoder(spec).id == "toy-encoder" and seen == [spec]


def test_a_model_is_built_by_make_generator_on_its_backend(monkeypatch):
    seen = []

    def fake(model, *, backend, settings):
        seen.append((model, backend, settings))
        return _Generator()

    monkeypatch.setattr(generator_coerce, "make_generator", fake)
    settings = GenerationSettings(max_new_tokens=8)
    assert as_generator("a/model", backend="vllm", settings=settings).id == "toy-generator"
    assert as_generator(None).id == "toy-generator"
    assert seen == [("a/model", "vllm", settings), (None, "transformers", None)]


def test_what_is_neither_is_refused_with_its_argument():
    with pytest.raises(BioprofileInputError, match=r"not an encoder \(got int\)") as err:
        as_encoder(3, argument="answer_encoder")
    assert err.value.argument == "answer_encoder"
    with pytest.raises(BioprofileInputError, match="not a generator") as err:
        as_generator(object())
    assert err.value.argument == "generator"


def test_settings_are_refused_with_a_ready_generator():
    with pytest.raises(BioprofileInputError, match="a ready generator carries its own") as err:
        as_generator(_Generator(), settings=GenerationSettings())
    assert err.value.argument == "settings"
