"""One coercion from what a caller may pass as an encoder (a spec or a ready one) to a text encoder."""

from __future__ import annotations

from pathlib import Path

from bioprofile.encoders import get_encoder
from bioprofile.encoders.base import TextEncoder
from bioprofile.errors import BioprofileInputError

__all__ = ["as_encoder"]


def as_encoder(encoder: TextEncoder | str | Path | None, *, argument: str = "encoder") -> TextEncoder:
    """A ready text encoder from an encoder or its spec.

    Parameters
    ----------
    encoder
        A ready encoder (anything with ``encode(texts)``, returned as it is), a spec that
        :func:`~bioprofile.encoders.get_encoder` builds (``"hf:PATH"``, ``"openai:MODEL"``, a model folder), or
        ``None`` for the default encoder.
    argument
        The argument name an error names.

    Returns
    -------
    TextEncoder

    Raises
    ------
    BioprofileInputError
        ``encoder`` is neither a spec nor an object with ``encode``.
    """
    if encoder is None or isinstance(encoder, (str, Path)):
        return get_encoder(encoder)
    if callable(getattr(encoder, "encode", None)):
        return encoder
    raise BioprofileInputError(
        f"not an encoder (got {type(encoder).__name__}): pass an encoder spec (e.g. 'hf:PATH') or an object "
        "with encode(texts)",
        argument=argument,
    )
