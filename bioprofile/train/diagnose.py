"""Teacher-forced confidence diagnostics: where does a causal LM doubt its own reference answers?

The question behind Balanced Fine-Tuning is which low-confidence tokens carry the knowledge. Token-level
reweighting (DFT) scales every token's loss by its own probability ``p_t`` and so suppresses all low-``p``
tokens alike. This module measures, on a JSONL set of prompt/response pairs:

1. ``p_t`` of every response token under teacher forcing (:func:`token_confidences`);
2. sliding windows over each response, classified by how their low-confidence tokens are laid out
   (:func:`classify_windows`): Group A ``sparse-low`` (isolated dips in a confident context), Group B
   ``dense-low`` (long stretches of doubt), and ``neither``;
3. how often each group holds a gene/protein entity (HGNC symbols plus an optional spaCy NER pipeline,
   :func:`gene_entity_spans`) or a causal connective (:func:`connective_spans`);
4. for one response, each token's SFT/DFT/BFT weight side by side (:func:`token_weight_table`).

See ``docs/diagnose.md`` for the definitions and defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bioprofile.errors import BioprofileInputError

GROUPS: tuple[str, ...] = ("sparse-low", "dense-low", "neither")
WEIGHT_METHODS: tuple[str, ...] = ("sft", "dft", "bft", "bft-v1")

# --------------------------------------------------------------------------------------------------
# Reading prompt/response pairs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptResponse:
    """One supervised example: the conversation before the answer, and the answer the model is scored on."""

    prompt_messages: tuple[dict[str, str], ...]
    response: str


def examples_from_records(records: Sequence[dict[str, Any]]) -> list[PromptResponse]:
    """Turn chat records (``{"messages": [...]}``) into prompt/response pairs.

    The response is the last assistant turn; the prompt is every turn before it.
    """
    examples = []
    for number, record in enumerate(records):
        messages = record["messages"]
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None:
            raise BioprofileInputError(
                f"record {number} has no assistant turn: there is no response to score"
            )
        prompt = tuple({"role": m["role"], "content": m["content"]} for m in messages[:last])
        examples.append(PromptResponse(prompt, messages[last]["content"]))
    return examples


def refseq_examples(path: str | Path, *, limit: int | None = None) -> list[PromptResponse]:
    """Prompt/response pairs from a RefSeq synopsis file: "Tell me about gene SYMBOL." -> summary.

    Read by :func:`bioprofile.train.data.refseq_sft_records` (stray non-record lines skipped), so diagnostics
    see exactly the examples a fine-tune trains on. ``limit`` keeps the first ``limit`` records.
    """
    from bioprofile.train.data import refseq_sft_records

    return examples_from_records(refseq_sft_records(path)[:limit])


def read_examples(
    path: str | Path, *, limit: int | None = None, refseq: bool = False
) -> list[PromptResponse]:
    """Read prompt/response pairs from a JSONL file, or from a RefSeq ``SYMBOL: summary`` file.

    Parameters
    ----------
    path
        JSONL with ``messages`` chats or ``instruction``/``response`` pairs (read by
        :func:`bioprofile.train.data.read_jsonl_records`); with ``refseq=True``, a synopsis file read by
        :func:`refseq_examples`.
    limit
        Keep the first ``limit`` examples.
    refseq
        Read ``path`` as a RefSeq synopsis file.

    Returns
    -------
    The examples in file order.
    """
    from bioprofile.train.data import read_jsonl_records

    if limit is not None and limit < 1:
        raise BioprofileInputError(f"limit must be at least 1, got {limit}")
    if refseq:
        return refseq_examples(path, limit=limit)
    return examples_from_records(read_jsonl_records(path)[:limit])


# --------------------------------------------------------------------------------------------------
# Teacher-forced confidences
# --------------------------------------------------------------------------------------------------


@dataclass
class ResponseConfidence:
    """Teacher-forced probabilities of one response's tokens.

    Attributes
    ----------
    index
        Position of the example in the input file.
    response
        The response text.
    token_ids
        ``(n,)`` response token ids (the end-of-turn token is not included).
    offsets
        ``(n, 2)`` character spans of each token in ``response``.
    p
        ``(n,)`` probability the model gives each token, given everything before it.
    """

    index: int
    response: str
    token_ids: np.ndarray
    offsets: np.ndarray
    p: np.ndarray
    entity: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    connective: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def tokens(self) -> list[str]:
        """Each token's text, as it appears in the response."""
        return [self.response[start:end] for start, end in self.offsets]


def load_causal_lm(model: str | Path | None = None, *, device: str | None = None, dtype: str = "float32"):
    """Load a causal LM and its fast tokenizer.

    Parameters
    ----------
    model
        ``None`` or ``"default"`` for the bundled SmolLM2-135M-Instruct, a local checkpoint or peft adapter
        directory, or a hub id already in the local cache (see :func:`bioprofile.profiles.models.resolve_model`).
    device
        Torch device to move the model to (default: leave it on CPU).
    dtype
        Torch dtype name of the weights.

    Returns
    -------
    ``(model, tokenizer)``, the model in eval mode.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bioprofile.profiles.models import resolve_model

    name = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        causal_lm = AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BioprofileInputError(
            f"cannot load causal LM {name!r} ({first_line}); pass a local checkpoint directory "
            "or a hub id already in the local cache"
        ) from None
    if not tokenizer.is_fast:
        raise BioprofileInputError(
            f"the tokenizer of {name!r} is not a fast tokenizer; token offsets need one"
        )
    if device is not None:
        causal_lm = causal_lm.to(device)
    return causal_lm.eval(), tokenizer


def _encode(tokenizer, example: PromptResponse, max_length: int) -> tuple[list[int], int, np.ndarray, str]:
    """Token ids of prompt + response, where the response starts, its tokens' character offsets, and its text.

    The whole chat is rendered with the tokenizer's chat template (or, without one, the prompt turns joined
    by blank lines and a newline) and tokenized in one go, exactly as training sees it; response tokens are
    the tokens that start inside the response text, so the end-of-turn marker is left out. Offsets are
    relative to the response text, which is the response stripped of surrounding whitespace when the
    template strips it. Chats longer than ``max_length`` tokens are cut at the end.
    """
    messages = list(example.prompt_messages)
    if getattr(tokenizer, "chat_template", None):
        prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text = tokenizer.apply_chat_template(
            messages + [{"role": "assistant", "content": example.response}], tokenize=False
        )
    else:
        prompt_text = "\n\n".join(m["content"] for m in messages) + "\n"
        text = prompt_text + example.response
    response, response_start = example.response, -1
    if text.startswith(prompt_text):
        response_start = text.find(response, len(prompt_text))
        if response_start < 0:  # templates that trim message content
            response = response.strip()
            response_start = text.find(response, len(prompt_text))
    if response_start < 0:
        raise ValueError("the chat template does not render the response verbatim after the prompt")
    response_end = response_start + len(response)
    encoded = tokenizer(text, add_special_tokens=not tokenizer.chat_template, return_offsets_mapping=True)
    ids = encoded["input_ids"][:max_length]
    offsets = np.asarray(encoded["offset_mapping"][: len(ids)], dtype=np.int64).reshape(-1, 2)
    in_response = (
        (offsets[:, 0] >= response_start) & (offsets[:, 0] < response_end) & (offsets[:, 1] > offsets[:, 0])
    )
    positions = np.flatnonzero(in_response)
    if positions.size == 0:
        first = len(ids)
        if len(encoded["input_ids"]) > max_length:
            raise BioprofileInputError(
                f"a prompt fills all of --max-length {max_length} tokens, leaving none of its response; raise it"
            )
    else:
        first = int(positions[0])
        if first == 0:
            raise ValueError("a response cannot start at the first token: nothing precedes it to predict it")
        # response tokens are contiguous: keep the run that starts at the first one
        ids = ids[: int(positions[-1]) + 1]
    response_offsets = np.clip(offsets[first : len(ids)] - response_start, 0, len(response))
    return ids, first, response_offsets, response


def token_confidences(
    model,
    tokenizer,
    examples: Sequence[PromptResponse],
    *,
    batch_size: int = 4,
    max_length: int = 1024,
) -> list[ResponseConfidence]:
    """Teacher-forced probability of every response token, batched, without gradients.

    Parameters
    ----------
    model
        A Hugging Face causal LM.
    tokenizer
        Its fast tokenizer.
    examples
        Prompt/response pairs, e.g. from :func:`read_prompt_responses`.
    batch_size
        Examples per forward pass.
    max_length
        Longest prompt + response in tokens; longer responses are cut.

    Returns
    -------
    One :class:`ResponseConfidence` per example, in input order.
    """
    import torch

    if batch_size < 1:
        raise BioprofileInputError(f"batch size must be at least 1, got {batch_size}")
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pad_id = 0 if pad_id is None else pad_id
    encoded = [_encode(tokenizer, example, max_length) for example in examples]
    results: list[ResponseConfidence] = []
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _, _, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (ids, _, _, _) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention_mask[row, : len(ids)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
            for row, (ids, first, offsets, response) in enumerate(chunk):
                # logits at position t predict token t + 1; softmax in float32 for low-precision models
                targets = torch.tensor(ids[first:], dtype=torch.long, device=logits.device)
                rows = logits[row, first - 1 : len(ids) - 1].float()
                log_p = torch.log_softmax(rows, dim=-1).gather(-1, targets[:, None])[:, 0]
                index = start + row
                results.append(
                    ResponseConfidence(
                        index=index,
                        response=response,
                        token_ids=np.asarray(ids[first:], dtype=np.int64),
                        offsets=offsets,
                        p=log_p.exp().cpu().numpy().astype(np.float64),
                    )
                )
            del logits
    return results


# --------------------------------------------------------------------------------------------------
# Window classification
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowRule:
    """How windows are cut and classified.

    Attributes
    ----------
    window
        Tokens per window.
    stride
        Tokens between window starts; ``None`` means ``window`` (no overlap).
    low_quantile
        A token is low-confidence when its ``p`` is below this quantile of its response's ``p`` (0.5: the median).
    low_threshold
        If set, an absolute ``p`` threshold used instead of ``low_quantile``.
    sparse_max_frac, sparse_max_run
        Group A (``sparse-low``): at least one low token, low fraction ``<= sparse_max_frac`` and longest run of
        consecutive low tokens ``<= sparse_max_run``.
    dense_min_frac, dense_min_run
        Group B (``dense-low``): low fraction ``>= dense_min_frac`` or longest low run ``>= dense_min_run``.
    """

    window: int = 16
    stride: int | None = None
    low_quantile: float = 0.5
    low_threshold: float | None = None
    sparse_max_frac: float = 0.25
    sparse_max_run: int = 2
    dense_min_frac: float = 0.75
    dense_min_run: int = 6

    def __post_init__(self) -> None:
        if self.window < 1:
            raise BioprofileInputError(f"window must be at least 1 token, got {self.window}")
        if self.stride is not None and self.stride < 1:
            raise BioprofileInputError(f"stride must be at least 1 token, got {self.stride}")
        if not 0.0 < self.low_quantile < 1.0:
            raise BioprofileInputError(f"low quantile must lie in (0, 1), got {self.low_quantile}")
        if self.low_threshold is not None and not 0.0 < self.low_threshold < 1.0:
            raise BioprofileInputError(f"low threshold is a probability in (0, 1), got {self.low_threshold}")
        # the two groups must not overlap, so a window never qualifies for both
        if not (0.0 <= self.sparse_max_frac < self.dense_min_frac <= 1.0):
            raise BioprofileInputError(
                f"need 0 <= sparse max fraction ({self.sparse_max_frac}) < dense min fraction "
                f"({self.dense_min_frac}) <= 1"
            )
        if not (0 <= self.sparse_max_run < self.dense_min_run):
            raise BioprofileInputError(
                f"need sparse max run ({self.sparse_max_run}) < dense min run ({self.dense_min_run})"
            )

    @property
    def step(self) -> int:
        return self.window if self.stride is None else self.stride


def low_confidence_mask(p: np.ndarray, rule: WindowRule = WindowRule()) -> np.ndarray:
    """Which tokens of one response are low-confidence: ``p`` below the rule's quantile or absolute threshold."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = rule.low_threshold if rule.low_threshold is not None else np.quantile(p, rule.low_quantile)
    return p < threshold


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest stretch of consecutive ``True`` values."""
    best = current = 0
    for value in np.asarray(mask, dtype=bool):
        current = current + 1 if value else 0
        best = max(best, current)
    return best


def window_bounds(n_tokens: int, rule: WindowRule = WindowRule()) -> list[tuple[int, int]]:
    """``[start, end)`` of each window over a response of ``n_tokens``.

    Windows start every ``rule.step`` tokens while a full window fits; a response shorter than one window
    yields a single window over all of it; an empty response yields none.
    """
    if n_tokens == 0:
        return []
    last_start = max(n_tokens - rule.window, 0)
    return [(start, min(start + rule.window, n_tokens)) for start in range(0, last_start + 1, rule.step)]


def classify_window(low: np.ndarray, rule: WindowRule = WindowRule()) -> str:
    """Group of one window from its low-confidence mask: ``sparse-low``, ``dense-low`` or ``neither``."""
    low = np.asarray(low, dtype=bool)
    fraction = float(low.mean()) if low.size else 0.0
    run = longest_run(low)
    if fraction >= rule.dense_min_frac or run >= rule.dense_min_run:
        return "dense-low"
    if low.any() and fraction <= rule.sparse_max_frac and run <= rule.sparse_max_run:
        return "sparse-low"
    return "neither"


def classify_windows(p: np.ndarray, rule: WindowRule = WindowRule()) -> pd.DataFrame:
    """Cut one response's confidences into windows and classify each.

    Parameters
    ----------
    p
        ``(n,)`` teacher-forced probabilities of the response tokens.
    rule
        Window size, stride and thresholds.

    Returns
    -------
    One row per window: ``start``, ``end``, ``low_fraction``, ``longest_low_run``, ``mean_p``, ``group``.
    """
    p = np.asarray(p, dtype=np.float64)
    low = low_confidence_mask(p, rule)
    rows = []
    for start, end in window_bounds(p.size, rule):
        rows.append(
            {
                "start": start,
                "end": end,
                "low_fraction": float(low[start:end].mean()),
                "longest_low_run": longest_run(low[start:end]),
                "mean_p": float(p[start:end].mean()),
                "group": classify_window(low[start:end], rule),
            }
        )
    columns = ["start", "end", "low_fraction", "longest_low_run", "mean_p", "group"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------------
# Entity and connective tagging
# --------------------------------------------------------------------------------------------------

# HGNC approved symbols that are also English words (or common non-gene abbreviations) written in capitals.
# Matching is case-sensitive, so lower-case prose ("the cat", "at rest") never matches; these are dropped
# because capitalised headings and shouting would. Symbols famous as genes (KIT, MET, ATM, MAX, ACE, BAD)
# stay: in running text the English words appear in lower case.
ENGLISH_WORD_SYMBOLS: frozenset[str] = frozenset(
    {
        "A", "AN", "AS", "AT", "IT", "IS", "IN", "ON", "OR", "TO", "OF", "NO", "SO", "UP", "WE", "BE", "BY",
        "SET", "WAS", "SHE", "CAT", "CAMP", "CAPS", "CLOCK", "COIL", "COPE", "MICE", "PIGS", "PALM", "RAN",
        "REST", "SON", "STAR", "TANK", "TRIO", "TUB", "KIN", "SAG", "SKI", "MAL", "HR", "PC", "NHS",
    }
)  # fmt: skip

# A word: letters/digits, joined by inner hyphens or dots (HLA-A, NKX2-1, C1orf112).
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")

# Causal connectives, as regular expressions matched case-insensitively at word boundaries. Verbs are matched
# in their inflected forms (inhibits, inhibited, inhibiting) but not as nouns (inhibition): the noun names a
# process, the verb asserts a cause.
CAUSAL_CONNECTIVES: dict[str, str] = {
    "because": r"because(?: of)?",
    "therefore": r"therefore",
    "thus": r"thus",
    "hence": r"hence",
    "thereby": r"thereby",
    "consequently": r"consequently",
    "as a result": r"as a result(?: of)?",
    "so that": r"so that",
    "in order to": r"in order to",
    "due to": r"due to",
    "owing to": r"owing to",
    "via": r"via",
    "through": r"through",
    "leads to": r"(?:lead|leads|leading|led) to",
    "results in": r"(?:result|results|resulting|resulted) in",
    "gives rise to": r"(?:give|gives|giving|gave|given) rise to",
    "contributes to": r"(?:contribute|contributes|contributing|contributed) to",
    "required for": r"(?:required|necessary|essential) for",
    "causes": r"(?:cause|causes|caused|causing)",
    "induces": r"(?:induce|induces|induced|inducing)",
    "inhibits": r"(?:inhibit|inhibits|inhibited|inhibiting)",
    "activates": r"(?:activate|activates|activated|activating)",
    "promotes": r"(?:promote|promotes|promoted|promoting)",
    "regulates": r"(?:up-?|down-?)?(?:regulate|regulates|regulated|regulating)",
    "mediates": r"(?:mediate|mediates|mediated|mediating)",
    "triggers": r"(?:trigger|triggers|triggered|triggering)",
    "suppresses": r"(?:suppress|suppresses|suppressed|suppressing)",
    "enhances": r"(?:enhance|enhances|enhanced|enhancing)",
    "blocks": r"(?:block|blocks|blocked|blocking)",
    "prevents": r"(?:prevent|prevents|prevented|preventing)",
}
_CONNECTIVE = re.compile(
    r"\b(?:"
    + "|".join(f"(?P<c{i}>{pattern})" for i, pattern in enumerate(CAUSAL_CONNECTIVES.values()))
    + r")\b",
    re.IGNORECASE,
)
_CONNECTIVE_NAMES = list(CAUSAL_CONNECTIVES)


def hgnc_symbols() -> frozenset[str]:
    """Approved HGNC gene symbols, case as HGNC writes them (from :func:`bioprofile.genes.hgnc_symbols`)."""
    from bioprofile.genes import hgnc_symbols as approved_symbols

    return approved_symbols()


def gene_entity_spans(
    text: str, symbols: frozenset[str] | None = None, *, ner_model: str | Path | None = None
) -> list[tuple[int, int, str]]:
    """Gene/protein mentions in ``text``: words that are HGNC approved symbols, plus spaCy NER spans.

    A word (letters and digits, possibly joined by inner ``-`` or ``.``) is an entity when it equals an
    approved symbol exactly (case-sensitive), is at least 2 characters long and is not in
    :data:`ENGLISH_WORD_SYMBOLS`. The gene/protein spans of a spaCy NER pipeline are added (see
    :func:`ner_gene_spans`): the one named by ``ner_model``, else a scispaCy model if one is installed.

    Parameters
    ----------
    text
        The text to tag.
    symbols
        Approved symbols to match; ``None`` reads them with :func:`hgnc_symbols`.
    ner_model
        spaCy pipeline: an installed package name or a directory written by ``nlp.to_disk``. ``None`` uses
        ``en_ner_jnlpba_md`` or ``en_ner_bionlp13cg_md`` when installed, else the lexicon alone.

    Returns
    -------
    ``(start, end, word)`` character spans, in text order.
    """
    symbols = hgnc_symbols() if symbols is None else symbols
    spans = [
        (match.start(), match.end(), match.group())
        for match in _WORD.finditer(text)
        if len(match.group()) >= 2 and match.group() in symbols and match.group() not in ENGLISH_WORD_SYMBOLS
    ]
    spans.extend(ner_gene_spans(text, ner_model))
    return sorted(set(spans))


# scispaCy's biomedical NER models, tried in this order when no pipeline is named
SCISPACY_MODELS: tuple[str, ...] = ("en_ner_jnlpba_md", "en_ner_bionlp13cg_md")
# Entity labels counted as genes/proteins: JNLPBA's PROTEIN, DNA and RNA (its CELL_LINE and CELL_TYPE are
# not genes) and BioNLP13CG's GENE_OR_GENE_PRODUCT. A custom pipeline must use one of these labels.
GENE_ENTITY_LABELS: frozenset[str] = frozenset({"PROTEIN", "DNA", "RNA", "GENE_OR_GENE_PRODUCT"})


@lru_cache(maxsize=1)
def _scispacy_pipeline():
    """The first installed scispaCy NER model, or ``None`` (spaCy or the models missing): tagging is optional."""
    for name in SCISPACY_MODELS:
        try:
            return _load_ner_pipeline(name)
        except BioprofileInputError:  # not installed: the default is best effort, unlike a named pipeline
            continue
    return None


def load_ner_pipeline(ner_model: str | Path):
    """Load a spaCy NER pipeline by package name or directory, once per name.

    Parameters
    ----------
    ner_model
        An installed spaCy pipeline package (e.g. scispaCy's ``en_ner_jnlpba_md``) or a directory written by
        ``nlp.to_disk``.

    Returns
    -------
    The :class:`spacy.language.Language`.

    Raises
    ------
    BioprofileInputError
        spaCy is not installed, the pipeline cannot be loaded, or none of its components predicts one of
        :data:`GENE_ENTITY_LABELS` (it would tag nothing).
    """
    return _load_ner_pipeline(str(ner_model))


@lru_cache(maxsize=4)  # bounded: a biomedical NER model holds a few hundred MB of vectors
def _load_ner_pipeline(name: str):
    # keyed by the string, so a str and a Path naming the same directory share one pipeline
    try:
        import spacy
    except ImportError:
        raise BioprofileInputError(
            f"--ner-model {name!r} needs spaCy: pip install 'bioprofile[ner]' (or pip install spacy)"
        ) from None
    try:
        nlp = spacy.load(name)
    except (OSError, ValueError, ImportError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BioprofileInputError(
            f"cannot load spaCy pipeline {name!r} ({first_line}); install the pipeline package "
            "(e.g. scispaCy's en_ner_jnlpba_md) or pass a directory written by nlp.to_disk"
        ) from None
    labels = {label for component_labels in nlp.pipe_labels.values() for label in component_labels}
    if not labels & GENE_ENTITY_LABELS:
        raise BioprofileInputError(
            f"spaCy pipeline {name!r} predicts none of the gene/protein labels {sorted(GENE_ENTITY_LABELS)} "
            f"(its labels: {sorted(labels) or 'none'}); pass a biomedical NER pipeline"
        )
    return nlp


def ner_gene_spans(text: str, ner_model: str | Path | None = None) -> list[tuple[int, int, str]]:
    """Gene/protein spans (labels in :data:`GENE_ENTITY_LABELS`) found by a spaCy NER pipeline.

    Parameters
    ----------
    text
        The text to tag.
    ner_model
        Pipeline package name or directory (see :func:`load_ner_pipeline`; a bad one is an error). ``None``
        uses the first installed model of :data:`SCISPACY_MODELS`, and finds nothing when none is.

    Returns
    -------
    ``(start, end, text)`` character spans, in text order.
    """
    nlp = _scispacy_pipeline() if ner_model is None else load_ner_pipeline(ner_model)
    if nlp is None:
        return []
    doc = nlp(text)
    return [(ent.start_char, ent.end_char, ent.text) for ent in doc.ents if ent.label_ in GENE_ENTITY_LABELS]


def connective_spans(text: str) -> list[tuple[int, int, str]]:
    """Causal connectives in ``text`` (see :data:`CAUSAL_CONNECTIVES`).

    Returns
    -------
    ``(start, end, name)`` spans, ``name`` being the connective's key in :data:`CAUSAL_CONNECTIVES`.
    """
    # each alternative is one named group c<i>, so the group that matched names the connective
    return [
        (match.start(), match.end(), _CONNECTIVE_NAMES[int(match.lastgroup[1:])])
        for match in _CONNECTIVE.finditer(text)
    ]


def tokens_in_spans(offsets: np.ndarray, spans: Sequence[tuple[int, int, Any]]) -> np.ndarray:
    """Which tokens overlap any of ``spans``, given each token's ``[start, end)`` character offsets."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    hit = np.zeros(len(offsets), dtype=bool)
    for start, end, _ in spans:
        hit |= (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
    return hit


def tag_response(
    confidence: ResponseConfidence,
    symbols: frozenset[str] | None = None,
    *,
    ner_model: str | Path | None = None,
) -> ResponseConfidence:
    """Fill ``confidence.entity`` and ``confidence.connective`` (per-token flags) in place, and return it.

    ``symbols`` and ``ner_model`` are passed to :func:`gene_entity_spans`.
    """
    entities = gene_entity_spans(confidence.response, symbols, ner_model=ner_model)
    confidence.entity = tokens_in_spans(confidence.offsets, entities)
    confidence.connective = tokens_in_spans(confidence.offsets, connective_spans(confidence.response))
    return confidence


# --------------------------------------------------------------------------------------------------
# The diagnosis: windows x tags -> per-group table
# --------------------------------------------------------------------------------------------------


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


def window_table(responses: Sequence[ResponseConfidence], rule: WindowRule = WindowRule()) -> pd.DataFrame:
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
    rule: WindowRule = WindowRule(),
    batch_size: int = 4,
    max_length: int = 1024,
    ner_model: str | Path | None = None,
) -> Diagnosis:
    """Score, tag and classify: the whole teacher-forced confidence diagnosis for a set of examples.

    Parameters
    ----------
    model, tokenizer
        A causal LM and its fast tokenizer (see :func:`load_causal_lm`).
    examples
        Prompt/response pairs (see :func:`read_prompt_responses`).
    rule
        Window size, stride and classification thresholds.
    batch_size, max_length
        Passed to :func:`token_confidences`.
    ner_model
        spaCy NER pipeline for gene/protein entities, beside the HGNC lexicon (see :func:`gene_entity_spans`).

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


def write_diagnosis(diagnosis: Diagnosis, out_dir: str | Path) -> dict[str, Path]:
    """Write the per-group table (CSV and JSON), the window table (CSV) and the group bar plot (PNG).

    Returns
    -------
    Paths written, keyed ``summary_csv``, ``summary_json``, ``windows_csv``, ``plot``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary_csv": out_dir / "diagnose_groups.csv",
        "summary_json": out_dir / "diagnose_groups.json",
        "windows_csv": out_dir / "diagnose_windows.csv",
        "plot": out_dir / "diagnose_groups.png",
    }
    diagnosis.summary.to_csv(paths["summary_csv"], index=False)
    payload = {
        "rule": asdict(diagnosis.rule),
        "responses": len(diagnosis.responses),
        "tokens": int(sum(r.p.size for r in diagnosis.responses)),
        "groups": json.loads(diagnosis.summary.to_json(orient="records")),
    }
    paths["summary_json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    diagnosis.windows.to_csv(paths["windows_csv"], index=False)
    plot_group_summary(diagnosis.summary, paths["plot"])
    return paths


def plot_group_summary(summary: pd.DataFrame, path: str | Path) -> Path:
    """Bar plot: per group, the fraction of windows holding an entity and holding a connective."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.arange(len(summary))
    fig, ax = plt.subplots(figsize=(6, 4))
    bar = 0.38
    ax.bar(positions - bar / 2, summary["frac_with_entity"].fillna(0), bar, label="holds a gene entity")
    ax.bar(
        positions + bar / 2, summary["frac_with_connective"].fillna(0), bar, label="holds a causal connective"
    )
    ax.set_xticks(
        positions, [f"{g}\n(n={n})" for g, n in zip(summary["group"], summary["windows"], strict=False)]
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of windows")
    ax.set_title("What low-confidence windows hold")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------------------------------
# Per-token weights of one response under each loss
# --------------------------------------------------------------------------------------------------


def token_weight_table(
    confidence: ResponseConfidence,
    *,
    methods: Sequence[str] = WEIGHT_METHODS,
    window: int | None = None,
) -> pd.DataFrame:
    """Each token's loss weight under SFT, DFT, BFT and BFT-v1, side by side.

    The weights come from :func:`bioprofile.train.losses.token_weights` applied to the response's
    cross-entropy ``-log p``, so they are the weights training puts on this response. Each method's column
    is the effective weight ``w_t * beta`` (token weight times the response's sample weight), the factor that
    multiplies the token's cross-entropy.

    Parameters
    ----------
    confidence
        One scored response (ideally tagged, see :func:`tag_response`).
    methods
        Loss names understood by ``token_weights``.
    window
        Window length G for the losses; ``None`` uses each method's default (9; 256 for ``bft-v1``).

    Returns
    -------
    One row per token: ``position``, ``token``, ``p``, ``cbar`` (BFT's local confidence), ``entity``,
    ``connective``, then one column per method. ``table.attrs["sample_weight"]`` maps each method to ``beta``.
    """
    import torch

    from bioprofile.train.losses import local_confidence, resolve_window, token_weights

    n = confidence.p.size
    if n == 0:
        raise BioprofileInputError(f"response {confidence.index} has no tokens; pick another --index")
    p = torch.tensor(np.clip(confidence.p, 1e-300, 1.0), dtype=torch.float64)[None]
    mask = torch.ones_like(p, dtype=torch.bool)
    table = pd.DataFrame(
        {
            "position": np.arange(n),
            "token": confidence.tokens,
            "p": confidence.p,
            "cbar": local_confidence(p, mask, resolve_window("bft", window))[0].numpy(),
            "entity": confidence.entity if confidence.entity.size else np.zeros(n, dtype=bool),
            "connective": confidence.connective if confidence.connective.size else np.zeros(n, dtype=bool),
        }
    )
    sample_weight = {}
    for method in methods:
        weights = token_weights(-torch.log(p), mask, method=method, window=window)
        table[method] = (weights.token[0] * weights.sample[0]).numpy()
        sample_weight[method] = float(weights.sample[0])
    table.attrs["sample_weight"] = sample_weight
    return table


def compact_weight_view(table: pd.DataFrame) -> pd.DataFrame:
    """A narrower :func:`token_weight_table` for printing: ``cbar`` dropped, the two tags merged into ``tag``."""
    tag = np.where(table["entity"], "gene", np.where(table["connective"], "causal", ""))
    methods = [m for m in table.columns if m in WEIGHT_METHODS]
    view = table[["position", "token", "p"]].assign(tag=tag)
    return pd.concat([view, table[methods]], axis=1)


def write_token_weights(table: pd.DataFrame, out_dir: str | Path, index: int) -> dict[str, Path]:
    """Write a :func:`token_weight_table` as CSV and as a PNG plot; returns paths keyed ``csv``, ``plot``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / f"weights_{index}.csv", "plot": out_dir / f"weights_{index}.png"}
    table.to_csv(paths["csv"], index=False)
    plot_token_weights(table, paths["plot"])
    return paths


def plot_token_weights(
    table: pd.DataFrame, path: str | Path, *, methods: Sequence[str] | None = None
) -> Path:
    """Line plot of each method's per-token weight over positions, with ``p`` beneath and entities marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in (methods or WEIGHT_METHODS) if m in table.columns]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, len(table) / 12), 5.5), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})  # fmt: skip
    for method in methods:
        top.plot(table["position"], table[method], label=method, linewidth=1.2, drawstyle="steps-mid")
    top.set_ylabel("token weight")
    top.legend(loc="upper right", fontsize="small", ncol=len(methods))
    bottom.bar(table["position"], table["p"], width=1.0, color="0.55", label="p")
    # tagged tokens are shaded across both panels: their p is often too small to see as a bar
    for column, color, label in (
        ("entity", "tab:red", "gene entity"),
        ("connective", "tab:blue", "causal connective"),
    ):
        positions = table["position"][table[column].to_numpy(dtype=bool)]
        for axis in (top, bottom):
            for position in positions:
                axis.axvspan(position - 0.5, position + 0.5, color=color, alpha=0.18, linewidth=0)
        if len(positions):
            bottom.axvspan(np.nan, np.nan, color=color, alpha=0.18, label=label)  # a legend entry only
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("p (teacher-forced)")
    bottom.set_xlabel("response token position")
    bottom.legend(loc="upper right", fontsize="small", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


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
