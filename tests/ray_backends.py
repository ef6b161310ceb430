"""A backend for the Ray tests, registered at run time: it logs each text it writes, and can fail on one symbol.

Ray actors run in other processes: they import this module by name (the tests put tests/ on the workers'
``PYTHONPATH``), and get the backend registered from the entry the driver ships
(:class:`bioprofile.profiles.ray_fanout.GeneratorSpec`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioprofile.profiles import register_backend, unregister_backend

NAME = "logged"


#: The environment variables of the options' defaults (how a test reaches actors built from command-line flags).
LOG_ENV, FAIL_ENV = "LOGGED_BACKEND_LOG", "LOGGED_BACKEND_FAIL_ON"


@dataclass(frozen=True)
class LoggedBackendOptions:
    """Where each written prompt is logged (one line per text, from any process), and the symbol to fail on."""

    log: str = field(default_factory=lambda: os.environ.get(LOG_ENV, ""))
    fail_on: str = field(default_factory=lambda: os.environ.get(FAIL_ENV, ""))


def logged_text(messages: list[dict]) -> str:
    """The text the backend writes for a chat: a digest of it."""
    question = messages[-1]["content"]
    return f"Logged profile {hashlib.sha256(question.encode()).hexdigest()[:12]}"


class LoggedGenerator:
    """Writes :func:`logged_text` per prompt, logging each; fails on one symbol until fixed."""

    independent_prompts = True
    batch_size = 1  # chunks of four prompts

    def __init__(
        self, model: str | None = None, *, settings: Any = None, options: LoggedBackendOptions
    ) -> None:
        self.options = options
        self.model = model or "logged-model"

    @property
    def id(self) -> str:
        return f"logged:{self.model}"

    @property
    def params(self) -> dict:
        return {}

    def generate_iter(self, messages_list: list[list[dict]]):
        """``(index, text)`` per prompt as each is written (as a served backend answers); raises on the failing one."""
        for index, messages in enumerate(messages_list):
            question = messages[-1]["content"]
            fixed = Path(f"{self.options.log}.fixed")  # the test creates it to end the failures
            if self.options.fail_on and self.options.fail_on in question and not fixed.exists():
                raise RuntimeError(f"injected failure on {self.options.fail_on}")
            with open(self.options.log, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()}\t{logged_text(messages)}\n")
            yield index, logged_text(messages)

    def generate(self, messages_list: list[list[dict]]) -> list[str]:
        return [text for _, text in self.generate_iter(messages_list)]


def register() -> None:
    """Register the backend under :data:`NAME` (what a plugin does when it is imported)."""
    register_backend(NAME, LoggedGenerator, options=LoggedBackendOptions, replace=True)


def unregister() -> None:
    unregister_backend(NAME)
