"""Progress bars, one style for every long task: rich bars on stderr, so stdout holds only results.

:func:`progress_bars` gives a :class:`rich.progress.Progress` (or ``None`` when switched off) for tasks that
count their steps; :func:`working` shows one task that cannot count its steps (a benchmark, a download) with a
pulsing bar and the time elapsed. Both write to stderr, never to stdout, and vanish when the work fails, so that
the error is the one line left. :func:`quiet_model_loading` turns the model libraries' own bars (transformers'
"Loading weights", the Hub's) off while a model loads, for library and command line alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress_bars", "quiet_model_loading", "stderr_console", "working"]


def stderr_console():
    """A :class:`rich.console.Console` on stderr (where progress belongs: stdout is for results)."""
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Any]:
    """A started :class:`rich.progress.Progress` on stderr for the block, or ``None`` when not ``enabled``.

    Parameters
    ----------
    enabled
        Draw the bars; ``False`` (a quiet run) yields ``None`` and draws nothing.

    Yields
    ------
    rich.progress.Progress or None
        Add tasks with ``add_task(description, total=n)`` and move them with ``advance``.
    """
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
    ) as progress:
        with _cleared_on_error(progress):
            yield progress


@contextmanager
def working(description: str, enabled: bool = True) -> Iterator[None]:
    """Show ``description`` with a pulsing bar and the elapsed time while the block runs (on stderr).

    For work that reports no steps; the bar is marked done when the block ends without error.

    Parameters
    ----------
    description
        What is being done ("scoring clustering").
    enabled
        Draw it; ``False`` draws nothing.
    """
    if not enabled:
        yield
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(finished_text="done"),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
    ) as progress:
        task = progress.add_task(description, total=None)
        with _cleared_on_error(progress):
            yield
        progress.update(task, total=1, completed=1)


@contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Progress bars of transformers and the Hub off while a model loads (the block), then as they were.

    A notebook that loads a writer or an encoder through bioprofile sees no "Loading weights" bar, as a command
    run does; the caller's own setting comes back when the block ends, so a later ``from_pretrained`` of theirs
    draws its bars as before. (The Hub's per-group switches are reset to the global one.)
    """
    import warnings

    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    transformers_on = transformers_logging.is_progress_bar_enabled()
    hub_on = not are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()  # the Hub's too
    try:
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model: a warning
            # between two libraries that no bioprofile user can act on
            warnings.filterwarnings(
                "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
            )
            yield
    finally:
        if transformers_on:
            with warnings.catch_warnings():
                # the Hub's "cannot enable progress bars" when HF_HUB_DISABLE_PROGRESS_BARS holds them off
                warnings.simplefilter("ignore")
                transformers_logging.enable_progress_bar()  # the Hub's too
            if not hub_on:
                disable_progress_bars()
        elif hub_on:
            enable_progress_bars()


@contextmanager
def _cleared_on_error(progress: Any) -> Iterator[None]:
    """Erase the bars when the block fails: the error is then the one line the user sees on stderr."""
    try:
        yield
    except BaseException:
        progress.live.transient = True
        raise
