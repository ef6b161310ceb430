"""Training records: JSONL readers, the RefSeq SFT set, completion-only tokenisation and padding.

A record is a chat: ``{"messages": [{"role": ..., "content": ...}, ...]}``. JSONL lines may also be TRL's
prompt/completion form (``{"prompt": [...], "completion": [...]}`` message lists, or two strings) or
``{"instruction": ..., "response": ...}`` (optionally ``"system"``), which become a user turn and an assistant turn.
Only assistant turns are trained: every other token's label is ``-100``.

RefSeq records ask about each gene with a prompt template of :mod:`bioprofile.profiles.prompts`, filled from the
:class:`bioprofile.genes.Gene` that :func:`bioprofile.genes.normalize_genes` resolves (symbol and full name), which
is what ``embed_genes`` sends: the model is trained on the question it will be asked.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.profiles.prompts import PromptTemplate, get_template
from bioprofile.profiles.summaries import read_summaries

IGNORE_INDEX = -100
DEFAULT_TEMPLATE = "concise"  # the template embed_genes asks with by default


def _checked_messages(messages: Any, where: str, name: str = "messages") -> list[dict[str, str]]:
    """``messages`` as a list of ``{role, content}`` strings; raise naming the first bad message."""
    if not isinstance(messages, list) or not messages:
        raise BioprofileInputError(f"{where}: {name!r} must be a non-empty list of {{role, content}} objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BioprofileInputError(f"{where}: message {i} needs a string 'role'")
        if not isinstance(message.get("content"), str):
            raise BioprofileInputError(f"{where}: message {i} needs a string 'content'")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _record_from_json(obj: Any, where: str) -> dict[str, list[dict[str, str]]]:
    """Check one decoded JSONL object and return it as a ``messages`` record."""
    if not isinstance(obj, dict):
        raise BioprofileInputError(
            f"{where}: expected a JSON object with 'messages' or 'instruction'/'response'"
        )
    if "messages" in obj:
        messages = _checked_messages(obj["messages"], where)
    elif "prompt" in obj and "completion" in obj:
        prompt, completion = obj["prompt"], obj["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        else:
            messages = _checked_messages(prompt, where, "prompt") + _checked_messages(
                completion, where, "completion"
            )
    else:
        messages = None
    if messages is not None:
        if not any(m["role"] == "assistant" for m in messages):
            raise BioprofileInputError(f"{where}: no 'assistant' message, so there is nothing to train on")
        return {"messages": messages}
    if "instruction" in obj or "response" in obj:
        instruction, response = obj.get("instruction"), obj.get("response")
        if not isinstance(instruction, str) or not isinstance(response, str):
            raise BioprofileInputError(f"{where}: 'instruction' and 'response' must both be strings")
        messages = []
        if isinstance(obj.get("system"), str):
            messages.append({"role": "system", "content": obj["system"]})
        messages += [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        return {"messages": messages}
    raise BioprofileInputError(
        f"{where}: expected a 'messages' list, 'prompt' and 'completion', or 'instruction' and 'response' strings"
    )


def read_jsonl_records(path: str | Path) -> list[dict[str, list[dict[str, str]]]]:
    """Read chat records from a JSONL file.

    Parameters
    ----------
    path
        One JSON object per line, ``messages`` chat or ``instruction``/``response``; blank lines are skipped.

    Returns
    -------
    list of dict
        Records of the form ``{"messages": [{"role", "content"}, ...]}``.
    """
    path = Path(path)
    if not path.is_file():
        raise BioprofileInputError(f"data file {str(path)!r} does not exist: give a JSONL file of records")
    try:
        # split("\n"), not splitlines(): a JSON string may hold U+2028, which splitlines() breaks on
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise BioprofileInputError(
            f"data file {str(path)!r} is not UTF-8 text (byte {err.start}): save it as UTF-8"
        ) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise BioprofileInputError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
        records.append(_record_from_json(obj, where))
    if not records:
        raise BioprofileInputError(f"data file {str(path)!r} has no records: add one JSON object per line")
    return records


_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _looks_like_symbol(symbol: str) -> bool:
    """HGNC-style: upper case and digits; lower case only in open-reading-frame names such as C1orf112."""
    return bool(_SYMBOL.match(symbol)) and not any(c.islower() for c in symbol.replace("orf", ""))


@dataclass
class RefSeqRecords:
    """The chat records of a RefSeq synopsis file and what could not become one.

    Attributes
    ----------
    records
        ``{"gene": SYMBOL, "messages": [...]}`` in file order, ``SYMBOL`` as the file writes it (the prompt names
        the gene it resolves to, as ``embed_genes`` would for that input).
    template
        The prompt template the questions were asked with.
    unresolved
        File symbols that :func:`bioprofile.genes.normalize_genes` could not resolve to one gene (skipped).
    repeated
        File symbols that resolved to a gene an earlier line already gave (skipped; the first line wins).
    """

    records: list[dict[str, Any]]
    template: PromptTemplate
    unresolved: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)


def refseq_records(
    path: str | Path,
    *,
    template: str | PromptTemplate = DEFAULT_TEMPLATE,
    system_prompt: str | None = None,
    strict: bool = False,
) -> RefSeqRecords:
    """Turn a RefSeq synopsis file into prompt-template -> summary chat records, resolving every symbol.

    Parameters
    ----------
    path
        Text file with one ``SYMBOL: summary`` per line (e.g. GeneAgent's ``gene_narrative_synopsis.txt``).
    template
        Name of a template in :mod:`bioprofile.profiles.prompts` (or a template): each gene is asked about with
        ``template.messages(gene)``, the messages ``embed_genes`` sends for it. Default ``"concise"``, the template
        ``embed_genes`` uses by default.
    system_prompt
        Replace the template's system turn with this one (then the prompt is no longer the served one).
    strict
        Raise on the first line that is not ``SYMBOL: summary``. By default such lines (separators, headers, stray
        prompt text, which GeneAgent's file contains) are skipped.

    Returns
    -------
    RefSeqRecords
        The records, the template, and the symbols skipped because they did not resolve (or repeated a gene).
    """
    template = get_template(template)
    summaries = read_summaries(path, errors="raise" if strict else "skip", duplicates="first")
    symbols = []
    for symbol in summaries:
        if not _looks_like_symbol(symbol):  # e.g. "Summary: ..." prompt text that has the shape of a record
            if strict:
                raise BioprofileInputError(f"synopsis file {path}: {symbol!r} is not a gene symbol")
            continue
        symbols.append(symbol)
    if not symbols:
        raise BioprofileInputError(f"synopsis file {path} has no 'SYMBOL: text' lines with a gene symbol")
    resolution = normalize_genes(symbols)
    genes = {gene.symbol: gene for gene in resolution.genes}
    result = RefSeqRecords(records=[], template=template)
    used = set()
    for symbol in symbols:
        approved = resolution.inputs.get(symbol)
        if approved is None:
            result.unresolved.append(symbol)
            continue
        if approved in used:
            result.repeated.append(symbol)
            continue
        used.add(approved)
        gene = genes[approved]
        messages = template.messages(gene)
        if system_prompt:
            messages = [{"role": "system", "content": system_prompt}] + [
                m for m in messages if m["role"] != "system"
            ]
        messages.append({"role": "assistant", "content": summaries[symbol]})
        result.records.append({"gene": symbol, "messages": messages})
    return result


def refseq_sft_records(
    path: str | Path,
    *,
    system_prompt: str | None = None,
    strict: bool = False,
    template: str | PromptTemplate = DEFAULT_TEMPLATE,
) -> list[dict[str, Any]]:
    """The chat records of :func:`refseq_records` alone (symbols that do not resolve are skipped).

    Parameters
    ----------
    path, system_prompt, strict, template
        As for :func:`refseq_records`.

    Returns
    -------
    list of dict
        ``{"gene": SYMBOL, "messages": [...]}`` in file order; the first record of a repeated gene wins.
    """
    return refseq_records(path, template=template, system_prompt=system_prompt, strict=strict).records


def split_records(records: list, eval_size: float, *, seed: int = 0) -> tuple[list, list]:
    """Shuffle-split records into train and held-out parts.

    Parameters
    ----------
    records
        Any list.
    eval_size
        A count (>= 1) or a fraction (< 1) of the records to hold out; 0 holds out none.
    seed
        Seed of the shuffle, so the same genes are held out every run.

    Returns
    -------
    tuple of list
        ``(train, held_out)``.
    """
    n_eval = int(eval_size) if eval_size >= 1 else round(eval_size * len(records))
    if n_eval >= len(records):
        raise BioprofileInputError(f"eval_size {eval_size} leaves no training records out of {len(records)}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_eval])
    return [r for i, r in enumerate(records) if i not in held], [records[i] for i in sorted(held)]


def tokenize_chat(tokenizer, messages: list[dict[str, str]], *, max_length: int) -> dict[str, list[int]]:
    """Tokenise one chat with the tokenizer's chat template and label only the assistant turns.

    Each assistant turn's span runs from the end of the rendered prompt before it (with the generation prompt) to the
    end of the rendered chat through it, so the end-of-turn marker is trained too and the model learns to stop.

    Parameters
    ----------
    tokenizer
        A fast Hugging Face tokenizer with a chat template.
    messages
        The chat.
    max_length
        Keep at most this many tokens (cut on the right).

    Returns
    -------
    dict
        ``input_ids``, ``attention_mask`` and ``labels`` (``-100`` outside assistant turns).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise BioprofileInputError("the tokenizer has no chat template: use an instruct model's tokenizer")
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not text.startswith(through) or not through.startswith(prompt):
            raise ValueError("the chat template does not render a chat as a prefix of its continuation")
        spans.append((len(prompt), len(through)))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = encoded["input_ids"][:max_length]
    labels = []
    for token_id, (start, end) in zip(input_ids, encoded["offset_mapping"], strict=False):
        trained = any(lo <= start < hi for lo, hi in spans) and end > start
        labels.append(token_id if trained else IGNORE_INDEX)
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


class ChatDataset(torch.utils.data.Dataset):
    """Tokenised chat records, ready for :class:`CompletionCollator`.

    Records whose assistant tokens all fall past ``max_length`` are dropped (they would train nothing);
    ``n_dropped`` says how many, and ``n_truncated`` how many of those kept lost some tokens past it (a response
    cut short). ``tokenizer`` is the one the records were tokenised with.
    """

    def __init__(self, records: list[dict[str, Any]], tokenizer, *, max_length: int):
        self.tokenizer = tokenizer
        self.features = []
        self.n_dropped = 0
        self.n_truncated = 0
        for record in records:
            feature = tokenize_chat(tokenizer, record["messages"], max_length=max_length + 1)
            cut = len(feature["input_ids"]) > max_length
            feature = {key: values[:max_length] for key, values in feature.items()}
            # Position 0 is never a prediction target, so a sample needs a trained label after it.
            if any(label != IGNORE_INDEX for label in feature["labels"][1:]):
                self.features.append(feature)
                self.n_truncated += cut
            else:
                self.n_dropped += 1

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.features[index]

    def as_dataset(self):
        """The features as a :class:`datasets.Dataset` (``input_ids``, ``attention_mask``, ``labels`` columns).

        The form TRL's ``SFTTrainer`` takes; :class:`bioprofile.train.trainer.BFTTrainer` makes it from a
        :class:`ChatDataset` itself.
        """
        from datasets import Dataset

        columns = ("input_ids", "attention_mask", "labels")
        return Dataset.from_dict({key: [f[key] for f in self.features] for key in columns})


class CompletionCollator:
    """Right-pad ``input_ids`` (pad id), ``attention_mask`` (0) and ``labels`` (-100) to the longest in the batch."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """The padded batch of ``features`` as ``[B, T]`` tensors."""
        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {}
        for key, pad in (("input_ids", self.pad_token_id), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
            batch[key] = torch.tensor([f[key] + [pad] * (length - len(f[key])) for f in features])
        return batch
