"""Checks that an output can be written, made before any expensive work: a file path, or a folder a run fills.

Nothing is created or written here; the writers (:mod:`bioprofile.atomic`) do that afterwards. Every failure is a
:class:`~bioprofile.errors.BioprofileInputError` naming the argument, so the command line turns it into one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from bioprofile.errors import BioprofileInputError

__all__ = ["check_output_folder", "check_output_path"]


def check_output_path(path: str | Path, *, overwrite: bool) -> None:
    """Fail before any work if the output cannot be written or would replace a file without permission.

    Raises
    ------
    BioprofileInputError
        The folder is missing or read-only; ``path`` is a folder; or ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if not path.parent.is_dir():
        what = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise BioprofileInputError(f"output directory {path.parent} {what}: create it first")
    if path.is_dir():
        raise BioprofileInputError(
            f"output {path} is a folder: give the path of a file inside it",
            argument="output",
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise BioprofileInputError(
            f"output directory {path.parent} is not writable: choose a folder you can write to",
            argument="output",
        )
    if path.exists() and not overwrite:
        raise BioprofileInputError(
            f"{path} already exists: choose another path, or set overwrite to replace it",
            argument="overwrite",
        )


def check_output_folder(
    folder: str | Path,
    files: Sequence[str] | None = None,
    *,
    overwrite: bool = False,
    argument: str = "output",
) -> Path:
    """Fail before any work unless ``folder`` can become the folder a run writes into.

    Parameters
    ----------
    folder
        A writable folder, or a path that does not exist yet below a writable folder (the writer makes it).
    files
        The names the run writes in ``folder``: one that exists already is refused unless ``overwrite``. ``None``:
        the run owns the whole folder (a trained model, an adapter), so a folder that holds anything is refused
        unless ``overwrite``.
    overwrite
        Write over what is there.
    argument
        The argument's name in messages (``output``, ``output_dir``).

    Returns
    -------
    Path
        ``folder``; nothing is created.

    Raises
    ------
    BioprofileInputError
        ``folder`` (or the nearest existing folder above it) is a file or read-only, or holds outputs of an
        earlier run and ``overwrite`` is false.
    """
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise BioprofileInputError(
            f"{argument} {path} is a file, not a folder: choose a folder", argument=argument
        )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BioprofileInputError(
            f"{argument} {path} cannot be created: {existing} is a file, not a folder", argument=argument
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BioprofileInputError(
            f"{argument} {path} cannot be written: {existing} is read-only; choose a folder you can write to",
            argument=argument,
        )
    if overwrite or not path.is_dir():
        return path
    if files is None:
        if any(path.iterdir()):
            raise BioprofileInputError(
                f"{argument} {path} already holds files (an earlier run?): choose another folder, or set overwrite "
                "to write over them",
                argument="overwrite",
            )
        return path
    taken = [name for name in files if (path / name).exists()]
    if taken:
        raise BioprofileInputError(
            f"{argument} {path} already holds {', '.join(taken)} from an earlier run: choose another folder, or set "
            "overwrite to replace them",
            argument="overwrite",
        )
    return path
