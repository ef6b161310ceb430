"""Perturbation features for STATE: one 1-D float32 tensor per label of ``obs[pert_col]``, saved with torch.

STATE (through cell-load) reads a ``torch.save`` dict of perturbation name -> 1-D tensor and gives any label it
does not find a zero vector, logging it only at INFO level, so a gene missing from the table would silently look
like a null perturbation. :func:`export_state_features` therefore gives every label a vector or fails, listing
every label it could not place, unless ``allow_missing`` says what to do; a sidecar JSON records what was done.

Rules
-----
- Keys are the labels of ``obs[pert_col]`` exactly as written (``str`` of each value, the control and
  combinations included), in order of first appearance.
- The control label gets ``control_vector``: ``"zeros"`` (default) or ``"mean"``.
- Any other label is first looked up whole: an exact symbol of the table, else through HGNC
  (:func:`bioprofile.genes.normalize_genes`: aliases, previous symbols, Ensembl and Entrez ids) to a gene the
  table holds, matched by HGNC id or approved symbol.
- A label that is not found whole and contains ``separator`` (default ``"+"``) is a combination: it is split on
  the separator, parts are stripped of spaces, parts equal to the control label are dropped (``"CEBPE+ctrl"`` is
  CEBPE alone when the control is ``"ctrl"``), and every remaining part must be found as above. The combination's
  vector is ``combination`` of its parts' vectors: ``"mean"`` (default) or ``"sum"``. A part that is missing
  makes the whole label missing.
- ``"mean"`` (for the control or a missing label) is the mean of the vectors of the distinct genes the data's
  single and combined perturbations were matched to, each gene once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bioprofile._version import __version__
from bioprofile.atomic import atomic_path, atomic_write_text
from bioprofile.data import file_sha256
from bioprofile.embeddings import EntityEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.outputs import check_output_path
from bioprofile.perturbation.checks import check_control_label, check_obs_column, format_names
from bioprofile.readers import read_h5ad

__all__ = [
    "ALLOW_MISSING",
    "COMBINATIONS",
    "CONTROL_VECTORS",
    "MissingPerturbationsError",
    "StateFeatures",
    "export_state_features",
    "sidecar_path",
]

CONTROL_VECTORS = ("zeros", "mean")
ALLOW_MISSING = ("zeros", "mean", "drop")
COMBINATIONS = ("mean", "sum")
_FORMAT = "bioprofile.state_features/1"


class MissingPerturbationsError(BioprofileInputError):
    """Perturbations with no vector; :attr:`missing` holds every one of them (the message shows the first few).

    Parameters
    ----------
    message
        The one-line message.
    missing
        Every label that has no vector, in data order.
    """

    def __init__(self, message: str, *, missing: Sequence[str]):
        super().__init__(message, argument="allow_missing")
        self.missing = list(missing)


@dataclass
class StateFeatures:
    """STATE perturbation features: the dict to save, and the record of how it was made.

    Attributes
    ----------
    features
        Perturbation label -> 1-D ``float32`` tensor, keys exactly the labels of ``obs[pert_col]`` (less the
        dropped ones, if ``allow_missing="drop"``).
    record
        What the sidecar JSON holds: the rules used, the control handling, the missing and dropped labels, each
        label's genes, and the provenance of the embeddings and the data.
    """

    features: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """The length of every vector."""
        return int(self.record["dim"])

    def __len__(self) -> int:
        return len(self.features)

    def write(self, path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
        """Save :attr:`features` with ``torch.save`` at ``path`` and the record beside it; both atomically.

        Parameters
        ----------
        path
            The ``.pt`` file to write (STATE's ``perturbation_features_file``).
        overwrite
            Replace ``path`` and its sidecar when they exist.

        Returns
        -------
        tuple of Path
            The features file and its sidecar JSON (:func:`sidecar_path`).
        """
        import torch

        path = Path(path)
        sidecar = sidecar_path(path)
        check_output_path(path, overwrite=overwrite)
        check_output_path(sidecar, overwrite=overwrite)
        with atomic_path(path) as tmp:
            torch.save(self.features, tmp)
        record = {**self.record, "output": path.name}
        atomic_write_text(sidecar, json.dumps(record, indent=2, default=str) + "\n")
        return path, sidecar


def sidecar_path(path: str | Path) -> Path:
    """The sidecar JSON of a features file: ``pert.pt`` -> ``pert.pt.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _choice(value, options: Sequence[str | None], argument: str) -> None:
    if value not in options:
        shown = ", ".join("None" if o is None else repr(o) for o in options)
        raise BioprofileInputError(f"{argument} must be one of {shown}, got {value!r}", argument=argument)


def _read_labels(adata, pert_col: str) -> tuple[list[str], dict[str, Any]]:
    """The labels of ``obs[pert_col]`` in order of first appearance, and where they came from."""
    if isinstance(adata, (str, Path)):
        path = Path(adata)
        # obs only: the expression stays on disk
        backed = read_h5ad(path, backed="r", what="data file", argument="adata")
        try:
            check_obs_column(backed, pert_col, argument="pert_col")
            labels = list(dict.fromkeys(backed.obs[pert_col].astype(str)))
            source = {"path": str(path), "n_obs": int(backed.n_obs), "sha256": file_sha256(path)}
        finally:
            backed.file.close()
        return labels, source
    check_obs_column(adata, pert_col, argument="pert_col")
    return list(dict.fromkeys(adata.obs[pert_col].astype(str))), {"n_obs": int(adata.n_obs)}


def _read_table(embeddings) -> tuple[EntityEmbeddings, dict[str, Any]]:
    if isinstance(embeddings, EntityEmbeddings):
        return embeddings, {}
    path = Path(embeddings)
    table = EntityEmbeddings.read(path)
    return table, {"path": str(path), "sha256": file_sha256(path)}


class _Matcher:
    """Finds the table row of a gene label: an exact table symbol, else HGNC (by id or approved symbol)."""

    def __init__(self, table: EntityEmbeddings, labels: Sequence[str]):
        self.by_symbol = {s: i for i, s in enumerate(table.symbols)}
        self.by_id = {str(k).upper(): i for i, k in enumerate(table.ids)}
        unmatched = [x for x in dict.fromkeys(labels) if x.strip() and x not in self.by_symbol]
        self.inputs: dict[str, int] = {}
        self.ambiguous: dict[str, list[str]] = {}
        if unmatched:
            try:
                resolution = normalize_genes(unmatched)
            except BioprofileInputError:  # none of them is a gene: every one stays unmatched
                return
            genes = {g.symbol: g for g in resolution.genes}
            for label, symbol in resolution.inputs.items():
                row = self.by_id.get(genes[symbol].hgnc_id.upper(), self.by_symbol.get(symbol))
                if row is not None:
                    self.inputs[label] = row
            self.ambiguous = dict(resolution.ambiguous)

    def row(self, label: str) -> int | None:
        """The table row of ``label``, or None."""
        if label in self.by_symbol:
            return self.by_symbol[label]
        return self.inputs.get(label.strip())


def _parts(label: str, *, separator: str, control: str) -> list[str]:
    parts = [p.strip() for p in label.split(separator)]
    return [p for p in parts if p != control]


def export_state_features(
    embeddings: EntityEmbeddings | str | Path,
    adata,
    *,
    pert_col: str,
    control: str,
    control_vector: str = "zeros",
    allow_missing: str | None = None,
    combination: str = "mean",
    separator: str = "+",
) -> StateFeatures:
    """STATE perturbation features from an embedding table, one vector per label of ``obs[pert_col]``.

    Parameters
    ----------
    embeddings
        The gene table (:class:`~bioprofile.embeddings.EntityEmbeddings`) or a file it reads.
    adata
        The Perturb-seq AnnData, or an ``.h5ad`` path (only its ``obs`` is read).
    pert_col
        The ``obs`` column of perturbation labels (e.g. ``"gene"``).
    control
        The control label, exactly as in the data (``"non-targeting"``, ``"DMSO_TF"``...).
    control_vector
        The control's vector: ``"zeros"`` or ``"mean"`` (the mean of the matched genes' vectors).
    allow_missing
        What a label with no vector gets: None (fail, listing them all), ``"zeros"``, ``"mean"``, or
        ``"drop"`` (no key: then drop those cells from the data too, or cell-load zero-fills them).
    combination
        How a combination's parts combine: ``"mean"`` or ``"sum"``.
    separator
        What separates the genes of a combination label (``"A+B"``).

    Returns
    -------
    StateFeatures
        The features dict and the record of how it was made; :meth:`StateFeatures.write` saves both.

    Raises
    ------
    MissingPerturbationsError
        Some labels have no vector and ``allow_missing`` is None; the message counts them all.
    BioprofileInputError
        A bad option, ``pert_col`` absent, or ``control`` not a label of it.
    """
    import torch

    _choice(control_vector, CONTROL_VECTORS, "control_vector")
    _choice(allow_missing, (None, *ALLOW_MISSING), "allow_missing")
    _choice(combination, COMBINATIONS, "combination")
    if not separator:
        raise BioprofileInputError("separator must be a non-empty string", argument="separator")
    labels, data_source = _read_labels(adata, pert_col)
    check_control_label(labels, control, pert_col=pert_col)
    table, table_source = _read_table(embeddings)

    perturbations = [label for label in labels if label != control]
    candidates = perturbations + [
        part
        for label in perturbations
        if separator in label
        for part in _parts(label, separator=separator, control=control)
    ]
    matcher = _Matcher(table, candidates)
    rows: dict[str, list[int]] = {}
    missing: list[str] = []
    combined: list[str] = []
    reasons: dict[str, str] = {}
    for label in perturbations:
        row = matcher.row(label)
        if row is not None:
            rows[label] = [row]
            continue
        parts = _parts(label, separator=separator, control=control) if separator in label else []
        part_rows = [matcher.row(p) for p in parts]
        if parts and all(r is not None for r in part_rows):
            rows[label] = part_rows
            combined.append(label)
            continue
        missing.append(label)
        unplaced = (
            [p for p, r in zip(parts, part_rows, strict=True) if r is None] if parts else [label.strip()]
        )
        reasons[label] = "; ".join(
            f"{p}: ambiguous ({', '.join(matcher.ambiguous[p])})"
            if p in matcher.ambiguous
            else f"{p}: not found"
            for p in unplaced
        )

    if missing and allow_missing is None:
        raise MissingPerturbationsError(
            f"{len(missing)} of {len(perturbations)} perturbation(s) of obs[{pert_col!r}] have no vector in the "
            f"embeddings: {format_names(missing)}; embed those genes, or set allow_missing to zeros, mean or drop",
            missing=missing,
        )
    used = sorted({r for parts in rows.values() for r in parts})
    needs_mean = control_vector == "mean" or (missing and allow_missing == "mean")
    if needs_mean and not used:
        raise BioprofileInputError(
            "no perturbation of the data matched a gene of the table, so there is no mean vector to use",
            argument="control_vector" if control_vector == "mean" else "allow_missing",
        )
    mean = table.vectors[used].mean(axis=0) if used else None
    zeros = np.zeros(table.dim, dtype=np.float32)

    features: dict[str, Any] = {}
    for label in labels:
        if label == control:
            vector = mean if control_vector == "mean" else zeros
        elif label in rows:
            parts = table.vectors[rows[label]]
            vector = parts.mean(axis=0) if combination == "mean" else parts.sum(axis=0)
        elif allow_missing == "drop":
            continue
        else:
            vector = mean if allow_missing == "mean" else zeros
        features[label] = torch.tensor(np.asarray(vector, dtype=np.float32))

    record = {
        "format": _FORMAT,
        "bioprofile_version": __version__,
        "n_perturbations": len(features),
        "dim": table.dim,
        "pert_col": pert_col,
        "control": {"label": control, "vector": control_vector},
        "combination": {"rule": combination, "separator": separator, "labels": combined},
        "allow_missing": allow_missing,
        "missing": {"n": len(missing), "labels": missing, "reasons": reasons},
        "dropped": missing if allow_missing == "drop" else [],
        "genes": {label: [table.symbols[r] for r in parts] for label, parts in rows.items()},
        "embeddings": {
            **table_source,
            "n_entities": len(table),
            "entity_kind": table.kind,
            "provenance": table.provenance,
        },
        "data": data_source,
    }
    return StateFeatures(features=features, record=record)
