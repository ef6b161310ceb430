"""Text encoders: profile text -> vector.

Modules
-------
base
    :class:`~bioprofile.encoders.base.TextEncoder`, what the pipeline needs from an encoder.
local
    The default: a sentence-transformers model (the bundled all-MiniLM-L6-v2).
hf
    BioBERT-style Hugging Face encoders with mean or [CLS] pooling.
openai
    :class:`~bioprofile.encoders.openai.OpenAIEncoder`: OpenAI's embedding models (ada-002, the 3-series) or any
    OpenAI-compatible ``/v1/embeddings`` server, within the API's limits.
openai_batch
    :class:`~bioprofile.encoders.openai_batch.OpenAIBatchEncoder`: the same vectors through the OpenAI Batch API
    (half the price): submitted batches are recorded in the store, and a rerun collects them.
cached
    :func:`~bioprofile.encoders.cached.encode_texts`: encoding through the store, resumably.
coerce
    :func:`~bioprofile.encoders.coerce.as_encoder`: a ready encoder from an encoder or its spec.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bioprofile.encoders.base import TextEncoder
from bioprofile.encoders.hf import TransformersEncoder
from bioprofile.encoders.local import DEFAULT_ENCODER_ID, SentenceTransformerEncoder
from bioprofile.encoders.openai import OpenAIEncoder, parse_openai_spec
from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import DEFAULT_BASE_URL, url_host


def get_encoder(spec: str | Path | None = None, **kwargs) -> TextEncoder:
    """Build an encoder from a short spec.

    ``None`` / ``"default"`` / ``"minilm"``: the bundled all-MiniLM-L6-v2. ``"hf:PATH"``: a BERT-style model with
    mean pooling (``"hf-cls:PATH"`` for [CLS] pooling). ``"openai:MODEL"``: OpenAI embeddings or any
    OpenAI-compatible server's (:class:`~bioprofile.encoders.openai.OpenAIEncoder`; base URL from ``base_url=`` or
    ``$OPENAI_BASE_URL``, key from ``$OPENAI_API_KEY``), with ``"?dimensions=N"`` for a shortened 3-series vector,
    e.g. ``"openai:text-embedding-3-small?dimensions=256"``. A directory with ``modules.json``: that
    sentence-transformers model; any other directory or hub id: a BERT-style model with mean pooling.
    ``kwargs`` go to the encoder's class.
    """
    if spec is None or str(spec) in ("default", "minilm"):
        return SentenceTransformerEncoder(**kwargs)
    text = str(spec)
    if text.startswith("openai:"):
        model, options = parse_openai_spec(text)
        return OpenAIEncoder(model, **{**options, **kwargs})
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

    Rebuildable: ``None`` and :data:`DEFAULT_ENCODER_ID` (the default encoder), a BERT-style hub model in the
    local Hugging Face cache, and an ``openai:MODEL[?dimensions=N]@API_ROOT`` encoder whose API root is OpenAI's or
    ``$OPENAI_BASE_URL`` (with its key in ``$OPENAI_API_KEY``). Not rebuildable: local model directories (their id
    is a content hash, not a path), models missing from the cache, and ids of vectors bioprofile did not make (e.g.
    GenePT pickles).
    """
    if encoder_id is None or encoder_id == DEFAULT_ENCODER_ID:
        return get_encoder(None)
    if str(encoder_id).startswith("openai:"):
        return _openai_from_id(str(encoder_id))
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


def _openai_from_id(encoder_id: str) -> TextEncoder | None:
    """The OpenAI encoder an id names, where its server is one this machine is set up to call.

    The id ends in ``@`` and the API root without credentials; an id recorded by an older bioprofile ends in
    ``@HOST[:PORT]``, which is compared with the host only.
    """
    new_form = "@http" in encoder_id
    spec, _, host = encoder_id.partition("@http") if new_form else encoder_id.rpartition("@")
    for url in filter(None, (os.environ.get("OPENAI_BASE_URL"), DEFAULT_BASE_URL)):
        if not new_form and url_host(url) != host:
            continue
        try:
            encoder = get_encoder(spec, base_url=url)
        except BioprofileInputError:
            continue
        # a new id names the whole API root, as the endpoint normalises it: only the very encoder it names
        if not new_form or encoder.id == encoder_id:
            return encoder
    return None


__all__ = [
    "DEFAULT_ENCODER_ID",
    "OpenAIEncoder",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "TransformersEncoder",
    "encoder_from_id",
    "get_encoder",
]
