"""Where bioprofile keeps what it computes or downloads: one root, ``$BIOPROFILE_CACHE_DIR`` or the user cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The bioprofile cache root: ``$BIOPROFILE_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("bioprofile")``.

    Under it: ``store.sqlite`` (profiles and vectors), ``models/`` (converted default generator), ``data/``
    (downloaded datasets), ``hgnc/`` (the parsed HGNC index).
    """
    env = os.environ.get("BIOPROFILE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bioprofile"))
