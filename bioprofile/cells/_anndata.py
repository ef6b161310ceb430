"""Cell embeddings on an AnnData the ``sc.tl`` way: ``obsm[key_added]``, ``uns[key_added]``, ``copy``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bioprofile._version import __version__
from bioprofile.cells._checks import NONFINITE, NonFinite, check_expression, zero_nonfinite
from bioprofile.cells._dask import dask_session, lazy_expression
from bioprofile.cells._match import MIN_COVERAGE, WARN_COVERAGE, GeneMatch, GeneTable, embedding_source
from bioprofile.cells._methods import CellInput, resolve_method
from bioprofile.cells._rows import workers_for
from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["KEY_ADDED", "EmbedLimits", "embed_cells", "expression_matrix", "var_identifiers"]

#: Default ``obsm`` key of cell embeddings, and ``uns`` key of their provenance.
KEY_ADDED = "X_bioprofile"


@dataclass(frozen=True)
class EmbedLimits:
    """What a cell embedding works with: rows per chunk, workers, Dask, gene-coverage thresholds, non-finite values.

    None of ``chunk_size``, ``workers``, ``dask_address`` changes the numbers: every row block is computed the same
    way, on one thread, on several, or on a Dask cluster.

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
    workers
        Row blocks computed at once: threads in this process without Dask, worker processes of a local Dask
        cluster (``None``: one per usable core).
    dask_address
        ``None``: no Dask; ``"local"``: a local ``distributed`` cluster of ``workers`` processes, started for the
        call; otherwise a Dask scheduler's address (``tcp://host:8786``), whose workers must see the input files.
        Needs the dask extra (``pip install 'bioprofile[dask]'``).
    dask_timeout
        Seconds a Dask scheduler has to answer before the call fails (before any work).
    """

    chunk_size: int = 10_000
    min_coverage: float = MIN_COVERAGE
    warn_coverage: float = WARN_COVERAGE
    nonfinite: NonFinite = "raise"
    workers: int | None = None
    dask_address: str | None = None
    dask_timeout: float = 5.0

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
        workers_for(self.workers)
        if self.dask_address is not None and (
            not isinstance(self.dask_address, str) or not self.dask_address
        ):
            raise BioprofileInputError(
                f"dask_address is a scheduler's address or 'local', got {self.dask_address!r}",
                argument="dask_address",
            )
        if not self.dask_timeout > 0:  # also refuses NaN
            raise BioprofileInputError(
                f"dask_timeout is a number of seconds above 0, got {self.dask_timeout}",
                argument="dask_timeout",
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


def _file_element(layer: str | None, use_raw: bool) -> str:
    """Where the expression matrix lives in an ``.h5ad`` file."""
    return "raw/X" if use_raw else (f"layers/{layer}" if layer else "X")


def embed_cells(
    adata: AnnData,
    embeddings: GeneTable | None = None,
    *,
    method: Any = "genept-w",
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
        A registered method by name, with its default options: ``"genept-w"`` (weighted gene vectors),
        ``"genept-s"`` (top genes as a sentence, encoded as text), or one added with :func:`register_method`; or
        an instance of a method's options class (:class:`GeneptWOptions`, :class:`GeneptSOptions`), naming the
        method and its options.
    gene_key
        ``var`` column with gene symbols or Ensembl ids; ``None`` uses ``var_names``.
    layer
        Expression from ``layers[layer]`` instead of ``X``.
    use_raw
        Expression (and ``var``) from ``.raw`` instead of ``X``.
    limits
        Rows per chunk, workers, Dask, gene-coverage thresholds (``None``: :class:`EmbedLimits` defaults). With
        ``limits.dask_address``, a backed ``adata``'s expression is read lazily by the Dask workers.
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
        on a backed AnnData; or, before any compute, negative expression (scaled data: pass ``use_raw`` or a
        counts ``layer``), expression ``normalize="log1p"`` cannot take (``uns["log1p"]`` already recorded) or
        ``NaN`` / ``inf`` values (unless ``limits.nonfinite`` is ``"zero"``).
    """
    name, chosen, options = resolve_method(method)
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
    # no address: no Dask, nothing started; otherwise connected (or a local cluster started) before any work
    with dask_session(limits.dask_address, workers=limits.workers, timeout=limits.dask_timeout) as client:
        if limits.dask_address is not None:
            X = lazy_expression(
                adata, X, _file_element(layer, use_raw), chunk_size=limits.chunk_size, client=client
            )
        stats = check_expression(
            X,
            # a method whose options normalise (GenePT-w's normalize="log1p") gets the check for it
            normalize=getattr(options, "normalize", "none"),
            source=source,
            # scanpy's log1p records uns["log1p"] for X; .raw and layers are whatever was stored there
            logged=layer is None and not use_raw and "log1p" in adata.uns,
            nonfinite=limits.nonfinite,
            chunk_size=limits.chunk_size,
            workers=limits.workers,
        )
        if stats.n_nonfinite:
            X = zero_nonfinite(X)
        result = chosen.embed(CellInput(X, names, what, embeddings, limits), options)
    recorded = {**chosen.provenance(options), **result.recorded}
    if stats.n_nonfinite:
        recorded = {**recorded, "nonfinite_values_zeroed": stats.n_nonfinite}
    provenance = _provenance(
        name, key_added, what, layer, use_raw, result.match, dict(result.embeddings), recorded
    )
    # the copy is made after the work, so a failure wastes none; the input is never written
    target = adata.copy() if copy else adata
    target.obsm[key_added] = result.vectors
    target.uns[key_added] = provenance
    return target if copy else None


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
