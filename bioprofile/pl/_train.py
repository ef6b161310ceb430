"""Plots of training runs (:mod:`bioprofile.train`): the reward curve of a GRPO run.

Drawn on scanpy's ``sc.pl`` contract (``ax``, ``show``, ``save``, ``return_fig``; see :mod:`bioprofile.pl._figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile.pl._figure import finish, new_figure, save_target
from bioprofile.train.grpo_log import GRPOLog

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["grpo_rewards"]


def _runs(log: Any) -> dict[str, GRPOLog]:
    if isinstance(log, Mapping):
        return {str(name): _one(run) for name, run in log.items()}
    return {"": _one(log)}


def _one(run: Any) -> GRPOLog:
    return run if isinstance(run, GRPOLog) else GRPOLog.read(run)


def _series(run: GRPOLog, column: str) -> tuple[list[float], list[float]]:
    rows = [r for r in run.steps if r["step"] is not None and r[column] is not None]
    return [r["step"] for r in rows], [r[column] for r in rows]


def grpo_rewards(
    log: GRPOLog | str | Path | Mapping[str, GRPOLog | str | Path],
    path: str | Path | None = None,
    *,
    ax: Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """Two panels per GRPO run: mean reward (and malformed rate) per step; share of groups with no gradient (and KL).

    A group is the ``num_generations`` replies to one question; when its rewards are all equal its advantage, and
    so its gradient, is zero. The first panel's title says when a run made no progress at all (every group equal
    at every step).

    Parameters
    ----------
    log
        A run's step log (:class:`bioprofile.train.grpo_log.GRPOLog`, or the run's output folder or its
        ``grpo_log.json``), or a mapping of run names to logs, drawn as one line each (e.g. base vs BFT start).
    path
        Also save the figure there (PNG by suffix).
    ax
        Two Axes to draw the panels on (``None``: a new pyplot figure).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path (the same as ``path``), or ``True`` for ``figures/grpo_rewards.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    list of matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the two Axes.
    """
    save = save_target(path, save)
    runs = _runs(log)
    # Past a few runs a legend inside the panels hides the lines: it goes under them, two columns wide.
    below = len(runs) > 3
    height = 3.6 + (0.14 * len(runs) + 0.4 if below else 0)
    fig, axes, own = new_figure(ax, figsize=(10, height), n_panels=2, ncols=2)
    reward_ax, zero_ax = axes
    kl_ax = None
    for index, (name, run) in enumerate(runs.items()):
        color = f"C{index}"
        label = f"{name}: " if name else ""
        reward_ax.plot(*_series(run, "reward"), color=color, marker="o", ms=3, label=f"{label}mean reward")
        steps, malformed = _series(run, "malformed_rate")
        if steps:
            reward_ax.plot(
                steps, malformed, color=color, ls="--", lw=1, marker="x", ms=4, label=f"{label}malformed"
            )
        zero_ax.plot(
            *_series(run, "frac_reward_zero_std"), color=color, marker="o", ms=3, label=f"{label}all equal"
        )
        steps, kl = _series(run, "kl")
        if steps:
            kl_ax = kl_ax or zero_ax.twinx()
            kl_ax.plot(steps, kl, color=color, ls=":", lw=1, marker=".", label=f"{label}KL")
    n_steps = max((len(run.steps) for run in runs.values()), default=0)
    group = {run.num_generations for run in runs.values()} - {None}
    size = f", {group.pop()} replies per group" if len(group) == 1 else ""
    stuck = [name or "the run" for name, run in runs.items() if run.steps and not run.made_progress]
    note = f"\nno progress: {', '.join(stuck)}" if stuck else ""  # its own line: a long title is clipped
    reward_ax.set_title(f"GRPO reward per step (n={n_steps} steps{size}){note}", fontsize=9)
    reward_ax.set_xlabel("step")
    reward_ax.set_ylabel("mean reward / malformed share")
    reward_ax.set_ylim(-0.05, 1.05)
    zero_ax.set_title("groups whose rewards are all equal (no gradient)", fontsize=9)
    zero_ax.set_xlabel("step")
    zero_ax.set_ylabel("share of groups")
    zero_ax.set_ylim(-0.05, 1.05)
    if kl_ax is not None:
        kl_ax.set_ylabel("KL to the start (dotted)")
    from matplotlib.ticker import MaxNLocator

    logged = [row["step"] for run in runs.values() for row in run.steps if row["step"] is not None]
    for panel in (reward_ax, zero_ax):
        panel.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if logged:
            panel.set_xlim(min(logged) - 0.5, max(logged) + 0.5)
    place = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": 2} if below else {"loc": "best"}
    reward_ax.legend(fontsize=7, **place)
    zero_ax.legend(fontsize=7, **place)
    if own:
        fig.tight_layout()
    return finish(fig, axes, name="grpo_rewards", show=show, save=save, return_fig=return_fig)
