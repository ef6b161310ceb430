"""Report helpers shared by the benchmarks: markdown tables, JSON files and ROC plots.

Nothing here knows about genes or cells: rows are plain mappings, curves are arrays.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RocCurve", "format_mean_std", "markdown_table", "plot_roc_panels", "to_jsonable", "write_json"]


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve: false- and true-positive rates and the area under it."""

    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def format_mean_std(mean: float, std: float | None, digits: int = 3) -> str:
    """``"0.812 ± 0.021"``; ``"n/a"`` for a missing (NaN/None) mean; no ``±`` part when ``std`` is None."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table.

    Parameters
    ----------
    rows
        One mapping per row; missing keys print empty.
    columns
        Column order (and subset); defaults to the keys of the first row, then any new keys in order seen.

    Returns
    -------
    str
        Header, separator and one line per row, ``|`` in cells escaped.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            value = "n/a" if math.isnan(value) else f"{value:.3f}"
        return str("" if value is None else value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, numpy arrays/scalars, paths and NaN into plain JSON values (NaN → None)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` (see :func:`to_jsonable`) as indented JSON, atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(to_jsonable(obj), fh, indent=2)
            fh.write("\n")
        umask = os.umask(0)  # mkstemp makes the file private; give it the mode an ordinary open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def plot_roc_panels(
    panels: Mapping[str, Mapping[str, RocCurve]], path: str | Path, *, ncols: int = 3
) -> Path:
    """One ROC panel per key of ``panels`` (e.g. a task), one line per curve (e.g. an embedding and model).

    Parameters
    ----------
    panels
        Panel title → {line label → :class:`RocCurve`}; the AUC is added to each label.
    path
        Output image (PNG by suffix).
    ncols
        Panels per row.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    titles = [t for t, curves in panels.items() if curves]
    if not titles:
        raise ValueError("plot_roc_panels needs at least one curve")
    ncols = min(ncols, len(titles))
    nrows = math.ceil(len(titles) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.0 * nrows), squeeze=False)
    for ax, title in zip(axes.flat, titles, strict=False):
        for label, curve in panels[title].items():
            ax.plot(curve.fpr, curve.tpr, lw=1.3, label=f"{label} ({curve.auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(
            title=title, xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1)
        )
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(titles) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
