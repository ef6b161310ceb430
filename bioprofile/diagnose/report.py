"""The diagnosis: score, tag and classify a set of examples, then tabulate the windows per group and write tables.

:func:`diagnose` runs the whole chain (:mod:`~bioprofile.diagnose.confidences`, :mod:`~bioprofile.text`,
:mod:`~bioprofile.diagnose.windows`) and returns a :class:`Diagnosis`; :func:`write_diagnosis` and
:func:`write_token_weights` write tables only (the plots are :func:`bioprofile.pl.plot_group_summary` and
:func:`bioprofile.pl.plot_token_weights`), and :func:`rich_table` renders a table for the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bioprofile.atomic import atomic_path, atomic_write_text
from bioprofile.diagnose.confidences import ResponseConfidence, tag_response, token_confidences
from bioprofile.diagnose.examples import PromptResponse
from bioprofile.diagnose.windows import GROUPS, WindowRule, classify_windows
from bioprofile.genes import hgnc_symbols
from bioprofile.outputs import check_output_folder
from bioprofile.text import load_ner_pipeline

#: The files ``diagnose windows`` writes into its folder: tables (:func:`write_diagnosis`) and the plot.
DIAGNOSIS_FILES = (
    "diagnose_groups.csv",
    "diagnose_groups.json",
    "diagnose_windows.csv",
    "diagnose_groups.png",
)


def weights_files(index: int) -> tuple[str, str]:
    """The files ``diagnose weights`` writes for record ``index``: the table and its plot."""
    return (f"weights_{index}.csv", f"weights_{index}.png")


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


# the default window rule (a frozen dataclass, so one shared instance is safe as an argument default)
DEFAULT_RULE = WindowRule()

__all__ = [
    "DEFAULT_RULE",
    "DIAGNOSIS_FILES",
    "Diagnosis",
    "check_output_dir",
    "diagnose",
    "rich_table",
    "summarize_windows",
    "weights_files",
    "window_table",
    "write_diagnosis",
    "write_token_weights",
]


@dataclass
class Diagnosis:
    """Result of :func:`diagnose`.

    Attributes
    ----------
    responses
        Per-response confidences and token tags.
    windows
        One row per window: ``record``, ``start``, ``end``, ``low_fraction``, ``longest_low_run``, ``mean_p``,
        ``group``, ``has_entity``, ``has_connective``.
    summary
        One row per group (see :func:`summarize_windows`).
    rule
        The window rule used.
    """

    responses: list[ResponseConfidence]
    windows: pd.DataFrame
    summary: pd.DataFrame
    rule: WindowRule

    def write(self, prefix: str | Path) -> dict[str, Path]:
        """Write the per-group table (``PREFIX_groups.csv`` and ``.json``) and the window table (``PREFIX_windows.csv``).

        The JSON adds the rule and the response and token counts to the per-group rows. Each file is written
        atomically. Plots are drawn apart, by :func:`bioprofile.pl.plot_group_summary`.

        Returns
        -------
        Paths written, keyed ``summary_csv``, ``summary_json``, ``windows_csv``.
        """
        prefix = Path(prefix)
        paths = {
            "summary_csv": prefix.with_name(f"{prefix.name}_groups.csv"),
            "summary_json": prefix.with_name(f"{prefix.name}_groups.json"),
            "windows_csv": prefix.with_name(f"{prefix.name}_windows.csv"),
        }
        _write_csv(self.summary, paths["summary_csv"])
        payload = {
            "rule": asdict(self.rule),
            "responses": len(self.responses),
            "tokens": int(sum(r.p.size for r in self.responses)),
            "groups": json.loads(self.summary.to_json(orient="records")),
        }
        atomic_write_text(paths["summary_json"], json.dumps(payload, indent=2) + "\n")
        _write_csv(self.windows, paths["windows_csv"])
        return paths


def window_table(responses: Sequence[ResponseConfidence], rule: WindowRule = DEFAULT_RULE) -> pd.DataFrame:
    """Classify every window of every (tagged) response and note whether it holds an entity or connective."""
    frames = []
    for response in responses:
        windows = classify_windows(response.p, rule)
        if windows.empty:
            continue
        entity = response.entity if response.entity.size else np.zeros(response.p.size, dtype=bool)
        connective = (
            response.connective if response.connective.size else np.zeros(response.p.size, dtype=bool)
        )
        windows.insert(0, "record", response.index)
        windows["has_entity"] = [
            bool(entity[s:e].any()) for s, e in zip(windows.start, windows.end, strict=False)
        ]
        windows["has_connective"] = [
            bool(connective[s:e].any()) for s, e in zip(windows.start, windows.end, strict=False)
        ]
        frames.append(windows)
    columns = ["record", "start", "end", "low_fraction", "longest_low_run", "mean_p", "group"]
    if not frames:
        return pd.DataFrame(columns=columns + ["has_entity", "has_connective"])
    return pd.concat(frames, ignore_index=True)


def summarize_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """Per-group summary of a window table.

    Returns
    -------
    One row per group in :data:`GROUPS` order (empty groups get NaN rates): ``group``, ``windows``,
    ``frac_with_entity``, ``frac_with_connective``, ``mean_p`` (mean of the windows' mean ``p``),
    ``mean_low_fraction``.
    """
    rows = []
    for group in GROUPS:
        part = windows[windows["group"] == group]
        count = len(part)
        rows.append(
            {
                "group": group,
                "windows": count,
                "frac_with_entity": float(part["has_entity"].mean()) if count else float("nan"),
                "frac_with_connective": float(part["has_connective"].mean()) if count else float("nan"),
                "mean_p": float(part["mean_p"].mean()) if count else float("nan"),
                "mean_low_fraction": float(part["low_fraction"].mean()) if count else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def diagnose(
    model,
    tokenizer,
    examples: Sequence[PromptResponse],
    *,
    rule: WindowRule = DEFAULT_RULE,
    batch_size: int = 4,
    max_length: int = 1024,
    ner_model: str | Path | None = None,
) -> Diagnosis:
    """Score, tag and classify: the whole teacher-forced confidence diagnosis for a set of examples.

    Parameters
    ----------
    model, tokenizer
        A causal LM and its fast tokenizer (see :func:`bioprofile.diagnose.confidences.load_causal_lm`).
    examples
        Prompt/response pairs (see :func:`bioprofile.diagnose.examples.read_examples`).
    rule
        Window size, stride and classification thresholds.
    batch_size, max_length
        Passed to :func:`bioprofile.diagnose.confidences.token_confidences`.
    ner_model
        spaCy NER pipeline for gene/protein entities, beside the HGNC lexicon (see
        :func:`bioprofile.text.gene_entity_spans`).

    Returns
    -------
    A :class:`Diagnosis` with per-response confidences, the window table and the per-group summary.
    """
    if ner_model is not None:
        load_ner_pipeline(ner_model)  # a bad pipeline fails before the forward passes, not after
    responses = token_confidences(model, tokenizer, examples, batch_size=batch_size, max_length=max_length)
    symbols = hgnc_symbols()
    for response in responses:
        tag_response(response, symbols, ner_model=ner_model)
    windows = window_table(responses, rule)
    return Diagnosis(responses=responses, windows=windows, summary=summarize_windows(windows), rule=rule)


def check_output_dir(output: str | Path, files: Sequence[str] = (), *, overwrite: bool = False) -> Path:
    """Fail before any work if ``output`` cannot become the folder the tables are written to.

    Nothing is created: ``output`` must be a writable folder, or not exist yet below a writable folder. Of the
    ``files`` a run writes there, one that exists already is refused unless ``overwrite``
    (:func:`~bioprofile.outputs.check_output_folder`).

    Returns
    -------
    ``output`` as a :class:`~pathlib.Path`.
    """
    return check_output_folder(output, list(files), overwrite=overwrite)


def write_diagnosis(diagnosis: Diagnosis, output: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write a diagnosis's tables into the folder ``output`` (created if needed) with :meth:`Diagnosis.write`.

    Tables of an earlier run there are replaced only with ``overwrite``.

    Returns
    -------
    Paths written, keyed ``summary_csv`` (``diagnose_groups.csv``), ``summary_json`` (``diagnose_groups.json``)
    and ``windows_csv`` (``diagnose_windows.csv``).
    """
    output = check_output_dir(output, DIAGNOSIS_FILES[:3], overwrite=overwrite)
    output.mkdir(parents=True, exist_ok=True)
    return diagnosis.write(output / "diagnose")


def write_token_weights(
    table: pd.DataFrame, output: str | Path, index: int, *, overwrite: bool = False
) -> dict[str, Path]:
    """Write a :func:`bioprofile.diagnose.weights.token_weight_table` as ``weights_INDEX.csv`` in ``output``.

    A table of an earlier run is replaced only with ``overwrite``; the file is written atomically.

    Returns
    -------
    The path written, keyed ``csv``.
    """
    output = check_output_dir(output, weights_files(index)[:1], overwrite=overwrite)
    output.mkdir(parents=True, exist_ok=True)
    path = output / weights_files(index)[0]
    _write_csv(table, path)
    return {"csv": path}


def rich_table(table: pd.DataFrame, *, title: str | None = None, digits: int = 3):
    """A :class:`rich.table.Table` of a data frame: floats rounded, booleans as ``yes``/blank, NaN as ``-``."""
    from rich.table import Table
    from rich.text import Text

    view = Table(title=title)
    for column in table.columns:
        numeric = pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(
            table[column]
        )
        # fold rather than cut long headers and tokens when the terminal is narrow
        view.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in table.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, (bool, np.bool_)):
                cells.append("yes" if value else "")
            elif isinstance(value, (float, np.floating)):
                cells.append("-" if np.isnan(value) else f"{value:.{digits}f}")
            else:
                cells.append(repr(value)[1:-1] if isinstance(value, str) else str(value))
        view.add_row(*(Text(cell) for cell in cells))  # Text: token text such as "[x]" is not markup
    return view
