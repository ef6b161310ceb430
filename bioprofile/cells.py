"""Cell embeddings from gene embeddings on AnnData: GenePT-w (expression-weighted gene vectors) and GenePT-s
(each cell's top expressed genes as a sentence, encoded as text).

GenePT-w, for a cell with expression ``x`` over the genes that have a vector (matrix ``E``, one row per gene)::

    x' = x                                   normalize="none"   (use X as it is, e.g. already log-normalised)
    x' = log1p(x / sum(x) * target_sum)      normalize="log1p"  (normalize_total over *all* genes, then log1p)
    v  = x'[matched] @ E
    v /= n_matched                           scale="matched"    (GenePT's choice: one constant for every cell)
    v /= sum(x'[matched])                    scale="total"      (a true weighted average; empty cells stay 0)
    v /= ||v||                               l2=True

Every step is per cell, so row chunks give the same result as the whole matrix: in-memory data is processed in
chunks of ``chunk_size`` rows to bound temporary memory, and an ``.h5ad`` file on disk is streamed chunk by chunk
(CSR, CSC-free) without ever loading ``X`` whole. Sparse ``X`` stays sparse: only ``chunk @ E`` is dense.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from bioprofile._version import __version__
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    from anndata import AnnData

    from bioprofile.encoders import TextEncoder
    from bioprofile.store import Store

__all__ = [
    "GeneMatch",
    "embed_cells",
    "embed_cells_file",
    "embed_multimodal",
    "genept_s_sentences",
    "genept_w",
    "match_genes",
]

Normalize = Literal["none", "log1p"]
Scale = Literal["matched", "total", "none"]
Method = Literal["genept-w", "genept-s"]

#: Default obsm key for cell embeddings.
KEY_ADDED = "X_bioprofile"
#: Below this fraction of matched genes embedding fails (almost certainly the wrong id column).
MIN_COVERAGE = 0.05
#: Below this fraction embedding goes on with a warning giving the counts.
WARN_COVERAGE = 0.5


@dataclass
class GeneMatch:
    """Which columns of ``X`` have a gene vector.

    Attributes
    ----------
    var_positions
        Column indices into ``X`` (``var``) of the matched genes, ascending.
    vectors
        ``float32`` array ``(len(var_positions), dim)``: the vector of each matched column's gene.
    symbols
        Approved symbol of each matched column.
    n_vars
        Number of columns of ``X``.
    unmatched
        ``var`` entries without a vector, in ``var`` order.
    """

    var_positions: np.ndarray
    vectors: np.ndarray
    symbols: list[str]
    n_vars: int
    unmatched: list[str] = field(default_factory=list)

    @property
    def n_matched(self) -> int:
        return len(self.var_positions)

    @property
    def coverage(self) -> float:
        return self.n_matched / self.n_vars if self.n_vars else 0.0

    def full_matrix(self) -> np.ndarray:
        """``(n_vars, dim)`` matrix with zero rows for unmatched columns, so ``X @ full`` needs no column slicing."""
        full = np.zeros((self.n_vars, self.vectors.shape[1]), dtype=np.float32)
        full[self.var_positions] = self.vectors
        return full

    def summary(self) -> dict[str, Any]:
        return {
            "n_vars": self.n_vars,
            "n_matched": self.n_matched,
            "coverage": round(self.coverage, 6),
            "unmatched_examples": self.unmatched[:20],
        }


def _as_vector_table(
    embeddings: GeneEmbeddings | Mapping[str, Any] | str | Path,
) -> tuple[dict[str, np.ndarray], dict]:
    if isinstance(embeddings, (str, Path)):
        embeddings = GeneEmbeddings.read(embeddings)
    if isinstance(embeddings, GeneEmbeddings):
        return embeddings.to_dict(), dict(embeddings.provenance)
    table = {str(k): np.asarray(v, dtype=np.float32) for k, v in embeddings.items()}
    return table, {}


def match_genes(
    names: Any,
    vectors: Mapping[str, np.ndarray],
    *,
    min_coverage: float = MIN_COVERAGE,
    warn_coverage: float = WARN_COVERAGE,
    what: str = "var_names",
) -> GeneMatch:
    """Match gene identifiers (``var`` names or a ``var`` column) to a ``{symbol: vector}`` table.

    Each identifier is normalised with :func:`bioprofile.genes.normalize_genes` (symbols, aliases, previous
    symbols, Ensembl ids) and looked up by its approved symbol; an identifier HGNC does not know is looked up as
    written, so tables keyed by other names still work.

    Parameters
    ----------
    names
        One identifier per column of ``X``.
    vectors
        ``{symbol: vector}``, e.g. :meth:`GeneEmbeddings.to_dict`.
    min_coverage
        Raise when fewer than this fraction of the identifiers match.
    warn_coverage
        Warn (with counts) when fewer than this fraction match.
    what
        How to name the identifiers in messages (``"var_names"``, ``"var['gene_ids']"``).

    Returns
    -------
    GeneMatch

    Raises
    ------
    BioprofileInputError
        Fewer than ``min_coverage`` of the identifiers (or none at all) have a vector.
    """
    from bioprofile.genes import normalize_genes

    names = [str(n) for n in names]
    if not names:
        raise BioprofileInputError(f"{what} is empty: the AnnData has no genes to match")
    try:
        resolved = normalize_genes(names).inputs
    except BioprofileInputError:  # nothing resolved through HGNC; the raw names may still be table keys
        resolved = {}
    positions, symbols, rows, unmatched = [], [], [], []
    for i, name in enumerate(names):
        symbol = resolved.get(name.strip())
        key = symbol if symbol in vectors else name if name in vectors else None
        if key is None:
            unmatched.append(name)
            continue
        positions.append(i)
        symbols.append(key)
        rows.append(vectors[key])
    dim = len(next(iter(vectors.values()))) if vectors else 0
    match = GeneMatch(
        var_positions=np.asarray(positions, dtype=np.int64),
        vectors=np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32),
        symbols=symbols,
        n_vars=len(names),
        unmatched=unmatched,
    )
    if match.n_matched == 0 or match.coverage < min_coverage:
        raise BioprofileInputError(
            f"only {match.n_matched} of {match.n_vars} genes in {what} have a vector (e.g. {', '.join(names[:3])}): "
            "pass the var column holding gene symbols or Ensembl ids (--gene-key), or embeddings for these genes"
        )
    if match.coverage < warn_coverage:
        warnings.warn(
            f"low gene coverage: {match.n_matched} of {match.n_vars} genes in {what} have a vector "
            f"({match.coverage:.0%}); cell embeddings use only those",
            UserWarning,
            stacklevel=2,
        )
    return match


def _normalize_rows(chunk, normalize: Normalize, target_sum: float):
    """Per-cell normalisation of a row chunk; sparse stays sparse, the input is not modified."""
    if normalize == "none":
        return chunk
    if normalize != "log1p":
        raise BioprofileInputError(f"unknown normalize={normalize!r}: choose 'none' or 'log1p'")
    if sp.issparse(chunk):
        chunk = sp.csr_matrix(chunk, dtype=np.float32, copy=True)
        totals = np.asarray(chunk.sum(axis=1)).ravel()
        factors = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        chunk.data *= np.repeat(factors, np.diff(chunk.indptr))
        np.log1p(chunk.data, out=chunk.data)
        return chunk
    chunk = np.asarray(chunk, dtype=np.float32)
    totals = chunk.sum(axis=1, keepdims=True)
    factors = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log1p(chunk * factors)


def _weights_chunk(
    chunk,
    full: np.ndarray,
    mask: np.ndarray,
    normalize: Normalize,
    target_sum: float,
    scale: Scale,
    n_matched: int,
    l2: bool,
) -> np.ndarray:
    chunk = _normalize_rows(chunk, normalize, target_sum)
    if sp.issparse(chunk):
        out = np.asarray(chunk @ full, dtype=np.float32)
    else:
        out = np.asarray(chunk, dtype=np.float32) @ full
    if scale == "matched":
        out /= max(n_matched, 1)
    elif scale == "total":
        totals = np.asarray(chunk @ mask, dtype=np.float32).reshape(-1, 1)
        np.divide(out, totals, out=out, where=totals != 0)
        out[(totals == 0).ravel()] = 0.0
    elif scale != "none":
        raise BioprofileInputError(f"unknown scale={scale!r}: choose 'matched', 'total' or 'none'")
    if l2:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
    return out


def genept_w(
    X: Any,
    match: GeneMatch,
    *,
    normalize: Normalize = "none",
    target_sum: float = 1e4,
    scale: Scale = "matched",
    l2: bool = False,
    chunk_size: int = 10_000,
) -> np.ndarray:
    """GenePT-w cell embeddings of a cells × genes matrix (dense, scipy sparse, or a row-sliceable on-disk array).

    Parameters
    ----------
    X
        ``(n_cells, match.n_vars)``; anything supporting ``X[start:stop]`` row slices (numpy, scipy CSR,
        anndata backed datasets).
    match
        Output of :func:`match_genes` for the columns of ``X``.
    normalize
        ``"none"``: use ``X`` as is; ``"log1p"``: ``normalize_total(target_sum)`` over all genes, then ``log1p``.
    target_sum
        Library size after ``normalize="log1p"``.
    scale
        ``"matched"``: divide by the number of matched genes; ``"total"``: by each cell's total (normalised)
        expression over matched genes; ``"none"``: the plain sum.
    l2
        Scale each cell vector to unit length.
    chunk_size
        Rows processed at a time; bounds temporary memory.

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(n_cells, dim)``.
    """
    n_cells, n_vars = X.shape
    if n_vars != match.n_vars:
        raise ValueError(f"X has {n_vars} columns but the gene match was made for {match.n_vars}")
    if chunk_size < 1:
        raise BioprofileInputError(f"chunk_size must be at least 1, got {chunk_size}")
    full = match.full_matrix()
    mask = np.zeros(n_vars, dtype=np.float32)
    mask[match.var_positions] = 1.0
    out = np.empty((n_cells, full.shape[1]), dtype=np.float32)
    for start, chunk in _row_chunks(X, chunk_size):
        out[start : start + chunk.shape[0]] = _weights_chunk(
            chunk, full, mask, normalize, target_sum, scale, match.n_matched, l2
        )
    return out


def _row_chunks(X: Any, chunk_size: int) -> Iterator[tuple[int, Any]]:
    n_cells = X.shape[0]
    for start in range(0, n_cells, chunk_size):
        yield start, X[start : min(start + chunk_size, n_cells)]


def genept_s_sentences(X: Any, match: GeneMatch, *, top_n: int = 50, chunk_size: int = 10_000) -> list[str]:
    """Each cell's ``top_n`` most expressed matched genes, highest first, as a space-separated sentence.

    Ties are broken by column order so the sentence is deterministic; genes with zero expression are left out, so
    an empty cell gives an empty sentence.
    """
    if top_n < 1:
        raise BioprofileInputError(f"top_n must be at least 1, got {top_n}")
    symbols = np.asarray(match.symbols, dtype=object)
    sentences: list[str] = []
    for _, chunk in _row_chunks(X, chunk_size):
        if sp.issparse(chunk):
            chunk = chunk.tocsc()[:, match.var_positions].toarray()
        else:
            chunk = np.asarray(chunk)[:, match.var_positions]
        # stable sort of -x keeps column order among equal values
        order = np.argsort(-chunk, axis=1, kind="stable")[:, :top_n]
        for row, idx in zip(chunk, order, strict=False):
            kept = idx[row[idx] > 0]
            sentences.append(" ".join(symbols[kept]))
    return sentences


def _var_names(adata: AnnData, gene_key: str | None, use_raw: bool) -> tuple[list[str], str]:
    var = adata.raw.var if use_raw else adata.var
    if gene_key is None:
        return [str(v) for v in var.index], "var_names"
    if gene_key not in var.columns:
        raise BioprofileInputError(
            f"var has no column {gene_key!r} (columns: {', '.join(map(str, var.columns)) or 'none'}): "
            "pass one of those to --gene-key, or leave it out to use var_names"
        )
    return [str(v) for v in var[gene_key]], f"var[{gene_key!r}]"


def _matrix(adata: AnnData, layer: str | None, use_raw: bool):
    if use_raw and layer is not None:
        raise BioprofileInputError("pass either use_raw or layer, not both")
    if use_raw:
        if adata.raw is None:
            raise BioprofileInputError("the AnnData has no .raw: drop --use-raw or pass --layer")
        return adata.raw.X
    if layer is not None:
        if layer not in adata.layers:
            raise BioprofileInputError(
                f"no layer {layer!r} (layers: {', '.join(adata.layers) or 'none'}): pass one of those or none"
            )
        return adata.layers[layer]
    if adata.X is None:
        raise BioprofileInputError("the AnnData has no X: pass --layer with the expression layer")
    return adata.X


def embed_cells(
    adata: AnnData,
    embeddings: GeneEmbeddings | Mapping[str, Any] | str | Path | None = None,
    *,
    method: Method = "genept-w",
    gene_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    normalize: Normalize = "none",
    target_sum: float = 1e4,
    scale: Scale = "matched",
    l2: bool = False,
    top_n: int = 50,
    encoder: TextEncoder | str | Path | None = None,
    store: Store | None = None,
    chunk_size: int = 10_000,
    key_added: str = KEY_ADDED,
    min_coverage: float = MIN_COVERAGE,
    warn_coverage: float = WARN_COVERAGE,
) -> None:
    """Embed each cell of ``adata`` from gene embeddings; writes ``obsm[key_added]`` and ``uns["bioprofile"]``.

    Parameters
    ----------
    adata
        Cells × genes, in memory or backed (``anndata.read_h5ad(path, backed="r")``: rows are read in chunks).
    embeddings
        Gene vectors (:class:`GeneEmbeddings`, ``{symbol: vector}`` or a file :meth:`GeneEmbeddings.read`
        reads). Required for GenePT-w; for GenePT-s it only restricts which genes may appear in sentences
        (``None``: every gene HGNC knows).
    method
        ``"genept-w"`` (weighted gene vectors) or ``"genept-s"`` (top genes as a sentence, encoded as text).
    gene_key
        ``var`` column with gene symbols or Ensembl ids; ``None`` uses ``var_names``.
    layer, use_raw
        Expression from ``layers[layer]`` or ``.raw`` instead of ``X``.
    normalize, target_sum, scale, l2
        GenePT-w options, see :func:`genept_w`.
    top_n
        Genes per GenePT-s sentence.
    encoder, store
        GenePT-s text encoder (spec for :func:`~bioprofile.encoders.get_encoder`, default MiniLM) and the
        cache sentences are encoded through (``None`` opens the default store).
    chunk_size
        Cells processed at a time.
    key_added
        ``obsm`` key of the result.
    min_coverage, warn_coverage
        Fail / warn thresholds on the fraction of genes matched (see :func:`match_genes`).

    Raises
    ------
    BioprofileInputError
        Unknown method, missing layer / column / raw, or almost no gene matching the embeddings.
    """
    names, what = _var_names(adata, gene_key, use_raw)
    X = _matrix(adata, layer, use_raw)
    if method == "genept-w":
        if embeddings is None:
            raise BioprofileInputError("GenePT-w needs gene embeddings: pass --embeddings (from embed-genes)")
        table, emb_provenance = _as_vector_table(embeddings)
        match = match_genes(names, table, min_coverage=min_coverage, warn_coverage=warn_coverage, what=what)
        cells = genept_w(
            X, match, normalize=normalize, target_sum=target_sum, scale=scale, l2=l2, chunk_size=chunk_size
        )
        options = {"normalize": normalize, "target_sum": target_sum, "scale": scale, "l2": l2}
    elif method == "genept-s":
        cells, match, emb_provenance, options = _embed_sentences(
            X,
            names,
            what,
            embeddings,
            top_n=top_n,
            encoder=encoder,
            store=store,
            chunk_size=chunk_size,
            min_coverage=min_coverage,
            warn_coverage=warn_coverage,
        )
    else:
        raise BioprofileInputError(f"unknown method {method!r}: choose 'genept-w' or 'genept-s'")
    adata.obsm[key_added] = cells
    adata.uns["bioprofile"] = _provenance(
        method, key_added, what, layer, use_raw, match, emb_provenance, options
    )


def _embed_sentences(
    X, names, what, embeddings, *, top_n, encoder, store, chunk_size, min_coverage, warn_coverage
):
    from bioprofile.encoders import get_encoder
    from bioprofile.encoders.cached import encode_texts
    from bioprofile.store import open_store

    if embeddings is None:
        from bioprofile.genes import hgnc_symbols

        table: Mapping[str, Any] = dict.fromkeys(hgnc_symbols(), np.zeros(1, dtype=np.float32))
        emb_provenance: dict = {}
    else:
        table, emb_provenance = _as_vector_table(embeddings)
    match = match_genes(names, table, min_coverage=min_coverage, warn_coverage=warn_coverage, what=what)
    sentences = genept_s_sentences(X, match, top_n=top_n, chunk_size=chunk_size)
    encoder = encoder if hasattr(encoder, "encode") else get_encoder(encoder)
    with open_store(store) as cache:
        cells = encode_texts(sentences, encoder, cache)
    options = {"top_n": top_n, "encoder": encoder.id}
    return cells, match, emb_provenance, options


def _provenance(method, key_added, what, layer, use_raw, match: GeneMatch, emb_provenance, options) -> dict:
    source = {
        k: emb_provenance[k] for k in ("source", "generator", "template", "encoder") if k in emb_provenance
    }
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


def embed_cells_file(
    input_path: str | Path,
    embeddings: GeneEmbeddings | Mapping[str, Any] | str | Path,
    output_path: str | Path,
    *,
    overwrite: bool = False,
    **kwargs: Any,
) -> dict:
    """Embed the cells of an ``.h5ad`` file without loading its expression matrix: ``X`` is streamed in row
    chunks from the file (backed mode), and the output is a copy of the input with ``obsm`` / ``uns`` added.

    Parameters
    ----------
    input_path
        Input ``.h5ad``.
    embeddings
        Gene vectors, as for :func:`embed_cells`.
    output_path
        Output ``.h5ad``; written to a temporary name and renamed, so a failure leaves no partial file.
    overwrite
        Replace an existing output.
    **kwargs
        Options of :func:`embed_cells`.

    Returns
    -------
    dict
        The ``uns["bioprofile"]`` provenance written.
    """
    import anndata as ad
    import h5py

    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem

    from bioprofile.embeddings import check_output_path

    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise BioprofileInputError(f"input file {input_path} does not exist: pass an .h5ad file")
    check_output_path(output_path, overwrite=overwrite)
    if input_path.resolve() == output_path.resolve():
        raise BioprofileInputError("output must differ from the input: choose another -o path")
    try:
        adata = ad.read_h5ad(input_path, backed="r")
    except OSError as err:
        raise BioprofileInputError(
            f"cannot read {input_path} as h5ad ({err}): pass an AnnData .h5ad file"
        ) from err
    try:
        embed_cells(adata, embeddings, **kwargs)
        key = kwargs.get("key_added", KEY_ADDED)
        cells, provenance = adata.obsm[key], dict(adata.uns["bioprofile"])
    finally:
        adata.file.close()
    tmp = output_path.with_name(f".{output_path.name}.tmp")
    try:
        shutil.copyfile(input_path, tmp)
        with h5py.File(tmp, "r+") as f:
            obsm = f.require_group("obsm")
            if key in obsm:
                del obsm[key]
            write_elem(obsm, key, np.asarray(cells))
            uns = f.require_group("uns")
            if "bioprofile" in uns:
                del uns["bioprofile"]
            write_elem(uns, "bioprofile", provenance)
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return provenance


def embed_multimodal(
    rna: AnnData,
    adt: AnnData,
    gene_embeddings: GeneEmbeddings | Mapping[str, Any] | str | Path,
    protein_embeddings: GeneEmbeddings | Mapping[str, Any] | str | Path,
    *,
    rna_gene_key: str | None = None,
    adt_target_key: str | None = None,
    rna_kwargs: Mapping[str, Any] | None = None,
    adt_kwargs: Mapping[str, Any] | None = None,
    modality_key: str = "modality",
    key_added: str = KEY_ADDED,
) -> AnnData:
    """Embed RNA cells with gene vectors and ADT (protein) cells with protein-target vectors into one space.

    Both tables must come from the same text encoder, so both modalities land in the same vector space without
    any paired training; the joint embedding is then scored with ``modality_key`` as the batch
    (:func:`bioprofile.evaluate.integration.benchmark_integration`).

    Parameters
    ----------
    rna, adt
        RNA cells × genes and ADT cells × antibodies.
    gene_embeddings, protein_embeddings
        Vectors for RNA genes and for the genes (or proteins) the antibodies target.
    rna_gene_key, adt_target_key
        ``var`` columns holding the gene symbols / target names (``None``: ``var_names``).
    rna_kwargs, adt_kwargs
        Further :func:`embed_cells` options per modality (e.g. ``normalize="log1p"``).
    modality_key
        ``obs`` column of the result naming each cell's modality (``"RNA"`` or ``"ADT"``).
    key_added
        ``obsm`` key of the joint embedding.

    Returns
    -------
    AnnData
        ``rna.n_obs + adt.n_obs`` cells with the shared ``obs`` columns, ``obs[modality_key]``,
        ``obsm[key_added]`` and per-modality provenance in ``uns["bioprofile"]``.
    """
    import anndata as ad
    import pandas as pd

    parts, provenance = [], {}
    for name, data, table, gene_key, extra in (
        ("RNA", rna, gene_embeddings, rna_gene_key, rna_kwargs),
        ("ADT", adt, protein_embeddings, adt_target_key, adt_kwargs),
    ):
        view = ad.AnnData(
            X=_matrix(data, (extra or {}).get("layer"), (extra or {}).get("use_raw", False)),
            obs=data.obs.copy(),
            var=(data.raw.var if (extra or {}).get("use_raw") else data.var).copy(),
        )
        options = {k: v for k, v in (extra or {}).items() if k not in ("layer", "use_raw")}
        embed_cells(view, table, gene_key=gene_key, key_added=key_added, **options)
        parts.append((name, view))
        provenance[name] = dict(view.uns["bioprofile"])
    dims = {v.obsm[key_added].shape[1] for _, v in parts}
    if len(dims) != 1:
        raise BioprofileInputError(
            f"gene and protein vectors differ in width ({sorted(dims)}): embed both with the same encoder"
        )
    shared = [c for c in parts[0][1].obs.columns if c in parts[1][1].obs.columns and c != modality_key]
    obs = pd.concat([v.obs[shared].assign(**{modality_key: name}) for name, v in parts])
    obs.index = [f"{name}:{i}" for name, v in parts for i in v.obs_names]
    obs[modality_key] = pd.Categorical(obs[modality_key], categories=["RNA", "ADT"])
    joint = ad.AnnData(obs=obs, obsm={key_added: np.vstack([v.obsm[key_added] for _, v in parts])})
    joint.uns["bioprofile"] = provenance
    return joint
