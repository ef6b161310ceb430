"""Prompt templates that ask a chat LLM to name the biological process a gene set shares (GeneAgent's task).

A :class:`GeneSetPrompt` is a :class:`~bioprofile.profiles.prompts.PromptTemplate` whose user message has
``{genes}`` (the set's genes, comma-separated) and ``{n_genes}`` fields; its ``key`` (name plus a hash of its text)
is part of every cached answer's store key, as a profile template's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bioprofile.profiles.prompts import PromptTemplate, lookup_template

__all__ = ["GENE_SET_TEMPLATES", "GeneSetPrompt", "get_gene_set_template"]


@dataclass(frozen=True)
class GeneSetPrompt(PromptTemplate):
    """A named chat prompt about one gene set.

    Parameters
    ----------
    name
        Short identifier: what ``template=`` takes, and part of cache keys.
    system
        System message, or ``None`` for the user message alone.
    user
        User message; ``{genes}`` is filled with the set's genes joined by ``", "``, ``{n_genes}`` with their
        number.
    entity
        ``"gene_set"``.
    """

    entity: str = "gene_set"

    def fields(self, entity: Any) -> dict[str, str]:
        """The values filled into the user message for a gene set (anything with a ``genes`` sequence)."""
        genes = [str(g).strip() for g in getattr(entity, "genes", ()) if str(g).strip()]
        if not genes:
            raise ValueError(f"cannot build a prompt for {entity!r}: it has no genes")
        return {"genes": ", ".join(genes), "n_genes": str(len(genes))}


PROCESS = GeneSetPrompt(
    name="process",
    system=(
        "You are a molecular biologist who annotates gene sets. Given a set of human genes, you name the one "
        "biological process the genes most likely carry out together, worded as a Gene Ontology biological "
        "process term would be."
    ),
    user="Genes: {genes}\nWhat biological process do these {n_genes} genes share? Reply with its name only.",
)

#: Gene-set templates by name.
GENE_SET_TEMPLATES: dict[str, GeneSetPrompt] = {t.name: t for t in (PROCESS,)}


def get_gene_set_template(name: str | GeneSetPrompt) -> GeneSetPrompt:
    """A gene-set template by name (case-insensitive); a :class:`GeneSetPrompt` is returned unchanged.

    Raises
    ------
    BioprofileInputError
        If no gene-set template has that name; the message lists the available ones.
    """
    return lookup_template(GENE_SET_TEMPLATES, name, GeneSetPrompt, "gene-set prompt")
