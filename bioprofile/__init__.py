"""bioprofile: gene and protein embeddings by way of LLM-written profiles, and Balanced Fine-Tuning."""

from bioprofile._version import __version__
from bioprofile.errors import BioprofileInputError
from bioprofile.pipeline import embed_genes

__all__ = ["BioprofileInputError", "__version__", "embed_genes"]
