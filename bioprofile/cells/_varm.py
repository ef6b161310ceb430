"""Gene vectors beside the genes of a cell AnnData: ``varm[key_added]``, which genes have one in ``var`` and ``uns``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from bioprofile._version import __version__
from bioprofile.cells._anndata import var_identifiers
from bioprofile.cells._match import GeneTable, embedding_source, match_genes, vector_table
from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["VARM_KEY", "gene_vectors_to_varm"]

#: Default ``varm`` key of gene vectors (and ``uns`` key of their record).
VARM_KEY = "bioprofile"


def gene_vectors_to_varm(
    adata: AnnData,
    embeddings: GeneTable,
    *,
    gene_key: str | None = None,
    key_added: str = VARM_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Put each gene's vector into ``varm[key_added]``, the row of a gene without one left zero and said so.

    ``varm`` needs a row for every gene; a gene the embeddings do not cover gets a zero row (never ``NaN``, which
    would poison any product with it), ``var[f"{key_added}_has_vector"]`` is ``False`` for it, and
    ``uns[key_added]`` lists those genes with the counts and where the vectors came from.

    Parameters
    ----------
    adata
        Cells x genes, in memory.
    embeddings
        Gene vectors: :class:`~bioprofile.embeddings.GeneEmbeddings`, ``{symbol: vector}`` or a file it reads.
    gene_key
        ``var`` column with gene symbols or Ensembl ids; ``None`` uses ``var_names``.
    key_added
        ``varm`` key of the vectors, ``uns`` key of their record, prefix of the ``var`` column.
    copy
        Return a new AnnData and leave ``adata`` untouched.

    Returns
    -------
    AnnData or None
        The new AnnData with ``copy=True``; ``None`` when ``adata`` was written in place.

    Raises
    ------
    BioprofileInputError
        A backed AnnData, a missing ``gene_key`` column, or no gene with a vector.

    Examples
    --------
    >>> bioprofile.tl.gene_vectors_to_varm(adata, "genes.parquet")  # doctest: +SKIP
    >>> adata.varm["bioprofile"].shape  # doctest: +SKIP
    (765, 384)
    """
    if adata.isbacked:
        raise BioprofileInputError(
            "gene vectors go into varm of an AnnData in memory, not a backed one: read it without backed",
            argument="adata",
        )
    table, provenance = vector_table(embeddings)
    names, what = var_identifiers(adata, gene_key, use_raw=False)
    # every gene gets a row whatever the coverage: a small panel is a valid varm, and the record says which
    match = match_genes(names, table, min_coverage=0.0, warn_coverage=0.0, what=what)
    has_vector = np.zeros(match.n_vars, dtype=bool)
    has_vector[match.var_positions] = True
    record = {
        "genes_from": what,
        "n_vars": match.n_vars,
        "n_with_vector": match.n_matched,
        "genes_without_vector": [str(adata.var_names[i]) for i in np.flatnonzero(~has_vector)],
        "embeddings": embedding_source(provenance),
        "bioprofile_version": __version__,
    }
    target = adata.copy() if copy else adata
    target.varm[key_added] = match.full_matrix()
    target.var[f"{key_added}_has_vector"] = has_vector
    # h5ad stores plain data: None and tuples are made JSON-safe first
    target.uns[key_added] = json.loads(json.dumps(record, default=str))
    return target if copy else None
