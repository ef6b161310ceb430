"""Resumable profile generation: cache reuse, chunked commits, order, and recovery after SIGKILL."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import TESTS

from bioprofile.entities import entity_key
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.profiles.generate import GenerationSettings, generate_profiles, profile_cache_key
from bioprofile.profiles.prompts import get_template
from bioprofile.store import Store

SYMBOLS = [
    "TP53", "BRCA1", "EGFR", "MYC", "KRAS", "PTEN", "CDKN2A", "APOE", "CFTR", "HBB", "INS", "GAPDH",
    "ACTB", "VEGFA", "TNF", "IL6", "ESR1", "AR", "SOX2", "POU5F1", "NANOG", "GATA1", "SPI1", "CD4",
]  # fmt: skip


class DeterministicGenerator:
    """Test double for a backend: the text is a function of the prompt, and calls are recorded.

    The real backends are tested in their own modules; here only the protocol matters.
    """

    def __init__(self, delay: float = 0.0, batch_size: int | None = None):
        self.id = "deterministic-test-generator"
        self.params = {"max_new_tokens": 32, "do_sample": False}
        self.delay = delay
        self.calls: list[list[str]] = []
        if batch_size is not None:
            self.batch_size = batch_size

    def generate(self, messages_list: list[list[dict]]) -> list[str]:
        time.sleep(self.delay)
        users = [messages[-1]["content"] for messages in messages_list]
        self.calls.append(users)
        return [f"{user} -> {hashlib.sha256(user.encode()).hexdigest()[:12]}" for user in users]


@pytest.fixture(scope="module")
def genes():
    return normalize_genes(SYMBOLS).genes


def _rows(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*), COUNT(DISTINCT entity) FROM profiles").fetchone()


def test_generates_missing_only_in_input_order(genes, tmp_path):
    template = get_template("concise")
    generator = DeterministicGenerator()
    with Store(tmp_path / "s.sqlite") as store:
        first = generate_profiles(
            genes[:10], generator=generator, template=template, store=store, batch_size=4
        )
        assert [len(c) for c in generator.calls] == [4, 4, 2]
        assert all(
            text.startswith(template.messages(g)[-1]["content"])
            for text, g in zip(first, genes[:10], strict=False)
        )

        reported: list[int] = []
        generator.calls.clear()
        everything = list(reversed(genes))
        texts = generate_profiles(
            everything,
            generator=generator,
            template=template,
            store=store,
            batch_size=4,
            progress=reported.append,
        )
        # Every one of the 14 genes not cached was generated, and progress counted exactly those (chunks are cut
        # from all genes, so a chunk may regenerate cached ones; their cached text is kept: see the asserts below).
        generated = {user for call in generator.calls for user in call}
        missing = {template.messages(g)[-1]["content"] for g in genes[10:]}
        assert missing <= generated and sum(reported) == len(genes) - 10
        assert texts == [DeterministicGenerator().generate([template.messages(g)])[0] for g in everything]
        assert dict(zip([g.hgnc_id for g in genes[:10]], first, strict=False)) == {
            k: t
            for k, t in zip([g.hgnc_id for g in everything], texts, strict=False)
            if k in {g.hgnc_id for g in genes[:10]}
        }

        generator.calls.clear()
        assert generate_profiles(everything, generator=generator, template=template, store=store) == texts
        assert generator.calls == []
    assert _rows(tmp_path / "s.sqlite") == (len(genes), len(genes))


def test_resumed_run_generates_in_the_same_batches(genes, tmp_path):
    """After a kill, the rerun's batches are exactly the uninterrupted run's remaining batches."""
    template = get_template("genept")
    clean = DeterministicGenerator()
    generate_profiles(genes, generator=clean, template=template, store=None, batch_size=5)
    with Store(tmp_path / "s.sqlite") as store:
        first_chunk = DeterministicGenerator()
        # what a killed run left behind: its first committed chunk
        done = {u.split()[-1] for u in clean.calls[0]}
        generate_profiles(
            [g for g in genes if g.symbol in done],
            generator=first_chunk,
            template=template,
            store=store,
            batch_size=5,
        )
        resumed = DeterministicGenerator()
        generate_profiles(genes, generator=resumed, template=template, store=store, batch_size=5)
    assert resumed.calls == clean.calls[1:]


def test_cache_is_keyed_by_template_and_generator_params(genes, tmp_path):
    generator = DeterministicGenerator()
    with Store(tmp_path / "s.sqlite") as store:
        generate_profiles(genes[:3], generator=generator, template=get_template("concise"), store=store)
        generate_profiles(genes[:3], generator=generator, template=get_template("genept"), store=store)
        generator.params = {"max_new_tokens": 64, "do_sample": False}
        generate_profiles(genes[:3], generator=generator, template=get_template("concise"), store=store)
    assert len(generator.calls) == 3
    assert _rows(tmp_path / "s.sqlite") == (9, 3)


def test_chunks_sorted_longest_prompt_first_and_duplicates_generated_once(genes):
    template = get_template("concise")
    generator = DeterministicGenerator()
    doubled = genes[:6] + genes[:6]
    texts = generate_profiles(doubled, generator=generator, template=template, store=None, batch_size=2)
    assert texts[:6] == texts[6:]
    prompt_lengths = [len(user) for call in generator.calls for user in call]
    assert len(prompt_lengths) == 6
    assert prompt_lengths == sorted(prompt_lengths, reverse=True)


def test_default_chunk_follows_backend_batch_size(genes):
    generator = DeterministicGenerator(batch_size=2)
    generate_profiles(genes[:20], generator=generator, template=get_template("concise"), store=None)
    assert [len(c) for c in generator.calls] == [8, 8, 4]
    plain = DeterministicGenerator()
    generate_profiles(genes[:20], generator=plain, template=get_template("concise"), store=None)
    assert [len(c) for c in plain.calls] == [20]


def test_empty_texts_are_returned_but_not_cached(genes, tmp_path):
    class SometimesSilent(DeterministicGenerator):
        def generate(self, messages_list):
            texts = super().generate(messages_list)
            return [
                "  " if "TP53" in m[-1]["content"] else t for m, t in zip(messages_list, texts, strict=False)
            ]

    with Store(tmp_path / "s.sqlite") as store:
        with pytest.warns(UserWarning, match="empty profiles for 1 genes"):
            texts = generate_profiles(
                genes[:3], generator=SometimesSilent(), template=get_template("concise"), store=store
            )
        assert texts[0] == "  "
        cached = store.get_profiles(
            [entity_key(g) for g in genes[:3]],
            **profile_cache_key(get_template("concise"), SometimesSilent()),
        )
        assert set(cached) == {genes[1].hgnc_id, genes[2].hgnc_id}


def test_wrong_number_of_outputs_is_an_error(genes):
    class Broken(DeterministicGenerator):
        def generate(self, messages_list):
            return super().generate(messages_list)[:-1]

    with pytest.raises(ValueError, match="returned 2 texts for 3 prompts"):
        generate_profiles(genes[:3], generator=Broken(), template=get_template("concise"), store=None)


class GivesUpAfter(DeterministicGenerator):
    """A backend that hands texts over one by one and gives up after ``answers`` of them, like a failing server."""

    independent_prompts = True

    def __init__(self, answers: int):
        super().__init__()
        self.answers = answers

    def generate_iter(self, messages_list):
        texts = self.generate(messages_list)
        for index in reversed(range(len(texts))):  # in any order, not the input order
            if self.answers == 0:
                raise BioprofileInputError("the server still answered 429 after 3 retries")
            self.answers -= 1
            yield index, texts[index]


def test_each_text_is_kept_as_it_arrives_and_a_give_up_is_one_line(genes, tmp_path):
    template = get_template("concise")
    reported: list[int] = []
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(BioprofileInputError, match="^the server still answered 429 after 3 retries$"):
            # Nothing done: there is nothing to resume from, the backend's line stands alone.
            generate_profiles(
                genes[:10], generator=GivesUpAfter(0), template=template, store=store, batch_size=4
            )
        with pytest.raises(BioprofileInputError) as err:
            generate_profiles(
                genes[:10], generator=GivesUpAfter(6), template=template, store=store, batch_size=4,
                progress=reported.append,
            )  # fmt: skip
        assert str(err.value) == (
            "6 of 10 profiles done (kept in the store), rerun to resume; last error: the server still answered 429 "
            "after 3 retries"
        )
        assert _rows(tmp_path / "s.sqlite") == (6, 6) and sum(reported) == 6

        rerun = GivesUpAfter(100)
        texts = generate_profiles(genes[:10], generator=rerun, template=template, store=store, batch_size=4)
        # Only the 4 missing prompts were sent (an independent backend gets no cached batch-mates).
        assert sum(len(call) for call in rerun.calls) == 4
    assert texts == generate_profiles(
        genes[:10], generator=DeterministicGenerator(), template=template, store=None
    )
    assert _rows(tmp_path / "s.sqlite") == (10, 10)


def test_texts_from_an_iterating_backend_are_checked(genes):
    class Repeats(GivesUpAfter):
        def generate_iter(self, messages_list):
            yield 0, "a"
            yield 0, "a"

    class Short(GivesUpAfter):
        def generate_iter(self, messages_list):
            yield 0, "a"

    template = get_template("concise")
    with pytest.raises(ValueError, match="second text for prompt 0"):
        generate_profiles(genes[:3], generator=Repeats(9), template=template, store=None)
    with pytest.raises(ValueError, match="returned 1 texts for 3 prompts"):
        generate_profiles(genes[:3], generator=Short(9), template=template, store=None)


# The subprocesses below import this module by name, and it imports helpers.
HERE = Path(__file__).resolve().parent

_RUN = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{tests_dir!r}, {here!r}]  # helpers, and this module
    from test_generate import SYMBOLS, DeterministicGenerator
    from bioprofile.genes import normalize_genes
    from bioprofile.profiles.generate import generate_profiles
    from bioprofile.profiles.prompts import get_template
    from bioprofile.store import Store

    genes = normalize_genes(SYMBOLS).genes
    with Store(sys.argv[1]) as store:
        generate_profiles(genes, generator=DeterministicGenerator(delay=0.4), template=get_template("concise"),
                          store=store, batch_size=4)
    """
)


def _sigkill_once_committed(command: list[str], path: Path, *, rows: int, wait_s: float) -> int:
    """Run ``command``, SIGKILL it as soon as ``path`` holds ``rows`` profiles; the profiles it kept."""
    proc = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + wait_s
        while _rows(path)[0] < rows:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run committed nothing in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    return _rows(path)[0]


def test_sigkill_mid_run_then_rerun_resumes_without_duplicates(genes, tmp_path):
    path = tmp_path / "killed.sqlite"
    Store(path).close()
    script = _RUN.format(tests_dir=str(TESTS), here=str(HERE))
    # Kill it once two chunks are committed, while the third is being generated.
    committed = _sigkill_once_committed([sys.executable, "-c", script, str(path)], path, rows=8, wait_s=90)
    assert committed in (8, 12) and committed < len(genes)

    generator = DeterministicGenerator()
    template = get_template("concise")
    with Store(path) as store:
        resumed = generate_profiles(genes, generator=generator, template=template, store=store, batch_size=4)
    assert sum(len(c) for c in generator.calls) == len(genes) - committed
    uninterrupted = generate_profiles(
        genes, generator=DeterministicGenerator(), template=template, store=None
    )
    assert resumed == uninterrupted
    assert _rows(path) == (len(genes), len(genes))


@pytest.fixture(scope="module")
def varied_llama_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """The tiny Llama with weights redrawn at unit scale: at the default init its greedy output is one
    whitespace token repeated (an empty profile), which would not exercise caching of real texts."""
    import torch
    from helpers import build_tiny_llama

    model = build_tiny_llama(tiny_tokenizer)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
    path = tmp_path_factory.mktemp("varied-llama")
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def test_with_real_transformers_backend_on_tiny_llama(genes, varied_llama_dir, tmp_path):
    from bioprofile.profiles.hf import TransformersGenerator

    template = get_template("concise")
    generator = TransformersGenerator(
        varied_llama_dir, settings=GenerationSettings(batch_size=2, max_new_tokens=6), device="cpu"
    )
    with Store(tmp_path / "s.sqlite") as store:
        partial = generate_profiles(genes[:3], generator=generator, template=template, store=store)
        full = generate_profiles(genes[:7], generator=generator, template=template, store=store, batch_size=2)
        generator_id, params = generator.id, generator.params
    assert full[:3] == partial
    assert all(text.strip() for text in full) and len(set(full)) > 1
    # Greedy decoding: the cached-and-resumed texts equal one uninterrupted run without a store.
    fresh = TransformersGenerator(
        varied_llama_dir, settings=GenerationSettings(batch_size=4, max_new_tokens=6), device="cpu"
    )
    assert fresh.id == generator_id and fresh.params == params
    assert generate_profiles(genes[:7], generator=fresh, template=template, store=None) == full
    assert _rows(tmp_path / "s.sqlite") == (7, 7)


_LOCAL_RUN = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{tests_dir!r}, {here!r}]  # helpers, and this module
    from test_generate import SYMBOLS
    from bioprofile.genes import normalize_genes
    from bioprofile.profiles.generate import GenerationSettings, generate_profiles
    from bioprofile.profiles.hf import TransformersGenerator
    from bioprofile.profiles.prompts import get_template
    from bioprofile.store import Store

    generator = TransformersGenerator(
        sys.argv[2], settings=GenerationSettings(batch_size=2, max_new_tokens=48), device="cpu"
    )
    with Store(sys.argv[1]) as store:
        generate_profiles(normalize_genes(SYMBOLS).genes[:8], generator=generator, template=get_template("concise"),
                          store=store)
    """
)


@pytest.mark.slow
def test_sigkill_during_the_first_chunk_of_a_local_run_keeps_finished_batches(
    genes, varied_llama_dir, tmp_path
):
    """The transformers backend commits every generated batch: a kill inside the first chunk keeps them."""
    from bioprofile.profiles.hf import TransformersGenerator

    path = tmp_path / "killed.sqlite"
    Store(path).close()
    script = _LOCAL_RUN.format(tests_dir=str(TESTS), here=str(HERE))
    # Killed once the first batch of 2 is in; the first chunk is 4 batches (8 genes).
    command = [sys.executable, "-c", script, str(path), str(varied_llama_dir)]
    committed = _sigkill_once_committed(command, path, rows=2, wait_s=120)
    assert committed in (2, 4, 6)  # whole batches, before the first chunk of 8 was done

    template = get_template("concise")
    settings = GenerationSettings(batch_size=2, max_new_tokens=48)
    generator = TransformersGenerator(varied_llama_dir, settings=settings, device="cpu")
    with Store(path) as store:
        resumed = generate_profiles(genes[:8], generator=generator, template=template, store=store)
    fresh = TransformersGenerator(varied_llama_dir, settings=settings, device="cpu")
    assert resumed == generate_profiles(genes[:8], generator=fresh, template=template, store=None)
    assert _rows(path) == (8, 8)
