"""GeneAgent's gene-set task: given a gene set, a model names the biological process it shares.

Each answer is scored against the set's reference term (a GO biological-process name) with ROUGE-1, ROUGE-2 and
ROUGE-L F-measures (the ``rouge-score`` package, the reimplementation of ROUGE-1.5.5) and with the cosine of the
answer's and the reference's text embeddings; per set and averaged over sets, beside a baseline that gives every
set the same answer, the most frequent reference term. Answers are generated through
:func:`~bioprofile.profiles.generate.generate_profiles`, so they are cached in the store like profiles: keyed by
the gene set (``geneset:<sha256 of its sorted genes>``), the prompt template, the generator and its decoding
settings; vectors are cached by :func:`~bioprofile.encoders.cached.encode_texts`.

:func:`read_gene_sets` reads GeneAgent's ``GO_terms.csv`` (``GO,Genes,Gene_Count,Term_Description``) or any
CSV/TSV with a gene-set column and a term column; :func:`run_gene_sets` returns a :class:`GeneSetResult`, which
writes itself (``write(prefix)``: PREFIX.md and PREFIX.json with every set's answer and scores).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.encoders import TextEncoder
from bioprofile.encoders.cached import encode_texts
from bioprofile.encoders.coerce import as_encoder
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.report import WritesItself, format_mean_std, markdown_table, provenance
from bioprofile.profiles.coerce import as_generator
from bioprofile.profiles.gene_set_prompts import GeneSetPrompt, get_gene_set_template
from bioprofile.profiles.generate import ProfileGenerator, generate_profiles, profile_cache_key
from bioprofile.readers import csv_dict_rows, csv_rows, read_text_file
from bioprofile.store import Store, open_store

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "METRICS",
    "METRIC_NAMES",
    "GeneSet",
    "GeneSetOptions",
    "GeneSetResult",
    "clean_answer",
    "most_frequent_term",
    "read_gene_sets",
    "rouge",
    "run_gene_sets",
    "score_answers",
]

#: The scores of an answer, in table order.
METRICS = ("rouge1", "rouge2", "rougeL", "cosine")
#: How the markdown table and the plot name each score.
METRIC_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "cosine": "cosine"}
# Column names tried, in order, when genes_col / term_col / name_col are not given (GeneAgent's first).
_GENES_COLUMNS = ("genes", "gene_set", "geneset", "members")
_TERM_COLUMNS = ("term_description", "term", "description", "process")
_NAME_COLUMNS = ("go", "id", "term_id", "go_id", "set")
# Genes in a cell are separated by spaces, commas or semicolons.
_GENE_SEPARATORS = re.compile(r"[\s,;]+")
# A label a model may put before its answer ("Process: ...", "**Answer:** ...").
_ANSWER_LABEL = re.compile(
    r"^(?:the\s+)?(?:biological\s+)?(?:process|answer|name)\s*(?:name)?\s*[:\-]\s*", re.I
)


@dataclass(frozen=True)
class GeneSet:
    """A gene set with its reference term: an entity of kind ``"gene_set"`` for the profile path.

    Attributes
    ----------
    name
        The set's identifier (a GO id, or its row number in the file).
    genes
        Its genes as the file writes them, in file order.
    term
        The reference biological-process term.
    """

    name: str
    genes: tuple[str, ...]
    term: str

    @property
    def key(self) -> str:
        """``"geneset:<sha256 of the sorted, distinct genes>"``: the store key of its answers (order-free)."""
        members = "\n".join(sorted(set(self.genes)))
        return f"geneset:{hashlib.sha256(members.encode('utf-8')).hexdigest()}"

    @property
    def symbol(self) -> str:
        """The set's name (what a message about the entity shows)."""
        return self.name

    @property
    def kind(self) -> str:
        """``"gene_set"``."""
        return "gene_set"


def _pick_column(header: dict[str, str], given: str | None, candidates: Sequence[str], argument: str) -> str:
    """The file's column for ``given`` (case-insensitive), or the first candidate the file has."""
    if given is not None:
        column = header.get(given.strip().lower())
        if column is None:
            raise BioprofileInputError(
                f"no column {given!r} in the gene-set file; it has {', '.join(header.values())}",
                argument=argument,
            )
        return column
    column = next((header[c] for c in candidates if c in header), None)
    if column is None:
        raise BioprofileInputError(
            f"cannot tell which column holds the {argument.removesuffix('_col')}: name it with {argument} "
            f"(the file has {', '.join(header.values())})",
            argument=argument,
        )
    return column


def read_gene_sets(
    path: str | Path,
    *,
    genes_col: str | None = None,
    term_col: str | None = None,
    name_col: str | None = None,
    limit: int | None = None,
) -> list[GeneSet]:
    """Gene sets and their reference terms from a CSV/TSV file.

    Parameters
    ----------
    path
        A CSV or TSV (tab-separated when the header line has a tab) with a header row, such as GeneAgent's
        ``GO_terms.csv``.
    genes_col
        The column of genes, separated by spaces, commas or semicolons; default the first of ``Genes``,
        ``gene_set``, ``geneset``, ``members`` the file has (case-insensitive).
    term_col
        The column of reference terms; default the first of ``Term_Description``, ``term``, ``description``,
        ``process``.
    name_col
        The column naming each set; default the first of ``GO``, ``id``, ``term_id``, ``go_id``, ``set``, else
        the row number (1-based).
    limit
        Keep the first ``limit`` sets.

    Returns
    -------
    list of GeneSet
        In file order; rows without genes or without a term are left out.

    Raises
    ------
    BioprofileInputError
        The file cannot be read, a named column is missing (or none can be guessed), or no set is left.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise BioprofileInputError(f"limit must be at least 1, got {limit}", argument="limit")
    text = read_text_file(path, what="gene-set file", argument="input_path")
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    lines = text.splitlines()
    rows = csv_dict_rows(lines, delimiter=delimiter, path=path, what="gene-set file", argument="input_path")
    fieldnames = csv_rows(lines[:1], delimiter=delimiter, path=path, what="gene-set file")[0] if lines else []
    header = {str(c).strip().lower(): c for c in fieldnames if c is not None}
    genes_column = _pick_column(header, genes_col, _GENES_COLUMNS, "genes_col")
    term_column = _pick_column(header, term_col, _TERM_COLUMNS, "term_col")
    name_column = (
        _pick_column(header, name_col, (), "name_col")
        if name_col is not None
        else next((header[c] for c in _NAME_COLUMNS if c in header), None)
    )
    sets = []
    for number, row in enumerate(rows, start=1):
        genes = tuple(g for g in _GENE_SEPARATORS.split(row.get(genes_column) or "") if g)
        term = " ".join((row.get(term_column) or "").split())
        if not genes or not term:
            continue
        name = (row.get(name_column) or "").strip() if name_column else ""
        sets.append(GeneSet(name or str(number), genes, term))
        if limit is not None and len(sets) == limit:
            break
    if not sets:
        raise BioprofileInputError(f"{path} holds no gene set with both genes and a term")
    return sets


def clean_answer(text: str) -> str:
    """The process name in a model's reply: its first non-empty line, without a label, markup or a final period.

    ``"**Process:** Cholesterol transport."`` followed by more lines becomes ``"Cholesterol transport"``.
    """
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = line.strip().strip("*_#`>\"' ").strip()
    line = _ANSWER_LABEL.sub("", line).strip().strip("*_`\"' ").strip()
    return line.rstrip(".").strip()


def rouge(answer: str, reference: str, *, use_stemmer: bool = False) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of an answer against a reference (``rouge-score``).

    Parameters
    ----------
    answer, reference
        The two texts; ``rouge-score`` lower-cases them and splits on anything but letters and digits.
    use_stemmer
        Porter-stem the words first (``"regulates"`` then matches ``"regulation"``... only where the stems agree).

    Returns
    -------
    dict
        ``{"rouge1": f, "rouge2": f, "rougeL": f}``, each in [0, 1].
    """
    scores = _scorer(use_stemmer).score(reference, answer)
    return {name: float(scores[name].fmeasure) for name in ("rouge1", "rouge2", "rougeL")}


_SCORERS: dict[bool, Any] = {}


def _scorer(use_stemmer: bool):
    """One ``RougeScorer`` per stemming choice (building one loads the stemmer)."""
    if use_stemmer not in _SCORERS:
        from rouge_score import rouge_scorer

        _SCORERS[use_stemmer] = rouge_scorer.RougeScorer(
            ["rouge1", "rouge2", "rougeL"], use_stemmer=use_stemmer
        )
    return _SCORERS[use_stemmer]


def score_answers(
    answers: Sequence[str],
    references: Sequence[str],
    *,
    encoder: TextEncoder | str | Path | None = None,
    store: Store | None = None,
    use_stemmer: bool = False,
) -> list[dict[str, float]]:
    """The scores of each answer against its reference: ROUGE F-measures and the embedding cosine.

    Parameters
    ----------
    answers, references
        Paired texts, one answer per reference.
    encoder
        Text encoder of the cosine (a :class:`~bioprofile.encoders.TextEncoder` or a spec for
        :func:`~bioprofile.encoders.get_encoder`; ``None`` the default encoder).
    store
        Cache of the vectors; ``None`` opens the default one.
    use_stemmer
        See :func:`rouge`.

    Returns
    -------
    list of dict
        ``{"rouge1", "rouge2", "rougeL", "cosine"}`` per pair; the cosine of an empty answer is 0.
    """
    if len(answers) != len(references):
        raise BioprofileInputError(f"{len(answers)} answers for {len(references)} references")
    scores = [rouge(a, r, use_stemmer=use_stemmer) for a, r in zip(answers, references, strict=True)]
    if not answers:
        return scores
    encoder = as_encoder(encoder)
    with open_store(store) as cache:
        vectors = encode_texts([*answers, *references], encoder, cache)
    a, r = vectors[: len(answers)], vectors[len(answers) :]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(r, axis=1)
    cosines = np.divide((a * r).sum(axis=1), norms, out=np.zeros(len(answers)), where=norms > 0)
    for score, answer, cosine in zip(scores, answers, cosines, strict=True):
        score["cosine"] = float(cosine) if answer.strip() else 0.0
    return scores


def most_frequent_term(terms: Sequence[str], *, use_stemmer: bool = False) -> tuple[str, int]:
    """The baseline's one answer: the most frequent reference term, and how often it occurs.

    Terms are compared case- and space-insensitively. When several are equally frequent (in GeneAgent's file
    every term occurs once), the one made of the most common words wins: the highest mean, over its distinct
    ``rouge-score`` tokens, of the number of terms containing the token; then the alphabetically first.

    Returns
    -------
    tuple
        The term (as first written) and its count.
    """
    if not terms:
        raise BioprofileInputError("no reference terms to take the most frequent of")
    from rouge_score import tokenizers

    first: dict[str, str] = {}
    for term in terms:
        first.setdefault(" ".join(term.lower().split()), term)
    counts = Counter(" ".join(term.lower().split()) for term in terms)
    top = max(counts.values())
    tied = sorted(key for key, n in counts.items() if n == top)
    if len(tied) == 1:
        return first[tied[0]], top
    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=use_stemmer)
    tokens = {key: set(tokenizer.tokenize(key)) for key in first}
    document_frequency = Counter(token for key in first for token in tokens[key])

    def commonness(key: str) -> float:
        words = tokens[key]
        return sum(document_frequency[w] for w in words) / len(words) if words else 0.0

    best = min(tied, key=lambda key: (-commonness(key), key))
    return first[best], top


@dataclass(frozen=True)
class GeneSetOptions:
    """How a gene-set run asks and scores: the prompt, the encoder of the cosine, stemming, the baseline.

    Parameters
    ----------
    template
        A gene-set prompt template or its name (see
        :data:`~bioprofile.profiles.gene_set_prompts.GENE_SET_TEMPLATES`).
    encoder
        Text encoder of the answer-reference cosine (``None``: the default encoder).
    use_stemmer
        Porter-stem words before ROUGE (see :func:`rouge`).
    baseline
        Also score the most-frequent-term baseline (see :func:`most_frequent_term`).

    Raises
    ------
    BioprofileInputError
        An unknown template name.
    """

    template: str | GeneSetPrompt = "process"
    encoder: TextEncoder | str | Path | None = None
    use_stemmer: bool = False
    baseline: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "template", get_gene_set_template(self.template))


@dataclass
class GeneSetResult(WritesItself):
    """A gene-set run: every set's answers and scores, their means, the settings and provenance.

    Attributes
    ----------
    sets
        One record per set: ``name``, ``genes``, ``term``, then per method (the model's name and, with the
        baseline, ``"baseline"``) its ``answer`` (cleaned), the model's ``raw_answer``, and its scores
        (``{"rouge1", "rouge2", "rougeL", "cosine"}``).
    methods
        The methods in table order: the model's name, then ``"baseline"`` if it was scored.
    settings
        The run's options, generator and baseline term.
    provenance
        Versions of bioprofile, Python and the scoring libraries.
    """

    sets: list[dict[str, Any]]
    methods: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per method (index ``method``): the mean over sets of each metric, its std and ``n_sets``."""
        import pandas as pd

        rows = [
            {
                "method": row["method"],
                **{m: row[m]["mean"] for m in METRICS},
                **{f"{m}_std": row[m]["std"] for m in METRICS},
                "n_sets": row["n_sets"],
            }
            for row in self.summary()
        ]
        return pd.DataFrame(rows).set_index("method")

    def summary(self) -> list[dict[str, Any]]:
        """Per method: ``method``, ``n_sets`` and ``{"mean", "std"}`` over sets of each metric."""
        rows = []
        for method in self.methods:
            row: dict[str, Any] = {"method": method, "n_sets": len(self.sets)}
            for metric in METRICS:
                values = np.array([s["scores"][method][metric] for s in self.sets], dtype=float)
                row[metric] = {"mean": float(values.mean()), "std": float(values.std())}
            rows.append(row)
        return rows

    def summary_markdown(self) -> str:
        """The mean ± std table, a row per method (what a command prints; no trailing newline)."""
        return self._summary_table().rstrip("\n")

    def _summary_table(self) -> str:
        return markdown_table(
            [
                {
                    "method": row["method"],
                    **{METRIC_NAMES[m]: format_mean_std(row[m]["mean"], row[m]["std"]) for m in METRICS},
                    "sets": row["n_sets"],
                }
                for row in self.summary()
            ]
        )

    def to_markdown(self) -> str:
        """The mean ± std table (a row per method), then one row per set with its answers and ROUGE-L."""
        per_set = []
        for s in self.sets:
            entry: dict[str, Any] = {"set": s["name"], "genes": len(s["genes"]), "reference": s["term"]}
            for method in self.methods:
                entry[f"{method} answer"] = s["answers"][method]
                entry[f"{method} ROUGE-L"] = s["scores"][method]["rougeL"]
                entry[f"{method} cosine"] = s["scores"][method]["cosine"]
            per_set.append(entry)
        baseline = self.settings.get("baseline_term")
        note = f"\nbaseline: every set answered {baseline!r}\n" if baseline else ""
        return (
            self._summary_table()
            + note
            + "\n"
            + markdown_table(per_set, columns=list(per_set[0]) if per_set else None)
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"settings", "provenance", "summary", "sets"}``, the JSON form of the result."""
        return {
            "settings": self.settings,
            "provenance": self.provenance,
            "summary": self.summary(),
            "sets": self.sets,
        }


def run_gene_sets(
    gene_sets: Sequence[GeneSet],
    *,
    generator: ProfileGenerator | str | Path | None = None,
    options: GeneSetOptions | None = None,
    store: Store | None = None,
    name: str | None = None,
) -> GeneSetResult:
    """Ask a model which process each gene set shares and score its answers against the reference terms.

    Parameters
    ----------
    gene_sets
        Sets with their reference terms (:func:`read_gene_sets`).
    generator
        Any backend (:func:`~bioprofile.profiles.backends.make_generator`: transformers, vLLM, OpenAI-compatible),
        or a model for the default transformers backend to load (``None``: the bundled SmolLM2).
    options
        Prompt, encoder, stemming and baseline (:class:`GeneSetOptions`); ``None`` for the defaults.
    store
        Cache of answers and vectors; ``None`` opens the default one.
    name
        The model's row in the table; default the generator's id.

    Returns
    -------
    GeneSetResult
    """
    if not gene_sets:
        raise BioprofileInputError("no gene sets given")
    options = options or GeneSetOptions()
    generator = as_generator(generator)
    method = name or generator.id
    if method == "baseline":
        raise BioprofileInputError("'baseline' names the baseline's row: give the model another name")
    encoder = as_encoder(options.encoder)
    terms = [s.term for s in gene_sets]
    with open_store(store) as cache:
        raw = generate_profiles(gene_sets, generator=generator, template=options.template, store=cache)
        answers = {method: [clean_answer(text) for text in raw]}
        if options.baseline:
            baseline_term, baseline_count = most_frequent_term(terms, use_stemmer=options.use_stemmer)
            answers["baseline"] = [baseline_term] * len(gene_sets)
        scores = {
            m: score_answers(a, terms, encoder=encoder, store=cache, use_stemmer=options.use_stemmer)
            for m, a in answers.items()
        }
    sets = [
        {
            "name": s.name,
            "key": s.key,
            "genes": list(s.genes),
            "term": s.term,
            "raw_answer": raw[i],
            "answers": {m: answers[m][i] for m in answers},
            "scores": {m: scores[m][i] for m in answers},
        }
        for i, s in enumerate(gene_sets)
    ]
    settings: dict[str, Any] = {
        "n_sets": len(gene_sets),
        "generator": generator.id,
        **profile_cache_key(options.template, generator),
        "encoder": encoder.id,
        "use_stemmer": options.use_stemmer,
        "rouge": "F-measure (rouge-score), answer against the reference term",
    }
    if options.baseline:
        settings.update(baseline_term=baseline_term, baseline_term_count=baseline_count)
    return GeneSetResult(
        sets=sets,
        methods=list(answers),
        settings=settings,
        provenance=provenance("rouge-score", "numpy"),
    )
