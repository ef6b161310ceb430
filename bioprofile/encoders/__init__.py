"""Text encoders: profile text -> vector.

Modules
-------
base
    :class:`~bioprofile.encoders.base.TextEncoder`, what the pipeline needs from an encoder.
local
    The default: a sentence-transformers model (the bundled all-MiniLM-L6-v2).
hf
    BioBERT-style Hugging Face encoders with mean or [CLS] pooling.
cached
    :func:`~bioprofile.encoders.cached.encode_texts`: encoding through the store, resumably.
"""

from __future__ import annotations

import re
from pathlib import Path

from bioprofile.encoders.base import TextEncoder
from bioprofile.encoders.hf import TransformersEncoder
from bioprofile.encoders.local import DEFAULT_ENCODER_ID, SentenceTransformerEncoder
from bioprofile.errors import BioprofileInputError


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


# TransformersEncoder ids are "<model id>:<pooling>:<max_length>"; a local model directory's id is
# "<dir name>@<12 hex>", which names the files' contents but not where they are, so it cannot be loaded again.
_HF_ENCODER_ID = re.compile(r"^(?P<model>.+):(?P<pooling>mean|cls):(?P<max_length>\d+)$")
_LOCAL_MODEL_ID = re.compile(r"@[0-9a-f]{12}$")


def encoder_from_id(encoder_id: str | None) -> TextEncoder | None:
    """Rebuild the encoder an ``encoder.id`` (as recorded in provenance) names, or ``None`` when it cannot be.

    Rebuildable: ``None`` and :data:`DEFAULT_ENCODER_ID` (the default encoder), and a BERT-style hub model in the
    local Hugging Face cache. Not rebuildable: local model directories (their id is a content hash, not a path),
    models missing from the cache, and ids of vectors bioprofile did not make (e.g. GenePT pickles).
    """
    if encoder_id is None or encoder_id == DEFAULT_ENCODER_ID:
        return get_encoder(None)
    match = _HF_ENCODER_ID.match(str(encoder_id))
    if not match or _LOCAL_MODEL_ID.search(match["model"]):
        return None
    prefix = "hf:" if match["pooling"] == "mean" else "hf-cls:"
    try:
        encoder = get_encoder(prefix + match["model"], max_length=int(match["max_length"]))
    except BioprofileInputError:
        return None
    # only the very encoder the id names: anything else would embed texts differently
    return encoder if encoder.id == encoder_id else None


__all__ = [
    "DEFAULT_ENCODER_ID",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "TransformersEncoder",
    "encoder_from_id",
    "get_encoder",
]
