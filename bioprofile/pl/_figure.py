"""The contract every plot of :mod:`bioprofile.pl` shares, scanpy's ``sc.pl`` one: ``ax``, ``show``, ``save``, ``return_fig``.

- ``ax=None`` draws on a new figure made with pyplot (:func:`matplotlib.pyplot.subplots`), so a notebook displays
  it and :func:`matplotlib.pyplot.get_fignums` knows it; an Axes (or, for a plot of several panels, one Axes per
  panel) draws there instead, and the figure they belong to is left as it is laid out.
- ``show=None`` shows the figure (:func:`matplotlib.pyplot.show`) when matplotlib is interactive
  (:func:`matplotlib.is_interactive`: a notebook, ``plt.ion()``), as scanpy's ``settings.autoshow`` does in a
  notebook; ``True`` always shows, ``False`` never does.
- ``save`` writes the figure: a path (the format from its suffix), or ``True`` for ``figures/<plot name>.png``
  (scanpy's ``figdir``, under the working directory).
- The return: the Figure with ``return_fig=True``; else ``None`` when the figure was shown; else the Axes (a list
  of Axes for a plot of several panels).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURE_DIR", "finish", "new_figure", "save_target"]

#: Where ``save=True`` writes, under the working directory (scanpy's default ``settings.figdir``).
FIGURE_DIR = Path("figures")


def save_target(path: str | Path | None, save: str | Path | bool | None) -> str | Path | bool | None:
    """The one place to save to, from a plot's older ``path`` argument and its ``save``; both at once is refused."""
    if path is not None and save not in (None, False):
        raise BioprofileInputError(
            f"pass path or save, not both (path={str(path)!r}, save={save!r})", argument="save"
        )
    return path if path is not None else save


def new_figure(
    ax: Axes | Sequence[Axes] | None,
    *,
    figsize: tuple[float, float],
    n_panels: int = 1,
    nrows: int = 1,
    ncols: int = 1,
    **subplots: Any,
) -> tuple[Figure, list[Axes], bool]:
    """The figure and one Axes per panel to draw on, and whether the figure is the plot's own (to lay it out).

    ``ax=None`` makes ``nrows`` x ``ncols`` pyplot subplots (cells past ``n_panels`` are returned too, to hide);
    else ``ax`` is one Axes (a plot of one panel) or a sequence of ``n_panels`` Axes on one figure.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **subplots)
        return fig, list(grid.flat), True
    given = list(ax) if isinstance(ax, Sequence | _ndarray()) else [ax]
    if len(given) != n_panels:
        raise BioprofileInputError(
            f"this plot draws {n_panels} panel(s) and ax holds {len(given)} Axes: pass one Axes per panel as ax, or "
            "ax=None for a figure of its own",
            argument="ax",
        )
    return given[0].figure, given, False


def _ndarray() -> type:
    import numpy as np

    return np.ndarray


def finish(
    fig: Figure,
    axes: Axes | list[Axes],
    *,
    name: str,
    show: bool | None,
    save: str | Path | bool | None,
    return_fig: bool,
    dpi: int = 120,
) -> Any:
    """Save, show and return as the module docstring says; ``name`` is the file name ``save=True`` uses."""
    import matplotlib

    if save is not None and save is not False:
        target = FIGURE_DIR / f"{name}.png" if save is True else Path(save)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=dpi)
    if show is None:
        show = matplotlib.is_interactive()
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    if return_fig:
        return fig
    return None if show else axes
