"""The cell-load experiment TOML: which cell types and perturbations STATE trains on, validates and tests on.

cell-load reads four tables: ``[datasets]`` (name -> ``.h5ad`` file or folder), ``[training]`` (name ->
``"train"``), ``[zeroshot]`` (``"dataset.cell_type"`` -> ``"val"`` or ``"test"``: a whole cell type held out) and
``[fewshot."dataset.cell_type"]`` (``val`` / ``test`` lists: perturbations held out in that cell type, the rest
trained on). :func:`make_state_split` draws the held-out perturbations reproducibly from the data; the question
"does a text embedding let STATE predict perturbations it never saw" is asked on the few-shot test lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w

from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path
from bioprofile.perturbation.checks import check_control_in_cell_types, format_names

__all__ = ["StateSplit", "make_state_split", "write_cell_load_toml"]

_SPLITS = ("val", "test")


@dataclass(frozen=True)
class StateSplit:
    """A train / val / test split of a Perturb-seq dataset in cell-load's terms.

    Attributes
    ----------
    cell_types
        Every cell type of the data, in data order.
    zeroshot
        Cell types held out whole -> ``"val"`` or ``"test"``.
    fewshot
        Each other cell type -> ``{"val": [...], "test": [...]}``: perturbations held out there.
    """

    cell_types: tuple[str, ...]
    zeroshot: dict[str, str] = field(default_factory=dict)
    fewshot: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def test_perturbations(self) -> list[str]:
        """The perturbations held out for testing in any few-shot cell type (the unseen ones), sorted."""
        return sorted({p for splits in self.fewshot.values() for p in splits.get("test", [])})

    def to_toml(self, data_path: str | Path, *, dataset: str = "data") -> str:
        """The TOML text cell-load's ``ExperimentConfig.from_toml`` reads, the data at ``data_path``.

        Parameters
        ----------
        data_path
            The ``.h5ad`` file (or folder of them) the split is of.
        dataset
            The dataset's name in the TOML (no dots: cell-load splits ``"dataset.cell_type"`` at the first).
        """
        if not dataset or "." in dataset:
            raise BioprofileInputError(
                f"dataset name {dataset!r} must be non-empty and free of dots", argument="dataset"
            )
        document = {
            "datasets": {dataset: str(Path(data_path).resolve())},
            "training": {dataset: "train"},
            "zeroshot": {f"{dataset}.{ct}": split for ct, split in self.zeroshot.items()},
            "fewshot": {
                f"{dataset}.{ct}": {name: list(splits.get(name, [])) for name in _SPLITS}
                for ct, splits in self.fewshot.items()
            },
        }
        return _HEADER + tomli_w.dumps(document)


# tomli-w writes the tables; this comment goes first (TOML comments are outside its data model).
_HEADER = "# cell-load experiment config written by bioprofile (perturbation.toml.write_cell_load_toml)\n"


def make_state_split(
    adata,
    *,
    pert_col: str,
    control: str,
    cell_type_key: str,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    test_perturbations: Sequence[str] | None = None,
    zeroshot_cell_types: Sequence[str] = (),
    seed: int = 0,
) -> StateSplit:
    """Hold out perturbations (few-shot) and whole cell types (zero-shot) of a Perturb-seq AnnData.

    Parameters
    ----------
    adata
        The AnnData (its ``obs`` columns are checked and cast to categorical).
    pert_col
        The ``obs`` column of perturbation labels.
    control
        The control label; it is never held out (every split needs control cells).
    cell_type_key
        The ``obs`` column of cell types.
    test_fraction
        The share of perturbations (not the control) held out for testing, drawn with ``seed``.
    val_fraction
        The share held out for validation, drawn from the rest.
    test_perturbations
        These labels as the test set instead of a random draw.
    zeroshot_cell_types
        Cell types held out whole, for testing.
    seed
        The seed of the draw.

    Returns
    -------
    StateSplit
        The same held-out perturbations in every few-shot cell type, so "unseen" means unseen anywhere.

    Raises
    ------
    BioprofileInputError
        A column or the control is missing, a cell type lacks control cells, a fraction is out of range, a named
        label or cell type is not in the data, or no perturbation would be left to train on.
    """
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 <= value < 1:
            raise BioprofileInputError(f"{name} must be in [0, 1), got {value}", argument=name)
    check_control_in_cell_types(adata, pert_col=pert_col, control=control, cell_type_key=cell_type_key)
    cell_types = tuple(dict.fromkeys(adata.obs[cell_type_key].astype(str)))
    unknown = [c for c in zeroshot_cell_types if c not in cell_types]
    if unknown:
        raise BioprofileInputError(
            f"zero-shot cell type(s) {format_names(unknown)} are not in obs[{cell_type_key!r}]: "
            f"choose from {format_names(list(cell_types))}",
            argument="zeroshot_cell_types",
        )
    labels = sorted(set(adata.obs[pert_col].astype(str)) - {control})
    order = [labels[i] for i in np.random.default_rng(seed).permutation(len(labels))]
    if test_perturbations is not None:
        test = [str(p) for p in dict.fromkeys(test_perturbations)]
        absent = [p for p in test if p not in labels]
        if absent:
            raise BioprofileInputError(
                f"{len(absent)} test perturbation(s) are not perturbations of obs[{pert_col!r}]: "
                f"{format_names(absent)}",
                argument="test_perturbations",
            )
        rest = [p for p in order if p not in set(test)]
    else:
        n_test = int(round(test_fraction * len(labels)))
        test, rest = order[:n_test], order[n_test:]
    n_val = int(round(val_fraction * len(labels)))
    val, train = rest[:n_val], rest[n_val:]
    if not train:
        raise BioprofileInputError(
            f"no perturbation is left to train on ({len(labels)} in all): hold out fewer",
            argument="test_fraction",
        )
    fewshot = {
        ct: {"val": sorted(val), "test": sorted(test)} for ct in cell_types if ct not in zeroshot_cell_types
    }
    return StateSplit(cell_types, {ct: "test" for ct in zeroshot_cell_types}, fewshot)


def write_cell_load_toml(
    split: StateSplit,
    path: str | Path,
    *,
    data_path: str | Path,
    dataset: str = "data",
    overwrite: bool = False,
) -> Path:
    """Write ``split`` as a cell-load experiment TOML at ``path`` (atomically); returns ``path``.

    Parameters
    ----------
    split
        The split (:func:`make_state_split`).
    path
        The ``.toml`` file to write.
    data_path
        The ``.h5ad`` file (or folder) the split is of, written as an absolute path.
    dataset
        The dataset's name in the TOML.
    overwrite
        Replace ``path`` if it exists.
    """
    path = Path(path)
    check_output_path(path, overwrite=overwrite)
    text = split.to_toml(data_path, dataset=dataset)
    return atomic_write_text(path, text)
