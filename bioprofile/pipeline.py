"""The Python API behind the CLI: entities -> profile texts -> vectors, every step cached in the store.

:func:`embed_entities` is the one path (any entity kind, :mod:`bioprofile.entities`); :func:`embed_genes` is its gene
front door, resolving gene ids through HGNC first, and :func:`embed_proteins` its protein front door, mapping antibody
targets to protein entities (:mod:`bioprofile.proteins`). This module orchestrates: nothing below it imports it.
"""

from __future__ import annotations

import inspect
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bioprofile._version import __version__
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.encoders import TextEncoder
from bioprofile.encoders.cached import encode_texts
from bioprofile.encoders.coerce import as_encoder
from bioprofile.entities import EntityLike, EntityResolution, entity_key, entity_kind
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import GeneResolution, normalize_genes
from bioprofile.profiles.backends import BACKENDS
from bioprofile.profiles.coerce import as_generator
from bioprofile.profiles.generate import (
    GenerationSettings,
    generate_profiles,
    generation_provenance,
    profile_cache_key,
)
from bioprofile.profiles.models import trained_template
from bioprofile.profiles.prompts import PromptTemplate, get_template, template_names
from bioprofile.profiles.ray_fanout import RayOptions, RayProfileWriter, as_ray_options, as_ray_writer
from bioprofile.profiles.summaries import MissingSummaryWarning, read_summaries
from bioprofile.progress import progress_bars
from bioprofile.proteins import ProteinResolution, normalize_proteins
from bioprofile.shards import Shard, record_rows, select_shard
from bioprofile.store import Store, open_store

__all__ = [
    "BACKENDS",
    "DEFAULT_PROTEIN_TEMPLATE",
    "DEFAULT_TEMPLATE",
    "clean_text",
    "embed_entities",
    "embed_genes",
    "embed_proteins",
]

#: The prompt template of a model that records none (and of the bundled default model).
DEFAULT_TEMPLATE = "concise"
#: The prompt template :func:`embed_proteins` asks with unless told otherwise (or the model learned a protein one).
DEFAULT_PROTEIN_TEMPLATE = "protein-concise"
# C0 control characters other than tab/newline/CR: model noise that HDF5 and many tools refuse (e.g. NUL).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# How many symbols without a summary a warning or error spells out.
_MISSING_LISTED = 5


def clean_text(text: str) -> str:
    """A profile text without control characters and surrounding whitespace."""
    return _CONTROL_CHARS.sub("", text).strip()


def embed_genes(
    genes: Iterable[str] | GeneResolution,
    *,
    strict: bool = False,
    shard: Shard | tuple[int, int] | str | None = None,
    ray: RayOptions | str | bool | None = None,
    **options: Any,
) -> GeneEmbeddings:
    """Embed genes by way of text: normalise ids, write (or look up) a profile per gene, encode it.

    The gene front door of :func:`embed_entities`: ids are resolved through HGNC, and each gene's store key is its
    HGNC id.

    Parameters
    ----------
    genes
        HGNC symbols, aliases, Ensembl or Entrez ids (duplicates collapse), or a ready :class:`GeneResolution`.
    strict
        Fail on any unknown or ambiguous id (and, with ``summaries``, on any gene without a text) instead of
        reporting and continuing.
    shard
        Embed only shard ``(i, N)`` of the resolved genes (:class:`~bioprofile.shards.Shard`, ``(i, N)`` or
        ``"i/N"``, ``i`` from 0): those whose HGNC id hashes to ``i`` mod ``N``, the same whatever the order or
        length of the list. ``None``: all of them. Join the N tables with :func:`bioprofile.shards.merge_tables`.
    ray
        Write the missing profiles on a Ray cluster (the ``[ray]`` extra): ``True`` (this process's Ray, else a new
        local one), an address (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``) or
        :class:`~bioprofile.profiles.ray_fanout.RayOptions`. The generator is then a model for ``backend`` or a
        :class:`~bioprofile.profiles.ray_fanout.GeneratorSpec`; see
        :class:`~bioprofile.profiles.ray_fanout.RayProfileWriter`. ``None``: in this process.
    **options
        The keyword arguments of :func:`embed_entities`: ``generator``, ``template``, ``encoder``, ``store``,
        ``summaries``, ``settings``, ``backend``, ``show_progress``.

    Returns
    -------
    GeneEmbeddings
        One row per resolved gene (with a text), in input order; ``provenance`` records generator, template (and
        whether the model chose it), encoder, entity kind, bioprofile version and which ids were not resolved
        (and, for a shard, ``"shard"``: i, N, how many of how many resolved genes it holds).

    Examples
    --------
    >>> embed_genes(["TP53"], template="genept", settings=GenerationSettings(max_new_tokens=128))  # doctest: +SKIP
    """
    _use_ray(ray, options)
    resolution = genes if isinstance(genes, GeneResolution) else normalize_genes(genes, strict=strict)
    resolution, shard_info = select_shard(resolution, shard)
    result = embed_entities(resolution, strict=strict, **options)
    result.provenance.update(resolution.provenance())  # HGNC release, species and repaired ids
    return record_rows(result, shard_info)


def embed_proteins(
    targets: Iterable[str] | ProteinResolution,
    *,
    strict: bool = False,
    include_isotype_controls: bool = False,
    shard: Shard | tuple[int, int] | str | None = None,
    ray: RayOptions | str | bool | None = None,
    **options: Any,
) -> GeneEmbeddings:
    """Embed proteins (antibody targets of a CITE-seq panel) by way of text: a profile per target, encoded.

    The protein front door of :func:`embed_entities`: names are mapped by
    :func:`~bioprofile.proteins.normalize_proteins` (curated table, then HGNC aliases); each target is its own
    entity with store key ``"adt:<target>"``, so isoforms of one gene (CD45RA, CD45RO) get their own profiles.

    Parameters
    ----------
    targets
        Target names (``"CD45RA"``, ``"HLA-DR"``, ``"TCRab"``, ``"CD3_TotalSeqB"``...), or a ready
        :class:`~bioprofile.proteins.ProteinResolution`.
    strict
        Fail on any target without a gene instead of embedding it by name and reporting it.
    include_isotype_controls
        Embed isotype controls too (by default they are reported and left out).
    shard
        Embed only shard ``(i, N)`` of the targets, split by a hash of their store keys (see :func:`embed_genes`).
    ray
        Write the missing profiles on a Ray cluster (see :func:`embed_genes`).
    **options
        The keyword arguments of :func:`embed_entities`: ``generator``, ``template`` (default
        :data:`DEFAULT_PROTEIN_TEMPLATE`, or the protein template the model was trained with), ``encoder``,
        ``store``, ``summaries``, ``settings``, ``backend``, ``show_progress``.

    Returns
    -------
    GeneEmbeddings
        One row per target (with a text), in input order, of kind ``"protein"``; ``provenance["protein_targets"]``
        maps each target to its genes, HGNC ids, how they were found and the source, and lists the targets without
        a gene and the isotype controls.

    Examples
    --------
    >>> embed_proteins(["CD45RA", "CD45RO", "HLA-DR"])  # doctest: +SKIP
    """
    _use_ray(ray, options)
    if isinstance(targets, ProteinResolution):
        resolution = targets
    else:
        resolution = normalize_proteins(
            targets, strict=strict, include_isotype_controls=include_isotype_controls
        )
    resolution, shard_info = select_shard(resolution, shard)
    defaulted = options.get("template") is None and options.get("summaries") is None
    if defaulted:
        learned = trained_template(_model_path(options.get("generator")))
        learned_kind = get_template(learned).entity if learned else None
        # A model trained on protein prompts asks with them; one trained on gene prompts has none to offer here.
        defaulted = learned_kind != "protein"
        if defaulted:
            options["template"] = DEFAULT_PROTEIN_TEMPLATE
    result = embed_entities(resolution, strict=strict, **options)
    if defaulted:
        result.provenance["template_source"] = "default"
    result.provenance.update(
        protein_targets=resolution.mapping(),
        targets_without_gene=list(resolution.without_gene),
        isotype_controls=list(resolution.isotype_controls),
        isotype_controls_skipped=resolution.isotype_controls_skipped,
    )
    return record_rows(result, shard_info)


def _use_ray(ray: RayOptions | str | bool | None, options: dict[str, Any]) -> None:
    """With ``ray``, replace the generator in ``options`` by a Ray writer of it (checked before any work)."""
    ray_options = as_ray_options(ray)
    if ray_options is None or options.get("summaries") is not None:
        return
    options["generator"] = as_ray_writer(
        options.get("generator"),
        ray=ray_options,
        backend=options.pop("backend", "transformers"),
        settings=options.pop("settings", None),
    )


def _model_path(generator: Any) -> Any:
    """The model folder of a generator argument (a path, or a built generator's ``model_path``), else ``None``."""
    if generator is None or isinstance(generator, (str, Path)):
        return generator
    return getattr(generator, "model_path", None)


def embed_entities(
    entities: Iterable[EntityLike] | EntityResolution,
    *,
    generator: Any = None,
    template: str | PromptTemplate | None = None,
    encoder: TextEncoder | str | Path | None = None,
    store: Store | None = None,
    summaries: Mapping[str, str] | str | Path | None = None,
    strict: bool = False,
    settings: GenerationSettings | None = None,
    backend: str = "transformers",
    show_progress: bool = False,
) -> GeneEmbeddings:
    """Embed entities of one kind (genes, proteins...) by way of text: a profile per entity, encoded.

    Parameters
    ----------
    entities
        Entities (:class:`~bioprofile.entities.EntityLike`: ``key``, ``symbol``, ``name``, ``kind``), all of one
        kind; repeated keys collapse. Or a ready :class:`~bioprofile.entities.EntityResolution`.
    generator
        A profile writer (anything with ``id``, ``params`` and ``generate(messages_list)``, such as
        :func:`~bioprofile.profiles.backends.make_generator` builds), or a model path or hub id (``None`` for
        the bundled SmolLM2) for the ``backend`` to load. Ignored when ``summaries`` is given.
    template
        Prompt template, or its name (see :data:`bioprofile.profiles.prompts.TEMPLATES`), written for the
        entities' kind. ``None``: the template the generator's model folder was trained with (``bioprofile
        train`` records it), else ``"concise"``. A template other than the learned one is used, with a warning.
    encoder
        A :class:`~bioprofile.encoders.TextEncoder` or a spec for :func:`~bioprofile.encoders.get_encoder`.
    store
        Durable cache of texts and vectors; ``None`` opens the default one.
    summaries
        User-supplied texts (``{symbol: text}`` or a file for :func:`~bioprofile.profiles.summaries.read_summaries`)
        to embed instead of generating: the GenePT NCBI-summary recipe. Entities without a text are left out,
        with a :class:`~bioprofile.profiles.summaries.MissingSummaryWarning` giving their count and first symbols
        (the provenance lists them all).
    strict
        With ``summaries``: fail if any entity has no text (before anything is encoded).
    settings
        Decoding settings of a generator built here (:class:`~bioprofile.profiles.generate.GenerationSettings`);
        a ready generator object carries its own.
    backend
        Engine of a generator built here: one of :data:`BACKENDS` (see
        :func:`~bioprofile.profiles.backends.make_generator`, which also takes an OpenAI-compatible server's
        ``base_url``).
    show_progress
        Draw progress bars (rich) for generation and encoding.

    Returns
    -------
    GeneEmbeddings
        One row per entity with a text, in input order: ``ids`` the store keys, ``symbols`` the symbols.

    Raises
    ------
    BioprofileInputError
        Entities of several kinds, a template for another kind, settings beside a ready generator, or no entity
        with a text.
    """
    resolution = entities if isinstance(entities, EntityResolution) else _as_resolution(entities)
    kind = _one_kind(resolution.entities)
    if template is not None:
        _check_template_kind(get_template(template), kind)
    with open_store(store) as cache, progress_bars(show_progress) as progress:
        if summaries is not None:
            kept, texts, source = _texts_from_summaries(resolution.entities, summaries, strict=strict)
            text_provenance: dict[str, Any] = {"source": source}
        else:
            generator = as_generator(generator, backend=backend, settings=settings)
            prompt, template_source = _choose_template(template, generator)
            _check_template_kind(prompt, kind)
            kept = list(resolution.entities)
            texts = _generate(kept, generator, prompt, cache, progress)
            text_provenance = {
                "source": "generated",
                "generator": generator.id,
                "generation_params": generation_provenance(generator),
                "template": prompt.key,
                "template_source": template_source,
            }
            if isinstance(
                generator, RayProfileWriter
            ):  # where and how wide; failed prompts with their errors
                text_provenance["ray"] = dict(generator.last_run)
        texts = [clean_text(t) for t in texts]
        # A failed (empty) generation is reported, not embedded: an empty text has no meaningful vector.
        kept, texts = (
            [e for e, t in zip(kept, texts, strict=False) if t.strip()],
            [t for t in texts if t.strip()],
        )
        if not kept:
            raise BioprofileInputError(
                f"no {kind} got a profile text: check the generator and max_new_tokens", argument="generator"
            )
        encoder = as_encoder(encoder)
        vectors = encode_texts(texts, encoder, cache, progress)
    kept_keys = {entity_key(e) for e in kept}
    missing_text = [e.symbol for e in resolution.entities if entity_key(e) not in kept_keys]
    provenance = {
        **text_provenance,
        "encoder": encoder.id,
        "bioprofile_version": __version__,
        "entity_kind": kind,
        "n_entities": len(kept),
        "unknown_ids": list(resolution.unknown),
        "ambiguous_ids": dict(resolution.ambiguous),
        "entities_without_text": missing_text,
    }
    over_limit = getattr(encoder, "over_limit", None)
    if over_limit is not None:  # texts cut to the encoder's input limit: recorded, never silent
        provenance["truncated_texts"] = len(over_limit(texts))
    if kind == "gene":  # the names gene tables have always carried
        provenance.update(n_genes=len(kept), genes_without_text=missing_text)
    return GeneEmbeddings(
        ids=[entity_key(e) for e in kept],
        symbols=[e.symbol for e in kept],
        texts=texts,
        vectors=vectors,
        provenance=provenance,
    )


def _as_resolution(entities: Iterable[Any]) -> EntityResolution:
    """Entities as a resolution: repeated keys collapse; bare strings are refused (they have no store key)."""
    unique: dict[str, Any] = {}
    for entity in entities:
        if not isinstance(entity, EntityLike):
            raise BioprofileInputError(
                f"{entity!r} is not an entity (key, symbol, name, kind): resolve gene ids with embed_genes, or "
                "build a bioprofile.entities.Entity",
                argument="entities",
            )
        unique.setdefault(entity.key, entity)
    if not unique:
        raise BioprofileInputError("no entities given", argument="entities")
    return EntityResolution(
        entities=list(unique.values()), inputs={key: e.symbol for key, e in unique.items()}
    )


def _one_kind(entities: list[Any]) -> str:
    kinds = sorted({entity_kind(e) for e in entities})
    if len(kinds) != 1:
        raise BioprofileInputError(
            f"entities of {len(kinds)} kinds ({', '.join(kinds) or 'none'}): embed one kind per call",
            argument="entities",
        )
    return kinds[0]


def _check_template_kind(prompt: PromptTemplate, kind: str) -> None:
    if prompt.entity != kind:
        raise BioprofileInputError(
            f"template {prompt.name!r} describes a {prompt.entity}, not a {kind}: choose one of "
            f"{', '.join(template_names(kind)) or 'your own'} for {kind} entities",
            argument="template",
        )


def _choose_template(template: str | PromptTemplate | None, generator: Any) -> tuple[PromptTemplate, str]:
    """The template to prompt with, and where it came from: ``"argument"``, ``"model"`` or ``"default"``."""
    model_path = getattr(generator, "model_path", None)
    learned = trained_template(model_path)
    if template is None:
        return get_template(learned or DEFAULT_TEMPLATE), "model" if learned else "default"
    chosen = get_template(template)
    learned_template = get_template(learned) if learned is not None else None
    # A template for another kind than the model learned (proteins asked of a gene-trained model) has no
    # learned alternative to warn about.
    if (
        learned_template is not None
        and learned_template.entity == chosen.entity
        and chosen.name != learned_template.name
    ):
        warnings.warn(
            f"template {chosen.name!r} is not {learned!r}, the template {model_path} was trained with: the model "
            "answers a prompt it did not learn",
            stacklevel=4,
        )
    return chosen, "argument"


def _generate(entities: list[Any], generator, prompt: PromptTemplate, store: Store, progress) -> list[str]:
    cached = store.get_profiles([entity_key(e) for e in entities], **profile_cache_key(prompt, generator))
    todo = len(entities) - len(cached)
    task = progress.add_task("writing profiles", total=todo) if progress and todo else None
    if task is not None:
        new_tokens = generator.params.get("max_new_tokens")
        bound = f": at most {todo * new_tokens:,} new tokens ({todo} x {new_tokens})" if new_tokens else ""
        progress.console.print(
            f"writing {todo} profiles with {generator.id} ({len(cached)} cached){bound}; texts of your own, a "
            "served model or fewer new tokens per profile are faster"
        )
    paced = (
        _PacedProgress(progress, task, todo, getattr(generator, "batch_size", 1))
        if task is not None
        else None
    )
    if isinstance(generator, RayProfileWriter):  # the driver stores each batch as the cluster returns it
        return generator.write_profiles(entities, template=prompt, store=store, progress=paced)
    return generate_profiles(entities, generator=generator, template=prompt, store=store, progress=paced)


class _PacedProgress:
    """Advances the profiles bar; once the first batch is written, says how long the rest should take."""

    def __init__(self, progress, task, total: int, batch_size: Any) -> None:
        self.progress, self.task, self.total = progress, task, total
        self.first_batch = min(total, batch_size if isinstance(batch_size, int) and batch_size > 0 else 1)
        self.done, self.started = 0, time.monotonic()

    def __call__(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        self.progress.advance(self.task, n)
        left = self.total - self.done
        if before < self.first_batch <= self.done and left > 0:
            elapsed = time.monotonic() - self.started
            self.progress.console.print(
                f"first {self.done} profiles in {_duration(elapsed)}: about {_duration(elapsed / self.done * left)} "
                f"for the other {left} at this pace"
            )


def _duration(seconds: float) -> str:
    """``42 s``, ``7.5 min`` or ``3.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _texts_from_summaries(
    entities: list[Any], summaries, *, strict: bool
) -> tuple[list[Any], list[str], str]:
    source = "summaries"
    if not isinstance(summaries, Mapping):
        source = f"summaries:{Path(summaries).name}"
        # Real summary files (GeneAgent's, for one) carry stray non-record lines: skip them with a warning.
        summaries = read_summaries(summaries, errors="skip")
    kept = [e for e in entities if e.symbol in summaries]
    missing = [e.symbol for e in entities if e.symbol not in summaries]
    if not kept:
        raise BioprofileInputError(
            "none of the entities has a text in the summaries: check the file's symbols", argument="summaries"
        )
    if missing:
        shown = ", ".join(missing[:_MISSING_LISTED]) + (", ..." if len(missing) > _MISSING_LISTED else "")
        where = source.removeprefix("summaries:") if source != "summaries" else "the summaries"
        nouns = f"{entity_kind(entities[0])}s"
        counted = f"{len(missing)} of {len(entities)} {nouns} have no text in {where} (first: {shown})"
        if strict:
            raise BioprofileInputError(
                f"{counted}: add their texts, or drop strict to embed the other {len(kept)}",
                argument="strict",
            )
        # Counted in the provenance too (entities_without_text); said here so a short table is never a surprise.
        warnings.warn(f"{counted}: left out", MissingSummaryWarning, stacklevel=_outside_this_module())
    return kept, [summaries[e.symbol] for e in kept], source


def _outside_this_module() -> int:
    """The ``stacklevel`` for a warning of this function's caller: the first frame outside this module.

    embed_genes and embed_proteins add a frame to embed_entities' own, so no fixed level fits all three.
    """
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _signature_of_embed_entities_for(name: str, annotation: str) -> inspect.Signature:
    """:func:`embed_entities`' signature with its first parameter renamed, for a front door that forwards to it."""
    signature = inspect.signature(embed_entities)
    first, *rest = signature.parameters.values()
    shard = inspect.Parameter(
        "shard",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation="Shard | tuple[int, int] | str | None",
    )
    ray = inspect.Parameter(
        "ray", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="RayOptions | str | bool | None"
    )
    return signature.replace(parameters=[first.replace(name=name, annotation=annotation), *rest, shard, ray])


# help(), editors and notebooks show every keyword of embed_genes, not **options (it forwards them unchanged).
embed_genes.__signature__ = _signature_of_embed_entities_for("genes", "Iterable[str] | GeneResolution")
