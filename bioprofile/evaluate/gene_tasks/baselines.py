"""Baselines scored beside an embedding table on the same genes.

Random vectors (chance), the length of each gene's profile text (does the text's size alone predict the label?)
and the bare gene symbol embedded with the table's encoder (does the gene's name alone predict it?).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.encoders import TextEncoder, encoder_from_id
from bioprofile.encoders.cached import encode_texts
from bioprofile.encoders.coerce import as_encoder
from bioprofile.errors import BioprofileInputError
from bioprofile.store import Store, open_store

__all__ = ["random_embeddings", "symbol_embeddings", "table_encoder", "text_length_embeddings"]


def random_embeddings(emb: GeneEmbeddings, *, seed: int = 0) -> GeneEmbeddings:
    """The same genes with standard-normal vectors of the same dimension: the chance baseline."""
    rng = np.random.default_rng(seed)
    return GeneEmbeddings(
        ids=list(emb.ids),
        symbols=list(emb.symbols),
        texts=[""] * len(emb),
        vectors=rng.standard_normal((len(emb), emb.dim)).astype(np.float32),
        provenance={
            "source": "random",
            "seed": seed,
            "encoder": "random",
            "like": emb.provenance.get("encoder"),
        },
    )


def text_length_embeddings(emb: GeneEmbeddings) -> GeneEmbeddings:
    """One feature per gene, ``log1p(number of words)`` of its profile text: the text-length baseline.

    Well-studied genes tend to get longer, more specific profiles, so a label that tracks how well a gene is
    studied can be predicted from text length alone. Scoring this 1-d table beside the real one shows how much of
    an embedding's score its text length could explain.

    Parameters
    ----------
    emb
        A table that carries the texts its vectors were computed from (``emb.texts``). Genes whose text is empty
        are left out of the baseline (their length says nothing about a text); GenePT pickles carry no texts.

    Returns
    -------
    GeneEmbeddings
        The genes that have a text, each with a ``(1,)`` float32 vector; ``provenance["source"]`` is
        ``"text_length"``.

    Raises
    ------
    BioprofileInputError
        When no gene of ``emb`` has a text.
    """
    keep = [i for i, text in enumerate(emb.texts) if isinstance(text, str) and text.strip()]
    if not keep:
        raise BioprofileInputError(
            "the table carries no profile texts (e.g. a GenePT pickle), so it has no text-length baseline"
        )
    texts = [emb.texts[i] for i in keep]
    # Words, not characters: tokenisers and templates differ, a word count is comparable across generators.
    words = np.array([len(text.split()) for text in texts], dtype=np.float64)
    return GeneEmbeddings(
        ids=[emb.ids[i] for i in keep],
        symbols=[emb.symbols[i] for i in keep],
        texts=texts,
        vectors=np.log1p(words)[:, None].astype(np.float32),
        provenance={
            "source": "text_length",
            "feature": "log1p(number of whitespace-separated words in the profile text)",
            "encoder": "text_length",
            "like": emb.provenance.get("encoder"),
            "n_genes_without_text": len(emb) - len(keep),
        },
    )


def table_encoder(emb: GeneEmbeddings) -> TextEncoder:
    """The text encoder a table's vectors were computed with, rebuilt from ``provenance["encoder"]``.

    Only ids that name where the model is can be rebuilt: the default encoder
    (:data:`~bioprofile.encoders.DEFAULT_ENCODER_ID`) and a BERT-style hub model in the local Hugging Face cache
    (``"<hub id>:<pooling>:<max_length>"``). A table without a recorded encoder gets the default one.

    Raises
    ------
    BioprofileInputError
        When the recorded id cannot be rebuilt: a local model directory (its id is a content hash, not a path), a
        hub model missing from the local cache, or vectors not made by a bioprofile encoder (GenePT pickles).
    """
    recorded = emb.provenance.get("encoder")
    encoder = encoder_from_id(recorded)
    if encoder is not None:
        return encoder
    raise BioprofileInputError(
        f"cannot rebuild the table's text model {recorded!r} from its id alone: pass encoder, the model the "
        "table was embedded with",
        argument="encoder",
    )


def symbol_embeddings(
    emb: GeneEmbeddings, encoder: TextEncoder | str | Path | None, *, store: Store | None = None
) -> GeneEmbeddings:
    """The same genes, each embedded from its bare approved symbol (``"ZNF154"``): the symbol-only baseline.

    A text encoder already places a symbol near its gene family's names and near genes it saw written about, so a
    label that follows gene naming (zinc-finger TFs, for one) can be predicted without any profile. Scoring this
    table beside one embedded from profiles with the same encoder shows how much of a score the symbol alone
    could explain.

    Parameters
    ----------
    emb
        The table whose genes to embed (its vectors and texts are not used).
    encoder
        A :class:`~bioprofile.encoders.TextEncoder`, a spec for :func:`~bioprofile.encoders.get_encoder`, or
        ``None`` for the encoder recorded in ``emb.provenance`` (see :func:`table_encoder`). Use the table's own
        encoder for a like-for-like comparison.
    store
        Cache of encoded texts (:func:`bioprofile.encoders.cached.encode_texts`); ``None`` opens the default one.

    Returns
    -------
    GeneEmbeddings
        The genes of ``emb`` in its order, ``texts`` the symbols; ``provenance["source"]`` is ``"symbol"``,
        ``provenance["encoder"]`` the encoder used and ``provenance["like"]`` the table's.

    Raises
    ------
    BioprofileInputError
        When ``emb`` has no genes, or ``encoder`` is ``None`` and the table's encoder cannot be rebuilt.
    """
    if len(emb) == 0:
        raise BioprofileInputError("the table has no genes, so it has no symbol baseline")
    encoder = table_encoder(emb) if encoder is None else as_encoder(encoder)
    texts = list(emb.symbols)
    with open_store(store) as cache:
        vectors = encode_texts(texts, encoder, cache)
    return GeneEmbeddings(
        ids=list(emb.ids),
        symbols=list(emb.symbols),
        texts=texts,
        vectors=vectors,
        provenance={
            "source": "symbol",
            "text": "the gene's approved symbol only",
            "encoder": encoder.id,
            "like": emb.provenance.get("encoder"),
        },
    )
