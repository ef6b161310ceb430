"""Encoding through the store: cached vectors are reused, new ones are committed chunk by chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bioprofile.encoders.base import TextEncoder
    from bioprofile.store import Store

__all__ = ["ENCODE_CHUNK", "encode_texts"]

#: Texts encoded (and committed to the store) per chunk: a kill loses at most one chunk.
ENCODE_CHUNK = 256


def encode_texts(texts: Sequence[str], encoder: TextEncoder, store: Store, progress=None) -> np.ndarray:
    """Vectors for ``texts``: cached ones from the store, the rest encoded in committed chunks.

    Chunks are cut from the full list of unique texts, not from the uncached ones, so a resumed run encodes each
    text in exactly the batch an uninterrupted run would have (padding changes float results in the last bits).
    """
    unique = list(dict.fromkeys(texts))
    cached = store.get_vectors(unique, encoder=encoder.id)
    fill_store = getattr(encoder, "fill_store", None)
    missing = [t for t in unique if t not in cached]
    if fill_store is not None and missing:
        # An encoder that fills the store itself (the OpenAI Batch API) gets every missing text in one call:
        # chunk by chunk it would submit one batch per chunk and wait for each before sending the next.
        fill_store(missing)
        cached = store.get_vectors(unique, encoder=encoder.id)
    chunks = [unique[i : i + ENCODE_CHUNK] for i in range(0, len(unique), ENCODE_CHUNK)]
    todo = [chunk for chunk in chunks if any(t not in cached for t in chunk)]
    task = progress.add_task("encoding", total=sum(map(len, todo))) if progress and todo else None
    for chunk in todo:
        new = dict(zip(chunk, encoder.encode(chunk), strict=False))
        store.put_vectors(new, encoder=encoder.id)
        cached.update(new)
        if task is not None:
            progress.advance(task, len(chunk))
    if todo:
        _replace_other_widths(cached, encoder, store)
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([np.asarray(cached[t], dtype=np.float32) for t in texts])


def _replace_other_widths(vectors: dict[str, np.ndarray], encoder: TextEncoder, store: Store) -> None:
    """Encode again the stored vectors whose width is not what the encoder makes now (a store written by hand).

    The store serves only the width most of a lookup's rows share; when every cached row was of a wrong width, the
    encoder itself is the judge.
    """
    width = encoder.dim
    stale = [text for text, vector in vectors.items() if np.shape(vector)[-1:] != (width,)]
    if stale:
        fresh = dict(zip(stale, encoder.encode(stale), strict=True))
        store.put_vectors(fresh, encoder=encoder.id)
        vectors.update(fresh)
