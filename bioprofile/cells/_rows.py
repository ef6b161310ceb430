"""Row blocks of a cells x genes matrix, computed one at a time, on threads, or on a Dask cluster.

Every cell step (normalisation, the product with the gene matrix, the scale, the expression checks) is per row, so
a matrix is read in blocks of ``chunk_size`` rows and each block is computed on its own. Three ways run the blocks,
all with the same block boundaries, so each block meets the same arithmetic and the results are equal bit for bit:

- one at a time, in order (``workers=1``);
- on threads (``workers > 1``): this thread reads the blocks in order (h5py reads hold the GIL) while a pool of
  threads computes them; scipy's sparse product and numpy's ufuncs release the GIL, so the threads use the cores.
  At most ``workers + 1`` blocks are held at once, which bounds memory;
- on Dask, when ``X`` is a ``dask.array`` (read lazily with ``anndata.experimental.read_elem_lazy``): the blocks
  are ``X``'s chunks, the function runs through ``map_blocks`` (dask's ``@`` takes no sparse chunks), arrays every
  block needs are sent to each worker once, and the results are gathered as they finish, on the scheduler of the
  current ``distributed`` client (or dask's own when there is none).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp

from bioprofile.errors import check_whole_number

__all__ = [
    "is_dask_array",
    "map_row_blocks",
    "row_chunks",
    "summarise_row_blocks",
    "usable_cores",
    "workers_for",
]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def workers_for(workers: int | None) -> int:
    """``workers``, checked; ``None`` is one per usable core.

    Parameters
    ----------
    workers
        Row blocks computed at once, or ``None``.

    Returns
    -------
    int
        At least 1.
    """
    if workers is None:
        return usable_cores()
    return check_whole_number("workers", workers)


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks") and hasattr(X, "chunks")


def row_chunks(X: Any, chunk_size: int) -> Iterator[tuple[int, Any]]:
    """The ``(start, X[start:start + chunk_size])`` row chunks of ``X``, in order; a backed ``X`` is read per chunk.

    Parameters
    ----------
    X
        Anything with ``shape`` and ``X[start:stop]`` row slices; a dask array's slices are computed.
    chunk_size
        Rows per chunk.

    Yields
    ------
    tuple of (int, array)
        The first row index of the chunk and the chunk.
    """
    n_cells = X.shape[0]
    lazy = is_dask_array(X)
    for start in range(0, n_cells, chunk_size):
        chunk = X[start : min(start + chunk_size, n_cells)]
        yield start, chunk.compute() if lazy else chunk


def _block_starts(sizes: Sequence[int]) -> list[int]:
    return [int(s) for s in np.cumsum((0, *sizes[:-1]))] if sizes else []


def _local_blocks(
    X: Any, func: Callable, shared: tuple, chunk_size: int, workers: int, blas: bool
) -> Iterator[tuple[int, Any]]:
    """``(start, func(block, *shared))`` for each row block, read in order on this thread."""
    if workers == 1:
        for start, chunk in row_chunks(X, chunk_size):
            yield start, func(chunk, *shared)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="bioprofile-rows")
    pending: deque[tuple[int, Future]] = deque()
    try:
        for start, chunk in row_chunks(X, chunk_size):
            if blas and not sp.issparse(chunk):
                # a dense block's product is a BLAS call that uses every core already: threads would only compete
                yield start, func(chunk, *shared)
                continue
            pending.append((start, pool.submit(func, chunk, *shared)))
            del chunk  # the pool holds the block until it is computed: memory stays workers + 1 blocks
            while len(pending) > workers:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _current_client() -> Any:
    """The current ``distributed`` client, or ``None`` (no client, or distributed not installed)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client
        return None


def _dask_blocks(
    X: Any, func: Callable, shared: tuple, chunk_size: int, out_chunks: tuple, dtype: Any
) -> Iterator[tuple[int, Any]]:
    """``(start, func(block, *shared))`` for each of ``X``'s row blocks, as the Dask workers finish them."""
    import dask
    import dask.array as da

    layout = _chunk_layout(X.shape[0], chunk_size)
    if tuple(X.chunks[0]) != layout or len(X.chunks[1]) != 1:
        X = X.rechunk(
            (layout, (X.shape[1],))
        )  # the same blocks as the single-process path: the same arithmetic
    client = _current_client()
    if client is not None and shared:
        # sent to each worker once, not pickled into every task
        shared_arrays = [
            da.from_delayed(future, shape=value.shape, dtype=value.dtype)
            for value, future in zip(shared, client.scatter(list(shared), broadcast=True), strict=True)
        ]
    else:
        shared_arrays = [da.from_array(value, chunks=value.shape) for value in shared]
    blocks = X.map_blocks(
        func, *shared_arrays, dtype=dtype, chunks=out_chunks(X.chunks[0]), meta=np.empty((0, 0), dtype=dtype)
    )
    parts = list(blocks.to_delayed().ravel())
    starts = _block_starts(X.chunks[0])
    if client is None:
        yield from zip(starts, dask.compute(*parts), strict=True)
        return
    from distributed import as_completed

    futures = client.compute(parts)
    start_of = {future.key: start for future, start in zip(futures, starts, strict=True)}
    try:
        for future, result in as_completed(futures, with_results=True):
            yield start_of[future.key], result
            future.release()  # the worker may forget the block once it is copied here
    finally:
        client.cancel([f for f in futures if not f.done()])


def _chunk_layout(n_rows: int, chunk_size: int) -> tuple[int, ...]:
    if n_rows == 0:
        return (0,)
    full, rest = divmod(n_rows, chunk_size)
    return (chunk_size,) * full + ((rest,) if rest else ())


def map_row_blocks(
    X: Any,
    func: Callable[..., np.ndarray],
    *,
    width: int,
    shared: tuple = (),
    chunk_size: int = 10_000,
    workers: int | None = None,
    blas: bool = False,
) -> np.ndarray:
    """``func`` applied to each row block of ``X``, its rows stacked in ``X``'s order.

    Parameters
    ----------
    X
        Cells x genes: numpy, scipy sparse, a row-sliceable backed dataset, or a dask array.
    func
        ``func(block, *shared) -> (rows, width)`` array; a module-level function (or a partial of one), so a Dask
        worker can unpickle it.
    width
        Columns of the result.
    shared
        Arrays every block needs (the gene matrix): passed as they are here, sent once to each Dask worker.
    chunk_size
        Rows per block.
    workers
        Blocks computed at once on threads (``None``: one per usable core); ignored on Dask, whose workers run the
        blocks.
    blas
        ``func`` multiplies a dense block with BLAS, which has threads of its own: dense blocks are then computed
        on this thread, one at a time.

    Returns
    -------
    numpy.ndarray
        ``(n_rows, width)`` ``float32``.
    """
    out = np.empty((X.shape[0], width), dtype=np.float32)
    if is_dask_array(X):
        blocks = _dask_blocks(X, func, shared, chunk_size, lambda rows: (rows, (width,)), np.float32)
    else:
        blocks = _local_blocks(X, func, shared, chunk_size, workers_for(workers), blas)
    for start, block in blocks:
        out[start : start + block.shape[0]] = block
    return out


def summarise_row_blocks(
    X: Any,
    func: Callable[[Any], np.ndarray],
    *,
    width: int,
    chunk_size: int = 10_000,
    workers: int | None = None,
) -> np.ndarray:
    """One summary row (``func(block)``, ``width`` numbers) per row block of ``X``, in no particular order.

    Parameters
    ----------
    X
        Cells x genes, as for :func:`map_row_blocks`.
    func
        ``func(block) -> (width,)`` array of ``float64``; a module-level function, as for :func:`map_row_blocks`.
    width
        Numbers per summary.
    chunk_size
        Rows per block.
    workers
        Blocks computed at once on threads (``None``: one per usable core).

    Returns
    -------
    numpy.ndarray
        ``(n_blocks, width)`` ``float64``; combine the rows with an order-free reduction (min, sum, any).
    """

    def as_row(block: Any) -> np.ndarray:
        return np.asarray(func(block), dtype=np.float64).reshape(1, width)

    if is_dask_array(X):
        blocks = _dask_blocks(
            X, as_row, (), chunk_size, lambda rows: ((1,) * len(rows), (width,)), np.float64
        )
    else:
        blocks = _local_blocks(X, as_row, (), chunk_size, workers_for(workers), blas=False)
    rows = [row for _, row in blocks]
    return np.concatenate(rows) if rows else np.empty((0, width), dtype=np.float64)
