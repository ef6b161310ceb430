"""Cell embeddings from gene embeddings on AnnData: GenePT-w (expression-weighted gene vectors) and GenePT-s.

GenePT-s writes each cell's top expressed genes as a sentence and encodes it as text. Results follow scanpy's
``sc.tl`` contract: the vectors in ``obsm[key_added]`` (default ``"X_bioprofile"``), their provenance in
``uns[key_added]``, and ``copy=True`` returning a new AnnData instead of writing in place.

Modules
-------
_checks
    Expression sanity before compute: :func:`check_expression`, :func:`expression_stats` (negative, non-finite,
    already-logged data).
_match
    :class:`GeneMatch` and :func:`match_genes`: which ``var`` columns have a gene vector, coverage thresholds.
_rows
    The row blocks every step reads ``X`` in, computed one at a time, on threads, or on Dask workers, with the same
    block boundaries (and so the same numbers) each way.
_dask
    Cells on Dask: the ``distributed`` client (a scheduler's address, or a local cluster) and ``X`` read lazily
    (``anndata.experimental.read_elem_lazy``); the optional ``dask`` extra.
_genept
    The array maths: :func:`genept_w` with :class:`GeneptWOptions`, :func:`genept_s_sentences`, the per-cell
    normalisation.
_methods
    The method registry: :class:`CellMethod` (an options class, ``embed``, ``provenance``),
    :func:`register_method`, and the input (:class:`CellInput`) and result (:class:`CellVectors`) of a method.
_genept_methods
    GenePT-w (:class:`GeneptW`) and GenePT-s (:class:`GeneptS`, options :class:`GeneptSOptions`): the registry's
    first two entries, one registration line each.
_anndata
    :func:`embed_cells` on an AnnData (in memory or backed), with :class:`EmbedLimits`: reads and checks the
    expression, runs the registered method, records the provenance.
_io
    :func:`embed_cells_file`: an ``.h5ad`` on disk streamed in row chunks, the result written into a copy.
_files
    :func:`embed_cells_files`: several ``.h5ad`` files (paths or glob patterns) with the same genes, one output
    each, all checked before any work.
_multimodal
    :func:`embed_multimodal`: RNA and ADT cells in one space, per-modality provenance.
_varm
    :func:`gene_vectors_to_varm`: gene vectors into ``varm`` of a cell AnnData, genes without one recorded.

:mod:`bioprofile.tl` gathers the AnnData functions under scanpy's name.
"""

from __future__ import annotations

from bioprofile.cells._anndata import KEY_ADDED, EmbedLimits, embed_cells
from bioprofile.cells._checks import NONFINITE, ExpressionStats, check_expression, expression_stats
from bioprofile.cells._files import embed_cells_files
from bioprofile.cells._genept import GeneptWOptions, genept_s_sentences, genept_w
from bioprofile.cells._genept_methods import GeneptS, GeneptSOptions, GeneptW
from bioprofile.cells._io import embed_cells_file
from bioprofile.cells._match import MIN_COVERAGE, WARN_COVERAGE, GeneMatch, match_genes
from bioprofile.cells._methods import (
    CellInput,
    CellMethod,
    CellVectors,
    options_for,
    register_method,
    registered_methods,
    unregister_method,
)
from bioprofile.cells._multimodal import CELL_ID_KEY, embed_multimodal
from bioprofile.cells._varm import VARM_KEY, gene_vectors_to_varm

__all__ = [
    "CELL_ID_KEY",
    "KEY_ADDED",
    "NONFINITE",
    "VARM_KEY",
    "MIN_COVERAGE",
    "WARN_COVERAGE",
    "CellInput",
    "CellMethod",
    "CellVectors",
    "EmbedLimits",
    "ExpressionStats",
    "GeneMatch",
    "GeneptS",
    "GeneptSOptions",
    "GeneptW",
    "GeneptWOptions",
    "check_expression",
    "embed_cells",
    "embed_cells_file",
    "embed_cells_files",
    "embed_multimodal",
    "expression_stats",
    "genept_s_sentences",
    "gene_vectors_to_varm",
    "genept_w",
    "match_genes",
    "options_for",
    "register_method",
    "registered_methods",
    "unregister_method",
]
