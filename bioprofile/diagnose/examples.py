"""Reading the examples a diagnosis scores: prompt/response pairs from chat records, JSONL or RefSeq synopses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError

__all__ = ["PromptResponse", "examples_from_records", "read_examples", "refseq_examples"]


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
    # lazy: bioprofile.train.data imports torch at module top, and reading a JSONL needs none of it
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
    # lazy: bioprofile.train.data imports torch at module top (its dataset classes), which tagging users skip
    from bioprofile.train.data import read_jsonl_records

    if limit is not None and limit < 1:
        raise BioprofileInputError(f"limit must be at least 1, got {limit}", argument="limit")
    if refseq:
        return refseq_examples(path, limit=limit)
    return examples_from_records(read_jsonl_records(path)[:limit])
