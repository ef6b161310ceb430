"""Baselines scored beside an embedding table on the same genes: random vectors (chance) and the length of each
gene's profile text (does the text's size alone predict the label?)."""

from __future__ import annotations

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError

__all__ = ["random_embeddings", "text_length_embeddings"]


def random_embeddings(emb: GeneEmbeddings, *, seed: int = 0) -> GeneEmbeddings:
    """The same genes with standard-normal vectors of the same dimension: the chance baseline."""
    rng = np.random.default_rng(seed)
    return GeneEmbeddings(
        ids=list(emb.ids),
        symbols=list(emb.symbols),
        texts=[""] * len(emb),
        vectors=rng.standard_normal((len(emb), emb.dim)).astype(np.float32),
        provenance={"source": "random", "seed": seed, "encoder": "random", "like": emb.provenance.get("encoder")},
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
