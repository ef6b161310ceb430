"""The DE-reasoning benchmark: ask a model every question, parse its answers, score them per cell line.

Answers are generated through :func:`~bioprofile.profiles.generate.generate_profiles`, so they are cached in the
store like profiles and gene-set answers: keyed by the question (:attr:`DEQuestion.key`: cell line, drug and gene),
the prompt template (name and text), the generator and its decoding settings; a rerun asks nothing that is stored.
Each reply is read by :func:`~bioprofile.profiles.de_prompts.parse_answer`; a malformed reply is counted and scored
wrong, never an error. Scores (:mod:`.scores`) are per cell line and pooled, beside the majority-class and
always-yes baselines, with a 95 % Wilson interval on every accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.de_reasoning.records import DEQuestion, check_both_classes
from bioprofile.evaluate.de_reasoning.scores import BASELINES, baseline_predictions, score_predictions
from bioprofile.evaluate.report import WritesItself, markdown_table, provenance
from bioprofile.profiles.coerce import as_generator
from bioprofile.profiles.de_prompts import DE_ANSWER_RULE, DEQuestionPrompt, get_de_template, parse_answer
from bioprofile.profiles.generate import ProfileGenerator, generate_profiles, profile_cache_key
from bioprofile.store import Store, open_store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ALL_CELL_LINES", "DEReasoningResult", "run_de_reasoning"]

#: The row that pools every cell line's records.
ALL_CELL_LINES = "all"
# The score columns of the frame, in order.
_SCORE_COLUMNS = (
    "n",
    "positives",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "balanced_accuracy",
    "f1",
    "malformed",
    "malformed_rate",
)


def _answer_word(parsed: bool | None) -> str | None:
    return None if parsed is None else ("yes" if parsed else "no")


@dataclass
class DEReasoningResult(WritesItself):
    """A DE-reasoning run: every question's reply and parsed answer, the scores, the settings and provenance.

    Attributes
    ----------
    records
        One per question: ``pert``, ``cell_line``, ``gene``, ``label`` (``"yes"``/``"no"``), ``split``, ``key``,
        ``raw_answer`` (the model's reply) and ``answer`` (``"yes"``, ``"no"``, or ``None`` when malformed).
    method
        The model's name in the table.
    settings
        The run's template, generator, decoding settings, answer rule and scoring notes.
    provenance
        Versions of bioprofile and Python.
    """

    records: list[dict[str, Any]]
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """The model's name, then the baselines."""
        return [self.method, *BASELINES]

    def cell_lines(self) -> list[str]:
        """The cell lines scored, in the order their first record came."""
        return list(dict.fromkeys(r["cell_line"] for r in self.records))

    def summary(self) -> list[dict[str, Any]]:
        """Per cell line (then ``"all"``, pooled) and method: its scores (see :func:`.scores.score_predictions`)."""
        predictions: dict[str, list[bool | None]] = {self.method: [], **{b: [] for b in BASELINES}}
        labels: list[bool] = []
        rows = []
        for line in self.cell_lines():
            records = [r for r in self.records if r["cell_line"] == line]
            line_labels = [r["label"] == "yes" for r in records]
            answers = {
                self.method: [None if r["answer"] is None else r["answer"] == "yes" for r in records],
                **{b: baseline_predictions(line_labels, b) for b in BASELINES},
            }
            for method in self.methods:
                rows.append(
                    {"cell_line": line, "method": method, **score_predictions(line_labels, answers[method])}
                )
                predictions[method] += answers[method]
            labels += line_labels
        for method in self.methods:
            rows.append(
                {
                    "cell_line": ALL_CELL_LINES,
                    "method": method,
                    **score_predictions(labels, predictions[method]),
                }
            )
        return rows

    def to_frame(self) -> pd.DataFrame:
        """One row per cell line (and ``"all"``) and method (index ``cell_line, method``), a column per score."""
        import pandas as pd

        rows = [{k: row[k] for k in ("cell_line", "method", *_SCORE_COLUMNS)} for row in self.summary()]
        return pd.DataFrame(rows).set_index(["cell_line", "method"])

    def summary_markdown(self) -> str:
        """The scores table, a row per cell line and method (what a command prints; no trailing newline)."""
        return self._summary_table().rstrip("\n")

    def _summary_table(self) -> str:
        return markdown_table(
            [
                {
                    "cell line": row["cell_line"],
                    "method": row["method"],
                    "n": row["n"],
                    "yes": row["positives"],
                    "accuracy": row["accuracy"],
                    "95% CI (Wilson)": f"[{row['accuracy_low']:.3f}, {row['accuracy_high']:.3f}]",
                    "balanced accuracy": row["balanced_accuracy"],
                    "F1 (yes)": row["f1"],
                    "malformed": row["malformed_rate"],
                }
                for row in self.summary()
            ]
        )

    def to_markdown(self) -> str:
        """The scores table, how it was scored, then one row per question with the model's answer."""
        notes = (
            "\nAccuracy's 95% interval: Wilson score. A malformed answer (neither a final 'Answer: yes|no' line nor "
            "an <answer> tag) is scored wrong; 'malformed' is its share. Baselines per cell line: 'majority' answers "
            "every question with the cell line's more frequent label (no on a tie), 'always-yes' with yes.\n\n"
        )
        per_question = [
            {
                "cell line": r["cell_line"],
                "drug": r["pert"],
                "gene": r["gene"],
                "label": r["label"],
                "split": r["split"],
                "answer": r["answer"] if r["answer"] is not None else "malformed",
            }
            for r in self.records
        ]
        return self._summary_table() + notes + markdown_table(per_question)

    def to_dict(self) -> dict[str, Any]:
        """``{"settings", "provenance", "summary", "records"}``, the JSON form of the result."""
        return {
            "settings": self.settings,
            "provenance": self.provenance,
            "summary": self.summary(),
            "records": self.records,
        }


def run_de_reasoning(
    records: Sequence[DEQuestion],
    *,
    generator: ProfileGenerator | str | Path | None = None,
    template: str | DEQuestionPrompt = "de-reasoning",
    store: Store | None = None,
    name: str | None = None,
) -> DEReasoningResult:
    """Ask a model whether each gene is differentially expressed after each drug, and score its answers.

    Parameters
    ----------
    records
        The questions with their labels (:func:`~bioprofile.evaluate.de_reasoning.records.read_de_records`); every
        cell line needs both classes.
    generator
        Any backend (:func:`~bioprofile.profiles.backends.make_generator`: transformers, vLLM, OpenAI-compatible),
        or a model for the default transformers backend to load (``None``: the bundled SmolLM2).
    template
        A DE-question template or its name (:data:`~bioprofile.profiles.de_prompts.DE_TEMPLATES`).
    store
        Cache of the replies; ``None`` opens the default one.
    name
        The model's row in the table; default the generator's id.

    Returns
    -------
    DEReasoningResult

    Raises
    ------
    BioprofileInputError
        No records, a cell line with one class, an unknown template, or a name that is a baseline's.
    """
    if not records:
        raise BioprofileInputError("no records given", argument="records")
    check_both_classes(records)
    template = get_de_template(template)
    generator = as_generator(generator)
    method = name or generator.id
    if method in BASELINES:
        raise BioprofileInputError(
            f"{method!r} names a baseline's row: give the model another name", argument="name"
        )
    with open_store(store) as cache:
        replies = generate_profiles(records, generator=generator, template=template, store=cache)
    answers = [parse_answer(text) for text in replies]
    rows = [
        {
            "pert": r.pert,
            "cell_line": r.cell_line,
            "gene": r.gene,
            "label": "yes" if r.label else "no",
            "split": r.split,
            "key": r.key,
            "raw_answer": reply,
            "answer": _answer_word(answer),
        }
        for r, reply, answer in zip(records, replies, answers, strict=True)
    ]
    settings: dict[str, Any] = {
        "n_records": len(records),
        "cell_lines": list(dict.fromkeys(r.cell_line for r in records)),
        "splits": sorted({r.split for r in records}),
        "generator": generator.id,
        **profile_cache_key(template, generator),
        "answer_rule": DE_ANSWER_RULE,
        "interval": "Wilson score interval, 95%, on accuracy",
        "malformed": "scored wrong (counted as the class opposite to the label)",
    }
    return DEReasoningResult(records=rows, method=method, settings=settings, provenance=provenance("numpy"))
