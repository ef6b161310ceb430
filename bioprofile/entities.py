"""The entity seam: what the generate -> encode -> store -> table path needs from a gene, protein or other target.

An entity has a ``key`` (its store key: stable across renames, unique within and across kinds), a ``symbol`` and
a ``name`` (what prompt templates fill in), and a ``kind`` (``"gene"``, ``"protein"``...; a template is written for
one kind). :class:`bioprofile.genes.Gene` is one (its key is the HGNC id, so gene cache keys are the HGNC ids they
always were); :class:`Entity` is a plain record for any other kind. Resolving user identifiers to entities gives an
:class:`EntityResolution`, which says what became of each input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = ["DEFAULT_KIND", "Entity", "EntityLike", "EntityResolution", "entity_key", "entity_kind"]

#: The kind of an entity that does not say (a plain symbol string, a record without ``kind``).
DEFAULT_KIND = "gene"
# How many unknown / ambiguous ids the one-line report spells out before summarising the rest.
_REPORT_MAX_LISTED = 10


@runtime_checkable
class EntityLike(Protocol):
    """What the pipeline reads from an entity (:class:`Entity`, :class:`bioprofile.genes.Gene`...)."""

    @property
    def key(self) -> str:
        """The store key: stable and unique (``"HGNC:11998"``, ``"adt:CD45RA"``)."""
        ...

    @property
    def symbol(self) -> str:
        """The short name a prompt asks about (``"TP53"``, ``"CD45RA"``)."""
        ...

    @property
    def name(self) -> str | None:
        """The full name, or ``None`` (templates then use the symbol)."""
        ...

    @property
    def kind(self) -> str:
        """What the entity is: ``"gene"``, ``"protein"``..."""
        ...


@dataclass(frozen=True)
class Entity:
    """One entity of any kind, e.g. an antibody-derived tag's target.

    Parameters
    ----------
    key
        Store key, unique across kinds; prefix it by its namespace (``"adt:CD45RA"``) so it cannot collide with
        another kind's keys (genes use HGNC ids).
    symbol
        Short name filled into ``{symbol}`` of a prompt template.
    name
        Full name filled into ``{name}``; ``None`` falls back to the symbol.
    kind
        ``"gene"``, ``"protein"``...: only templates written for this kind may describe it.
    """

    key: str
    symbol: str
    name: str | None = None
    kind: str = DEFAULT_KIND

    def __post_init__(self) -> None:
        for attribute in ("key", "symbol", "kind"):
            value = getattr(self, attribute)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"an Entity needs a non-empty {attribute}, got {value!r}")


def entity_key(entity: Any) -> str:
    """The store key of an entity: its ``key`` (a gene's HGNC id, stable across renames), else the string itself."""
    return getattr(entity, "key", None) or str(entity)


def entity_kind(entity: Any) -> str:
    """The kind of an entity: its ``kind``, else :data:`DEFAULT_KIND` (a bare symbol is taken for a gene)."""
    return getattr(entity, "kind", None) or DEFAULT_KIND


def _plural(count: int, nouns: tuple[str, str]) -> str:
    return f"{count} {nouns[0] if count == 1 else nouns[1]}"


def _list_some(items: list[str]) -> str:
    shown = ", ".join(items[:_REPORT_MAX_LISTED])
    if len(items) > _REPORT_MAX_LISTED:
        shown += f", and {len(items) - _REPORT_MAX_LISTED} more"
    return shown


@dataclass
class EntityResolution:
    """What resolving a list of identifiers made of it.

    Attributes
    ----------
    entities
        Unique entities, in the order their first identifier appeared.
    inputs
        Each resolved input identifier -> the symbol it maps to.
    unknown
        Inputs that matched nothing, in input order.
    ambiguous
        Inputs that match several entities -> the candidate symbols.
    """

    entities: list[Any] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    #: Singular and plural of what is resolved, for :meth:`report`.
    nouns: ClassVar[tuple[str, str]] = ("entity", "entities")
    #: What the report suggests for identifiers that matched nothing.
    unknown_hint: ClassVar[str] = "check spelling"

    @property
    def n_inputs(self) -> int:
        """Number of distinct identifiers that were given."""
        return len(self.inputs) + len(self.unknown) + len(self.ambiguous)

    def report(self) -> str:
        """One line saying how many ids resolved and naming those that did not, with what to do.

        Returns
        -------
        str
            E.g. ``"5 of 7 ids resolved to 4 genes; 1 not found: FOO1 (check spelling, or use approved HGNC
            symbols or Ensembl ids); 1 ambiguous: p19 (could be CDKN2A, ...); use the approved symbol instead"``.
        """
        parts = [
            f"{len(self.inputs)} of {_plural(self.n_inputs, ('id', 'ids'))} resolved to "
            f"{_plural(len(self.entities), self.nouns)}"
        ]
        if self.unknown:
            parts.append(f"{len(self.unknown)} not found: {_list_some(self.unknown)} ({self.unknown_hint})")
        if self.ambiguous:
            described = [f"{key} (could be {', '.join(cands)})" for key, cands in self.ambiguous.items()]
            parts.append(
                f"{len(self.ambiguous)} ambiguous: {_list_some(described)}; use the approved symbol instead"
            )
        return "; ".join(parts)
