"""embed_genes with summaries for only some genes: a MissingSummaryWarning (count, first symbols), strict refuses."""

from __future__ import annotations

import warnings

import pytest

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.pipeline import embed_genes
from bioprofile.profiles.summaries import MissingSummaryWarning
from bioprofile.store import Store

GENES = ["TP53", "BRCA1", "EGFR", "KRAS", "MYC", "CD4", "CD8A", "GAPDH"]


class _CountingEncoder:
    """An encoder that records what it was asked to encode (strict must refuse before any of it)."""

    id = "counting-encoder"
    dim = 3

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        import numpy as np

        self.calls += 1
        return np.ones((len(texts), self.dim), dtype=np.float32)


def test_texts_for_some_genes_warn_with_counts_and_names(tmp_path):
    encoder = _CountingEncoder()
    with Store(tmp_path / "store.sqlite") as store, pytest.warns(MissingSummaryWarning) as caught:
        table = embed_genes(
            GENES, summaries={"TP53": "binds DNA", "EGFR": "a receptor"}, encoder=encoder, store=store
        )
    assert isinstance(table, GeneEmbeddings)
    assert table.symbols == ["TP53", "EGFR"]
    message = str(caught[0].message)
    assert (
        "6 of 8 genes have no text in the summaries (first: BRCA1, KRAS, MYC, CD4, CD8A, ...): left out"
        in message
    )
    assert caught[0].filename == __file__  # points at the caller's line, not the library's
    assert table.provenance["genes_without_text"] == ["BRCA1", "KRAS", "MYC", "CD4", "CD8A", "GAPDH"]


def test_every_gene_with_a_text_warns_nothing(tmp_path):
    summaries = tmp_path / "summaries.txt"
    summaries.write_text("TP53: binds DNA\nEGFR: a receptor\n", encoding="utf-8")
    with Store(tmp_path / "store.sqlite") as store, warnings.catch_warnings():
        warnings.simplefilter("error", MissingSummaryWarning)
        table = embed_genes(["TP53", "EGFR"], summaries=summaries, encoder=_CountingEncoder(), store=store)
    assert table.provenance["genes_without_text"] == []


def test_strict_refuses_before_encoding(tmp_path):
    summaries = tmp_path / "summaries.tsv"
    summaries.write_text("symbol\ttext\nTP53\tbinds DNA\n", encoding="utf-8")
    encoder = _CountingEncoder()
    with Store(tmp_path / "store.sqlite") as store, pytest.raises(BioprofileInputError) as err:
        embed_genes(["TP53", "BRCA1", "EGFR"], summaries=summaries, encoder=encoder, store=store, strict=True)
    assert err.value.argument == "strict"
    assert "2 of 3 genes have no text in summaries.tsv (first: BRCA1, EGFR)" in str(err.value)
    assert encoder.calls == 0
