"""Profile generation with a local transformers causal LM (the default backend).

Prompts are rendered with the tokenizer's chat template, sorted by length and generated in real batches with
left padding, so a batch of 16 costs little more wall time than one prompt. Greedy decoding is the default, so
the same model and prompt always give the same text and cached profiles stay valid.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.generate import (
    GenerationSettings,
    chat_prompt_token_ids,
    cut_at_stop,
    stop_token_ids,
)
from bioprofile.profiles.models import dtype_name, local_generator_id, read_adapter_config, resolve_model
from bioprofile.progress import quiet_model_loading
from bioprofile.readers import UNREADABLE_FILE_ERRORS

__all__ = ["DEFAULT_BATCH_SIZE", "TransformersGenerator"]

#: Prompts per ``generate`` call unless the settings say: a batch of 16 costs little more wall time than one.
DEFAULT_BATCH_SIZE = 16

_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _limit_cpu_threads(threads: int | None = None) -> None:
    """Set torch's intra-op threads to ``threads``, else keep them within the CPUs this process may use.

    torch counts the machine's physical cores, which in a container can be many more than the CPUs the
    process is allowed; oversubscribed threads then spin against each other and slow generation down. Without
    ``threads``, a number the user chose through the OpenMP/MKL environment variables is left alone.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
        return
    if any(os.environ.get(var) for var in _THREAD_ENV_VARS):
        return
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return
    if torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)


def _parse_dtype(dtype: Any, device: str):
    import torch

    if dtype is None:
        # fp32 on CPU (bf16 matmuls are slow there and change greedy outputs); bf16 on GPUs that support it.
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32 if device == "cpu" or not device.startswith("cuda") else torch.float16
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise BioprofileInputError(
            f"unknown dtype {dtype!r}: use float32, bfloat16 or float16", argument="dtype"
        )
    return value


class TransformersGenerator:
    """Write profile texts with a Hugging Face causal LM (or a peft adapter on one).

    Parameters
    ----------
    model
        What :func:`~bioprofile.profiles.models.resolve_model` accepts: ``None`` for the bundled
        SmolLM2-135M-Instruct, a model or adapter directory, or a cached hub id.
    settings
        Decoding settings (:class:`~bioprofile.profiles.generate.GenerationSettings`); ``batch_size`` is the
        number of prompts generated together in one ``generate`` call, 16 unless set. Its ``dtype`` (float32
        unless set), ``device`` and ``threads`` place the model.
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...: replaces the settings' device; default: the settings', else
        CUDA if available, else CPU.
    dtype
        Weights' dtype (a ``torch.dtype`` or its name): replaces the settings' dtype (float32 unless set);
        ``"auto"`` is fp32 on CPU and bf16 (or fp16) on a GPU.

    Notes
    -----
    The model is loaded on first use (:meth:`load` or :meth:`generate`), so a run whose profiles are all
    cached never loads it.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        settings: GenerationSettings | None = None,
        device: str | None = None,
        dtype: Any = None,
    ) -> None:
        #: The decoding settings in use (a frozen object: replace it to change them).
        self.settings = (settings or GenerationSettings()).with_default_batch_size(DEFAULT_BATCH_SIZE)
        self.model_path = resolve_model(model if model is None else str(model))
        # Device and dtype are resolved on first use: importing torch costs seconds a fully cached run need not pay.
        self._device_request = str(device) if device else self.settings.device
        self._dtype_request = dtype_name(dtype) if dtype is not None else self.settings.dtype
        adapter = read_adapter_config(self.model_path)
        self._adapter_base = adapter.base if adapter else None
        self._model = None
        self._tokenizer = None
        self._id: str | None = None

    @property
    def batch_size(self) -> int:
        """Prompts generated together in one ``generate`` call."""
        return self.settings.batch_size

    # -- identity -------------------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Stable identifier of the model weights (and of the base model, for an adapter); a cache key part."""
        if self._id is None:
            self._id = local_generator_id(self.model_path, self._adapter_base)
        return self._id

    @property
    def params(self) -> dict[str, Any]:
        """Generation settings that change the output (cache key part); sampling settings only when sampling."""
        # float32 keeps the key "auto" of earlier versions, whose default it was on CPU: texts cached by a default
        # run stay valid. (On a GPU "auto" was bf16; texts from either serve both from the cache, as before.)
        dtype = "auto" if self._dtype_request == "float32" else self._dtype_request
        return {**self.settings.text_params(), "dtype": dtype}

    @property
    def params_in_use(self) -> dict[str, Any]:
        """:attr:`params` with the dtype the weights are (or will be) in, for provenance (never a cache key).

        ``params`` keeps ``"auto"`` for float32 (the key of earlier versions); this records ``"float32"``. A request
        of the device's default reads the loaded model's dtype, and stays ``"auto"`` while no model is loaded.
        """
        if self._model is not None:
            dtype = dtype_name(self._model.dtype)
        else:
            dtype = self._dtype_request
        return {**self.params, "dtype": dtype}

    @property
    def device(self) -> str:
        """Where the model runs: as given, else CUDA if available, else CPU."""
        if self._device_request is None:
            import torch

            self._device_request = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device_request

    @property
    def dtype(self):
        """The ``torch.dtype`` the weights are loaded in."""
        return _parse_dtype(None if self._dtype_request == "auto" else self._dtype_request, self.device)

    def __repr__(self) -> str:
        return f"TransformersGenerator({self.id!r}, batch_size={self.batch_size}, params={self.params})"

    # -- loading --------------------------------------------------------------------------------------------

    def load(self) -> TransformersGenerator:
        """Load tokenizer and model now (otherwise done on the first :meth:`generate`); returns ``self``."""
        if self._model is not None:
            return self
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.device == "cpu" or self.settings.threads is not None:
            _limit_cpu_threads(self.settings.threads)
        base_path = self._adapter_base or self.model_path
        tokenizer_path = self.model_path if self._has_tokenizer(self.model_path) else base_path
        try:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
            with quiet_model_loading():
                model = AutoModelForCausalLM.from_pretrained(base_path, dtype=self.dtype)
            if self._adapter_base is not None:
                from peft import PeftModel

                with quiet_model_loading():
                    model = PeftModel.from_pretrained(model, self.model_path)
                # Merged weights generate as fast as the base model; LoRA-style adapters support it.
                if hasattr(model, "merge_and_unload"):
                    model = model.merge_and_unload()
        except UNREADABLE_FILE_ERRORS as err:
            # damaged or foreign files, and weights the safe loader refuses (a pickle that would run code)
            reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 160)
            raise BioprofileInputError(
                f"cannot load the model in {self.model_path} ({reason}): check or copy the model folder again"
            ) from None
        if getattr(tokenizer, "chat_template", None) is None:
            raise BioprofileInputError(
                f"{self.model_path} has no chat template: profiles need an instruction-tuned chat model"
            )
        tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer = tokenizer
        self._model = model.to(self.device).eval()
        return self

    @staticmethod
    def _has_tokenizer(path: str) -> bool:
        directory = Path(path)
        return directory.is_dir() and any(
            (directory / name).is_file()
            for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
        )

    @property
    def tokenizer(self):
        """The loaded tokenizer (left padding)."""
        return self.load()._tokenizer

    @property
    def model(self):
        """The loaded model, in eval mode on :attr:`device`."""
        return self.load()._model

    def _stop_token_ids(self) -> set[int]:
        return stop_token_ids(self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id)

    # -- generation -----------------------------------------------------------------------------------------

    def prompt_token_ids(self, messages_list: Sequence[Sequence[dict]]) -> list[list[int]]:
        """Token ids of each chat rendered with the chat template and the assistant turn opened."""
        return chat_prompt_token_ids(self.tokenizer, messages_list, model=self.model_path)

    def generate_token_ids(self, messages_list: Sequence[Sequence[dict]]) -> list[list[int]]:
        """Generated token ids for each chat, in input order, cut before the first stop token.

        Parameters
        ----------
        messages_list
            One chat (a list of ``{"role", "content"}`` dicts) per profile.

        Returns
        -------
        list of list of int
            The new tokens only (no prompt, no padding, no end-of-turn token).
        """
        results: list[list[int]] = [[] for _ in messages_list]
        for index, tokens in self.iter_token_ids(messages_list):
            results[index] = tokens
        return results

    def iter_token_ids(self, messages_list: Sequence[Sequence[dict]]) -> Iterator[tuple[int, list[int]]]:
        """``(index, token ids)`` for each chat, batch by batch as each is generated (longest prompts first).

        Parameters
        ----------
        messages_list
            The chats to answer; each is rendered with the tokenizer's chat template.

        Yields
        ------
        tuple of (int, list of int)
            The chat's index in ``messages_list`` and its new tokens, cut before the first stop token.
        """
        import torch

        if not messages_list:
            return
        prompts = self.prompt_token_ids(messages_list)
        # Longest first: similar lengths share a batch (little padding) and an out-of-memory shows at once.
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        stop_ids = self._stop_token_ids()
        pad_id = self.tokenizer.pad_token_id
        settings = self.settings
        generation_kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": settings.do_sample,
            "pad_token_id": pad_id,
            "eos_token_id": sorted(stop_ids),
        }
        if settings.do_sample:
            generation_kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            torch.manual_seed(settings.seed)
        else:
            # Neutralise sampling defaults a checkpoint's generation_config may carry.
            generation_kwargs.update(temperature=None, top_p=None, top_k=None)

        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            encoded = self.tokenizer.pad(
                {"input_ids": [prompts[i] for i in batch]}, padding=True, return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                output = self.model.generate(**encoded, **generation_kwargs)
            new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
            for index, tokens in zip(batch, new_tokens, strict=False):
                yield index, cut_at_stop(tokens, stop_ids)

    def generate_iter(self, messages_list: Sequence[Sequence[dict]]) -> Iterator[tuple[int, str]]:
        """``(index, text)`` for each chat, batch by batch as each is generated (so a caller can keep them).

        Parameters
        ----------
        messages_list
            One chat per profile.

        Yields
        ------
        tuple of (int, str)
            The chat's index in ``messages_list`` and its reply, decoded as :meth:`generate` decodes it.
        """
        for index, tokens in self.iter_token_ids(messages_list):
            yield index, self.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    def generate(self, messages_list: Sequence[Sequence[dict]]) -> list[str]:
        """Profile texts for each chat, in input order.

        Parameters
        ----------
        messages_list
            One chat per profile, e.g. ``[template.messages(gene) for gene in genes]``.

        Returns
        -------
        list of str
            The assistant replies, without prompt or special tokens, stripped of surrounding whitespace.
        """
        texts = [""] * len(messages_list)
        for index, text in self.generate_iter(messages_list):
            texts[index] = text
        return texts
