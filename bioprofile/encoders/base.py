"""What every text encoder offers the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into float32 vectors, one row per text."""

    #: Stable identifier: changes whenever the vectors would change (cache key).
    id: str
    #: Vector width.
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts``: a ``float32`` array of shape ``(len(texts), dim)``."""
        ...
