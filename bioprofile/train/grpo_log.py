"""The per-step log of a ``grpo`` run: mean reward, groups with no gradient, malformed replies, KL.

GRPO learns only from differences within a group (the ``num_generations`` replies to one prompt): a group whose
rewards are all equal has zero advantage and gives no gradient. With a binary reward that is every group a model
always gets right, always gets wrong, or never answers in the expected format. TRL logs the share of such groups
per step as ``frac_reward_zero_std``; :class:`GRPOLog` keeps it beside the mean reward, the malformed rate and the KL
to the starting model (logged only when ``beta > 0``), and says whether the run could have learned anything
(:attr:`GRPOLog.made_progress`). ``bioprofile.pl.grpo_rewards`` draws it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioprofile.atomic import atomic_write_text
from bioprofile.errors import BioprofileInputError

__all__ = ["GRPO_LOG_CSV", "GRPO_LOG_JSON", "STEP_COLUMNS", "GRPOLog"]

GRPO_LOG_JSON = "grpo_log.json"
GRPO_LOG_CSV = "grpo_log.csv"

# Log column <- TRL's key.
_TRL_KEYS = {
    "step": "step",
    "reward": "reward",
    "reward_std": "reward_std",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "malformed_rate": "malformed_rate",
    "kl": "kl",
    "loss": "loss",
    "completion_length": "completions/mean_length",
    "clipped_ratio": "completions/clipped_ratio",
}
#: The columns of a step row, in order.
STEP_COLUMNS = tuple(_TRL_KEYS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class GRPOLog:
    """One row per logged step (:data:`STEP_COLUMNS`; a value TRL did not log is ``None``).

    Attributes
    ----------
    steps
        The rows, in step order.
    num_generations
        Replies per prompt (the group size) of the run.
    """

    steps: list[dict[str, float | None]]
    num_generations: int | None = None

    @classmethod
    def from_log_history(
        cls, log_history: list[dict[str, Any]], num_generations: int | None = None
    ) -> GRPOLog:
        """The rows of a Trainer's ``state.log_history`` that carry a reward (the training steps' logs)."""
        steps = []
        for entry in log_history:
            if "reward" not in entry:
                continue
            steps.append({column: _number(entry.get(key)) for column, key in _TRL_KEYS.items()})
        return cls(steps, num_generations)

    @property
    def made_progress(self) -> bool:
        """Whether any logged step had a group whose rewards differed (a step with a gradient to follow)."""
        return any(
            row["frac_reward_zero_std"] is not None and row["frac_reward_zero_std"] < 1.0
            for row in self.steps
        )

    def no_progress_message(self) -> str | None:
        """A one-line warning when no step had a group of unequal rewards, else ``None``."""
        if not self.steps or self.made_progress:
            return None
        rewards = sorted({row["reward"] for row in self.steps if row["reward"] is not None})
        said = f" (mean reward {', '.join(f'{r:g}' for r in rewards[:3])})" if rewards else ""
        return (
            f"GRPO made no progress: in all {len(self.steps)} logged step(s) every group's rewards were equal{said}, "
            "so every advantage and gradient was zero; a model that never answers in the expected format needs a "
            "warm-up (an SFT stage, or the answer_format reward), one that always answers alike needs harder or "
            "more varied questions or more generations per prompt"
        )

    def summary(self) -> dict[str, Any]:
        """First and last mean reward, the mean share of all-equal groups, and whether the run made progress."""
        rewards = [row["reward"] for row in self.steps if row["reward"] is not None]
        zero = [row["frac_reward_zero_std"] for row in self.steps if row["frac_reward_zero_std"] is not None]
        malformed = [row["malformed_rate"] for row in self.steps if row["malformed_rate"] is not None]
        return {
            "n_steps_logged": len(self.steps),
            "first_reward": rewards[0] if rewards else None,
            "last_reward": rewards[-1] if rewards else None,
            "mean_frac_reward_zero_std": sum(zero) / len(zero) if zero else None,
            "mean_malformed_rate": sum(malformed) / len(malformed) if malformed else None,
            "made_progress": self.made_progress,
        }

    def to_frame(self):
        """The steps as a pandas DataFrame (one row per step, :data:`STEP_COLUMNS`)."""
        import pandas as pd

        return pd.DataFrame(self.steps, columns=list(STEP_COLUMNS))

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write :data:`GRPO_LOG_JSON` (steps and summary) and :data:`GRPO_LOG_CSV` (the steps) into ``folder``."""
        folder = Path(folder)
        document = {"num_generations": self.num_generations, "summary": self.summary(), "steps": self.steps}
        json_path = atomic_write_text(folder / GRPO_LOG_JSON, json.dumps(document, indent=2) + "\n")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(STEP_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in self.steps)
        csv_path = atomic_write_text(folder / GRPO_LOG_CSV, buffer.getvalue())
        return json_path, csv_path

    @classmethod
    def read(cls, path: str | Path) -> GRPOLog:
        """Read a log written by :meth:`write`: its JSON file, or the run folder holding it."""
        path = Path(path)
        if path.is_dir():
            path = path / GRPO_LOG_JSON
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            steps = [{c: _number(row.get(c)) for c in STEP_COLUMNS} for row in document["steps"]]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise BioprofileInputError(
                f"{path} is not a GRPO step log: give the output folder of a grpo run or its {GRPO_LOG_JSON}",
                argument="log",
            ) from None
        return cls(steps, document.get("num_generations"))
