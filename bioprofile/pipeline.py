"""The Python API behind the CLI: gene list -> profile texts -> vectors, every step cached in the store."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioprofile._version import __version__
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.encoders.cached import encode_texts
from bioprofile.errors import BioprofileInputError

if TYPE_CHECKING:
    from bioprofile.encoders import TextEncoder
    from bioprofile.genes import Gene, GeneResolution
    from bioprofile.store import Store

#: Generation engines ``embed_genes(backend=...)`` builds a generator for.
BACKENDS = ("transformers", "vllm", "openai")
# C0 control characters other than tab/newline/CR: model noise that HDF5 and many tools refuse (e.g. NUL).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """A profile text without control characters and surrounding whitespace."""
    return _CONTROL_CHARS.sub("", text).strip()


def embed_genes(
    genes: Iterable[str] | GeneResolution,
    *,
    generator: Any = None,
    template: str = "concise",
    encoder: TextEncoder | str | Path | None = None,
    store: Store | None = None,
    summaries: Mapping[str, str] | str | Path | None = None,
    strict: bool = False,
    backend: str = "transformers",
    base_url: str | None = None,
    batch_size: int | None = None,
    max_new_tokens: int = 256,
    show_progress: bool = False,
) -> GeneEmbeddings:
    """Embed genes by way of text: normalise ids, write (or look up) a profile per gene, encode it.

    Parameters
    ----------
    genes
        HGNC symbols, aliases, Ensembl or Entrez ids (duplicates collapse), or a ready :class:`GeneResolution`.
    generator
        A profile writer (anything with ``id``, ``params`` and ``generate(messages_list)``), or a model path or
        hub id (``None`` for the bundled SmolLM2) for the ``backend`` to load. Ignored when ``summaries`` is given.
    template
        Prompt template name (see :data:`bioprofile.profiles.prompts.TEMPLATES`).
    encoder
        A :class:`~bioprofile.encoders.TextEncoder` or a spec for :func:`~bioprofile.encoders.get_encoder`.
    store
        Durable cache of texts and vectors; ``None`` opens the default one.
    summaries
        User-supplied texts (``{symbol: text}`` or a file for :func:`~bioprofile.profiles.summaries.read_summaries`)
        to embed instead of generating: the GenePT NCBI-summary recipe. Genes without a text are left out.
    strict
        Fail on any unknown or ambiguous id instead of reporting and continuing.
    backend
        Engine of a generator built here: ``"transformers"``
        (:class:`~bioprofile.profiles.hf.TransformersGenerator`) or ``"vllm"``
        (:class:`~bioprofile.profiles.vllm.VLLMGenerator`, the ``[vllm]`` extra) or ``"openai"``
        (:class:`~bioprofile.profiles.http.OpenAIChatGenerator`, an OpenAI-compatible server, the ``[openai]``
        extra; ``generator`` is then the served model name).
    base_url
        API root of the ``"openai"`` backend (default ``$OPENAI_BASE_URL``, else OpenAI's); its key is read from
        ``$OPENAI_API_KEY``.
    batch_size, max_new_tokens
        Generation settings for a generator built here; ``batch_size=None`` takes the backend's default
        (16 for transformers, 64 for vLLM, which schedules within a batch itself).
    show_progress
        Draw progress bars (rich) for generation and encoding.

    Returns
    -------
    GeneEmbeddings
        One row per resolved gene (with a text), in input order; ``provenance`` records generator, template,
        encoder, bioprofile version and which ids were not resolved.
    """
    from bioprofile.encoders import get_encoder
    from bioprofile.genes import GeneResolution, normalize_genes
    from bioprofile.profiles.prompts import get_template
    from bioprofile.store import open_store

    if backend not in BACKENDS:
        raise BioprofileInputError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")
    resolution = genes if isinstance(genes, GeneResolution) else normalize_genes(genes, strict=strict)
    with open_store(store) as cache, _progress(show_progress) as progress:
        if summaries is not None:
            kept, texts, source = _texts_from_summaries(resolution.genes, summaries, strict=strict)
            text_provenance: dict[str, Any] = {"source": source}
        else:
            generator = _as_generator(
                generator,
                backend=backend,
                base_url=base_url,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
            )
            kept = list(resolution.genes)
            texts = _generate(kept, generator, template, cache, progress)
            text_provenance = {
                "source": "generated",
                "generator": generator.id,
                "generation_params": dict(generator.params),
                "template": get_template(template).key,
            }
        texts = [clean_text(t) for t in texts]
        # A failed (empty) generation is reported, not embedded: an empty text has no meaningful vector.
        kept, texts = (
            [g for g, t in zip(kept, texts, strict=False) if t.strip()],
            [t for t in texts if t.strip()],
        )
        if not kept:
            raise BioprofileInputError("no gene got a profile text: check the --model and --max-new-tokens")
        if encoder is None or isinstance(encoder, (str, Path)):
            encoder = get_encoder(encoder)
        vectors = encode_texts(texts, encoder, cache, progress)
    kept_set = set(kept)
    missing_text = [g.symbol for g in resolution.genes if g not in kept_set]
    provenance = {
        **text_provenance,
        "encoder": encoder.id,
        "bioprofile_version": __version__,
        "n_genes": len(kept),
        "unknown_ids": list(resolution.unknown),
        "ambiguous_ids": dict(resolution.ambiguous),
        "genes_without_text": missing_text,
    }
    return GeneEmbeddings(
        ids=[g.hgnc_id for g in kept],
        symbols=[g.symbol for g in kept],
        texts=texts,
        vectors=vectors,
        provenance=provenance,
    )


def _generate(genes: list[Gene], generator, template: str, store: Store, progress) -> list[str]:
    from bioprofile.profiles.generate import entity_key, generate_profiles, profile_cache_key
    from bioprofile.profiles.prompts import get_template

    prompt = get_template(template)
    cached = store.get_profiles([entity_key(g) for g in genes], **profile_cache_key(prompt, generator))
    todo = len(genes) - len(cached)
    task = progress.add_task("writing profiles", total=todo) if progress and todo else None
    return generate_profiles(
        genes,
        generator=generator,
        template=prompt,
        store=store,
        progress=(lambda n: progress.advance(task, n)) if task is not None else None,
    )


def _as_generator(
    generator: Any, *, backend: str, base_url: str | None, batch_size: int | None, max_new_tokens: int
):
    if generator is not None and not isinstance(generator, (str, Path)):
        return generator
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if backend == "openai":
        from bioprofile.profiles.http import OpenAIChatGenerator

        return OpenAIChatGenerator(generator, base_url=base_url, **kwargs)
    if backend == "vllm":
        from bioprofile.profiles.vllm import VLLMGenerator

        return VLLMGenerator(generator, **kwargs)
    from bioprofile.profiles.hf import TransformersGenerator

    return TransformersGenerator(generator, **kwargs)


def _texts_from_summaries(genes: list[Gene], summaries, *, strict: bool) -> tuple[list[Gene], list[str], str]:
    from bioprofile.profiles.summaries import read_summaries

    source = "summaries"
    if not isinstance(summaries, Mapping):
        source = f"summaries:{Path(summaries).name}"
        # Real summary files (GeneAgent's, for one) carry stray non-record lines: skip them with a warning.
        summaries = read_summaries(summaries, errors="skip")
    kept = [g for g in genes if g.symbol in summaries]
    missing = [g.symbol for g in genes if g.symbol not in summaries]
    if not kept:
        raise BioprofileInputError("none of the genes has a text in the summaries: check the file's symbols")
    if missing and strict:
        raise BioprofileInputError(
            f"{len(missing)} genes have no summary ({', '.join(missing[:10])}); drop --strict "
            "to embed the rest"
        )
    return kept, [summaries[g.symbol] for g in kept], source


def _progress(show: bool):
    if not show:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
