"""Plots of cells on AnnData, scanpy's way: an ``obsm`` basis coloured by an ``obs`` column, colours from ``uns``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.pl._figure import finish, new_figure

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes

__all__ = ["cell_embedding", "category_colors"]


def category_colors(adata: AnnData, key: str, categories: Sequence[Any]) -> list[Any]:
    """The colour of each category of ``obs[key]``: ``uns[f"{key}_colors"]`` where scanpy stored them, else a palette.

    Parameters
    ----------
    adata
        The AnnData.
    key
        The ``obs`` column.
    categories
        Its categories, in order.

    Returns
    -------
    list
        One matplotlib colour per category. ``uns`` is read, never written.
    """
    from matplotlib import colormaps

    stored = adata.uns.get(f"{key}_colors")
    if stored is not None and len(stored) >= len(categories):
        return list(stored)[: len(categories)]
    palette = colormaps["tab10" if len(categories) <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(len(categories))]


def cell_embedding(
    adata: AnnData,
    *,
    basis: str = "X_umap",
    color: str | None = None,
    components: tuple[int, int] = (0, 1),
    ax: Axes | None = None,
    size: float | None = None,
    title: str | None = None,
    show: bool | None = None,
    save: str | Path | bool | None = None,
    return_fig: bool = False,
) -> Any:
    """Scatter the cells in two components of ``obsm[basis]``, coloured by an ``obs`` column (``sc.pl.embedding``).

    Run UMAP on the bioprofile cell vectors first (``sc.pp.neighbors(adata, use_rep="X_bioprofile")``,
    ``sc.tl.umap(adata)``), or pass ``basis="X_bioprofile"`` to see two raw components.

    Parameters
    ----------
    adata
        Cells with ``obsm[basis]``.
    basis
        The ``obsm`` key to draw; as in scanpy, ``"umap"`` names ``obsm["X_umap"]`` when there is no
        ``obsm["umap"]``.
    color
        An ``obs`` column: categories get ``uns[f"{color}_colors"]`` when scanpy stored them (else a palette) and a
        legend; numbers a colour bar. ``None`` draws every cell in one colour.
    components
        The two columns of ``obsm[basis]`` to draw.
    ax
        The axes to draw into (``None``: a new pyplot figure, which a notebook displays).
    size
        Marker size (``None``: ``120000 / n_obs``, scanpy's default, at most 20).
    title
        Axes title (``None``: ``color``, else ``basis``, with the number of cells drawn as ``(n=...)``).
    show
        Show the figure (``None``: when matplotlib is interactive, as in a notebook).
    save
        Save the figure: a path, or ``True`` for ``figures/cell_embedding.png``.
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The Figure with ``return_fig``, else ``None`` when shown, else the axes drawn into.

    Raises
    ------
    BioprofileInputError
        No ``obsm[basis]``, components outside it, or no ``obs[color]``.
    """
    import pandas as pd

    if basis not in adata.obsm and f"X_{basis}" in adata.obsm:
        basis = f"X_{basis}"  # scanpy's spelling: basis="umap" is obsm["X_umap"]
    if basis not in adata.obsm:
        raise BioprofileInputError(
            f"no obsm[{basis!r}] (obsm: {', '.join(adata.obsm) or 'none'}): pass one of those as basis",
            argument="basis",
        )
    coords = np.asarray(adata.obsm[basis])
    if coords.ndim != 2 or max(components) >= coords.shape[1] or min(components) < 0:
        raise BioprofileInputError(
            f"components {components} are not columns of obsm[{basis!r}] (shape {coords.shape})",
            argument="components",
        )
    if color is not None and color not in adata.obs:
        raise BioprofileInputError(
            f"no obs column {color!r} (obs: {', '.join(map(str, adata.obs.columns)) or 'none'})",
            argument="color",
        )
    fig, (ax,), _ = new_figure(ax, figsize=(8.0, 4.5), layout="constrained")
    x, y = coords[:, components[0]], coords[:, components[1]]
    size = min(120_000 / max(adata.n_obs, 1), 20.0) if size is None else size
    if color is None:
        ax.scatter(x, y, s=size, c="lightgray", linewidths=0, rasterized=True)
    else:
        values = adata.obs[color]
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values):
            values = values.astype("category")
            categories = list(values.cat.categories)
            for category, colour in zip(categories, category_colors(adata, color, categories), strict=True):
                mask = np.asarray(values == category)
                ax.scatter(
                    x[mask], y[mask], s=size, color=colour, label=str(category), linewidths=0, rasterized=True
                )
            ax.legend(
                loc="center left",
                bbox_to_anchor=(1.0, 0.5),
                frameon=False,
                fontsize="small",
                markerscale=max(1, 20 / size),
            )
        else:
            points = ax.scatter(x, y, s=size, c=np.asarray(values, dtype=float), cmap="viridis", linewidths=0)
            ax.figure.colorbar(points, ax=ax)
    ax.set_title(title if title is not None else f"{color or basis} (n={adata.n_obs} cells)")
    ax.set_xlabel(f"{basis} {components[0] + 1}")
    ax.set_ylabel(f"{basis} {components[1] + 1}")
    ax.set_xticks([])
    ax.set_yticks([])
    return finish(fig, ax, name="cell_embedding", show=show, save=save, return_fig=return_fig)
