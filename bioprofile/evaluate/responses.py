"""Response-level metrics of a writer's answers: length, gene/protein entities, causal connectives, drugs, mutations.

The BFT paper reads its tuned writers' answers this way (BFT answers carry more biomedical entities, causal
connectives, drug and mutation mentions); :func:`analyze_responses` computes the same counts for any set of models,
with the taggers of :mod:`bioprofile.text` that ``diagnose`` and ``benchmarks/reproduce.py`` use, so every report
counts an entity or a connective the same way. Per model (:data:`RESPONSE_METRICS`):

- ``words``: mean words per response, a word being a whitespace-separated token (models with different tokenizers
  are compared on one unit);
- ``entities``: mean distinct gene/protein mentions per response (:func:`~bioprofile.text.gene_entity_spans`: HGNC
  approved symbols, case-sensitive, English-word symbols dropped, plus a spaCy NER pipeline's gene/protein spans when
  one is named or scispaCy is installed); ``entities_total``: distinct mentions over all the model's responses;
- ``connectives``: mean causal connectives per response (:data:`~bioprofile.text.CAUSAL_CONNECTIVES`, every
  occurrence counted); ``connectives_per_100_words``: all of them per 100 words of all responses;
- ``drug_share``: share of responses naming at least one drug: a name of the drug list
  (:func:`~bioprofile.text.drug_name_spans`; :data:`~bioprofile.text.DRUG_NAMES` unless another list is given) or a
  word ending in a WHO INN stem (:func:`~bioprofile.text.drug_spans`; off with ``drug_stems=False``);
- ``mutation_share``: share naming at least one variant (:func:`~bioprofile.text.mutation_spans`: HGVS-like protein
  changes ``V600E``, ``T790M``, ``p.Arg175His``, coding changes ``c.524G>A``, dbSNP ids ``rs113488022``).

Responses come from JSONL files of ``{"model": ..., "response": ...}`` records (:func:`read_responses`), or from
models asked the same prompts (:func:`read_prompts`, :func:`generate_responses`), whose answers are generated through
:func:`~bioprofile.profiles.generate.generate_profiles` and so cached in the store like profiles: keyed by the prompt
(``prompt:<sha256 of its text>``), the template, the generator and its decoding settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.report import WritesItself, markdown_table, provenance
from bioprofile.genes import hgnc_symbols
from bioprofile.profiles.coerce import as_generator
from bioprofile.profiles.generate import ProfileGenerator, generate_profiles
from bioprofile.profiles.prompts import PromptTemplate
from bioprofile.readers import read_text_file
from bioprofile.store import Store, open_store
from bioprofile.text import (
    CAUSAL_CONNECTIVES,
    DRUG_NAMES,
    connective_spans,
    default_ner_model,
    drug_name_spans,
    drug_spans,
    gene_entity_spans,
    load_ner_pipeline,
    mutation_spans,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AS_GIVEN",
    "METRIC_NAMES",
    "PER_RESPONSE_METRICS",
    "RESPONSE_METRICS",
    "Prompt",
    "PromptAsGiven",
    "Response",
    "ResponseMetrics",
    "analyze_responses",
    "generate_responses",
    "read_drug_names",
    "read_prompts",
    "read_responses",
]

#: The columns of the table, in order (see the module docstring for each).
RESPONSE_METRICS = (
    "n_responses",
    "words",
    "entities",
    "entities_total",
    "connectives",
    "connectives_per_100_words",
    "drug_share",
    "mutation_share",
)
#: The metrics that are means over responses (they have a standard error; the others are totals or ratios).
PER_RESPONSE_METRICS = ("words", "entities", "connectives", "drug_share", "mutation_share")
#: How the markdown and the plot name each metric.
METRIC_NAMES = {
    "n_responses": "responses",
    "words": "words per response",
    "entities": "entities per response",
    "entities_total": "distinct entities (all responses)",
    "connectives": "causal connectives per response",
    "connectives_per_100_words": "causal connectives per 100 words",
    "drug_share": "share naming a drug",
    "mutation_share": "share naming a mutation",
}


@dataclass(frozen=True)
class Response:
    """One model's answer.

    Attributes
    ----------
    model
        The model's name (its row in the table).
    text
        The answer.
    prompt
        The question it answers, when known.
    source
        Where it comes from: the response file, or the generator's id.
    line
        Its line in the response file (1-based); ``None`` for a generated answer.
    """

    model: str
    text: str
    prompt: str | None = None
    source: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Prompt:
    """A question asked as it is written: an entity of kind ``"prompt"`` for the profile path (and its store)."""

    text: str

    @property
    def key(self) -> str:
        """``"prompt:<sha256 of the text>"``: the store key of its answers."""
        return f"prompt:{hashlib.sha256(self.text.encode('utf-8')).hexdigest()}"

    @property
    def symbol(self) -> str:
        """The prompt's start (what a message about the entity shows)."""
        first = " ".join(self.text.split())
        return first if len(first) <= 40 else first[:39] + "…"

    @property
    def name(self) -> None:
        """No full name."""
        return None

    @property
    def kind(self) -> str:
        """``"prompt"``."""
        return "prompt"


@dataclass(frozen=True)
class PromptAsGiven(PromptTemplate):
    """A template whose user message is the prompt's own text (``{prompt}``), optionally after a system message."""

    entity: str = "prompt"

    def fields(self, entity: Any) -> dict[str, str]:
        """``{"prompt": text}`` for a :class:`Prompt` (or a plain string)."""
        text = entity if isinstance(entity, str) else getattr(entity, "text", None)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"cannot build a prompt for {entity!r}: it has no text")
        return {"prompt": text}


#: The template :func:`generate_responses` asks with: each prompt as it is written, the model's own system prompt.
AS_GIVEN = PromptAsGiven(name="as-given", system=None, user="{prompt}")


def _jsonl_records(path: Path, *, what: str, argument: str) -> list[tuple[int, dict]]:
    """``(line number, object)`` of each non-blank line of a JSONL file; a line that is no JSON object names itself."""
    records = []
    for number, line in enumerate(read_text_file(path, what=what, argument=argument).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BioprofileInputError(
                f"{what} {path}, line {number}: not JSON ({err.msg}); give one JSON object per line",
                argument=argument,
            ) from None
        if not isinstance(record, dict):
            raise BioprofileInputError(
                f"{what} {path}, line {number}: a JSON {type(record).__name__}, not an object",
                argument=argument,
            )
        records.append((number, record))
    return records


def read_responses(paths: str | Path | Iterable[str | Path]) -> list[Response]:
    """The answers in JSONL files: one ``{"model": str, "response": str}`` object per line.

    A record may also carry ``"prompt"`` (the question); other fields are ignored, blank lines skipped. Several
    files may hold one model's answers, and one file several models'.

    Parameters
    ----------
    paths
        One file or several.

    Returns
    -------
    list of Response
        In file and line order.

    Raises
    ------
    BioprofileInputError
        A file missing, unreadable, empty (no record), given twice, with a line that is not a JSON object (its
        number given), or with a record whose ``model`` or ``response`` is missing or not a string (an empty model
        name too).
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise BioprofileInputError("no response file given", argument="responses")
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.resolve() in seen:  # its answers would be counted twice
            raise BioprofileInputError(f"response file {path} is given twice", argument="responses")
        seen.add(path.resolve())
    responses = []
    for path in map(Path, paths):
        records = _jsonl_records(path, what="response file", argument="responses")
        if not records:
            raise BioprofileInputError(
                f"response file {path} has no records: give JSONL with one "
                '{"model": ..., "response": ...} object per line',
                argument="responses",
            )
        for number, record in records:
            for name in ("model", "response"):
                if not isinstance(record.get(name), str):
                    state = "has no" if name not in record else "has a non-text"
                    raise BioprofileInputError(
                        f"response file {path}, line {number}: {state} '{name}' field; each line needs "
                        '"model" and "response" texts',
                        argument="responses",
                    )
            if not record["model"].strip():
                raise BioprofileInputError(
                    f"response file {path}, line {number}: the 'model' field is empty", argument="responses"
                )
            prompt = record.get("prompt")
            responses.append(
                Response(
                    model=record["model"].strip(),
                    text=record["response"],
                    prompt=prompt if isinstance(prompt, str) else None,
                    source=str(path),
                    line=number,
                )
            )
    return responses


def read_prompts(path: str | Path) -> list[Prompt]:
    """The prompts of a file: JSONL (``.jsonl``) with a ``"prompt"`` field per line, else one prompt per line.

    Blank lines are skipped; a prompt given twice is asked once (its answers are keyed by its text).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    list of Prompt
        In file order, without repeats.

    Raises
    ------
    BioprofileInputError
        Missing, unreadable, empty, a JSONL line that is not an object with a non-empty ``"prompt"`` text.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        texts = []
        for number, record in _jsonl_records(path, what="prompts file", argument="prompts"):
            text = record.get("prompt")
            if not isinstance(text, str) or not text.strip():
                raise BioprofileInputError(
                    f"prompts file {path}, line {number}: no 'prompt' text", argument="prompts"
                )
            texts.append(text.strip())
    else:
        text = read_text_file(path, what="prompts file", argument="prompts")
        texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        raise BioprofileInputError(f"prompts file {path} holds no prompts", argument="prompts")
    return [Prompt(text) for text in dict.fromkeys(texts)]


def read_drug_names(path: str | Path) -> tuple[str, ...]:
    """A drug list: one name per line (blank lines and lines starting with ``#`` skipped).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    tuple of str
        The names, in file order, without repeats.

    Raises
    ------
    BioprofileInputError
        Missing, unreadable, or without a name.
    """
    text = read_text_file(path, what="drug list", argument="drugs")
    names = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise BioprofileInputError(f"drug list {path} holds no drug names (one per line)", argument="drugs")
    return tuple(dict.fromkeys(names))


def generate_responses(
    prompts: Sequence[Prompt | str],
    generators: Mapping[str, ProfileGenerator | str | Path | None],
    *,
    store: Store | None = None,
    template: PromptTemplate = AS_GIVEN,
) -> list[Response]:
    """Ask every model the same prompts; answers come from the store when an earlier run wrote them.

    Parameters
    ----------
    prompts
        The questions (:func:`read_prompts`, or plain strings).
    generators
        Model name (its row in the table) -> a ready generator (any backend of
        :func:`~bioprofile.profiles.backends.make_generator`, whose settings fix temperature and max tokens) or a
        model for the transformers backend's defaults to load.
    store
        Cache of answers; ``None`` opens the default one.
    template
        How a prompt becomes chat messages (default: :data:`AS_GIVEN`, the text as it is).

    Returns
    -------
    list of Response
        Model by model, prompt by prompt.
    """
    prompts = [p if isinstance(p, Prompt) else Prompt(str(p)) for p in prompts]
    if not prompts:
        raise BioprofileInputError("no prompts given", argument="prompts")
    if not generators:
        raise BioprofileInputError("no model given to ask the prompts", argument="generators")
    responses = []
    with open_store(store) as cache:
        for name, spec in generators.items():
            generator = as_generator(spec)
            texts = generate_profiles(prompts, generator=generator, template=template, store=cache)
            responses += [
                Response(model=name, text=text, prompt=p.text, source=generator.id)
                for p, text in zip(prompts, texts, strict=True)
            ]
    return responses


def _drug_list(drugs: str | Path | Iterable[str] | None) -> tuple[tuple[str, ...], str]:
    """The drug names and how the report names their source."""
    if drugs is None:
        return DRUG_NAMES, "built-in list (bioprofile.text.DRUG_NAMES)"
    if isinstance(drugs, (str, Path)):
        return read_drug_names(drugs), str(drugs)
    names = tuple(dict.fromkeys(str(n).strip() for n in drugs if str(n).strip()))
    if not names:
        raise BioprofileInputError("the drug list holds no names", argument="drugs")
    return names, "list given"


def _tag(text: str, symbols: frozenset[str], names: tuple[str, ...], drug_stems: bool, ner_model) -> dict:
    """One response's counts and the mentions behind them."""
    drugs = {name.casefold() for _, _, name in drug_name_spans(text, names)}
    if drug_stems:
        drugs |= {text[start:end].casefold() for start, end, _ in drug_spans(text)}
    return {
        "words": len(text.split()),
        "entities": sorted(
            {mention for _, _, mention in gene_entity_spans(text, symbols, ner_model=ner_model)}
        ),
        "connectives": len(connective_spans(text)),
        "drugs": sorted(drugs),
        "mutations": [text[start:end] for start, end, _ in mutation_spans(text)],
    }


def analyze_responses(
    responses: Sequence[Response],
    *,
    drugs: str | Path | Iterable[str] | None = None,
    drug_stems: bool = True,
    symbols: frozenset[str] | None = None,
    ner_model: str | Path | None = None,
) -> ResponseMetrics:
    """Per model: responses, length, entities, causal connectives, shares naming a drug and a mutation.

    Parameters
    ----------
    responses
        The answers (:func:`read_responses`, :func:`generate_responses`); models keep the order they first appear.
    drugs
        The drug list: a file (:func:`read_drug_names`), names, or ``None`` for :data:`~bioprofile.text.DRUG_NAMES`.
    drug_stems
        Also count a word ending in a WHO INN stem (:data:`~bioprofile.text.DRUG_STEMS`: imatinib, trastuzumab)
        as a drug.
    symbols
        Gene symbols of the lexicon; ``None`` reads HGNC's approved symbols.
    ner_model
        spaCy NER pipeline adding gene/protein spans (package name or directory); ``None`` uses scispaCy's when
        installed, else the lexicon alone (:func:`~bioprofile.text.default_ner_model`, recorded in the settings).

    Returns
    -------
    ResponseMetrics

    Raises
    ------
    BioprofileInputError
        No responses, a drug list that cannot be read or is empty, a named NER pipeline that does not load.
    """
    if not responses:
        raise BioprofileInputError("no responses to analyze", argument="responses")
    names, drug_source = _drug_list(drugs)
    if ner_model is not None:
        load_ner_pipeline(ner_model)  # a bad pipeline fails before any text is tagged
    symbols = hgnc_symbols() if symbols is None else symbols
    records = []
    for response in responses:
        counts = _tag(response.text, symbols, names, drug_stems, ner_model)
        records.append(
            {"model": response.model, "source": response.source, "line": response.line,
             "prompt": response.prompt, **counts}
        )  # fmt: skip
    models = list(dict.fromkeys(r["model"] for r in records))
    settings = {
        "n_responses": len(records),
        "models": models,
        "sources": {m: sorted({r["source"] for r in records if r["model"] == m}) for m in models},
        "length_unit": "words (whitespace-separated)",
        "entities": "HGNC approved symbols (case-sensitive, English-word symbols dropped) plus NER spans",
        "ner_model": str(ner_model) if ner_model is not None else default_ner_model(),
        "n_symbols": len(symbols),
        "connectives": list(CAUSAL_CONNECTIVES),
        "drugs": {"list": drug_source, "n_names": len(names), "inn_stems": drug_stems},
        "mutations": "protein changes (V600E, p.Arg175His), coding changes (c.524G>A), dbSNP ids",
    }
    return ResponseMetrics(
        table=_table(records, models),
        responses=records,
        settings=settings,
        provenance=provenance("numpy", "pandas", "spacy"),
    )


def _table(records: list[dict], models: list[str]) -> pd.DataFrame:
    import pandas as pd

    rows = {}
    for model in models:
        mine = [r for r in records if r["model"] == model]
        words = np.array([r["words"] for r in mine], dtype=float)
        connectives = np.array([r["connectives"] for r in mine], dtype=float)
        rows[model] = {
            "n_responses": len(mine),
            "words": words.mean(),
            "entities": float(np.mean([len(r["entities"]) for r in mine])),
            "entities_total": len({e for r in mine for e in r["entities"]}),
            "connectives": connectives.mean(),
            "connectives_per_100_words": 100 * connectives.sum() / words.sum()
            if words.sum()
            else float("nan"),
            "drug_share": float(np.mean([bool(r["drugs"]) for r in mine])),
            "mutation_share": float(np.mean([bool(r["mutations"]) for r in mine])),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")[list(RESPONSE_METRICS)]
    table.index.name = "model"
    return table


@dataclass(frozen=True, eq=False)
class ResponseMetrics(WritesItself):
    """The response metrics of several models: a model x metric table and each response's counts.

    Attributes
    ----------
    table
        One row per model (index ``model``), the columns of :data:`RESPONSE_METRICS`.
    responses
        One mapping per response: ``model``, ``source``, ``line``, ``prompt``, ``words``, ``entities`` (the distinct
        mentions), ``connectives`` (a count), ``drugs`` and ``mutations`` (the mentions found).
    settings
        How each metric was counted (taggers, drug list, NER model) and where the responses came from.
    provenance
        Versions of bioprofile, Python and the libraries.
    """

    table: pd.DataFrame
    responses: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table`: one row per model, one column per metric."""
        return self.table.copy()

    def standard_errors(self) -> pd.DataFrame:
        """Standard error of each per-response mean (:data:`PER_RESPONSE_METRICS`), one row per model."""
        import pandas as pd

        values = pd.DataFrame(
            {
                "model": [r["model"] for r in self.responses],
                "words": [r["words"] for r in self.responses],
                "entities": [len(r["entities"]) for r in self.responses],
                "connectives": [r["connectives"] for r in self.responses],
                "drug_share": [float(bool(r["drugs"])) for r in self.responses],
                "mutation_share": [float(bool(r["mutations"])) for r in self.responses],
            }
        )
        return values.groupby("model", sort=False).sem(ddof=1).reindex(self.table.index)

    def rows(self) -> list[dict[str, Any]]:
        """One ``{"model": name, metric: value, ...}`` mapping per model."""
        return [{"model": model, **row} for model, row in self.table.to_dict(orient="index").items()]

    def summary_markdown(self) -> str:
        """The table alone (what the command prints)."""
        return markdown_table(self.rows())

    def to_markdown(self) -> str:
        """The table, then how each metric was counted."""
        drugs = self.settings.get("drugs", {})
        stems = " or a word ending in a WHO INN drug stem" if drugs.get("inn_stems") else ""
        ner = self.settings.get("ner_model") or "none (lexicon only)"
        notes = [
            f"{self.settings.get('n_responses', len(self.responses))} responses. words: whitespace-separated; "
            f"entities: distinct HGNC symbols ({self.settings.get('n_symbols', '?')} in the lexicon) plus spaCy "
            f"NER gene/protein spans (NER model: {ner}) per response; connectives: causal connectives of "
            "bioprofile.text.CAUSAL_CONNECTIVES per response; drug_share: share of responses naming a drug of the "
            f"{drugs.get('list', 'drug list')} ({drugs.get('n_names', '?')} names){stems}; mutation_share: share "
            "naming a variant (V600E, p.Arg175His, c.524G>A, rs ids).",
        ]
        return markdown_table(self.rows()) + "\n" + "\n".join(notes) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """``{"settings", "provenance", "rows", "responses"}``, the JSON form of the result."""
        return {
            "settings": self.settings,
            "provenance": self.provenance,
            "rows": self.rows(),
            "responses": self.responses,
        }
