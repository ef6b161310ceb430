"""A user's own gene or gene-pair task from a CSV/TSV file."""

from __future__ import annotations

from pathlib import Path

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.gene_tasks.interaction import load_pair_table
from bioprofile.evaluate.gene_tasks.labels import GeneLabels, PairLabels, binary_labels, read_csv_rows

__all__ = ["load_user_labels"]


def load_user_labels(path: str | Path) -> GeneLabels | PairLabels:
    """A user's own task from a CSV/TSV file.

    Parameters
    ----------
    path
        Either a gene column (``gene``, ``symbol``, ``gene_name``, ``ensembl_id`` or ``gene_id``) and a binary
        ``label`` column, or ``gene_a, gene_b, label`` (and an optional ``split`` of train/test) for an
        interaction task.

    Returns
    -------
    GeneLabels or PairLabels
        Named after the file stem.
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() in {".tsv", ".txt"} else ","
    rows = read_csv_rows(path, delimiter)
    header = {k.strip().lower(): k for k in (rows[0].keys() if rows else [])}
    if {"gene_a", "gene_b"} <= set(header):
        if "label" not in header:
            raise BioprofileInputError(f"{path}: a pair task needs a 'label' column beside gene_a and gene_b")
        return load_pair_table(path, name=path.stem)
    gene_column = next(
        (header[c] for c in ("gene", "symbol", "gene_name", "ensembl_id", "gene_id") if c in header), None
    )
    if gene_column is None or "label" not in header:
        raise BioprofileInputError(
            f"{path} needs a gene column (gene, symbol or ensembl_id) and a 'label' column, or gene_a,gene_b,label"
        )
    rows = [r for r in rows if (r.get(gene_column) or "").strip()]
    labels = binary_labels([r[header["label"]] for r in rows], path)
    return GeneLabels(path.stem, [r[gene_column].strip() for r in rows], labels, ["0", "1"])
