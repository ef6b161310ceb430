"""Stable identifiers for local models, used in cache keys and provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path

_SMALL_FILE = 4 << 20  # configs, tokenizers, vocabularies: hash whole
_SAMPLE = 1 << 20  # large weight files: hash size + head + tail (hashing GBs on every run would dominate)


def model_id(model: str | Path) -> str:
    """An identifier that changes whenever a model directory's files change.

    For a local directory: ``"<dir name>@<12 hex digits>"`` from the contents of its small files and the size,
    head and tail of its weight files. For anything else (a hub id resolved from the local cache): the id itself.
    """
    path = Path(model)
    if not path.is_dir():
        return str(model)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with open(file, "rb") as fh:
            if size <= _SMALL_FILE:
                digest.update(fh.read())
            else:
                digest.update(fh.read(_SAMPLE))
                fh.seek(size - _SAMPLE)
                digest.update(fh.read(_SAMPLE))
    return f"{path.resolve().name}@{digest.hexdigest()[:12]}"
