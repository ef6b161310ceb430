"""Cell embeddings on an AnnData the ``sc.tl`` way: ``obsm[key_added]``, ``uns[key_added]``, ``copy``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bioprofile._version import __version__
from bioprofile.cells._checks import NONFINITE, NonFinite, check_expression, zero_nonfinite
from bioprofile.cells._genept import GeneptWOptions, genept_s_sentences, genept_w
from bioprofile.cells._match import (
    MIN_COVERAGE,
    WARN_COVERAGE,
    GeneMatch,
    GeneTable,
    embedding_source,
    match_genes,
    vector_table,
)
from bioprofile.encoders import TextEncoder, get_encoder
from bioprofile.encoders.cached import encode_texts
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import hgnc_symbols
from bioprofile.store import Store, open_store

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "KEY_ADDED",
    "EmbedLimits",
    "GeneptSOptions",
    "Method",
    "embed_cells",
    "expression_matrix",
    "method_options",
    "var_identifiers",
]

Method = Literal["genept-w", "genept-s"]

#: Default ``obsm`` key of cell embeddings, and ``uns`` key of their provenance.
KEY_ADDED = "X_bioprofile"


@dataclass(frozen=True)
class GeneptSOptions:
    """The options of GenePT-s (each cell's top expressed genes as a sentence, encoded as text).

    Parameters
    ----------
    top_n
        Genes per sentence at most.
    encoder
        The text encoder, or a spec for :func:`~bioprofile.encoders.get_encoder` (``None``: the default MiniLM).
    store
        The cache sentences are encoded through (``None``: the default store, opened for the call).
    """

    top_n: int = 50
    encoder: TextEncoder | str | Path | None = None
    store: Store | None = None

    def __post_init__(self) -> None:
        """Reject a ``top_n`` below 1 before any work."""
        if self.top_n < 1:
            raise BioprofileInputError(f"top_n must be at least 1, got {self.top_n}", argument="top_n")


@dataclass(frozen=True)
class EmbedLimits:
    """The bounds a cell embedding works within: rows per chunk, gene-coverage thresholds, non-finite values.

    Parameters
    ----------
    chunk_size
        Cells processed (and, for a backed AnnData, read from disk) at a time; bounds temporary memory.
    min_coverage
        Fail when fewer than this fraction of the genes have a vector (see :func:`match_genes`); lower it for a
        small panel (20 marker genes of 765 are 2.6%).
    warn_coverage
        Warn when fewer than this fraction of the genes have a vector.
    nonfinite
        ``"raise"``: refuse ``NaN`` / ``inf`` expression before any compute; ``"zero"``: read those values as
        zero expression, with a warning that counts them (and their count in provenance).
    """

    chunk_size: int = 10_000
    min_coverage: float = MIN_COVERAGE
    warn_coverage: float = WARN_COVERAGE
    nonfinite: NonFinite = "raise"

    def __post_init__(self) -> None:
        """Reject a ``chunk_size`` below 1, a coverage outside [0, 1] or an unknown ``nonfinite``, before any work."""
        if self.chunk_size < 1:
            raise BioprofileInputError(
                f"chunk_size must be at least 1, got {self.chunk_size}", argument="chunk_size"
            )
        for name in ("min_coverage", "warn_coverage"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise BioprofileInputError(
                    f"{name} is a fraction of the genes, from 0 to 1; got {value}", argument=name
                )
        if self.nonfinite not in NONFINITE:
            raise BioprofileInputError(
                f"unknown nonfinite={self.nonfinite!r}: choose 'raise' or 'zero'", argument="nonfinite"
            )


def method_options(method: Method | GeneptWOptions | GeneptSOptions) -> GeneptWOptions | GeneptSOptions:
    """The options object of ``method``: an options object as it is, a method name with its default options.

    Parameters
    ----------
    method
        ``"genept-w"``, ``"genept-s"``, or a :class:`GeneptWOptions` / :class:`GeneptSOptions`.

    Returns
    -------
    GeneptWOptions or GeneptSOptions
        The options the method runs with.
    """
    if isinstance(method, (GeneptWOptions, GeneptSOptions)):
        return method
    if method == "genept-w":
        return GeneptWOptions()
    if method == "genept-s":
        return GeneptSOptions()
    raise BioprofileInputError(
        f"unknown method {method!r}: choose 'genept-w' or 'genept-s'", argument="method"
    )


def var_identifiers(adata: AnnData, gene_key: str | None, use_raw: bool) -> tuple[list[str], str]:
    """The gene identifier of each column of ``adata`` (or of its ``.raw``) and how messages name them.

    Parameters
    ----------
    adata
        Cells x genes.
    gene_key
        ``var`` column with the identifiers; ``None`` uses ``var_names``.
    use_raw
        Take ``var`` from ``adata.raw`` (which must exist: :func:`expression_matrix` checks it).

    Returns
    -------
    tuple of (list of str, str)
        The identifiers, and ``"var_names"`` or ``"var['<gene_key>']"``.
    """
    var = adata.raw.var if use_raw else adata.var
    if gene_key is None:
        return [str(v) for v in var.index], "var_names"
    if gene_key not in var.columns:
        raise BioprofileInputError(
            f"var has no column {gene_key!r} (columns: {', '.join(map(str, var.columns)) or 'none'}): "
            "pass one of those as gene_key, or leave it out to use var_names",
            argument="gene_key",
        )
    return [str(v) for v in var[gene_key]], f"var[{gene_key!r}]"


def expression_matrix(adata: AnnData, layer: str | None, use_raw: bool) -> Any:
    """The expression matrix of ``adata``: ``layers[layer]``, ``raw.X`` or ``X`` (backed datasets stay on disk).

    Parameters
    ----------
    adata
        Cells x genes.
    layer
        The layer to take instead of ``X``.
    use_raw
        Take ``adata.raw.X`` instead of ``X``.

    Returns
    -------
    array, scipy sparse matrix or backed dataset
        Cells x genes, row-sliceable.
    """
    if use_raw and layer is not None:
        raise BioprofileInputError("pass either use_raw or layer, not both", argument="use_raw")
    if use_raw:
        if adata.raw is None:
            raise BioprofileInputError(
                "the AnnData has no .raw: leave out use_raw, or name an expression layer", argument="use_raw"
            )
        return adata.raw.X
    if layer is not None:
        if layer not in adata.layers:
            raise BioprofileInputError(
                f"no layer {layer!r} (layers: {', '.join(adata.layers) or 'none'}): pass one of those or none",
                argument="layer",
            )
        return adata.layers[layer]
    if adata.X is None:
        raise BioprofileInputError(
            "the AnnData has no X: pass the expression layer as layer", argument="layer"
        )
    return adata.X


def embed_cells(
    adata: AnnData,
    embeddings: GeneTable | None = None,
    *,
    method: Method | GeneptWOptions | GeneptSOptions = "genept-w",
    gene_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    limits: EmbedLimits | None = None,
    key_added: str = KEY_ADDED,
    copy: bool = False,
) -> AnnData | None:
    """Embed each cell of ``adata`` from gene embeddings into ``obsm[key_added]``, provenance in ``uns[key_added]``.

    Parameters
    ----------
    adata
        Cells x genes, in memory or backed (``anndata.read_h5ad(path, backed="r")``: rows are read in chunks).
    embeddings
        Gene vectors (:class:`GeneEmbeddings`, ``{symbol: vector}`` or a file :meth:`GeneEmbeddings.read`
        reads). Required for GenePT-w; for GenePT-s it only restricts which genes may appear in sentences
        (``None``: every gene HGNC knows).
    method
        ``"genept-w"`` (weighted gene vectors) or ``"genept-s"`` (top genes as a sentence, encoded as text) with
        default options, or a :class:`GeneptWOptions` / :class:`GeneptSOptions` naming the method and its options.
    gene_key
        ``var`` column with gene symbols or Ensembl ids; ``None`` uses ``var_names``.
    layer
        Expression from ``layers[layer]`` instead of ``X``.
    use_raw
        Expression (and ``var``) from ``.raw`` instead of ``X``.
    limits
        Rows per chunk and gene-coverage thresholds (``None``: :class:`EmbedLimits` defaults).
    key_added
        ``obsm`` key of the cell vectors and ``uns`` key of their provenance, so calls with different keys keep
        each other's results.
    copy
        Return a new AnnData with the result and leave ``adata`` untouched (needs ``adata`` in memory).

    Returns
    -------
    AnnData or None
        The new AnnData with ``copy=True``; ``None`` when ``adata`` was written in place.

    Raises
    ------
    BioprofileInputError
        Unknown method, missing layer / column / raw, almost no gene matching the embeddings, ``copy=True``
        on a backed AnnData; or, before any compute, expression ``normalize="log1p"`` cannot take (negative
        values, ``uns["log1p"]`` already recorded) or ``NaN`` / ``inf`` values (unless ``limits.nonfinite`` is
        ``"zero"``).
    """
    options = method_options(method)
    limits = EmbedLimits() if limits is None else limits
    if copy and adata.isbacked:
        raise BioprofileInputError(
            "copy=True needs an AnnData in memory, not a backed one: leave out copy, or embed the file with "
            "embed_cells_file",
            argument="copy",
        )
    X = expression_matrix(adata, layer, use_raw)  # first: it says what is wrong when use_raw finds no .raw
    names, what = var_identifiers(adata, gene_key, use_raw)
    source = "raw" if use_raw else (f"layers[{layer!r}]" if layer else "X")
    stats = check_expression(
        X,
        normalize=options.normalize if isinstance(options, GeneptWOptions) else "none",
        source=source,
        # scanpy's log1p records uns["log1p"] for X; .raw and layers are whatever was stored there
        logged=layer is None and not use_raw and "log1p" in adata.uns,
        nonfinite=limits.nonfinite,
        chunk_size=limits.chunk_size,
    )
    if stats.n_nonfinite:
        X = zero_nonfinite(X)
    if isinstance(options, GeneptWOptions):
        if embeddings is None:
            raise BioprofileInputError(
                "GenePT-w needs gene embeddings: pass embeddings (from embed-genes)", argument="embeddings"
            )
        table, emb_provenance = vector_table(embeddings)
        match = match_genes(
            names, table, min_coverage=limits.min_coverage, warn_coverage=limits.warn_coverage, what=what
        )
        cells = genept_w(X, match, options, chunk_size=limits.chunk_size)
        recorded = options.provenance()
    else:
        cells, match, emb_provenance, recorded = _embed_sentences(X, names, what, embeddings, options, limits)
    if stats.n_nonfinite:
        recorded = {**recorded, "nonfinite_values_zeroed": stats.n_nonfinite}
    provenance = _provenance(
        "genept-w" if isinstance(options, GeneptWOptions) else "genept-s",
        key_added,
        what,
        layer,
        use_raw,
        match,
        emb_provenance,
        recorded,
    )
    # the copy is made after the work, so a failure wastes none; the input is never written
    target = adata.copy() if copy else adata
    target.obsm[key_added] = cells
    target.uns[key_added] = provenance
    return target if copy else None


def _embed_sentences(
    X: Any,
    names: list[str],
    what: str,
    embeddings: GeneTable | None,
    options: GeneptSOptions,
    limits: EmbedLimits,
) -> tuple[np.ndarray, GeneMatch, dict, dict]:
    if embeddings is None:
        table: Mapping[str, Any] = dict.fromkeys(hgnc_symbols(), np.zeros(1, dtype=np.float32))
        emb_provenance: dict = {}
    else:
        table, emb_provenance = vector_table(embeddings)
    match = match_genes(
        names, table, min_coverage=limits.min_coverage, warn_coverage=limits.warn_coverage, what=what
    )
    sentences = genept_s_sentences(X, match, top_n=options.top_n, chunk_size=limits.chunk_size)
    encoder = options.encoder if hasattr(options.encoder, "encode") else get_encoder(options.encoder)
    with open_store(options.store) as cache:
        cells = encode_texts(sentences, encoder, cache)
    return cells, match, emb_provenance, {"top_n": options.top_n, "encoder": encoder.id}


def _provenance(
    method: str,
    key_added: str,
    what: str,
    layer: str | None,
    use_raw: bool,
    match: GeneMatch,
    emb_provenance: dict,
    options: dict,
) -> dict:
    source = embedding_source(emb_provenance)
    prov = {
        "method": method,
        "key_added": key_added,
        "genes_from": what,
        "expression": "raw" if use_raw else (f"layers[{layer!r}]" if layer else "X"),
        "gene_coverage": match.summary(),
        "embeddings": source,
        "bioprofile_version": __version__,
        **options,
    }
    if "encoder" not in prov and "encoder" in source:
        prov["encoder"] = source["encoder"]
    # h5ad stores dicts of scalars, strings and lists; round-trip through JSON so None/tuples never trip the writer
    return json.loads(json.dumps(prov, default=str), object_hook=_none_to_str)


def _none_to_str(obj: dict) -> dict:
    return {k: ("" if v is None else v) for k, v in obj.items()}
