"""embed-genes and embed-proteins: ids -> LLM-written profiles -> vectors, written to one table.

Both commands take the same writer, encoder, store and output flags (:mod:`bioprofile.cli.options`) and run the
same steps after resolving their ids (:func:`_embed_and_write`); only the resolver and its warnings differ.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import fail, in_flags
from bioprofile.cli.options import (
    ApiKeyEnv,
    Backend,
    BaseUrl,
    CacheDir,
    DType,
    EmbedBatchSize,
    EmbedEncoder,
    EmbedFormat,
    EmbedMaxNewTokens,
    EmbedModel,
    EmbedOutput,
    ForceOutput,
    MaxRetries,
    OpenAIBatch,
    OpenAIBatchPrice,
    QuietSummary,
    RayAddress,
    RequestTimeout,
    TotalTimeout,
    WriterDevice,
    WriterDtype,
    WriterThreads,
)
from bioprofile.cli.steps import (
    backend_options_from_flags,
    batch_encoder,
    check_openai_batch,
    encoder_from_flags,
    generator_from_flags,
    open_store,
    quiet_model_libraries,
    settings_from_flags,
)
from bioprofile.display import terminal_safe

_ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="i/N",
        help="Embed only shard i of N (i from 0: $SLURM_ARRAY_TASK_ID of --array=0-(N-1)), split by a hash of "
        "each id; give each shard its own --cache-dir, then 'bioprofile merge' the N outputs.",
    ),
]


@dataclass(frozen=True)
class _EmbedFlags:
    """The flags embed-genes and embed-proteins share after the ids: writer, encoder, store, output."""

    output: Path
    fmt: str
    model: str | None
    encoder: str | None
    backend: str
    base_url: str | None
    api_key_env: str
    openai_batch: bool
    batch_price: float | None
    settings: object  # GenerationSettings, built (and checked) before the ids are resolved
    max_retries: int | None
    timeouts: dict  # timeout, total_timeout: for a server, the writer's or the encoder's
    cache_dir: Path | None
    force: bool
    quiet: bool
    shard: object  # Shard or None, parsed before the ids are resolved
    ray: object  # RayOptions or None, checked before the ids are resolved


def embed_genes_command(
    ctx: typer.Context,
    genes: Annotated[
        list[str] | None, typer.Argument(help="HGNC symbols, aliases, Ensembl, Entrez or UniProt ids.")
    ] = None,
    genes_file: Annotated[
        Path | None,
        typer.Option("--genes-file", "-f", help="A file of ids (one per line, or a CSV/TSV column)."),
    ] = None,
    output: EmbedOutput = Path("genes.parquet"),
    format: EmbedFormat = None,
    model: EmbedModel = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            "-t",
            help="Prompt template: concise | genept (default: the one --model was trained with, else concise).",
        ),
    ] = None,
    encoder: EmbedEncoder = None,
    summaries: Annotated[
        Path | None,
        typer.Option(
            "--summaries", help="Embed these texts ('SYMBOL: text' lines or a TSV) instead of generating."
        ),
    ] = None,
    backend: Backend = "transformers",
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    openai_batch: OpenAIBatch = False,
    batch_price: OpenAIBatchPrice = None,
    batch_size: EmbedBatchSize = None,
    max_new_tokens: EmbedMaxNewTokens = 256,
    dtype: WriterDtype = DType.float32,
    device: WriterDevice = None,
    threads: WriterThreads = None,
    max_retries: MaxRetries = None,
    timeout: RequestTimeout = None,
    total_timeout: TotalTimeout = None,
    cache_dir: CacheDir = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail on any unknown or ambiguous id (with --summaries: on any gene without a text).",
        ),
    ] = False,
    force: ForceOutput = False,
    quiet: QuietSummary = False,
    shard: _ShardOption = None,
    ray: RayAddress = None,
    species: Annotated[
        str,
        typer.Option(
            "--species",
            help="human (HGNC symbols; case-only matches such as Brca1 are warned about) | mouse (symbols mapped "
            "to the human gene of the same upper-cased approved symbol).",
        ),
    ] = "human",
) -> None:
    """Embed genes by way of LLM-written profiles: ids -> profile text -> vector, written to OUTPUT."""
    quiet_model_libraries(quiet)
    from bioprofile.genes import CaseOnlyMatchWarning, normalize_genes, read_gene_list
    from bioprofile.pipeline import embed_genes

    ids = _given_ids(
        genes, genes_file, read_gene_list, "no genes given: pass ids as arguments or --genes-file FILE"
    )
    flags = _embed_flags(locals())
    with warnings.catch_warnings():
        # the warning line below says the same in flags, once
        warnings.simplefilter("ignore", CaseOnlyMatchWarning)
        resolution = normalize_genes(ids, strict=strict, species=species)
    if not quiet and (resolution.unknown or resolution.ambiguous or resolution.case_report()):
        _warn(in_flags(resolution.report(), ctx.command.params, argument="species"))
    # Summaries replace generation: then no model is resolved (nor the default one converted).
    _embed_and_write(
        embed_genes,
        resolution,
        flags,
        nouns=("gene", "genes"),
        generate=not summaries,
        template=template,
        summaries=summaries,
        strict=strict,
    )


def embed_proteins_command(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="Antibody targets or protein names (CD45RA, HLA-DR, TCRab, CD3_TotalSeqB...)."),
    ] = None,
    targets_file: Annotated[
        Path | None,
        typer.Option(
            "--targets-file",
            "-f",
            help="A file of targets (one per line, or the target/name column of a CSV/TSV such as a 10x "
            "feature reference).",
        ),
    ] = None,
    output: EmbedOutput = Path("proteins.parquet"),
    format: EmbedFormat = None,
    model: EmbedModel = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            "-t",
            help="Prompt template: protein-concise | protein-plain (default: protein-concise, or the protein "
            "template --model was trained with).",
        ),
    ] = None,
    encoder: EmbedEncoder = None,
    backend: Backend = "transformers",
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    openai_batch: OpenAIBatch = False,
    batch_price: OpenAIBatchPrice = None,
    batch_size: EmbedBatchSize = None,
    max_new_tokens: EmbedMaxNewTokens = 256,
    dtype: WriterDtype = DType.float32,
    device: WriterDevice = None,
    threads: WriterThreads = None,
    max_retries: MaxRetries = None,
    timeout: RequestTimeout = None,
    total_timeout: TotalTimeout = None,
    cache_dir: CacheDir = None,
    include_isotype_controls: Annotated[
        bool,
        typer.Option(
            "--include-isotype-controls", help="Embed isotype controls too (default: report, skip)."
        ),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on any target without a gene.")] = False,
    force: ForceOutput = False,
    quiet: QuietSummary = False,
    shard: _ShardOption = None,
    ray: RayAddress = None,
) -> None:
    """Embed proteins (CITE-seq antibody targets) by way of LLM-written profiles, one per target, to OUTPUT."""
    quiet_model_libraries(quiet)
    from bioprofile.pipeline import embed_proteins
    from bioprofile.proteins import normalize_proteins, read_target_list

    message = "no targets given: pass antibody targets as arguments or --targets-file FILE"
    names = _given_ids(targets, targets_file, read_target_list, message)
    flags = _embed_flags(locals())
    resolution = normalize_proteins(names, strict=strict, include_isotype_controls=include_isotype_controls)
    if not quiet and (resolution.without_gene or resolution.isotype_controls):
        _warn(in_flags(resolution.report(), ctx.command.params))
    _embed_and_write(embed_proteins, resolution, flags, nouns=("protein", "proteins"), template=template)


def _embed_flags(given: dict) -> _EmbedFlags:
    """The shared flags of a command's arguments (its ``locals()``), OUTPUT and the settings checked first.

    Called before the ids are resolved: a bad output path or generation setting fails before any work.
    """
    from bioprofile.profiles.ray_fanout import as_ray_options
    from bioprofile.shards import as_shard

    shard = as_shard(given["shard"])
    ray = as_ray_options(given["ray"])
    fmt = _checked_output(given["output"], given["format"], given["force"])
    settings = settings_from_flags(
        given["batch_size"], given["max_new_tokens"], given["dtype"], given["device"], given["threads"]
    )
    return _EmbedFlags(
        output=given["output"],
        fmt=fmt,
        model=given["model"],
        encoder=given["encoder"],
        backend=given["backend"],
        base_url=given["base_url"],
        api_key_env=given["api_key_env"],
        openai_batch=given["openai_batch"],
        batch_price=given["batch_price"],
        settings=settings,
        max_retries=given["max_retries"],
        timeouts={"timeout": given["timeout"], "total_timeout": given["total_timeout"]},
        cache_dir=given["cache_dir"],
        force=given["force"],
        quiet=given["quiet"],
        shard=shard,
        ray=ray,
    )


def _embed_and_write(
    embed, resolution, flags: _EmbedFlags, *, nouns, generate: bool = True, **options
) -> None:
    """Encoder, writer and store from ``flags``; ``embed(resolution, ...)`` the entities; write and report the table.

    ``options`` are the pipeline function's own arguments (template, summaries, strict). Without ``generate`` (texts
    given, not written) no model is resolved.
    """
    encoder = encoder_from_flags(
        flags.encoder, flags.backend, flags.base_url, flags.api_key_env, flags.timeouts
    )
    check_openai_batch(flags.openai_batch, encoder, flags.batch_price)
    generator = None
    if generate and flags.ray is not None:
        generator = _ray_writer(flags)
    elif generate:
        generator = generator_from_flags(
            flags.model,
            flags.backend,
            flags.base_url,
            flags.settings,
            flags.api_key_env,
            flags.max_retries,
            flags.timeouts,
        )
    from bioprofile.profiles.summaries import MissingSummaryWarning

    with open_store(flags.cache_dir) as store, warnings.catch_warnings():
        # the line of _warn_left_out says it once, with the flag that refuses instead
        warnings.simplefilter("ignore", MissingSummaryWarning)
        result = embed(
            resolution,
            generator=generator,
            encoder=batch_encoder(encoder, store, flags.openai_batch, flags.quiet, flags.batch_price),
            store=store,
            show_progress=not flags.quiet,
            shard=flags.shard,
            **options,
        )
    _warn_left_out(result, options.get("summaries"), nouns=nouns)
    _write_embeddings(result, flags, nouns=nouns)


def _ray_writer(flags: _EmbedFlags):
    """The writer of --ray: each actor builds the backend the flags describe (the key from its own environment)."""
    from bioprofile.profiles.ray_fanout import GeneratorSpec, as_ray_writer

    options = backend_options_from_flags(
        flags.backend, flags.base_url, flags.api_key_env, flags.max_retries, flags.timeouts
    )
    spec = GeneratorSpec(flags.model, flags.backend, flags.settings, options)
    return as_ray_writer(spec, ray=flags.ray)


def _warn_left_out(result, summaries: Path | None, *, nouns: tuple[str, str]) -> None:
    """One warning line (even with --quiet: it is not progress) when resolved entities had no text in SUMMARIES."""
    missing = result.provenance.get("entities_without_text") or []
    if summaries is None or not missing:
        return
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    _warn(
        f"{len(missing)} of {len(missing) + len(result)} resolved {nouns[1]} have no text in {summaries.name} "
        f"(first: {shown}): left out (--strict refuses instead)"
    )


def _warn(message: str) -> None:
    """A warning line on stderr."""
    typer.secho(f"warning: {terminal_safe(message)}", err=True, fg=typer.colors.YELLOW)


def _given_ids(ids: list[str] | None, file: Path | None, read, message: str) -> list[str]:
    """The ids given as arguments, then those ``read`` from ``file``; none at all fails with ``message``."""
    given = list(ids or [])
    if file is not None:
        given += read(file)
    if not given:
        fail(message)
    return given


def _checked_output(output: Path, format: str | None, force: bool) -> str:
    """The table format of OUTPUT, once it is known to be writable (before any work, so nothing is thrown away)."""
    from bioprofile.embeddings import resolve_format
    from bioprofile.outputs import check_output_path

    fmt = resolve_format(output, format)
    check_output_path(output, overwrite=force)
    return fmt


def _write_embeddings(result, flags: _EmbedFlags, *, nouns: tuple[str, str]) -> None:
    """Write an embedding table and, unless quiet, show its first texts and say what was written."""
    result.write(flags.output, format=flags.fmt, overwrite=flags.force)
    if not flags.quiet:
        _print_preview(result, header=nouns[0])
        source = result.provenance.get("generator") or result.provenance["source"]
        shard = result.provenance.get("shard")
        of = f", shard {shard['index']}/{shard['count']} of {shard['of']} resolved" if shard else ""
        typer.echo(
            f"wrote {len(result)} {nouns[1]} x {result.dim} dims to {flags.output} "
            f"({source} -> {result.provenance['encoder']}{of})"
        )


def _print_preview(result, rows: int = 5, width: int = 100, header: str = "gene") -> None:
    """The first entities' profile texts, shortened, so a run shows what it embedded."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header, "profile", "|v|")
    for symbol, text, vector in list(zip(result.symbols, result.texts, result.vectors, strict=False))[:rows]:
        flat = terminal_safe(
            " ".join(text.split())
        )  # texts come from a model or a server: no escapes, no markup
        shown = flat if len(flat) <= width else flat[: width - 3] + "..."
        table.add_row(Text(terminal_safe(symbol)), Text(shown), f"{np.linalg.norm(vector):.2f}")
    if len(result) > rows:
        table.caption = f"... and {len(result) - rows} more"
    Console().print(table)
