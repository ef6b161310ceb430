"""Atomic output files: written under a temporary name in the same folder, then renamed into place.

A reader (or a rerun after a crash) sees either the old file or the complete new one, never half of one. The
temporary file is created with ``O_EXCL`` and the mode an ordinary ``open()`` gives (``0o666`` less the umask), not
:func:`tempfile.mkstemp`'s private ``0o600``, so outputs follow the user's umask like any other tool's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


def _temporary_sibling(path: Path) -> Path:
    """A new empty file beside ``path``, created exclusively with the umask's mode."""
    for _ in range(100):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends without error.

    The temporary file exists (empty) when the block starts, so writers that open by name (pyarrow, h5py,
    ``torch.save``, matplotlib) can write to it. On an error it is removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        The final file; its folder must exist.

    Yields
    ------
    Path
        The temporary file to fill.
    """
    path = Path(path)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))
