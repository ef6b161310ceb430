"""Steps several commands share: the model libraries' output, the writer, the encoder and the store the flags name.

Each step imports what it builds inside the function, so ``bioprofile --help`` loads no model library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from bioprofile.cli.boundary import fail
from bioprofile.cli.options import DType


def quiet_model_libraries(quiet: bool) -> None:
    """Progress on stderr, the model libraries' own bars off (they would interleave); with ``quiet``, their warnings.

    The environment variables are read when those libraries are imported, later; one already imported (a second
    command in the same process) is switched off through its own function.
    """
    import rich

    # Bars drawn without a console of their own (the pipeline's) use rich's global console: stderr, so stdout
    # holds only results (tables meant for stdout are printed on a Console() of their own).
    rich.reconfigure(stderr=True)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # also transformers' loading bars
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if quiet:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        # tqdm bars of other libraries (cell-eval's "Iterating over perturbations"): tqdm reads this at each bar
        os.environ.setdefault("TQDM_DISABLE", "1")
    if "transformers" in sys.modules:  # it keeps its own switch, set from the hub's when it was imported
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the hub's bars too
    elif "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules:
        getattr(sys.modules["datasets"], "disable_progress_bars", lambda: None)()


def settings_from_flags(batch_size, max_new_tokens: int, dtype: DType, device, threads):
    """The GenerationSettings the generation flags describe."""
    from bioprofile.profiles.generate import GenerationSettings

    return GenerationSettings(
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=DType(dtype).value,
        device=device,
        threads=threads,
    )


def generator_from_flags(
    model, backend: str, base_url, settings, api_key_env: str, max_retries=None, timeouts: dict | None = None
):
    """The profile writer the generation flags of embed-genes, embed-proteins and bench gene-sets describe.

    ``timeouts`` (``timeout``, ``total_timeout``: --timeout, --total-timeout) go to a backend that takes them.
    """
    from bioprofile.profiles import make_generator

    options = backend_options_from_flags(backend, base_url, api_key_env, max_retries, timeouts)
    return make_generator(model, backend=backend, settings=settings, **options)


def backend_options_from_flags(
    backend: str, base_url, api_key_env: str, max_retries=None, timeouts: dict | None = None
) -> dict:
    """The ``make_generator`` options the flags give ``backend`` (also what a Ray actor builds its writer with)."""
    from bioprofile.profiles import backend_option_names

    # --base-url, --api-key-env and the time-outs also serve openai: encoders: a backend gets them only when it
    # takes them
    shared = {"base_url": base_url, "api_key_env": api_key_env, **(timeouts or {})}
    taken = backend_option_names(backend)
    return {"max_retries": max_retries, **{name: value for name, value in shared.items() if name in taken}}


def encoder_from_flags(
    encoder: str | None, backend: str, base_url: str | None, api_key_env: str, timeouts: dict | None = None
):
    """The encoder spec, or an OpenAI-compatible encoder built on --base-url / --api-key-env and the time-outs."""
    uses_api = encoder is not None and encoder.startswith("openai:")
    if base_url is not None and not _takes_base_url(backend) and not uses_api:
        fail("--base-url is for --backend openai or an openai: --encoder: drop it or say which uses it")
    if not uses_api:
        return encoder
    from bioprofile.encoders import get_encoder

    given = {name: value for name, value in (timeouts or {}).items() if value is not None}
    return get_encoder(encoder, base_url=base_url, api_key_env=api_key_env, **given)


def _takes_base_url(backend: str) -> bool:
    """Whether the registered ``backend`` takes an API root (an unknown one is left to make_generator to name)."""
    from bioprofile.errors import BioprofileInputError
    from bioprofile.profiles import backend_option_names

    try:
        return "base_url" in backend_option_names(backend)  # loads an installed plugin backend by its name
    except BioprofileInputError:
        return False


def check_openai_batch(openai_batch: bool, encoder, batch_price: float | None = None) -> None:
    """--openai-batch needs an openai: encoder, and --batch-price needs --openai-batch (checked before any work)."""
    if batch_price is not None and not openai_batch:
        fail("--batch-price is the price of the OpenAI Batch API: pass --openai-batch too, or leave it out")
    if openai_batch and not str(getattr(encoder, "id", "")).startswith("openai:"):
        fail("--openai-batch is for an openai: --encoder (e.g. --encoder openai:text-embedding-3-small)")


def batch_encoder(encoder, store, openai_batch: bool, quiet: bool, batch_price: float | None = None):
    """The encoder, or with --openai-batch the Batch API encoder on it (at --batch-price), announced unless -q."""
    if not openai_batch:
        return encoder
    from bioprofile.encoders.openai_batch import BatchSettings, OpenAIBatchEncoder

    poll = os.environ.get("BIOPROFILE_BATCH_POLL_INTERVAL", "").strip()
    try:
        settings = BatchSettings(batch_price=batch_price, **({"poll_interval": float(poll)} if poll else {}))
    except ValueError:
        fail(
            f"BIOPROFILE_BATCH_POLL_INTERVAL must be a number of seconds above 0, at most 3600, got {poll!r}"
        )
    say = None if quiet else (lambda line: typer.echo(line, err=True))
    return OpenAIBatchEncoder(encoder, store, settings=settings, say=say)


def open_store(cache_dir: Path | None):
    """The store under --cache-dir, else the default one."""
    from bioprofile.store import Store

    return Store(cache_dir / "store.sqlite" if cache_dir else None)
