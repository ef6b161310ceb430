"""Named extensions of one kind (generator backends, cell methods), registered in code or found by entry point.

:mod:`bioprofile.profiles.registry` and :mod:`bioprofile.cells` keep one :class:`Registry` each; a third-party
package adds to them with one call at import, or declares an entry point (group ``bioprofile.backends`` or
``bioprofile.cell_methods``, named as the extension) that the registry loads the first time that name is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from bioprofile.errors import BioprofileInputError

__all__ = ["Registry"]

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Extensions of one kind by name, in registration order.

    Parameters
    ----------
    kind
        What an entry is, as messages name it (``"backend"``, ``"method"``).
    entry_point_group
        The entry-point group of installed packages that add one: an entry point named as the extension, whose
        value is the module that registers it or a function that does (called with no arguments).
    """

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, entry: Entry, *, replace: bool = False) -> None:
        """Add ``entry`` under ``name``.

        Parameters
        ----------
        name
            A non-empty name without surrounding spaces.
        entry
            The extension.
        replace
            Replace an entry already registered under ``name`` (otherwise that is an error).

        Raises
        ------
        BioprofileInputError
            ``name`` is empty or already registered (without ``replace``).
        """
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise BioprofileInputError(
                f"a {self.kind} name is a non-empty word, got {name!r}", argument="name"
            )
        if name in self._entries and not replace:
            raise BioprofileInputError(
                f"{self.kind} {name!r} is already registered: pass replace=True to replace it",
                argument="name",
            )
        self._entries[name] = entry

    def unregister(self, name: str) -> None:
        """Remove the entry registered under ``name`` (nothing happens when there is none).

        Parameters
        ----------
        name
            The entry's name.
        """
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order (installed plugins not asked for yet are not loaded)."""
        return tuple(self._entries)

    def items(self) -> Iterator[tuple[str, Entry]]:
        """``(name, entry)`` pairs, in registration order."""
        return iter(list(self._entries.items()))

    def get(self, name: str) -> Entry | None:
        """The entry registered under ``name``, after loading an installed plugin of that name; ``None`` if none.

        Parameters
        ----------
        name
            The entry's name.

        Returns
        -------
        object or None
            The entry.
        """
        if not isinstance(name, str):
            return None
        if name not in self._entries:
            self._load_plugin(name)
        return self._entries.get(name)

    def _load_plugin(self, name: str) -> None:
        from importlib.metadata import entry_points  # lazy: only a name nobody registered pays for the scan

        for entry_point in entry_points(group=self.entry_point_group, name=name):
            loaded = entry_point.load()
            if callable(loaded) and not isinstance(loaded, type):
                loaded()
