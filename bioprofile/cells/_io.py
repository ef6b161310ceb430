"""Cell embeddings of an ``.h5ad`` file on disk: ``X`` streamed in row chunks, the result written into a copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile.atomic import atomic_path
from bioprofile.cells._anndata import KEY_ADDED, EmbedLimits, embed_cells
from bioprofile.cells._match import GeneTable
from bioprofile.cells._methods import resolve_method
from bioprofile.display import display_value
from bioprofile.embeddings import UNREADABLE_FILE_ERRORS
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path

__all__ = ["embed_cells_file"]


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

    ``X`` is streamed in row chunks from the file (backed mode), and the output is a copy of the input with
    ``obsm[key_added]`` and ``uns[key_added]`` added (replaced when the input has them).

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
    import anndata as ad
    import h5py

    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem

    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise BioprofileInputError(
            f"input file {input_path} does not exist: pass an .h5ad file as input_path", argument="input_path"
        )
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
    try:
        adata = ad.read_h5ad(input_path, backed="r")
    except UNREADABLE_FILE_ERRORS as err:
        # h5py and anndata raise many types for a truncated or foreign file: name it on one line
        reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 120)
        raise BioprofileInputError(
            f"cannot read {input_path} as h5ad ({reason}): pass an AnnData .h5ad file as input_path",
            argument="input_path",
        ) from None
    if use_raw and adata.raw is None:
        adata.file.close()
        raise BioprofileInputError(
            f"use_raw is set but {input_path} has no .raw: leave use_raw off to read X, or choose a layer",
            argument="use_raw",
        )
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
        cells, provenance = adata.obsm[key_added], dict(adata.uns[key_added])
    finally:
        adata.file.close()
    with atomic_path(output_path) as tmp:
        shutil.copyfile(input_path, tmp)  # copies the bytes only: tmp keeps the umask's mode
        with h5py.File(tmp, "r+") as f:
            for group, value in (("obsm", np.asarray(cells)), ("uns", provenance)):
                elems = f.require_group(group)
                if key_added in elems:
                    del elems[key_added]
                write_elem(elems, key_added, value)
    return provenance
