"""BioBERT-style encoders: any Hugging Face encoder model (a local path or a hub id already cached), pooled."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.fingerprint import model_id
from bioprofile.progress import quiet_model_loading

Pooling = Literal["mean", "cls"]


class TransformersEncoder:
    """Embed texts with a plain ``AutoModel`` encoder (e.g. BioBERT) and mean or [CLS] pooling.

    Parameters
    ----------
    model
        Local model directory or a hub id present in the local Hugging Face cache.
    pooling
        ``"mean"``: average of the last hidden states over real tokens; ``"cls"``: the first token's state.
    max_length
        Texts are truncated to this many tokens (BERT models accept 512).
    batch_size
        Texts per forward pass.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        pooling: Pooling = "mean",
        max_length: int = 512,
        batch_size: int = 16,
        device: str | None = None,
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if pooling not in ("mean", "cls"):
            raise BioprofileInputError(f"pooling {pooling!r} is not supported: use 'mean' or 'cls'")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(model))
            with quiet_model_loading():
                self._model = AutoModel.from_pretrained(str(model)).eval()
        except (OSError, ValueError) as err:
            raise BioprofileInputError(
                f"cannot load encoder {model}: give a local model directory or a hub id in the local cache ({err})"
            ) from err
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model.to(self.device)
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(self._model.config.hidden_size)
        self.id = f"{model_id(model)}:{pooling}:{max_length}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The pooled vectors of ``texts``: a ``float32`` array of shape ``(len(texts), dim)``."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**batch).last_hidden_state.float()
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
                out[start : start + len(pooled)] = pooled.cpu().numpy()
        return out
