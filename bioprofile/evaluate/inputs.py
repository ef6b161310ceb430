"""What a benchmark reads: the tables it compares, each under a name, the cells it scores, a model's name.

The command line and ``benchmarks/`` scripts name their inputs the same way through these functions, so a table is
called the same in every report.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bioprofile.display import display_value
from bioprofile.embeddings import UNREADABLE_FILE_ERRORS
from bioprofile.errors import BioprofileInputError

__all__ = ["model_label", "named_tables", "read_scored_cells"]


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


def read_scored_cells(path: str | Path) -> Any:
    """The AnnData of cell embeddings a cell benchmark scores, from an ``.h5ad`` file.

    Parameters
    ----------
    path
        An ``.h5ad`` with the embeddings in ``obsm``, as :func:`bioprofile.cells.embed_cells_file` writes it.

    Returns
    -------
    anndata.AnnData
        The whole file, in memory.

    Raises
    ------
    BioprofileInputError
        The file is missing, a folder, or not readable as h5ad (one line, with the reader's reason).
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise BioprofileInputError(
            f"input file {path} {what}: pass an .h5ad from bioprofile.cells.embed_cells_file", argument="path"
        )
    try:
        return ad.read_h5ad(path)
    except UNREADABLE_FILE_ERRORS as err:
        reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 120)
        raise BioprofileInputError(
            f"cannot read {path} as h5ad ({reason}): pass an AnnData .h5ad file from "
            "bioprofile.cells.embed_cells_file",
            argument="path",
        ) from None
