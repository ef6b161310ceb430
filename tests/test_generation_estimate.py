"""Before generating, embed_genes says how many prompts (uncached) and new tokens at most; after the first batch,
about how long the rest will take. Nothing is said without progress (the CLI's --quiet)."""

from __future__ import annotations

import time

import numpy as np

from bioprofile.pipeline import embed_genes
from bioprofile.store import Store

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CD4"]


class _SlowWriter:
    """Writes a fixed text per prompt, a little slowly, in batches of two."""

    id = "slow-writer"
    params = {"max_new_tokens": 64, "do_sample": False}
    batch_size = 2

    def generate(self, messages_list):
        time.sleep(0.01)
        return [f"profile {len(m[-1]['content'])}" for m in messages_list]


class _Encoder:
    id, dim = "unit", 2

    def encode(self, texts):
        return np.ones((len(texts), self.dim), dtype=np.float32)


def test_the_plan_and_an_estimate_are_said_on_stderr(tmp_path, capsys):
    with Store(tmp_path / "store.sqlite") as store:
        embed_genes(GENES[:2], generator=_SlowWriter(), encoder=_Encoder(), store=store)
        capsys.readouterr()
        embed_genes(GENES, generator=_SlowWriter(), encoder=_Encoder(), store=store, show_progress=True)
    err = " ".join(capsys.readouterr().err.split())
    assert "writing 4 profiles with slow-writer (2 cached): at most 256 new tokens (4 x 64)" in err
    assert "first 2 profiles in " in err and "for the other 2 at this pace" in err


def test_nothing_is_said_without_progress(tmp_path, capsys):
    with Store(tmp_path / "store.sqlite") as store:
        embed_genes(GENES, generator=_SlowWriter(), encoder=_Encoder(), store=store)
    assert capsys.readouterr().err == ""
