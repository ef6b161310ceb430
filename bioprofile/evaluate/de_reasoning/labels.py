"""Labels of the task from a perturbation AnnData, the way VCWorld's ``prepare`` stage makes them.

Per cell line: counts normalised to 10,000 per cell and ``log1p``-transformed; every drug's cells tested against the
control's (``DMSO_TF`` in Tahoe-100M) with scanpy's ``rank_genes_groups`` (Wilcoxon rank-sum, Benjamini-Hochberg
adjusted p-values). A gene is a positive (label 1) when its adjusted p-value is below 0.05 and its absolute
log2 fold change above 0.25; a negative (label 0) when its unadjusted p-value is above 0.1, of which a fixed number
per drug is drawn with a seed (genes between the two thresholds are neither). Drugs, not rows, are split into
train and test (VCWorld: 30 % of drugs train, 70 % test), the same drugs in every cell line, so a test question is
always about a drug no training record saw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["VCWORLD_CELL_LINES", "drug_splits", "vcworld_labels", "write_record_files"]

#: The five cell lines VCWorld holds out (its Tahoe-100M names).
VCWORLD_CELL_LINES = ("C32", "HepG2C3A", "HOP62", "Hs766T", "PANC-1")
# A cell line name that can be a file name as it is (VCWorld's files are named <cell line>_DE.csv).
_FILE_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def drug_splits(drugs: Sequence[str], *, train_fraction: float = 0.3, seed: int = 0) -> dict[str, str]:
    """Each drug's split, ``"train"`` or ``"test"``: a seeded share of the drugs trains, the rest is held out.

    Parameters
    ----------
    drugs
        The drugs (order does not matter: they are sorted first).
    train_fraction
        Share of drugs in ``"train"`` (rounded; VCWorld's 0.3).
    seed
        Seed of the draw.

    Returns
    -------
    dict
        Drug -> split.
    """
    if not 0 <= train_fraction <= 1:
        raise BioprofileInputError(
            f"train_fraction must be in [0, 1], got {train_fraction}", argument="train_fraction"
        )
    ordered = sorted(set(drugs))
    n_train = round(train_fraction * len(ordered))
    chosen = set(np.random.default_rng(seed).permutation(len(ordered))[:n_train].tolist())
    return {drug: "train" if i in chosen else "test" for i, drug in enumerate(ordered)}


def _check_columns(adata: Any, keys: dict[str, str], control: str) -> None:
    absent = [argument for argument, key in keys.items() if key not in adata.obs.columns]
    if absent:
        named = ", ".join(f"{argument}={keys[argument]!r}" for argument in absent)
        raise BioprofileInputError(
            f"no obs column {named} in the AnnData (its obs has {', '.join(map(str, adata.obs.columns))})",
            argument=absent[0] if len(absent) == 1 else None,
        )
    if not (adata.obs[keys["pert_key"]].astype(str) == control).any():
        raise BioprofileInputError(
            f"no control cells: no {keys['pert_key']!r} value is {control!r}", argument="control"
        )


def _rank_against_control(cells: Any, pert_key: str, control: str, groups: list[str]) -> pd.DataFrame:
    """The Wilcoxon test (scanpy) of each drug against the control, on normalised log counts of one cell line."""
    import scanpy as sc

    cells = cells.copy()
    sc.pp.normalize_total(cells, target_sum=1e4)
    sc.pp.log1p(cells)
    cells.obs[pert_key] = cells.obs[pert_key].astype(str).astype("category")
    sc.tl.rank_genes_groups(
        cells,
        groupby=pert_key,
        groups=groups,
        reference=control,
        method="wilcoxon",
        corr_method="benjamini-hochberg",
        n_genes=cells.n_vars,
        key_added="vcworld",
    )
    return sc.get.rank_genes_groups_df(cells, group=groups, key="vcworld")


def vcworld_labels(
    adata: Any,
    *,
    cell_line_key: str = "cell_line_id",
    pert_key: str = "drug",
    control: str = "DMSO_TF",
    n_negatives: int = 200,
    train_fraction: float = 0.3,
    seed: int = 0,
    min_cells: int = 3,
) -> pd.DataFrame:
    """Records ``(cell_line, pert, gene, label, split)`` from a perturbation AnnData, as VCWorld builds them.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X``; gene names in ``var_names``.
    cell_line_key
        obs column of cell lines (Tahoe-100M's parquet: ``cell_line_id``; its h5ad: ``cell_line``).
    pert_key
        obs column of drugs, the control among them.
    control
        The control's value in ``pert_key``.
    n_negatives
        Negatives drawn per drug and cell line (all of them when fewer pass).
    train_fraction
        Share of drugs in the train split (see :func:`drug_splits`).
    seed
        Seed of the negatives' draw and of the split.
    min_cells
        A drug with fewer cells than this in a cell line (or a cell line with fewer control cells) is skipped
        there: a rank test on a handful of cells says little.

    Returns
    -------
    pandas.DataFrame
        Columns ``cell_line, pert, gene, label, split, logfoldchange, pval, pval_adj``; label 1 for
        differentially expressed, 0 for not; positives first within each drug, genes in scanpy's rank order.

    Raises
    ------
    BioprofileInputError
        A missing obs column, no control cells, or no drug with enough cells in any cell line.
    """
    import pandas as pd

    _check_columns(adata, {"cell_line_key": cell_line_key, "pert_key": pert_key}, control)
    if n_negatives < 0:
        raise BioprofileInputError(
            f"n_negatives must be at least 0, got {n_negatives}", argument="n_negatives"
        )
    obs = adata.obs[[cell_line_key, pert_key]].astype(str)
    splits = drug_splits(
        [d for d in obs[pert_key].unique() if d != control], train_fraction=train_fraction, seed=seed
    )
    rng = np.random.default_rng(seed)
    frames = []
    for cell_line in sorted(obs[cell_line_key].unique()):
        in_line = (obs[cell_line_key] == cell_line).to_numpy()
        counts = obs.loc[in_line, pert_key].value_counts()
        groups = sorted(d for d, n in counts.items() if d != control and n >= min_cells)
        if counts.get(control, 0) < min_cells or not groups:
            continue
        ranked = _rank_against_control(adata[in_line], pert_key, control, groups)
        for drug in groups:
            tested = ranked[ranked["group"] == drug] if "group" in ranked.columns else ranked
            positive = (tested["pvals_adj"] < 0.05) & (tested["logfoldchanges"].abs() > 0.25)
            negative_pool = np.flatnonzero((tested["pvals"] > 0.1).to_numpy())
            take = min(n_negatives, len(negative_pool))
            negatives = (
                np.sort(rng.choice(negative_pool, size=take, replace=False)) if take else negative_pool[:0]
            )
            for rows, label in ((tested[positive.to_numpy()], 1), (tested.iloc[negatives], 0)):
                frames.append(
                    pd.DataFrame(
                        {
                            "cell_line": cell_line,
                            "pert": drug,
                            "gene": rows["names"].astype(str).to_numpy(),
                            "label": label,
                            "split": splits[drug],
                            "logfoldchange": rows["logfoldchanges"].to_numpy(dtype=float),
                            "pval": rows["pvals"].to_numpy(dtype=float),
                            "pval_adj": rows["pvals_adj"].to_numpy(dtype=float),
                        }
                    )
                )
    if not frames:
        raise BioprofileInputError(
            f"no drug has {min_cells} cells beside {min_cells} control cells in any cell line",
            argument="min_cells",
        )
    return pd.concat(frames, ignore_index=True)


def write_record_files(records: pd.DataFrame, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write records as VCWorld does: one ``<cell line>_DE.csv`` per cell line, columns ``pert,gene,label,split``.

    Parameters
    ----------
    records
        A frame with ``cell_line, pert, gene, label, split`` (:func:`vcworld_labels`).
    folder
        An existing folder.
    overwrite
        Replace existing files.

    Returns
    -------
    list of Path
        The files, by cell line.

    Raises
    ------
    BioprofileInputError
        The folder is missing, a file exists without ``overwrite``, or a cell line's name cannot be a file name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BioprofileInputError(f"{folder} is not a folder: create it first", argument="folder")
    lines = sorted(records["cell_line"].astype(str).unique())
    unsafe = [line for line in lines if not _FILE_SAFE.fullmatch(line)]
    if unsafe:
        raise BioprofileInputError(
            f"cell line names that cannot be file names: {', '.join(map(repr, unsafe))}; rename them first",
            argument="records",
        )
    paths = [folder / f"{line}_DE.csv" for line in lines]
    for path in paths:
        check_output_path(path, overwrite=overwrite)
    for line, path in zip(lines, paths, strict=True):
        rows = records[records["cell_line"].astype(str) == line][["pert", "gene", "label", "split"]]
        atomic_write_text(path, rows.to_csv(index=False))
    return paths
