"""How a benchmark names what it compares: tables given as ``NAME=PATH`` or by their file, and models.

The command line and ``benchmarks/`` scripts name their inputs the same way through these functions, so a table is
called the same in every report. The files themselves are read by :mod:`bioprofile.readers` (``.h5ad``) and
:func:`bioprofile.evaluate.gene_tasks.load_embedding_table`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bioprofile.errors import BioprofileInputError

__all__ = ["model_label", "named_tables"]


def named_tables(embeddings: Iterable[str | Path]) -> dict[str, Path]:
    """Name each table a benchmark compares: ``NAME=PATH`` as given, a bare path by its file's stem.

    Parameters
    ----------
    embeddings
        Paths, or ``NAME=PATH`` texts. A text that is itself an existing file is a path, even with an ``=`` in it.
        A stem an earlier table already took names the later one by its whole path (``run1/genes.parquet`` and
        ``run2/genes.parquet`` stay apart).

    Returns
    -------
    dict of str to Path
        Name -> path, in the order given: the names the report's rows carry.

    Raises
    ------
    BioprofileInputError
        Two tables end up with one name (a ``NAME`` given twice, or the same path twice).
    """
    named: dict[str, Path] = {}
    for item in embeddings:
        text = str(item)
        name, sep, path = text.partition("=")
        if sep and name and not Path(text).exists():
            candidates = [name]
        else:
            name, path = Path(text).stem, text
            candidates = [name, text]
        free = [candidate for candidate in candidates if candidate not in named]
        if not free:
            raise BioprofileInputError(
                f"two embeddings are named {name!r}: name them apart with NAME=PATH", argument="embeddings"
            )
        named[free[0]] = Path(path)
    return named


def model_label(model: str | Path | None) -> str:
    """A model's name in a report: a local folder by its own name (not its whole path), a hub id as it is.

    Parameters
    ----------
    model
        A model folder, a hub id, or ``None`` (the default model).

    Returns
    -------
    str
        ``"default"`` for ``None``; the folder's name for an existing folder; else ``model`` as given.
    """
    if model is None:
        return "default"
    path = Path(model).expanduser()
    return path.name if path.is_dir() else str(model)
