"""``python -m bioprofile.cli``: the same command line as the ``bioprofile`` script (used by torchrun, accelerate)."""

from bioprofile.cli import app

app()
