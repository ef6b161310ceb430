"""Paths every benchmark script shares: the checkout root and the real data folder.

The data folder is ``$BIOPROFILE_SHARED_DATA`` when set, else ``../shared/data`` beside the checkout (the layout the
tests use too).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOPROFILE_SHARED_DATA") or ROOT.parent / "shared" / "data").expanduser()
