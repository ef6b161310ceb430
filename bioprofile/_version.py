"""The installed package version, in a module of its own so any layer can record it without importing the root."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bioprofile")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
