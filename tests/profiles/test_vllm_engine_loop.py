"""The vLLM backend's engine loop, on a stand-in engine (no vLLM needed): requests in, texts out as they finish.

The stand-in has the few ``vllm`` names the backend touches (``SamplingParams``, ``RequestOutputKind``,
``tokens_input``) and an ``LLMEngine`` whose ``step`` finishes one request at a time, the newest first, answering
each prompt with its own tokens (end-of-turn tokens left out), an end-of-turn token and tokens past it. Where vLLM is installed, the real engine
is tested in test_vllm_backend.py.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from bioprofile.profiles import vllm as vllm_backend
from bioprofile.profiles.generate import GenerationSettings, chat_prompt_token_ids, generate_profiles
from bioprofile.profiles.vllm import VLLMGenerator
from bioprofile.store import Store


class _SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch):
    """The ``vllm`` modules the backend imports, as stand-ins."""
    root = types.ModuleType("vllm")
    root.SamplingParams = _SamplingParams
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.RequestOutputKind = types.SimpleNamespace(FINAL_ONLY="final-only")
    inputs = types.ModuleType("vllm.inputs")
    inputs.tokens_input = lambda ids: {"type": "token", "prompt_token_ids": ids}
    for name, module in [("vllm", root), ("vllm.sampling_params", sampling), ("vllm.inputs", inputs)]:
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: True)


@dataclass
class _Engine:
    eos: int
    held: list = field(default_factory=list)  # (request id, prompt ids) in the engine now
    added: list = field(default_factory=list)
    aborted: list = field(default_factory=list)
    most_held: int = 0
    params: object = None

    def add_request(self, request_id, prompt, params, lora_request=None):
        assert prompt["type"] == "token" and lora_request is None
        self.held.append((request_id, prompt["prompt_token_ids"]))
        self.added.append(request_id)
        self.most_held = max(self.most_held, len(self.held))
        self.params = params

    def has_unfinished_requests(self):
        return bool(self.held)

    def step(self):
        request_id, prompt = self.held.pop()  # newest first: not the order they came in
        still_running = (
            types.SimpleNamespace(request_id=self.held[0][0], finished=False) if self.held else None
        )
        done = types.SimpleNamespace(
            request_id=request_id,
            finished=True,
            outputs=[types.SimpleNamespace(token_ids=[*_without(prompt, self.eos), self.eos, 5, 6])],
        )
        return [output for output in (still_running, done) if output is not None]

    def abort_request(self, request_ids):
        self.aborted.extend(request_ids)
        self.held = [(rid, prompt) for rid, prompt in self.held if rid not in request_ids]


def _without(tokens: list[int], eos: int) -> list[int]:
    return [token for token in tokens if token != eos]


def _generator(tiny_llama_dir, tiny_tokenizer, batch_size: int) -> tuple[VLLMGenerator, _Engine]:
    generator = VLLMGenerator(
        tiny_llama_dir, settings=GenerationSettings(batch_size=batch_size, max_new_tokens=8)
    )
    engine = _Engine(eos=tiny_tokenizer.eos_token_id)
    generator._llm = types.SimpleNamespace(llm_engine=engine, get_tokenizer=lambda: tiny_tokenizer)
    generator._stop_ids = {tiny_tokenizer.eos_token_id}
    return generator, engine


def _chats(count: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"gene{k} " * (k + 1)}] for k in range(count)]


def test_texts_come_as_requests_finish_and_the_next_prompt_takes_the_place(
    fake_vllm, tiny_llama_dir, tiny_tokenizer
):
    from bioprofile.profiles.hf import TransformersGenerator

    generator, engine = _generator(tiny_llama_dir, tiny_tokenizer, batch_size=2)
    chats = _chats(5)
    prompts = chat_prompt_token_ids(tiny_tokenizer, chats, model="tiny")
    assert prompts == [list(p) for p in TransformersGenerator(tiny_llama_dir).prompt_token_ids(chats)]
    arrived = []
    for index, text in generator.generate_iter(chats):
        # the finished request was replaced before its text was handed over
        assert len(engine.added) == min(5, 2 + len(arrived) + 1)
        arrived.append(index)
        answer = _without(prompts[index], tiny_tokenizer.eos_token_id)
        assert text == tiny_tokenizer.decode(answer, skip_special_tokens=True).strip()
    assert sorted(arrived) == list(range(5)) and arrived != list(range(5))
    assert engine.most_held == 2 and not engine.aborted and not engine.held
    params = engine.params.kwargs
    assert params["detokenize"] is False and params["output_kind"] == "final-only"
    assert params["stop_token_ids"] == [tiny_tokenizer.eos_token_id]
    assert params["temperature"] == 0.0 and params["max_tokens"] == 8
    # cut before the end-of-turn token
    assert generator.generate_token_ids(chats[:1]) == [_without(prompts[0], tiny_tokenizer.eos_token_id)]


def test_a_caller_that_stops_aborts_the_requests_still_in_the_engine(
    fake_vllm, tiny_llama_dir, tiny_tokenizer
):
    generator, engine = _generator(tiny_llama_dir, tiny_tokenizer, batch_size=3)
    texts = generator.generate_iter(_chats(6))
    next(texts)
    texts.close()
    assert (
        len(engine.aborted) == 3 and not engine.held
    )  # two of the first three, and the one that replaced one


def test_each_text_is_stored_as_it_finishes_and_a_rerun_resumes(
    fake_vllm, tiny_llama_dir, tiny_tokenizer, tmp_path
):
    from bioprofile.profiles.prompts import get_template

    genes = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC"]
    template = get_template("concise")
    generator, engine = _generator(tiny_llama_dir, tiny_tokenizer, batch_size=2)

    class Killed(Exception):
        pass

    def kill_after_three(_: int) -> None:
        kill_after_three.count += 1
        if kill_after_three.count == 3:
            raise Killed

    kill_after_three.count = 0
    with Store(tmp_path / "store.sqlite") as store:
        with pytest.raises(Killed):
            generate_profiles(
                genes, generator=generator, template=template, store=store, progress=kill_after_three
            )
        assert store.counts()["profiles"] == 3
        assert engine.aborted and not engine.held  # the requests in flight were dropped from the engine
        rerun, _ = _generator(tiny_llama_dir, tiny_tokenizer, batch_size=2)
        texts = generate_profiles(genes, generator=rerun, template=template, store=store)
        assert store.counts()["profiles"] == 5
    assert len(set(texts)) == 5 and all(texts)
