"""Tools on AnnData the scanpy way (``sc.tl``): results go into the AnnData, ``copy=True`` returns a new one.

``import bioprofile as bp`` then ``bp.tl.embed_cells(adata, "genes.parquet", key_added="X_bioprofile")`` puts cell
vectors in ``obsm[key_added]`` and their provenance in ``uns[key_added]``; ``bp.pl.cell_embedding`` draws them.

- :func:`embed_cells`: GenePT-w / GenePT-s cell embeddings from gene embeddings.
- :func:`embed_multimodal`: RNA and ADT (CITE-seq) cells in one space.
- :func:`gene_vectors_to_varm`: each gene's vector into ``varm[key_added]``, genes without one recorded.

They are the functions of :mod:`bioprofile.cells`, gathered under the name scanpy users reach for.
"""

from bioprofile.cells import embed_cells, embed_multimodal, gene_vectors_to_varm

__all__ = ["embed_cells", "embed_multimodal", "gene_vectors_to_varm"]
