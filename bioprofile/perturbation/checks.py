"""Pre-flight checks of a Perturb-seq AnnData and its feature files, before STATE (or anything slow) starts.

Each check raises one :class:`~bioprofile.errors.BioprofileInputError` on one line, naming the Python argument at
fault (``pert_col``, ``cell_type_key``...), or returns quietly. They read the AnnData's annotations only (``obs``,
``var``, ``obsm`` keys), so they also work on a file opened with ``backed="r"``. The one change they make is
:func:`check_obs_column` casting the column to categorical, the dtype cell-load reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError

__all__ = [
    "check_control_in_cell_types",
    "check_control_label",
    "check_feature_coverage",
    "check_feature_dims",
    "check_obs_column",
    "check_obsm_key",
    "check_perturbation_data",
    "check_var_names",
    "format_names",
]

#: How many names an error message shows before it says "... and N more".
SHOWN_NAMES = 50


def format_names(names: Sequence[str], *, limit: int = SHOWN_NAMES) -> str:
    """``names`` quoted and comma-separated, the first ``limit`` of them, then ``... and N more``."""
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... and {len(names) - limit} more"


def check_obs_column(adata, key: str, *, argument: str) -> None:
    """Check that ``obs[key]`` exists and has no missing values, and cast it to categorical in place.

    Parameters
    ----------
    adata
        The AnnData.
    key
        The ``obs`` column (a perturbation, cell type or batch column).
    argument
        The Python argument that named ``key`` (``"pert_col"``, ``"cell_type_key"``, ``"batch_col"``), for the
        error message.

    Raises
    ------
    BioprofileInputError
        The column is absent or has missing values.
    """
    import pandas as pd

    if key not in adata.obs.columns:
        columns = format_names(list(map(str, adata.obs.columns)), limit=20) or "none"
        raise BioprofileInputError(
            f"{argument} {key!r} is not an obs column of the data; its columns are {columns}",
            argument=argument,
        )
    column = adata.obs[key]
    n_missing = int(column.isna().sum())
    if n_missing:
        raise BioprofileInputError(
            f"obs[{key!r}] ({argument}) has {n_missing} cell(s) with no value: label or drop them first",
            argument=argument,
        )
    if not isinstance(column.dtype, pd.CategoricalDtype):
        adata.obs[key] = column.astype(str).astype("category")


def check_control_in_cell_types(
    adata, *, pert_col: str, control: str, cell_type_key: str, cell_types: Iterable[str] | None = None
) -> None:
    """Check that the control perturbation has cells in every cell type used (STATE pairs cells with controls).

    Parameters
    ----------
    adata
        The AnnData.
    pert_col
        The ``obs`` column of perturbation labels.
    control
        The control label (``"non-targeting"``, ``"DMSO_TF"``...).
    cell_type_key
        The ``obs`` column of cell types.
    cell_types
        The cell types used (default: all of ``obs[cell_type_key]``).

    Raises
    ------
    BioprofileInputError
        A column is absent, the control is no label of ``pert_col``, or some cell types have no control cells.
    """
    check_obs_column(adata, pert_col, argument="pert_col")
    check_obs_column(adata, cell_type_key, argument="cell_type_key")
    labels = adata.obs[pert_col].astype(str)
    check_control_label(labels, control, pert_col=pert_col)
    present = set(adata.obs.loc[(labels == control).to_numpy(), cell_type_key].astype(str))
    all_types = list(dict.fromkeys(adata.obs[cell_type_key].astype(str)))
    wanted = all_types if cell_types is None else [str(c) for c in cell_types]
    unknown = [c for c in wanted if c not in all_types]
    if unknown:
        raise BioprofileInputError(
            f"cell type(s) {format_names(unknown)} are not in obs[{cell_type_key!r}]; "
            f"its cell types are {format_names(all_types)}",
            argument="cell_type_key",
        )
    lacking = [c for c in wanted if c not in present]
    if lacking:
        raise BioprofileInputError(
            f"{len(lacking)} cell type(s) of obs[{cell_type_key!r}] have no control cells ({control!r} in "
            f"obs[{pert_col!r}]): {format_names(lacking)}; leave them out or add their controls",
            argument="control",
        )


def check_control_label(labels: Iterable[str], control: str, *, pert_col: str) -> None:
    """Check that ``control`` is one of the perturbation ``labels`` (exactly: labels differ between datasets).

    Raises
    ------
    BioprofileInputError
        The control is not a label; the message lists the labels that look like controls, or a few others.
    """
    values = list(dict.fromkeys(map(str, labels)))
    if control in values:
        return
    hints = [v for v in values if v.lower() == control.lower() or _looks_like_control(v)]
    seen = format_names(hints or values, limit=10)
    raise BioprofileInputError(
        f"control {control!r} is not a label of obs[{pert_col!r}]; {'did you mean' if hints else 'it has'} {seen}",
        argument="control",
    )


def _looks_like_control(label: str) -> bool:
    low = label.lower()
    return any(word in low for word in ("control", "ctrl", "non-targeting", "nontargeting", "dmso", "safe"))


def check_var_names(adata, *, gene_key: str | None = None) -> None:
    """Check that the genes (``var_names``, or ``var[gene_key]``) are present, non-empty and unique.

    STATE matches the expression columns between training and prediction by these names, so a duplicate or blank
    name would pair the wrong genes.

    Raises
    ------
    BioprofileInputError
        There are no genes, ``gene_key`` is no ``var`` column, or names are blank or repeated.
    """
    if adata.n_vars == 0:
        raise BioprofileInputError("the data has no genes (var is empty)")
    if gene_key is None:
        names, where = list(map(str, adata.var_names)), "var_names"
    elif gene_key not in adata.var.columns:
        raise BioprofileInputError(
            f"gene_key {gene_key!r} is not a var column; its columns are "
            f"{format_names(list(map(str, adata.var.columns)), limit=20) or 'none'}",
            argument="gene_key",
        )
    else:
        column = adata.var[gene_key]
        names, where = ["" if v != v else str(v) for v in column], f"var[{gene_key!r}]"  # v != v: NaN
    blank = sum(1 for n in names if not n.strip() or n.lower() == "nan")
    if blank:
        raise BioprofileInputError(f"{where} has {blank} blank gene name(s): name every gene")
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    repeated = [n for n, c in counts.items() if c > 1]
    if repeated:
        raise BioprofileInputError(
            f"{where} repeats {len(repeated)} gene name(s): {format_names(repeated, limit=10)}; make them unique "
            "(e.g. AnnData.var_names_make_unique) or keep one column per gene"
        )


def check_obsm_key(adata, key: str, *, argument: str = "embed_key") -> None:
    """Check that ``obsm[key]`` exists (the cell embedding STATE trains on, when not the expression matrix).

    Raises
    ------
    BioprofileInputError
        The key is absent; the message lists the keys there are.
    """
    if key not in adata.obsm:
        have = format_names(list(map(str, adata.obsm.keys())), limit=20) or "none"
        raise BioprofileInputError(
            f"{argument} {key!r} is not in obsm; its keys are {have}", argument=argument
        )


def check_perturbation_data(
    adata,
    *,
    pert_col: str,
    control: str,
    cell_type_key: str | None = None,
    batch_col: str | None = None,
    embed_key: str | None = None,
    gene_key: str | None = None,
) -> None:
    """Every pre-flight check of the data at once: columns, the control in each cell type, genes, the embedding.

    Parameters
    ----------
    adata
        The AnnData (its ``obs`` columns are cast to categorical in place).
    pert_col
        The ``obs`` column of perturbation labels.
    control
        The control label.
    cell_type_key
        The ``obs`` column of cell types, if the data has several (then each needs control cells).
    batch_col
        The ``obs`` column of batches (e.g. ``gem_group``), if used.
    embed_key
        The ``obsm`` key of the cell embedding, if STATE should train on it instead of the expression.
    gene_key
        The ``var`` column of gene names (default ``var_names``).

    Raises
    ------
    BioprofileInputError
        The first check that fails, in the order above.
    """
    check_obs_column(adata, pert_col, argument="pert_col")
    if cell_type_key is not None:
        check_control_in_cell_types(adata, pert_col=pert_col, control=control, cell_type_key=cell_type_key)
    else:
        check_control_label(adata.obs[pert_col].astype(str), control, pert_col=pert_col)
    if batch_col is not None:
        check_obs_column(adata, batch_col, argument="batch_col")
    check_var_names(adata, gene_key=gene_key)
    if embed_key is not None:
        check_obsm_key(adata, embed_key)


def _load_features(source: str | Path | Mapping[str, Any], argument: str) -> tuple[str, Mapping[str, Any]]:
    """A feature dict and the name to call it by, from a ``.pt`` path or the dict itself."""
    if isinstance(source, Mapping):
        return "features", source
    import torch

    path = Path(source)
    if not path.is_file():
        raise BioprofileInputError(f"feature file {path} does not exist", argument=argument)
    try:
        table = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for files it cannot unpickle safely
        raise BioprofileInputError(
            f"feature file {path} does not load with torch.load(weights_only=True) ({type(err).__name__}): "
            "save a dict of perturbation name -> 1-D torch tensor",
            argument=argument,
        ) from None
    if not isinstance(table, Mapping) or not table:
        raise BioprofileInputError(
            f"feature file {path} holds no dict of perturbation name -> 1-D tensor", argument=argument
        )
    return str(path), table


def check_feature_dims(
    sources: Sequence[str | Path | Mapping[str, Any]], *, argument: str = "embeddings"
) -> int:
    """The one feature length of every vector in every feature file (or dict); each value a 1-D float tensor.

    Parameters
    ----------
    sources
        ``.pt`` files of ``{perturbation: tensor}`` (as :func:`~bioprofile.perturbation.export.export_state_features`
        writes them), or such dicts.
    argument
        The Python argument that named the files, for the error message.

    Returns
    -------
    int
        The feature dimension shared by all.

    Raises
    ------
    BioprofileInputError
        A file is missing or unreadable, a value is not a 1-D floating-point tensor (a numpy array breaks
        ``weights_only`` loading), or lengths differ within or across files.
    """
    import torch

    if not sources:
        raise BioprofileInputError("no feature files given", argument=argument)
    dims: dict[int, str] = {}
    for source in sources:
        name, table = _load_features(source, argument)
        bad = [
            k for k, v in table.items() if not (torch.is_tensor(v) and v.ndim == 1 and v.is_floating_point())
        ]
        if bad:
            raise BioprofileInputError(
                f"{name}: {len(bad)} value(s) are not 1-D float tensors, e.g. {format_names(bad, limit=5)}",
                argument=argument,
            )
        lengths = {int(v.shape[0]) for v in table.values()}
        if len(lengths) > 1:
            raise BioprofileInputError(
                f"{name} mixes vector lengths {sorted(lengths)}: every perturbation needs the same length",
                argument=argument,
            )
        dims.setdefault(lengths.pop(), name)
    if len(dims) > 1:
        found = "; ".join(f"{dim} in {name}" for dim, name in dims.items())
        raise BioprofileInputError(
            f"feature files differ in dimension ({found}): use files of one length per run", argument=argument
        )
    return next(iter(dims))


def check_feature_coverage(
    source: str | Path | Mapping[str, Any], perturbations: Iterable[str], *, argument: str = "embeddings"
) -> None:
    """Check that a feature file has a key for every perturbation label, spelled exactly as in the data.

    cell-load would give a missing perturbation a zero vector (only logging it), so a gap is an error here.

    Raises
    ------
    BioprofileInputError
        Some labels have no key; all of them are counted, the first :data:`SHOWN_NAMES` shown.
    """
    name, table = _load_features(source, argument)
    missing = [p for p in dict.fromkeys(map(str, perturbations)) if p not in table]
    if missing:
        raise BioprofileInputError(
            f"{len(missing)} perturbation(s) have no key in {name}: {format_names(missing)}",
            argument=argument,
        )
