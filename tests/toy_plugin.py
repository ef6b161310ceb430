"""A third-party plugin, outside the package: a toy generator backend and a toy cell-embedding method.

It uses only bioprofile's public registration calls, as an installed package would when imported: the tests
register it through :func:`register` and remove it through :func:`unregister`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from bioprofile.cells import CellInput, CellVectors, register_method, unregister_method
from bioprofile.profiles import register_backend, unregister_backend


@dataclass(frozen=True)
class ToyBackendOptions:
    """The toy backend's own option: the word each text starts with."""

    opening: str = "Toy"


class ToyGenerator:
    """Writes one deterministic text per prompt: the opening word, the question, and a digest of it."""

    independent_prompts = True

    def __init__(self, model: str | None = None, *, settings: Any = None, options: ToyBackendOptions) -> None:
        self.model = model or "toy-model"
        self.opening = options.opening
        self.calls = 0

    @property
    def id(self) -> str:
        """The cache-key id: changes whenever the texts would."""
        return f"toy:{self.model}:{self.opening}"

    @property
    def params(self) -> dict[str, Any]:
        """Decoding parameters in the cache key (none change a toy text)."""
        return {}

    def generate(self, messages_list: list[list[dict]]) -> list[str]:
        """One text per chat."""
        self.calls += 1
        return [toy_text(self.opening, messages) for messages in messages_list]


def toy_text(opening: str, messages: list[dict]) -> str:
    """The toy text of one chat (the tests compute the expected texts with it)."""
    question = messages[-1]["content"]
    digest = hashlib.sha256(question.encode()).hexdigest()[:8]
    return f"{opening} profile {digest}: {question}"


@dataclass(frozen=True)
class ToyCellOptions:
    """The toy method's options: ``l2`` (the same name as GenePT-w's flag, so ``--l2`` reaches it)."""

    l2: bool = False


class ToyCellMethod:
    """Each cell as (total expression, number of expressed genes), optionally of unit length."""

    options = ToyCellOptions

    def embed(self, cells: CellInput, options: ToyCellOptions) -> CellVectors:
        """Per-cell totals, read in row chunks."""
        every_gene = dict.fromkeys(cells.names, np.zeros(1, dtype=np.float32))
        match = cells.match(every_gene)
        rows = []
        n_cells = cells.X.shape[0]
        for start in range(0, n_cells, cells.limits.chunk_size):
            chunk = cells.X[start : start + cells.limits.chunk_size]
            total = np.asarray(chunk.sum(axis=1)).ravel()
            expressed = np.asarray((chunk > 0).sum(axis=1)).ravel()
            rows.append(np.column_stack([total, expressed]).astype(np.float32))
        vectors = np.concatenate(rows)
        if options.l2:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return CellVectors(vectors, match, recorded={"toy_version": 1})

    def provenance(self, options: ToyCellOptions) -> dict[str, Any]:
        """The options as recorded in ``uns[key_added]``."""
        return {"l2": options.l2}


def register() -> None:
    """What the plugin's import would run: one line per extension."""
    register_backend("toy", ToyGenerator, options=ToyBackendOptions)
    register_method("toy", ToyCellMethod())


def unregister() -> None:
    """Remove both again."""
    unregister_backend("toy")
    unregister_method("toy")
