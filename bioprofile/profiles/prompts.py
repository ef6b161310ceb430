"""Prompt templates that ask a chat LLM to write a profile of one entity: a gene or a protein (antibody target).

A template is a system prompt (optional) plus a user message with ``{symbol}``, ``{name}`` and ``{details}``
fields (``{details}``: what the entity adds about itself, such as a protein's gene and curated description). Its
:attr:`PromptTemplate.key` (name plus a hash of its text) is part of every cache key, so editing a template's
text never reuses profiles written for the old text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from bioprofile.errors import BioprofileInputError

__all__ = ["TEMPLATES", "PromptTemplate", "get_template", "lookup_template", "template_names"]

Template = TypeVar("Template", bound="PromptTemplate")


@dataclass(frozen=True)
class PromptTemplate:
    """A named chat prompt for one entity.

    Parameters
    ----------
    name
        Short identifier: what ``template=`` takes (and training records), and part of cache keys.
    system
        System message, or ``None`` to send only the user message (the model's default system prompt applies).
    user
        User message; ``{symbol}``, ``{name}`` and ``{details}`` are filled from the entity. Where it has no full
        name, ``{name}`` falls back to the symbol; ``{details}`` is its ``details`` text, else empty.
    entity
        What the template describes: ``"gene"`` or ``"protein"``; the pipeline refuses it for entities of
        another kind.
    """

    name: str
    system: str | None
    user: str
    entity: str = "gene"

    @property
    def key(self) -> str:
        """``"<name>@<8 hex digits>"``: the cache key part that changes whenever the template's text changes."""
        digest = hashlib.sha256(f"{self.system}\x00{self.user}\x00{self.entity}".encode()).hexdigest()
        return f"{self.name}@{digest[:8]}"

    def fields(self, entity: Any) -> dict[str, str]:
        """The values filled into the user message for ``entity`` (an object with ``.symbol``/``.name``, or a str).

        ``details`` is the entity's ``details`` text (a :class:`bioprofile.proteins.Protein`'s gene and
        description), or ``""`` for entities without one (genes, plain strings).
        """
        if isinstance(entity, str):
            symbol, full_name, details = entity, None, None
        else:
            symbol = getattr(entity, "symbol", None)
            full_name = getattr(entity, "name", None)
            details = getattr(entity, "details", None)
        if not symbol or not isinstance(symbol, str):
            raise ValueError(f"cannot build a prompt for {entity!r}: it has no symbol")
        symbol = symbol.strip()
        full_name = full_name.strip() if isinstance(full_name, str) and full_name.strip() else None
        details = " ".join(details.split()) if isinstance(details, str) else ""
        return {"symbol": symbol, "name": full_name or symbol, "details": details}

    def messages(self, entity: Any) -> list[dict[str, str]]:
        """Chat messages (``[{"role": ..., "content": ...}, ...]``) asking for a profile of ``entity``.

        Parameters
        ----------
        entity
            An entity: anything with ``.symbol`` and ``.name`` attributes (such as :class:`bioprofile.genes.Gene`
            or :class:`bioprofile.entities.Entity`), or a plain symbol string.

        Returns
        -------
        list of dict
            An optional system message followed by the user message, ready for ``apply_chat_template``.
        """
        # strip: a template ending in an empty {details} must not send trailing space
        user = self.user.format(**self.fields(entity)).strip()
        if self.system is None:
            return [{"role": "user", "content": user}]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


GENEPT = PromptTemplate(
    name="genept",
    system=None,
    # The GenePT prompt, verbatim in substance: just the symbol, the model's own system prompt.
    user="Tell me about gene {symbol}",
)

CONCISE = PromptTemplate(
    name="concise",
    system=(
        "You are a molecular biologist writing reference profiles of human genes. For the gene you are given, "
        "write a specific, mechanistic profile in plain prose under 2,000 characters covering: the molecular "
        "function of its product, the pathways and processes it acts in, the proteins and genes it interacts "
        "with, and its relevance to disease. State concrete facts; no introductions, no disclaimers, no "
        "filler, no lists of generic statements that would fit any gene."
    ),
    user="Tell me about gene {symbol} ({name}).",
)

PROTEIN_CONCISE = PromptTemplate(
    name="protein-concise",
    system=(
        "You are an immunologist writing reference profiles of human proteins that antibodies detect on or in "
        "cells, as in CITE-seq and flow cytometry panels. For the protein you are given, write a specific "
        "profile in plain prose under 2,000 characters covering: what the protein is (its gene, and which "
        "isoform or complex where it is one), the cell types that carry it and how its level changes with "
        "activation or differentiation, its molecular function, ligands and partners, and what it marks in a "
        "panel. Describe this exact target, not its gene's other isoforms. State concrete facts; no "
        "introductions, no disclaimers, no filler."
    ),
    user="Tell me about the protein {symbol} ({name}). {details}",
    entity="protein",
)

PROTEIN_PLAIN = PromptTemplate(
    name="protein-plain",
    system=None,
    # The GenePT-style question, for proteins: the target and what is known of it, the model's own system prompt.
    user="Tell me about protein {symbol}. {details}",
    entity="protein",
)

TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (GENEPT, CONCISE, PROTEIN_CONCISE, PROTEIN_PLAIN)}


def template_names(entity: str | None = None) -> list[str]:
    """Names of the registered templates, optionally only those for ``entity`` (``"gene"``, ``"protein"``)."""
    return sorted(name for name, t in TEMPLATES.items() if entity is None or t.entity == entity)


def get_template(name: str | PromptTemplate) -> PromptTemplate:
    """Look up a template by name (case-insensitive); a :class:`PromptTemplate` is returned unchanged.

    Raises
    ------
    BioprofileInputError
        If no template has that name; the message lists the available ones.
    """
    return lookup_template(TEMPLATES, name, PromptTemplate, "prompt template", argument=None)


def lookup_template(
    templates: Mapping[str, Template],
    name: str | Template,
    kind: type[Template],
    what: str,
    *,
    argument: str | None = "template",
) -> Template:
    """The template of ``templates`` named ``name`` (case-insensitive); an instance of ``kind`` comes back unchanged.

    The one lookup of every template registry (profile, gene-set and DE-question prompts).

    Parameters
    ----------
    templates
        The registry: name -> template.
    name
        A name, or a template of the registry's kind.
    kind
        The registry's template class.
    what
        What the registry holds, for the message (``"gene-set prompt"``).
    argument
        The argument the error names (the CLI shows its flag).

    Raises
    ------
    BioprofileInputError
        If no template has that name; the message lists the names.
    """
    if isinstance(name, kind):
        return name
    template = templates.get(str(name).strip().lower())
    if template is None:
        raise BioprofileInputError(
            f"unknown {what} {name!r}: choose one of {', '.join(sorted(templates))}", argument=argument
        )
    return template
