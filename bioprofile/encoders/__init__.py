"""Text encoders: profile text -> vector."""

from __future__ import annotations

from pathlib import Path

from bioprofile.encoders.base import TextEncoder
from bioprofile.encoders.hf import TransformersEncoder
from bioprofile.encoders.local import DEFAULT_ENCODER_ID, SentenceTransformerEncoder


def get_encoder(spec: str | Path | None = None, **kwargs) -> TextEncoder:
    """Build an encoder from a short spec.

    ``None`` / ``"default"`` / ``"minilm"``: the bundled all-MiniLM-L6-v2. ``"hf:PATH"``: a BERT-style model with
    mean pooling (``"hf-cls:PATH"`` for [CLS] pooling). A directory with ``modules.json``: that sentence-transformers
    model; any other directory or hub id: a BERT-style model with mean pooling.
    """
    if spec is None or str(spec) in ("default", "minilm"):
        return SentenceTransformerEncoder(**kwargs)
    text = str(spec)
    for prefix, pooling in (("hf:", "mean"), ("hf-cls:", "cls")):
        if text.startswith(prefix):
            return TransformersEncoder(text[len(prefix) :], pooling=pooling, **kwargs)
    if (Path(text) / "modules.json").is_file():
        return SentenceTransformerEncoder(text, **kwargs)
    return TransformersEncoder(text, **kwargs)


__all__ = ["DEFAULT_ENCODER_ID", "SentenceTransformerEncoder", "TextEncoder", "TransformersEncoder", "get_encoder"]
