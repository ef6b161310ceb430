"""Cells on Dask: a ``distributed`` client (a scheduler's address, or a local cluster) and ``X`` read lazily.

The optional ``dask`` extra (``pip install 'bioprofile[dask]'``: ``dask[array]`` and ``distributed``) is needed
only here. ``X`` of an ``.h5ad`` is read with ``anndata.experimental.read_elem_lazy`` in blocks of ``chunk_size``
rows: each task opens the file by its path, so the workers read the blocks themselves and the file must be on a
disk they see (local workers; a shared file system for a remote cluster). The blocks are then computed as
:mod:`bioprofile.cells._rows` says, with the same boundaries as without Dask, so the numbers are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from bioprofile.cells._rows import is_dask_array, row_chunks, workers_for
from bioprofile.display import display_value
from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["LOCAL", "dask_session", "lazy_expression", "require_dask"]

#: The ``dask_address`` that asks for a local cluster, started for the run and closed after it.
LOCAL = "local"


def require_dask() -> None:
    """Fail in one line, naming the extra, when dask or distributed is not installed.

    Raises
    ------
    BioprofileInputError
        ``dask.array`` or ``distributed`` cannot be imported.
    """
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as err:
        raise BioprofileInputError(
            f"dask_address needs Dask ({err.name or 'dask'} is not installed): install the dask extra, "
            "pip install 'bioprofile[dask]'",
            argument="dask_address",
        ) from None


def _handshake(address: str, timeout: float) -> None:
    """Open and close one connection to ``address``, its handshake included, within ``timeout`` seconds."""
    import asyncio

    from distributed.comm import connect

    async def greet() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    # distributed bounds the TCP connection but not the handshake after it: a socket that accepts and never
    # speaks would hold Client() forever. Run on a thread of its own, so a caller's running event loop
    # (Jupyter) is left alone.
    with ThreadPoolExecutor(1, thread_name_prefix="bioprofile-dask-probe") as pool:
        pool.submit(asyncio.run, greet()).result()


def _connect(address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address``, or one line when none answers within ``timeout`` seconds."""
    from distributed import Client

    try:
        _handshake(address, timeout)
        return Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        # distributed retries a refused connection until the timeout, then raises OSError or TimeoutError; an
        # address it cannot parse raises ValueError or TypeError
        said = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        reason = display_value(" ".join(said.split()), 160)
        raise BioprofileInputError(
            f"no Dask scheduler answered at {display_value(address)} within {timeout:g} s ({reason}): start one "
            f"(dask scheduler), or give EmbedLimits(dask_address={LOCAL!r}) for a local cluster",
            argument="dask_address",
        ) from None


def _same_scheduler(client: Any, address: str) -> bool:
    try:
        return client.status == "running" and client.scheduler.address in (address, f"tcp://{address}")
    except AttributeError:
        return False


@contextmanager
def dask_session(address: str | None, *, workers: int | None = None, timeout: float = 5.0) -> Iterator[Any]:
    """The ``distributed`` client the block's row blocks run on, or ``None`` without Dask.

    Parameters
    ----------
    address
        ``None``: no Dask; ``"local"``: a local cluster of ``workers`` processes (one thread each), started here
        and closed when the block ends; otherwise a scheduler's address (``tcp://host:8786``). The current
        client is used as it is when it is connected to that scheduler already.
    workers
        Worker processes of a local cluster (``None``: one per usable core).
    timeout
        Seconds the scheduler has to answer.

    Yields
    ------
    distributed.Client or None
        The client, the default one while the block runs.

    Raises
    ------
    BioprofileInputError
        Dask is not installed, or no scheduler answers at ``address`` within ``timeout``.
    """
    if address is None:
        yield None
        return
    require_dask()
    from distributed import LocalCluster, default_client

    if not timeout > 0:
        raise BioprofileInputError(
            f"dask_timeout must be a number of seconds above 0, got {timeout}", argument="dask_timeout"
        )
    try:
        current = default_client()
    except ValueError:
        current = None
    if current is not None and address != LOCAL and _same_scheduler(current, address):
        yield current
        return
    with ExitStack() as stack:
        if address == LOCAL:
            # processes, not threads: each worker has its own interpreter (a script that starts one needs
            # `if __name__ == "__main__":`, as multiprocessing does)
            cluster = LocalCluster(
                n_workers=workers_for(workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            stack.enter_context(cluster)
            address = cluster.scheduler_address
        client = stack.enter_context(_connect(address, timeout))
        yield client


def _scattered(X: Any, chunk_size: int, client: Any) -> Any:
    """An in-memory matrix as a dask array of row blocks, each sent to the workers once."""
    import dask.array as da

    blocks = [chunk for _, chunk in row_chunks(X, chunk_size)]
    if not blocks:
        return da.from_array(np.empty(X.shape, dtype=X.dtype), chunks=(1, -1))
    futures = client.scatter(blocks) if client is not None else blocks
    meta = sp.csr_matrix((0, 0), dtype=X.dtype) if sp.issparse(X) else np.empty((0, 0), dtype=X.dtype)
    parts = [
        da.from_delayed(future, shape=block.shape, dtype=X.dtype, meta=meta)
        for future, block in zip(futures, blocks, strict=True)
    ]
    return da.concatenate(parts, axis=0)


def lazy_expression(adata: AnnData, X: Any, source: str, *, chunk_size: int, client: Any) -> Any:
    """``X`` of ``adata`` as a dask array of ``chunk_size``-row blocks, read where the blocks are computed.

    Parameters
    ----------
    adata
        The AnnData ``X`` comes from; a backed one is read lazily from its file.
    X
        The expression matrix chosen (``X``, a layer, or ``raw.X``).
    source
        Where ``X`` lives in the file: ``"X"``, ``"layers/<name>"`` or ``"raw/X"``.
    chunk_size
        Rows per block.
    client
        The ``distributed`` client in-memory blocks are sent through (``None``: dask's own scheduler).

    Returns
    -------
    dask.array.Array
        Cells x genes, blocks of ``chunk_size`` rows by every gene.
    """
    if is_dask_array(X):
        return X
    if not adata.isbacked:
        return _scattered(X, chunk_size, client)
    import h5py
    from anndata.experimental import read_elem_lazy

    path = Path(adata.filename).resolve()  # each task opens the file by this path, wherever it runs
    with h5py.File(path, "r") as f:
        return read_elem_lazy(f[source], chunks=(chunk_size, -1))
