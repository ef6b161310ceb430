"""bioprofile: gene and protein embeddings by way of LLM-written profiles, and Balanced Fine-Tuning."""

from bioprofile._version import __version__
from bioprofile.embeddings import EntityEmbeddings, GeneEmbeddings
from bioprofile.entities import Entity
from bioprofile.errors import BioprofileInputError
from bioprofile.pipeline import embed_entities, embed_genes, embed_proteins
from bioprofile.profiles.backends import make_generator
from bioprofile.profiles.generate import GenerationSettings

__all__ = [
    "BioprofileInputError",
    "Entity",
    "EntityEmbeddings",
    "GeneEmbeddings",
    "GenerationSettings",
    "__version__",
    "embed_entities",
    "embed_genes",
    "embed_proteins",
    "make_generator",
]
