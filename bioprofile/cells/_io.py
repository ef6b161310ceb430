"""Cell embeddings of an ``.h5ad`` file on disk: ``X`` streamed in row chunks, the result written into a copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.atomic import atomic_path
from bioprofile.cells._anndata import KEY_ADDED, EmbedLimits, embed_cells
from bioprofile.cells._match import GeneTable
from bioprofile.cells._methods import resolve_method
from bioprofile.display import display_value
from bioprofile.embeddings import UNREADABLE_FILE_ERRORS
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["check_input_file", "embed_backed", "embed_cells_file", "open_backed", "write_embedded_copy"]


def embed_cells_file(
    input_path: str | Path,
    embeddings: GeneTable | None,
    output_path: str | Path,
    *,
    method: Any = "genept-w",
    gene_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    limits: EmbedLimits | None = None,
    key_added: str = KEY_ADDED,
    overwrite: bool = False,
) -> dict:
    """Embed the cells of an ``.h5ad`` file without loading its expression matrix; returns the provenance written.

    ``X`` is streamed in row chunks from the file (backed mode; read by the Dask workers with
    ``limits.dask_address``), and the output is a copy of the input with ``obsm[key_added]`` and
    ``uns[key_added]`` added (replaced when the input has them). Several files: :func:`embed_cells_files`.

    Parameters
    ----------
    input_path
        Input ``.h5ad``.
    embeddings
        Gene vectors, as for :func:`embed_cells`.
    output_path
        Output ``.h5ad``; written to a temporary name and renamed, so a failure leaves no partial file.
    method, gene_key, layer, use_raw, limits, key_added
        As for :func:`embed_cells`.
    overwrite
        Replace an existing output.

    Returns
    -------
    dict
        The ``uns[key_added]`` provenance written.

    Raises
    ------
    BioprofileInputError
        A missing or unreadable input, an output that exists (without ``overwrite``) or equals the input, or
        anything :func:`embed_cells` rejects.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    check_input_file(input_path)
    if output_path.suffix.lower() != ".h5ad":
        raise BioprofileInputError(
            f"output_path {display_value(output_path.name)} would hold an h5ad file: name it .h5ad",
            argument="output_path",
        )
    check_output_path(output_path, overwrite=overwrite)
    if input_path.resolve() == output_path.resolve():
        raise BioprofileInputError(
            "output_path must differ from input_path: choose another output path", argument="output_path"
        )
    resolve_method(method)  # an unknown method fails before the file is opened
    adata = open_backed(input_path, use_raw)
    cells, provenance = embed_backed(
        adata,
        embeddings,
        method=method,
        gene_key=gene_key,
        layer=layer,
        use_raw=use_raw,
        limits=limits,
        key_added=key_added,
    )
    with atomic_path(output_path) as tmp:
        write_embedded_copy(input_path, tmp, cells, provenance, key_added)
    return provenance


def check_input_file(input_path: Path, argument: str = "input_path") -> None:
    """Fail in one line unless ``input_path`` is a file.

    Parameters
    ----------
    input_path
        The ``.h5ad`` to read.
    argument
        The argument's name in the message.
    """
    if not input_path.is_file():
        raise BioprofileInputError(
            f"input file {input_path} does not exist: pass an .h5ad file as {argument}", argument=argument
        )


def open_backed(input_path: Path, use_raw: bool, argument: str = "input_path") -> AnnData:
    """``input_path`` opened backed (``X`` stays on disk), or one line saying why it cannot be.

    Parameters
    ----------
    input_path
        An ``.h5ad`` file.
    use_raw
        The expression will come from ``.raw``, which must exist.
    argument
        The argument's name in messages.

    Returns
    -------
    anndata.AnnData
        Backed read-only; the caller closes ``adata.file``.
    """
    import anndata as ad

    try:
        adata = ad.read_h5ad(input_path, backed="r")
    except UNREADABLE_FILE_ERRORS as err:
        # h5py and anndata raise many types for a truncated or foreign file: name it on one line
        reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 120)
        raise BioprofileInputError(
            f"cannot read {input_path} as h5ad ({reason}): pass an AnnData .h5ad file as {argument}",
            argument=argument,
        ) from None
    if use_raw and adata.raw is None:
        adata.file.close()
        raise BioprofileInputError(
            f"use_raw is set but {input_path} has no .raw: leave use_raw off to read X, or choose a layer",
            argument="use_raw",
        )
    return adata


def embed_backed(
    adata: AnnData,
    embeddings: GeneTable | None,
    *,
    method: Any,
    gene_key: str | None,
    layer: str | None,
    use_raw: bool,
    limits: EmbedLimits | None,
    key_added: str,
) -> tuple[np.ndarray, dict]:
    """The cell vectors and provenance of a backed AnnData (:func:`embed_cells`); its file is closed after.

    Parameters
    ----------
    adata
        From :func:`open_backed`.
    embeddings, method, gene_key, layer, use_raw, limits, key_added
        As for :func:`embed_cells`.

    Returns
    -------
    tuple of (numpy.ndarray, dict)
        ``obsm[key_added]`` and ``uns[key_added]``.
    """
    try:
        embed_cells(
            adata,
            embeddings,
            method=method,
            gene_key=gene_key,
            layer=layer,
            use_raw=use_raw,
            limits=limits,
            key_added=key_added,
        )
        return np.asarray(adata.obsm[key_added]), dict(adata.uns[key_added])
    finally:
        adata.file.close()


def write_embedded_copy(
    input_path: Path, target: Path, cells: np.ndarray, provenance: dict, key_added: str
) -> None:
    """Copy ``input_path`` to ``target`` and write ``obsm[key_added]`` and ``uns[key_added]`` into the copy.

    Parameters
    ----------
    input_path
        The input ``.h5ad``.
    target
        The file to fill (a temporary name, renamed when complete).
    cells
        The cell vectors.
    provenance
        Their provenance.
    key_added
        The ``obsm`` and ``uns`` key; an element of that name in the input is replaced.
    """
    import h5py

    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem

    shutil.copyfile(input_path, target)  # copies the bytes only: target keeps the umask's mode
    with h5py.File(target, "r+") as f:
        for group, value in (("obsm", cells), ("uns", provenance)):
            elems = f.require_group(group)
            if key_added in elems:
                del elems[key_added]
            write_elem(elems, key_added, value)
