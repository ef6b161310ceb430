"""Read GenePT's released embeddings (a pickle of ``{gene symbol: vector}``) without running code from the file.

The pickle is read with :func:`bioprofile.safe_pickle.safe_load_pickle`, which rebuilds only builtin containers,
strings, numbers and numpy arrays and refuses any other global before it is called.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.safe_pickle import safe_load_pickle

__all__ = ["import_genept", "read_genept_pickle"]


def read_genept_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """Read a GenePT embedding pickle as ``{symbol: float32 vector}``.

    Parameters
    ----------
    path
        A pickle of a dict from gene symbol (str) to a vector (a list of floats or a 1-D numpy array), as in
        GenePT's Zenodo release (e.g. ``GenePT_gene_embedding_ada_text.pickle``).

    Returns
    -------
    dict of str to numpy.ndarray
        In file order; every vector has the same length.

    Raises
    ------
    BioprofileInputError
        Hostile or malformed pickle, non-string keys, non-numeric or ragged vectors.
    """
    table = safe_load_pickle(path)
    if not isinstance(table, dict) or not table:
        raise BioprofileInputError(f"{path} does not hold a non-empty {{gene symbol: vector}} dict")
    out: dict[str, np.ndarray] = {}
    dim = None
    for key, value in table.items():
        if not isinstance(key, str):
            raise BioprofileInputError(f"{path}: key {key!r} is not a gene symbol string")
        try:
            vector = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise BioprofileInputError(f"{path}: the value for {key} is not a numeric vector") from None
        if vector.ndim != 1 or (dim is not None and vector.shape[0] != dim):
            raise BioprofileInputError(
                f"{path}: the vector for {key} has shape {vector.shape}, expected ({dim or 'n'},); not an embedding table"
            )
        dim = vector.shape[0]
        out[key] = vector
    return out


def import_genept(path: str | Path) -> GeneEmbeddings:
    """GenePT's released embeddings as :class:`~bioprofile.embeddings.GeneEmbeddings`.

    Symbols are normalised through :func:`bioprofile.genes.normalize_genes`: a resolved key gets its HGNC id
    (and the approved symbol); an unresolved one keeps its key as both id and symbol, so no vector is lost.
    When two keys resolve to the same gene the first is kept.

    Returns
    -------
    GeneEmbeddings
        ``texts`` are empty (GenePT does not ship its texts with the vectors); ``provenance`` names the file.
    """
    table = read_genept_pickle(path)
    resolution = normalize_genes(list(table))
    by_symbol = {g.symbol: g for g in resolution.genes}
    ids, symbols, rows, seen = [], [], [], set()
    for key, vector in table.items():
        gene = by_symbol.get(resolution.inputs.get(key, ""))
        gene_id, symbol = (gene.hgnc_id, gene.symbol) if gene is not None else (key, key)
        if gene_id in seen:
            continue
        seen.add(gene_id)
        ids.append(gene_id)
        symbols.append(symbol)
        rows.append(vector)
    return GeneEmbeddings(
        ids=ids,
        symbols=symbols,
        texts=[""] * len(ids),
        vectors=np.stack(rows),
        provenance={
            "source": f"genept:{Path(path).name}",
            "encoder": "genept-released",
            "n_genes": len(ids),
            "unknown_ids": list(resolution.unknown),
            "ambiguous_ids": dict(resolution.ambiguous),
        },
    )
