"""Read GenePT's released embeddings (a pickle of ``{gene symbol: vector}``) without running code from the file.

A pickle may name any importable callable and have it called on load, so a hostile file runs code under plain
:func:`pickle.load`. :class:`RestrictedUnpickler` allows only the few globals needed to rebuild numpy arrays and
numpy scalars; dicts, lists, tuples, strings, numbers and bytes need no globals at all. Anything else is refused
with :class:`~bioprofile.errors.BioprofileInputError` before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError

__all__ = ["RestrictedUnpickler", "import_genept", "read_genept_pickle", "safe_load_pickle"]

# The globals numpy uses to pickle ndarrays, dtypes and scalars (numpy 1.x and 2.x module names), plus the bytes
# helper of protocol 2. Each only builds an array, scalar or bytes object; none can reach the file system or run arbitrary code.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # Protocol 2 pickles write bytes as _codecs.encode(str, "latin1"): a pure text-to-bytes conversion.
        ("_codecs", "encode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only builtin containers, strings, numbers and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise BioprofileInputError(
            f"refusing to load {module}.{name} from a pickle: only dicts, strings and numpy arrays are allowed "
            "(the file may be hostile or not a GenePT embedding table)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise BioprofileInputError("refusing a pickle with persistent ids: not a plain embedding table")


def safe_load_pickle(path: str | Path) -> Any:
    """Load a pickle with :class:`RestrictedUnpickler`.

    Raises
    ------
    BioprofileInputError
        The file is missing, not a pickle, or names a global outside the allowed numpy set.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BioprofileInputError(f"cannot read pickle {path}: {err.strerror}; check the path") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except BioprofileInputError:
        raise
    except Exception as err:  # noqa: BLE001 - truncated or corrupt data raise many types
        raise BioprofileInputError(f"{path} is not a readable pickle ({type(err).__name__}: {err})") from None


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
    from bioprofile.genes import normalize_genes

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
