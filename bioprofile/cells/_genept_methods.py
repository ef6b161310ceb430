"""GenePT-w and GenePT-s as registered cell methods: the first two entries of the method registry.

GenePT-w weights each cell's gene vectors by expression (:func:`~bioprofile.cells.genept_w`, options
:class:`~bioprofile.cells.GeneptWOptions`); GenePT-s writes each cell's top expressed genes as a sentence and
encodes it as text (:class:`GeneptSOptions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.cells._genept import GeneptWOptions, genept_s_sentences, genept_w
from bioprofile.cells._match import vector_table
from bioprofile.cells._methods import CellInput, CellVectors, register_method
from bioprofile.encoders import TextEncoder
from bioprofile.encoders.cached import encode_texts
from bioprofile.encoders.coerce import as_encoder
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_symbols
from bioprofile.store import Store, open_store

__all__ = ["GeneptS", "GeneptSOptions", "GeneptW"]


@dataclass(frozen=True)
class GeneptSOptions:
    """The options of GenePT-s (each cell's top expressed genes as a sentence, encoded as text).

    Parameters
    ----------
    top_n
        Genes per sentence at most.
    encoder
        The text encoder, or a spec for :func:`~bioprofile.encoders.get_encoder` (``None``: the default MiniLM).
    store
        The cache sentences are encoded through (``None``: the default store, opened for the call).
    """

    top_n: int = 50
    encoder: TextEncoder | str | Path | None = None
    store: Store | None = None

    def __post_init__(self) -> None:
        """Reject a ``top_n`` below 1 before any work."""
        if self.top_n < 1:
            raise BioprofileInputError(f"top_n must be at least 1, got {self.top_n}", argument="top_n")


class GeneptW:
    """GenePT-w: each cell is the expression-weighted sum of its genes' vectors (which it needs)."""

    options = GeneptWOptions

    def embed(self, cells: CellInput, options: GeneptWOptions) -> CellVectors:
        """The weighted gene vectors of each cell (see :func:`~bioprofile.cells.genept_w`)."""
        if cells.embeddings is None:
            raise BioprofileInputError(
                "GenePT-w needs gene embeddings: pass embeddings (from bioprofile.embed_genes)",
                argument="embeddings",
            )
        table, provenance = vector_table(cells.embeddings)
        match = cells.match(table)
        vectors = genept_w(
            cells.X, match, options, chunk_size=cells.limits.chunk_size, workers=cells.limits.workers
        )
        return CellVectors(vectors, match, provenance)

    def provenance(self, options: GeneptWOptions) -> dict[str, Any]:
        """The options as recorded in ``uns[key_added]``."""
        return options.provenance()


class GeneptS:
    """GenePT-s: each cell's top expressed genes written as a sentence, encoded as text (through the cache)."""

    options = GeneptSOptions

    def embed(self, cells: CellInput, options: GeneptSOptions) -> CellVectors:
        """The encoded top-gene sentence of each cell; the gene vectors, if any, only restrict its genes."""
        if cells.embeddings is None:  # every gene HGNC knows may appear in a sentence
            table: Mapping[str, Any] = dict.fromkeys(hgnc_symbols(), np.zeros(1, dtype=np.float32))
            provenance: dict = {}
        else:
            table, provenance = vector_table(cells.embeddings)
        match = cells.match(table)
        sentences = genept_s_sentences(
            cells.X, match, top_n=options.top_n, chunk_size=cells.limits.chunk_size
        )
        encoder = as_encoder(options.encoder)
        with open_store(options.store) as cache:
            vectors = encode_texts(sentences, encoder, cache)
        return CellVectors(vectors, match, provenance, recorded={"encoder": encoder.id})

    def provenance(self, options: GeneptSOptions) -> dict[str, Any]:
        """The options as recorded in ``uns[key_added]`` (the encoder's id is added by :meth:`embed`)."""
        return {"top_n": options.top_n}


register_method("genept-w", GeneptW())
register_method("genept-s", GeneptS())
