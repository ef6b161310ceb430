"""bioprofile: gene and protein embeddings by way of LLM-written profiles, and Balanced Fine-Tuning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bioprofile")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from bioprofile.errors import BioprofileInputError
from bioprofile.pipeline import embed_genes

__all__ = ["BioprofileInputError", "__version__", "embed_genes"]
