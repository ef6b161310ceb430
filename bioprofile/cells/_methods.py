"""The registry of cell-embedding methods: what a method is (:class:`CellMethod`), and the methods by name.

:func:`~bioprofile.cells.embed_cells` reads the expression, checks it, and hands the rows to the method it looks up
here; GenePT-w and GenePT-s are its first two entries (:mod:`bioprofile.cells._genept_methods`). A new method is one
module with an options class and an object with ``options``, ``embed`` and ``provenance``, plus one line::

    from bioprofile.cells import register_method

    register_method("my-method", MyMethod())

An installed package may name that module (or a function making the call) as an entry point of the group
``bioprofile.cell_methods``, named as the method: it is loaded the first time that name is asked for, so the
command line finds the method without importing anything first.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from bioprofile.cells._match import GeneMatch, GeneTable, match_genes
from bioprofile.errors import BioprofileInputError
from bioprofile.registry import Registry

if TYPE_CHECKING:
    from bioprofile.cells._anndata import EmbedLimits

__all__ = [
    "METHOD_ENTRY_POINTS",
    "CellInput",
    "CellMethod",
    "CellVectors",
    "options_for",
    "register_method",
    "registered_methods",
    "resolve_method",
    "unregister_method",
]


@dataclass(frozen=True)
class CellInput:
    """What every method reads: the expression rows, the gene of each column, and the gene table, if any.

    Parameters
    ----------
    X
        Cells x genes, row-sliceable (numpy, scipy sparse or a backed dataset); already checked, non-finite
        values already read as zero when asked.
    names
        The gene identifier of each column.
    what
        How messages name those identifiers (``"var_names"``, ``"var['symbol']"``).
    embeddings
        The gene vectors passed to ``embed_cells`` (``None`` when none was).
    limits
        Rows per chunk and gene-coverage thresholds.
    """

    X: Any
    names: list[str]
    what: str
    embeddings: GeneTable | None
    limits: EmbedLimits

    def match(self, table: Mapping[str, Any]) -> GeneMatch:
        """The columns whose gene has a vector in ``table``, held to the coverage limits (see :func:`match_genes`).

        Parameters
        ----------
        table
            Gene vectors by symbol (or any mapping whose keys are the genes a method can use).

        Returns
        -------
        GeneMatch
            Which columns matched, and the coverage summary recorded in provenance.
        """
        return match_genes(
            self.names,
            table,
            min_coverage=self.limits.min_coverage,
            warn_coverage=self.limits.warn_coverage,
            what=self.what,
        )


@dataclass(frozen=True)
class CellVectors:
    """What a method returns: the cell vectors, the genes it matched, and facts for the provenance record.

    Parameters
    ----------
    vectors
        ``(n_cells, dim)`` float array, one row per cell in input order.
    match
        The genes that had a vector (:func:`~bioprofile.cells.match_genes`); its summary is recorded.
    embeddings
        Provenance of the gene table used (``{}`` when none).
    recorded
        Facts known only after the run (e.g. the text encoder's id), recorded after the options.
    """

    vectors: np.ndarray
    match: GeneMatch
    embeddings: Mapping[str, Any] = field(default_factory=dict)
    recorded: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class CellMethod(Protocol):
    """A cell-embedding method.

    Notes
    -----
    ``options`` is the method's options class: ``options()`` are its defaults, and an instance of it passed as
    ``embed_cells(method=...)`` names the method and its options. An options class with a ``normalize`` field
    (``"none"`` / ``"log1p"``) gets the expression check for ``"log1p"`` before any compute.
    """

    options: type

    def embed(self, cells: CellInput, options: Any) -> CellVectors:
        """The cell vectors of ``cells`` under ``options``."""
        ...

    def provenance(self, options: Any) -> dict[str, Any]:
        """The options as recorded in ``uns[key_added]``."""
        ...


#: Entry-point group of installed packages that add a cell method.
METHOD_ENTRY_POINTS = "bioprofile.cell_methods"

_METHODS: Registry[CellMethod] = Registry("method", METHOD_ENTRY_POINTS)


def register_method(name: str, method: CellMethod, *, replace: bool = False) -> None:
    """Make a cell-embedding method available under ``name`` (to ``embed_cells`` and the command line).

    Parameters
    ----------
    name
        The method's name, recorded as ``uns[key_added]["method"]``.
    method
        An object with ``options`` (its options class), ``embed(cells, options)`` and ``provenance(options)``
        (:class:`CellMethod`).
    replace
        Replace a method already registered under ``name`` (otherwise that is an error).

    Raises
    ------
    BioprofileInputError
        ``name`` is empty or taken (without ``replace``), or ``method`` lacks part of :class:`CellMethod`.
    """
    if not isinstance(method, CellMethod) or not isinstance(method.options, type):
        raise BioprofileInputError(
            f"method {name!r} needs an options class, embed(cells, options) and provenance(options)",
            argument="method",
        )
    _METHODS.register(name, method, replace=replace)


def unregister_method(name: str) -> None:
    """Remove the method registered under ``name`` (nothing happens when there is none).

    Parameters
    ----------
    name
        The method's name.
    """
    _METHODS.unregister(name)


def registered_methods() -> tuple[str, ...]:
    """The names of the registered cell-embedding methods, in registration order."""
    return _METHODS.names()


def _unknown(method: Any) -> BioprofileInputError:
    names = [repr(name) for name in _METHODS.names()]
    choices = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return BioprofileInputError(f"unknown method {method!r}: choose {choices}", argument="method")


def resolve_method(method: Any) -> tuple[str, CellMethod, Any]:
    """The registered method ``method`` names, and the options it runs with.

    Parameters
    ----------
    method
        A registered name (run with its default options) or an instance of a registered method's options class.

    Returns
    -------
    tuple
        ``(name, method, options)``.

    Raises
    ------
    BioprofileInputError
        Neither a registered name nor the options of a registered method.
    """
    if isinstance(method, str):
        entry = _METHODS.get(method)  # an installed plugin of that name is loaded here
        if entry is None:
            raise _unknown(method)
        return method, entry, entry.options()
    for name, entry in _METHODS.items():
        if isinstance(method, entry.options):
            return name, entry, method
    raise _unknown(method)


def options_for(name: str, values: Mapping[str, Any]) -> Any:
    """The options of method ``name`` from those of ``values`` its options class takes (the others are ignored).

    Parameters
    ----------
    name
        A registered method.
    values
        Candidate option values by name (e.g. every cell flag of a command line); the ones the options class does
        not declare belong to other methods and are left out.

    Returns
    -------
    object
        An instance of the method's options class.

    Raises
    ------
    BioprofileInputError
        An unknown method, or what the options class refuses.
    """
    _, entry, _ = resolve_method(name)
    accepted = inspect.signature(entry.options).parameters
    return entry.options(**{key: value for key, value in values.items() if key in accepted})
