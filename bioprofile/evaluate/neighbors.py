"""The kNN graph of an embedding for scIB's neighbour metrics: exact (blocked BLAS), pynndescent or faiss.

Every search returns scib-metrics' ``NeighborsResults`` with each cell itself in column 0 at distance 0 (the
convention its metrics and ``Benchmarker.prepare(neighbor_computer=...)`` expect), so cells with duplicate rows
(scib-metrics#77), which an approximate search may list before the cell itself or instead of it, keep exactly
``k`` neighbours, self first. :func:`neighbor_computer` gives the ``(X, k) -> NeighborsResults`` function the
Benchmarker takes.

- ``"exact"``: :func:`bioprofile.evaluate.silhouettes.distance_pass` (all pairs, blocked BLAS, both cores).
- ``"pynndescent"``: scib-metrics' own ``pynndescent`` search (the Benchmarker's default), seed 0.
- ``"faiss"``: a faiss HNSW index (``M=32``, ``efSearch`` at least ``2 k``), approximate; needs ``faiss-cpu``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.silhouettes import DEFAULT_MEMORY_MB, distance_pass

__all__ = ["NEIGHBORS", "check_neighbors", "exact_neighbors", "knn_graph", "neighbor_computer"]

#: The kNN searches ``neighbors=`` names, and the package each needs (``None``: always installed).
NEIGHBORS: dict[str, str | None] = {"exact": None, "pynndescent": "pynndescent", "faiss": "faiss"}
_INSTALL = {
    "pynndescent": "pip install pynndescent (scib-metrics' own dependency)",
    "faiss": "pip install 'bioprofile[faiss]' (or pip install faiss-cpu)",
}


def check_neighbors(neighbors: str) -> str:
    """``neighbors`` if it names a known search whose package is installed, else one :class:`BioprofileInputError`.

    Parameters
    ----------
    neighbors
        ``"exact"``, ``"pynndescent"`` or ``"faiss"``.

    Returns
    -------
    str
        ``neighbors``, checked.
    """
    if neighbors not in NEIGHBORS:
        raise BioprofileInputError(
            f"neighbors must be one of {', '.join(NEIGHBORS)}, got {neighbors!r}", argument="neighbors"
        )
    module = NEIGHBORS[neighbors]
    if module is not None and importlib.util.find_spec(module) is None:
        raise BioprofileInputError(
            f"neighbors={neighbors!r} needs {module}, which is not installed: {_INSTALL[neighbors]}",
            argument="neighbors",
        )
    return neighbors


def exact_neighbors(X: np.ndarray, k: int, *, memory_mb: int = DEFAULT_MEMORY_MB) -> Any:
    """The exact ``k`` nearest cells of every cell (itself first), from blocked BLAS distances.

    Also the ``neighbor_computer`` to give ``Benchmarker.prepare``: ``(X, k) -> NeighborsResults``.

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    k
        Neighbours per cell, itself included (capped at the number of cells).
    memory_mb
        Memory budget of the distance blocks, in MiB.

    Returns
    -------
    scib_metrics.nearest_neighbors.NeighborsResults
        ``indices`` and ``distances``, ``(n_cells, k)``.
    """
    from scib_metrics.nearest_neighbors import NeighborsResults

    found = distance_pass(X, k=min(k, len(X)), memory_mb=memory_mb)
    return NeighborsResults(indices=found.knn_indices, distances=found.knn_distances)


def _self_first(indices: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's own cell moved to column 0 at distance 0 (added, dropping the farthest, where the search missed it).

    A missing neighbour (index -1, as an approximate search pads) is an error: the metrics would read it as the
    last cell.
    """
    n, k = indices.shape
    rows = np.arange(n)
    if (indices < 0).any():
        raise BioprofileInputError(
            f"the approximate search found fewer than {k} neighbours for {(indices < 0).any(axis=1).sum()} cells: "
            "use neighbors='exact'",
            argument="neighbors",
        )
    is_self = indices == rows[:, None]
    where = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k - 1)  # absent: its farthest slot goes
    keep = np.ones((n, k), dtype=bool)
    keep[rows, where] = False
    rest_idx = indices[keep].reshape(n, k - 1)
    rest_dist = distances[keep].reshape(n, k - 1)
    return (
        np.hstack([rows[:, None], rest_idx]).astype(np.int64),
        np.hstack([np.zeros((n, 1)), rest_dist]).astype(np.float32),
    )


def knn_graph(
    X: np.ndarray, k: int, *, neighbors: str = "exact", n_jobs: int = 1, memory_mb: int = DEFAULT_MEMORY_MB
) -> Any:
    """The ``k`` nearest cells of every cell, itself first, by the search ``neighbors`` names.

    Parameters
    ----------
    X
        ``(n_cells, dim)`` embedding.
    k
        Neighbours per cell, itself included (capped at the number of cells).
    neighbors
        ``"exact"``, ``"pynndescent"`` or ``"faiss"`` (:data:`NEIGHBORS`).
    n_jobs
        Threads of the pynndescent search (faiss uses all cores; exact, one block per core).
    memory_mb
        Memory budget of the exact search's distance blocks, in MiB.

    Returns
    -------
    scib_metrics.nearest_neighbors.NeighborsResults
        ``(n_cells, k)`` indices and distances.
    """
    from scib_metrics.nearest_neighbors import NeighborsResults

    check_neighbors(neighbors)
    X = np.ascontiguousarray(X, dtype=np.float32)
    k = min(k, len(X))
    if neighbors == "exact":
        return exact_neighbors(X, k, memory_mb=memory_mb)
    if neighbors == "pynndescent":
        from scib_metrics.nearest_neighbors import pynndescent

        found = pynndescent(X, n_neighbors=k, random_state=0, n_jobs=n_jobs)
        indices, distances = found.indices, found.distances
    else:
        import faiss

        index = faiss.IndexHNSWFlat(X.shape[1], 32)
        index.hnsw.efSearch = max(2 * k, 64)
        index.add(X)
        squared, indices = index.search(X, k)
        distances = np.sqrt(np.maximum(squared, 0.0))
    indices, distances = _self_first(np.asarray(indices), np.asarray(distances))
    return NeighborsResults(indices=indices, distances=distances)


def neighbor_computer(
    neighbors: str = "exact", *, n_jobs: int = 1, memory_mb: int = DEFAULT_MEMORY_MB
) -> Callable[[np.ndarray, int], Any]:
    """The ``(X, k) -> NeighborsResults`` function for scib-metrics' ``Benchmarker.prepare(neighbor_computer=...)``.

    Parameters
    ----------
    neighbors, n_jobs, memory_mb
        As :func:`knn_graph`; the search is checked (and its package) now, before any work.

    Returns
    -------
    callable
        ``f(X, k)``: :func:`knn_graph` with these settings.
    """
    check_neighbors(neighbors)

    def compute(X: np.ndarray, k: int) -> Any:
        return knn_graph(X, k, neighbors=neighbors, n_jobs=n_jobs, memory_mb=memory_mb)

    return compute
