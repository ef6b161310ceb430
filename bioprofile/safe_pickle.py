"""Load pickles without running code from the file: a restricted unpickler for plain data and numpy arrays.

A pickle may name any importable callable and have it called on load, so a hostile file runs code under plain
:func:`pickle.load`. :class:`RestrictedUnpickler` allows only the few globals needed to rebuild numpy arrays and
numpy scalars; dicts, lists, tuples, strings, numbers and bytes need no globals at all. Anything else is refused
with :class:`~bioprofile.errors.BioprofileInputError` before it is called.

GenePT's released embedding tables (:mod:`bioprofile.genept`) and Geneformer's gene-class tables
(:mod:`bioprofile.evaluate.gene_tasks.geneformer_classes`) are read through :func:`safe_load_pickle`.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError

__all__ = ["RestrictedUnpickler", "safe_load_pickle"]

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
        """The global ``module.name`` when it is one of the allowed numpy builders; anything else is refused."""
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise BioprofileInputError(
            f"refusing to load {module}.{name} from a pickle: only dicts, lists, strings, numbers and numpy arrays "
            "are allowed (the file may be hostile or not a plain data table)"
        )

    def persistent_load(self, pid: Any) -> Any:
        """Never: a plain data table has no persistent ids, so any is refused."""
        raise BioprofileInputError("refusing a pickle with persistent ids: not a plain data table")


def safe_load_pickle(path: str | Path) -> Any:
    """The object a pickle file holds, loaded with :class:`RestrictedUnpickler`.

    Parameters
    ----------
    path
        The pickle file.

    Returns
    -------
    Any
        Dicts, lists, tuples, strings, numbers, bytes and numpy arrays, as pickled.

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
