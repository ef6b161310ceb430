"""One coercion from what a caller may pass as a generator (a model or a ready backend) to a profile writer."""

from __future__ import annotations

from pathlib import Path

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.backends import make_generator
from bioprofile.profiles.generate import GenerationSettings, ProfileGenerator

__all__ = ["as_generator"]


def as_generator(
    generator: ProfileGenerator | str | Path | None,
    *,
    backend: str = "transformers",
    settings: GenerationSettings | None = None,
) -> ProfileGenerator:
    """A ready profile writer from a generator or the model it should load.

    Parameters
    ----------
    generator
        A ready generator (anything with ``generate(messages_list)``, returned as it is), or a model that
        :func:`~bioprofile.profiles.backends.make_generator` loads on ``backend`` (``None``: the bundled SmolLM2).
    backend
        The backend a model is loaded on.
    settings
        Decoding settings of a generator built here; a ready generator carries its own.

    Returns
    -------
    ProfileGenerator

    Raises
    ------
    BioprofileInputError
        ``settings`` given with a ready generator, or ``generator`` is neither a model nor has ``generate``.
    """
    if generator is None or isinstance(generator, (str, Path)):
        return make_generator(generator, backend=backend, settings=settings)
    if settings is not None:
        raise BioprofileInputError(
            "settings are for a generator built here: a ready generator carries its own", argument="settings"
        )
    if not callable(getattr(generator, "generate", None)):
        raise BioprofileInputError(
            f"not a generator (got {type(generator).__name__}): pass a model, or an object with "
            "generate(messages_list)",
            argument="generator",
        )
    return generator
