"""Teacher-forced confidences: load a causal LM and score the probability ``p`` of every response token.

:func:`token_confidences` renders each chat with the tokenizer's chat template, exactly as training sees it, and
runs it through the model once (batched, no gradients); :func:`tag_response` adds each token's entity and
connective flags from :mod:`bioprofile.text`. torch and transformers are imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bioprofile.diagnose.examples import PromptResponse
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.models import read_adapter_config, resolve_model
from bioprofile.progress import quiet_model_loading
from bioprofile.text import token_tags

__all__ = ["ResponseConfidence", "load_causal_lm", "tag_response", "token_confidences"]


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
    entity, connective
        ``(n,)`` flags of the tokens inside a gene/protein entity or a causal connective, once
        :func:`tag_response` has filled them (empty before).
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
        What :func:`bioprofile.profiles.models.resolve_model` accepts: ``None`` or ``"default"`` for the bundled
        SmolLM2-135M-Instruct, a local checkpoint or peft adapter directory (its base model found by
        :func:`bioprofile.profiles.models.read_adapter_config`, as the generator finds it), or a hub id already
        in the local cache.
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

    name = resolve_model(model)
    adapter = read_adapter_config(name)
    base = adapter.base if adapter is not None else name
    # an adapter folder may carry its own tokenizer (chat template included); else the base model's is used
    tokenizer_path = name if adapter is None or _has_tokenizer(name) else base
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        with quiet_model_loading():
            causal_lm = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
            if adapter is not None:
                from peft import PeftModel

                # merged, the adapter scores exactly as the generator serving it (which merges too) writes
                causal_lm = PeftModel.from_pretrained(causal_lm, name).merge_and_unload()
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


def _has_tokenizer(directory: str) -> bool:
    """Whether a model folder holds tokenizer files of its own."""
    return any((Path(directory) / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))


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
                f"a prompt fills all of max_length {max_length} tokens, leaving none of its response; "
                "raise max_length",
                argument="max_length",
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
        Prompt/response pairs, e.g. from :func:`bioprofile.diagnose.examples.read_examples`.
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
        raise BioprofileInputError(f"batch_size must be at least 1, got {batch_size}", argument="batch_size")
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


def tag_response(
    confidence: ResponseConfidence,
    symbols: frozenset[str] | None = None,
    *,
    ner_model: str | Path | None = None,
) -> ResponseConfidence:
    """Fill ``confidence.entity`` and ``confidence.connective`` (per-token flags) in place, and return it.

    ``symbols`` and ``ner_model`` are passed to :func:`bioprofile.text.gene_entity_spans`.
    """
    confidence.entity, confidence.connective = token_tags(
        confidence.response, confidence.offsets, symbols, ner_model=ner_model
    )
    return confidence
