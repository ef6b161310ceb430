"""bioprofile: gene and protein embeddings by way of LLM-written profiles, and Balanced Fine-Tuning."""

import importlib
from typing import Any

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
    "pl",
    "tl",
]

# scanpy's namespaces: bioprofile.tl (cells on AnnData) and bioprofile.pl (plots), imported on first use because
# the cells chain pulls in scipy, which `import bioprofile` and the CLI's start-up need not pay for.
_NAMESPACES = ("pl", "tl")


def __getattr__(name: str) -> Any:
    """The ``tl`` and ``pl`` namespaces, imported when first used (``bioprofile.tl.embed_cells``)."""
    if name in _NAMESPACES:
        return importlib.import_module(f"bioprofile.{name}")
    raise AttributeError(f"module 'bioprofile' has no attribute {name!r}")
