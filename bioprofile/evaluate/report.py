"""Report helpers shared by the benchmarks: the result shape, markdown tables, JSON files, provenance, prefixes.

Nothing here knows about genes or cells: rows are plain mappings, curves are arrays. Every benchmark result has one
shape, :class:`BenchmarkResult`: ``to_frame()`` (a pandas DataFrame), ``to_markdown()``, ``to_dict()``,
``summary_markdown()`` (what a command prints) and ``write(prefix)``, which goes through :func:`write_report`
(PREFIX.md and PREFIX.json); :class:`WritesItself` implements ``write`` for them. The plots of the same results are
drawn by :mod:`bioprofile.pl`, whose :func:`bioprofile.pl.write_result` writes a result's files and figure in one
call.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from bioprofile._version import __version__
from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError
from bioprofile.outputs import check_output_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REPORT_SUFFIXES",
    "BenchmarkResult",
    "RocCurve",
    "TableResult",
    "WritesItself",
    "check_output_prefix",
    "format_mean_std",
    "markdown_table",
    "provenance",
    "to_jsonable",
    "write_json",
    "write_report",
]


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
    """Write ``obj`` (see :func:`to_jsonable`) as indented JSON, atomically, with the umask's mode."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def provenance(*distributions: str) -> dict[str, Any]:
    """What produced a result: the bioprofile and Python versions and those of the given libraries.

    Parameters
    ----------
    *distributions
        Installed distribution names whose versions matter to the numbers (``"scikit-learn"``, ``"scanpy"``);
        one that is not installed is recorded as ``None``.

    Returns
    -------
    dict
        ``{"bioprofile": version, "python": version, "libraries": {name: version}}``.
    """
    libraries: dict[str, str | None] = {}
    for name in distributions:
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = None
    return {"bioprofile": __version__, "python": platform.python_version(), "libraries": libraries}


#: The files a benchmark writes under its prefix: the report pair and the plot.
REPORT_SUFFIXES = (".md", ".json", ".png")


def check_output_prefix(
    prefix: str | Path,
    *,
    overwrite: bool = False,
    suffixes: Sequence[str] = REPORT_SUFFIXES,
    folders: Sequence[str | Path] = (),
) -> Path:
    """``prefix`` as a path, once nothing a run writes under it is in the way (call it before any expensive work).

    Parameters
    ----------
    prefix
        The output prefix: ``PREFIX.md``, ``PREFIX.json``... are written.
    overwrite
        Replace those files when they exist; without it an existing one is refused.
    suffixes
        The suffixes the run writes under the prefix.
    folders
        Folders the run also fills (e.g. one of plots); refused when they exist, unless ``overwrite``.

    Returns
    -------
    Path
        ``prefix``.

    Raises
    ------
    BioprofileInputError
        The prefix's folder does not exist or cannot be written, or an output exists and ``overwrite`` is false.
    """
    prefix = Path(prefix)
    for suffix in suffixes:
        check_output_path(prefix.with_suffix(suffix), overwrite=overwrite)
    for folder in map(Path, folders):
        if folder.exists() and not (overwrite and folder.is_dir()):
            what = "is a file" if not folder.is_dir() else "already exists"
            raise BioprofileInputError(
                f"{folder} {what}: choose another output prefix, or set overwrite to replace it",
                argument="overwrite",
            )
    return prefix


def write_report(prefix: str | Path, markdown: str, payload: Any, *, overwrite: bool = False) -> list[Path]:
    """Write ``PREFIX.md`` (the markdown as given) and ``PREFIX.json`` (``payload``, see :func:`write_json`).

    Both are written atomically; an existing one is replaced only with ``overwrite``.

    Returns
    -------
    list of Path
        The two files, markdown first.
    """
    prefix = check_output_prefix(prefix, overwrite=overwrite, suffixes=(".md", ".json"))
    md, js = prefix.with_suffix(".md"), prefix.with_suffix(".json")
    atomic_write_text(md, markdown)
    write_json(payload, js)
    return [md, js]


@runtime_checkable
class BenchmarkResult(Protocol):
    """What every benchmark's result offers: a frame, markdown, JSON values and files under a prefix.

    Gene tasks, gene sets, clustering, integration and perturbation return one (:class:`WritesItself` gives them
    ``write``); :func:`bioprofile.pl.write_result` writes any of them with its figure.

    Attributes
    ----------
    settings
        The arguments of the run, as plain values.
    provenance
        Versions of bioprofile, Python and the scoring libraries (see :func:`provenance`).
    """

    settings: dict[str, Any]
    provenance: dict[str, Any]

    def to_frame(self) -> pd.DataFrame:
        """The scores as a pandas DataFrame (one row per method, or per scored combination)."""
        ...

    def to_markdown(self) -> str:
        """The result as GitHub markdown (``PREFIX.md``)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values, its settings and provenance included (``PREFIX.json``)."""
        ...

    def summary_markdown(self) -> str:
        """The markdown a command prints once the files are written."""
        ...

    def write(self, prefix: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write ``PREFIX.md`` and ``PREFIX.json``; return the files written."""
        ...


class WritesItself:
    """A result that writes itself under a prefix from its :meth:`to_markdown` and :meth:`to_dict`.

    Subclasses give :meth:`to_frame`, :meth:`to_markdown` and :meth:`to_dict`, and so meet
    :class:`BenchmarkResult`.
    """

    def to_frame(self) -> pd.DataFrame:
        """The scores as a pandas DataFrame."""
        raise NotImplementedError

    def to_markdown(self) -> str:
        """The result as GitHub markdown."""
        raise NotImplementedError

    def summary_markdown(self) -> str:
        """The markdown a command prints once the files are written: all of :meth:`to_markdown` unless overridden."""
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values, its settings and provenance included."""
        raise NotImplementedError

    def write(self, prefix: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write ``PREFIX.md`` (:meth:`to_markdown`) and ``PREFIX.json`` (:meth:`to_dict`), atomically.

        An existing file is replaced only with ``overwrite``.

        Returns
        -------
        list of Path
            The files written.
        """
        return write_report(prefix, self.to_markdown(), self.to_dict(), overwrite=overwrite)


@dataclass(frozen=True, eq=False)
class TableResult(WritesItself):
    """A benchmark's method × metric table, with the settings and provenance that produced it.

    Attributes
    ----------
    table
        One row per method (index ``method``), one column per score.
    settings
        The arguments of the run, as plain values.
    provenance
        Versions of bioprofile, Python and the scoring libraries (see :func:`provenance`).
    """

    table: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table`: one row per method (index ``method``), one column per score."""
        return self.table.copy()

    def rows(self) -> list[dict[str, Any]]:
        """One ``{"method": name, score: value, ...}`` mapping per row of :attr:`table`."""
        return [{"method": method, **row} for method, row in self.table.to_dict(orient="index").items()]

    def to_markdown(self) -> str:
        """The table as GitHub markdown (see :func:`markdown_table`)."""
        return markdown_table(self.rows())

    def to_dict(self) -> dict[str, Any]:
        """``{"settings", "provenance", "rows"}``, the JSON form of the result."""
        return {"settings": self.settings, "provenance": self.provenance, "rows": self.rows()}
