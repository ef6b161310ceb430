"""Cell embeddings of several ``.h5ad`` files: one output per input, everything checked before any work.

The inputs are paths or glob patterns (``data/*.h5ad``); each is embedded as :func:`embed_cells_file` embeds one,
and written as ``<output>/<input name>.h5ad``. Before any expression is read: every pattern matches a file,
every input is a readable ``.h5ad``, no two outputs share a name and none exists (unless ``overwrite``), every
input has the same genes, and a Dask scheduler, when one is named, answers. The outputs are written to temporary
names and renamed only when every input is done, so a failure leaves no output at all.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from bioprofile.atomic import atomic_path
from bioprofile.cells._anndata import KEY_ADDED, EmbedLimits, var_identifiers
from bioprofile.cells._dask import dask_session
from bioprofile.cells._io import check_input_file, embed_backed, open_backed, write_embedded_copy
from bioprofile.cells._match import GeneTable
from bioprofile.cells._methods import resolve_method
from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_folder

__all__ = ["embed_cells_files", "expand_inputs", "is_pattern"]


def is_pattern(text: str | Path) -> bool:
    """Whether ``text`` is a glob pattern (holds ``*``, ``?`` or ``[``) rather than one file's path."""
    return glob.has_magic(str(text))


def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files ``inputs`` names: each path as it is, each glob pattern as its matches in sorted order.

    Parameters
    ----------
    inputs
        A path or pattern, or a list of them. A pattern that names an existing file is that file.

    Returns
    -------
    list of Path
        At least one.

    Raises
    ------
    BioprofileInputError
        No input, a pattern that matches no file, or a file named twice.
    """
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise BioprofileInputError(
            "no input given: pass .h5ad files or a glob pattern as inputs", argument="inputs"
        )
    paths: list[Path] = []
    for item in items:
        if is_pattern(item) and not Path(item).exists():
            matches = sorted(glob.glob(str(Path(item).expanduser()), recursive=True))
            if not matches:
                raise BioprofileInputError(
                    f"no file matches {display_value(str(item))}: check the pattern (quote it so the shell leaves "
                    "it to bioprofile), or pass the files",
                    argument="inputs",
                )
            paths += [Path(m) for m in matches]
        else:
            paths.append(Path(item))
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise BioprofileInputError(
                f"{path} is given twice as input: pass each file once", argument="inputs"
            )
        seen[key] = path
    return paths


def _check_same_genes(paths: list[Path], gene_key: str | None, use_raw: bool) -> None:
    """Every input's genes (its ``var`` identifiers) are the first input's, in any order."""
    first: set[str] | None = None
    for path in paths:
        check_input_file(path, "inputs")
        adata = open_backed(path, use_raw, "inputs")
        try:
            names, _ = var_identifiers(adata, gene_key, use_raw)
        finally:
            adata.file.close()
        if first is None:
            first, first_path = set(names), path
            continue
        if set(names) != first:
            only_here, only_first = sorted(set(names) - first), sorted(first - set(names))
            example = display_value(", ".join((only_here or only_first)[:3]), 80)
            raise BioprofileInputError(
                f"{path} and {first_path} have different genes ({len(only_here)} only in {path.name}, "
                f"{len(only_first)} only in {first_path.name}: {example}): embed files with the same genes "
                "together, the others in another call",
                argument="inputs",
            )


def embed_cells_files(
    inputs: str | Path | Sequence[str | Path],
    embeddings: GeneTable | None,
    output: str | Path,
    *,
    method: Any = "genept-w",
    gene_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    limits: EmbedLimits | None = None,
    key_added: str = KEY_ADDED,
    overwrite: bool = False,
) -> list[dict]:
    """Embed the cells of several ``.h5ad`` files, each into ``<output>/<input name>.h5ad``.

    Each output is what :func:`embed_cells_file` writes for its input. With ``limits.dask_address`` one Dask
    client (or one local cluster) serves every input.

    Parameters
    ----------
    inputs
        ``.h5ad`` paths or glob patterns (``"data/*.h5ad"``), or one of them; every input must have the same
        genes (the same ``var`` identifiers under ``gene_key``, in any order).
    embeddings
        Gene vectors, as for :func:`embed_cells`.
    output
        The folder the outputs go to (created when missing); an output would have the name of its input, so it
        must not be the inputs' folder.
    method, gene_key, layer, use_raw, limits, key_added
        As for :func:`embed_cells`.
    overwrite
        Replace outputs that exist.

    Returns
    -------
    list of dict
        The ``uns[key_added]`` provenance written to each output, in the order of the inputs.

    Raises
    ------
    BioprofileInputError
        Before any work: a pattern matching nothing, a missing or unreadable input, inputs with different genes,
        outputs that collide, exist (without ``overwrite``) or replace an input, a scheduler that does not answer;
        then anything :func:`embed_cells` rejects. Nothing is written in every case.
    """
    resolve_method(method)  # an unknown method fails before any file is opened
    limits = EmbedLimits() if limits is None else limits
    paths = expand_inputs(inputs)
    folder = Path(output).expanduser()
    outputs = [folder / f"{path.stem}.h5ad" for path in paths]
    for path, target in zip(paths, outputs, strict=True):
        twin = next((p for p, o in zip(paths, outputs, strict=True) if o == target and p != path), None)
        if twin is not None:
            raise BioprofileInputError(
                f"{path} and {twin} would both be written as {target}: rename one, or embed them in separate calls",
                argument="inputs",
            )
        if target.resolve() == path.resolve():
            raise BioprofileInputError(
                f"output {folder} holds the input {path.name}, which its output would replace: choose another "
                "folder",
                argument="output",
            )
    check_output_folder(folder, [o.name for o in outputs], overwrite=overwrite)
    _check_same_genes(paths, gene_key, use_raw)
    created = not folder.exists()
    provenances: list[dict] = []
    try:
        with (
            dask_session(limits.dask_address, workers=limits.workers, timeout=limits.dask_timeout) as client,
            ExitStack() as finished,  # every output renamed into place only when the last one is written
        ):
            if client is not None:  # a local cluster's own address: each input reuses this client
                limits = replace(limits, dask_address=client.scheduler.address)
            folder.mkdir(parents=True, exist_ok=True)
            for path, target in zip(paths, outputs, strict=True):
                adata = open_backed(path, use_raw, "inputs")
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
                write_embedded_copy(
                    path, finished.enter_context(atomic_path(target)), cells, provenance, key_added
                )
                provenances.append(provenance)
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return provenances
