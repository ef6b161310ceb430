"""The `bioprofile` command line. Each command parses arguments, calls the library, and prints.

This is the one module that speaks in flags. The library names its Python arguments in error messages
(``max_new_tokens``); :class:`BoundaryCommand` is the one place a :class:`BioprofileInputError` becomes one line on
stderr and exit code 2, with each argument name replaced by the command's flag (``--max-new-tokens``).
"""

from __future__ import annotations

import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from bioprofile._version import __version__
from bioprofile.errors import BioprofileInputError
from bioprofile.openai_api import DEFAULT_API_KEY_ENV
from bioprofile.progress import working

# Library argument names that the CLI spells differently: argument -> command parameter.
ARGUMENT_ALIASES = {
    "overwrite": "force",
    "generator": "model",
    "input_path": "input",
    "output_path": "output",
}


def flag_for(argument: str, params: list) -> str | None:
    """The flag (``--max-new-tokens``) or argument metavar (``INPUT``) a command offers for a library argument.

    ``params`` are the command's parameters (typer vendors its own click, so they are matched by duck type).
    """
    name = ARGUMENT_ALIASES.get(argument, argument)
    for param in params:
        if param.name in (argument, name):
            if getattr(param, "param_type_name", "") == "option":
                return max(param.opts, key=len)
            return (param.metavar or param.name or argument).upper()
    return None


def in_flags(message: str, params: list, argument: str | None = None) -> str:
    """``message`` with Python argument names replaced by the command's flags.

    The named ``argument`` is always translated; other words only when they contain an underscore
    (``max_new_tokens``), so plain English words that happen to be parameter names stay as they are.
    """
    words = set(re.findall(r"(?<![\w.-])[a-z][a-z0-9]*_[a-z0-9_]+(?![\w-])", message))
    if argument:
        words.add(argument)
    for word in sorted(words, key=len, reverse=True):
        flag = flag_for(word, params)
        if flag is not None:
            message = re.sub(rf"(?<![\w.-]){re.escape(word)}(?![\w-])", flag, message)
    return message


def fail(message: str) -> None:
    """Print one clear line and exit with code 2 (bad input)."""
    typer.secho(f"error: {' '.join(str(message).split())}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


class BoundaryCommand(TyperCommand):
    """A typer command whose :class:`BioprofileInputError` ends the run as one line on stderr and exit code 2."""

    def invoke(self, ctx: typer.Context):
        """Run the command; bad input becomes :func:`fail` with the message in this command's flags."""
        try:
            return super().invoke(ctx)
        except BioprofileInputError as err:
            fail(in_flags(str(err), self.params, err.argument))


class OneLineErrorsGroup(TyperGroup):
    """The top-level group: click's own usage errors (a bad option value, a missing argument) as one line too.

    Typer would draw them as a multi-line panel; every other bad input here is one line, so these are as well.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the CLI; a usage error prints ``error: ...`` on one line and exits with its code (2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as err:  # click's UsageError and friends (typer vendors click)
            context = getattr(err, "ctx", None)
            if context is not None and type(err).__name__ == "NoArgsIsHelpError":
                typer.echo(context.get_help())  # a bare group or command: its help, as before
                sys.exit(0)
            where = f" (see '{context.command_path} --help')" if context is not None else ""
            message = err.format_message() if hasattr(err, "format_message") else str(err)
            typer.secho(f"error: {' '.join(message.split())}{where}", err=True, fg=typer.colors.RED)
            sys.exit(getattr(err, "exit_code", 2))
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrorsGroup, no_args_is_help=True, add_completion=True, help=__doc__.split("\n")[0]
)
bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks: gene-tasks, gene-sets, clustering, integration."
)
data_app = typer.Typer(
    no_args_is_help=True, help="Datasets from bioprofile/data_manifests/: list and fetch (sha256-checked)."
)
diagnose_app = typer.Typer(
    no_args_is_help=True,
    help="Teacher-forced confidence diagnostics: windows (where a model doubts its answers) and weights.",
)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(diagnose_app, name="diagnose")


def _print_version(value: bool) -> None:
    """Print the installed version and exit 0 when ``--version`` is given."""
    if value:
        typer.echo(f"bioprofile {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """bioprofile: gene embeddings from LLM-written profiles, and BFT fine-tuning of the writer."""


# Options embed-genes, embed-proteins and bench gene-sets share: output, generation, encoding and the store.
_EmbedOutput = Annotated[
    Path, typer.Option("--output", "-o", help="Output file (.parquet, .npz, .h5ad or .pt).")
]
_EmbedFormat = Annotated[
    str | None, typer.Option("--format", help="parquet | npz | h5ad | pt (default: from the suffix).")
]
_EmbedModel = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Profile writer: a local path or hub id (default SmolLM2)."),
]
_EmbedEncoder = Annotated[
    str | None,
    typer.Option(
        "--encoder",
        "-e",
        help="Text encoder (default all-MiniLM-L6-v2; hf:PATH for BERT; openai:MODEL[?dimensions=N] for OpenAI "
        "embeddings or any OpenAI-compatible /v1/embeddings server).",
    ),
]
_EmbedBackend = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Generation engine: transformers | vllm (the vllm extra) | openai (an OpenAI-compatible server; "
        "--model is the served name, the key comes from --api-key-env).",
    ),
]
_EmbedBaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="API root for --backend openai and openai: encoders (default $OPENAI_BASE_URL, else OpenAI).",
    ),
]
_EmbedApiKeyEnv = Annotated[
    str,
    typer.Option(
        "--api-key-env",
        help="Environment variable that holds the API key of --backend openai and of openai: encoders.",
    ),
]
_EmbedOpenAIBatch = Annotated[
    bool,
    typer.Option(
        "--openai-batch",
        help="Encode through the OpenAI Batch API (half the price, up to 24 h): says inputs, tokens and price "
        "before sending, records the batches in the store; rerun the same command to collect them. Polls every "
        "$BIOPROFILE_BATCH_POLL_INTERVAL seconds (default 30).",
    ),
]
_EmbedBatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        help="Prompts per generation batch (default 16; 64 with vllm; requests in flight).",
    ),
]
_EmbedMaxNewTokens = Annotated[
    int, typer.Option("--max-new-tokens", min=1, help="Profile length cap in tokens.")
]


class DType(StrEnum):
    """The weights' dtypes a local writer runs in (``auto``: the engine's choice; vLLM picks bf16 even on CPU)."""

    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    auto = "auto"


_EmbedDtype = Annotated[
    DType,
    typer.Option(
        "--dtype",
        help="Weights' dtype of a local writer; float32 (the default on every backend) makes transformers and "
        "vllm write the same tokens.",
    ),
]
_EmbedDevice = Annotated[
    str | None,
    typer.Option("--device", help="Where a local writer runs: cpu, cuda, cuda:N (default: a GPU if any)."),
]
_EmbedThreads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads of a local writer (default: the CPUs allowed); on a loaded machine 1 can be faster.",
    ),
]
_EmbedMaxRetries = Annotated[
    int | None,
    typer.Option(
        "--max-retries", min=0, help="Retries of a failed request with --backend openai (default 3)."
    ),
]
_EmbedCacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Store location (default: $BIOPROFILE_CACHE_DIR or user cache)."),
]
_EmbedForce = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
_EmbedQuiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")]
# Every long command takes it: its progress bars (on stderr) and the model libraries' bars off.
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


@app.command("embed-genes", cls=BoundaryCommand)
def embed_genes_command(
    ctx: typer.Context,
    genes: Annotated[
        list[str] | None, typer.Argument(help="HGNC symbols, aliases, Ensembl, Entrez or UniProt ids.")
    ] = None,
    genes_file: Annotated[
        Path | None,
        typer.Option("--genes-file", "-f", help="A file of ids (one per line, or a CSV/TSV column)."),
    ] = None,
    output: _EmbedOutput = Path("genes.parquet"),
    format: _EmbedFormat = None,
    model: _EmbedModel = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            "-t",
            help="Prompt template: concise | genept (default: the one --model was trained with, else concise).",
        ),
    ] = None,
    encoder: _EmbedEncoder = None,
    summaries: Annotated[
        Path | None,
        typer.Option(
            "--summaries", help="Embed these texts ('SYMBOL: text' lines or a TSV) instead of generating."
        ),
    ] = None,
    backend: _EmbedBackend = "transformers",
    base_url: _EmbedBaseUrl = None,
    api_key_env: _EmbedApiKeyEnv = "OPENAI_API_KEY",
    openai_batch: _EmbedOpenAIBatch = False,
    batch_size: _EmbedBatchSize = None,
    max_new_tokens: _EmbedMaxNewTokens = 256,
    dtype: _EmbedDtype = DType.float32,
    device: _EmbedDevice = None,
    threads: _EmbedThreads = None,
    max_retries: _EmbedMaxRetries = None,
    cache_dir: _EmbedCacheDir = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on any unknown or ambiguous id.")] = False,
    force: _EmbedForce = False,
    quiet: _EmbedQuiet = False,
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
    _quiet_model_libraries(quiet)
    import warnings

    from bioprofile.genes import CaseOnlyMatchWarning, normalize_genes, read_gene_list
    from bioprofile.pipeline import embed_genes

    ids = _given_ids(
        genes, genes_file, read_gene_list, "no genes given: pass ids as arguments or --genes-file FILE"
    )
    fmt = _checked_output(output, format, force)
    settings = _generation_settings(batch_size, max_new_tokens, dtype, device, threads)
    with warnings.catch_warnings():
        # the warning line below says the same in flags, once
        warnings.simplefilter("ignore", CaseOnlyMatchWarning)
        resolution = normalize_genes(ids, strict=strict, species=species)
    if not quiet and (resolution.unknown or resolution.ambiguous or resolution.case_report()):
        typer.secho(
            f"warning: {in_flags(resolution.report(), ctx.command.params, argument='species')}",
            err=True,
            fg=typer.colors.YELLOW,
        )
    # Summaries replace generation: then no model is resolved (nor the default one converted).
    encoder = _make_encoder(encoder, backend, base_url, api_key_env)
    _check_openai_batch(openai_batch, encoder)
    generator = None
    if not summaries:
        generator = _make_generator(model, backend, base_url, settings, api_key_env, max_retries)
    with _open_store(cache_dir) as store:
        result = embed_genes(
            resolution,
            generator=generator,
            template=template,
            encoder=_batch_encoder(encoder, store, openai_batch, quiet),
            store=store,
            summaries=summaries,
            strict=strict,
            show_progress=not quiet,
        )
    _write_embeddings(result, output, fmt=fmt, force=force, quiet=quiet, nouns=("gene", "genes"))


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


def _quiet_model_libraries(quiet: bool) -> None:
    """Progress on stderr, the model libraries' own bars off (they would interleave); with ``quiet``, their warnings.

    The environment variables are read when those libraries are imported, later; one already imported (a second
    command in the same process) is switched off through its own function.
    """
    import rich

    # Bars drawn without a console of their own (the pipeline's) use rich's global console: stderr, so stdout
    # holds only results (tables meant for stdout are printed on a Console() of their own).
    rich.reconfigure(stderr=True)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # also transformers' loading bars
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if quiet:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # it keeps its own switch, set from the hub's when it was imported
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the hub's bars too
    elif "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules:
        getattr(sys.modules["datasets"], "disable_progress_bars", lambda: None)()


def _generation_settings(batch_size, max_new_tokens: int, dtype: DType, device, threads):
    """The GenerationSettings the generation flags describe."""
    from bioprofile.profiles.generate import GenerationSettings

    return GenerationSettings(
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=DType(dtype).value,
        device=device,
        threads=threads,
    )


def _make_generator(model, backend: str, base_url, settings, api_key_env: str, max_retries=None):
    """The profile writer the generation flags of embed-genes, embed-proteins and bench gene-sets describe."""
    from bioprofile.profiles.backends import make_generator

    return make_generator(
        model,
        backend=backend,
        base_url=base_url if backend == "openai" else None,
        settings=settings,
        api_key_env=api_key_env,
        max_retries=max_retries,
    )


def _make_encoder(encoder: str | None, backend: str, base_url: str | None, api_key_env: str):
    """The encoder spec, or an OpenAI-compatible encoder built on --base-url / --api-key-env."""
    uses_api = encoder is not None and encoder.startswith("openai:")
    if base_url is not None and backend != "openai" and not uses_api:
        fail("--base-url is for --backend openai or an openai: --encoder: drop it or say which uses it")
    if not uses_api:
        return encoder
    from bioprofile.encoders import get_encoder

    return get_encoder(encoder, base_url=base_url, api_key_env=api_key_env)


def _check_openai_batch(openai_batch: bool, encoder) -> None:
    """--openai-batch needs an openai: encoder (checked before any work)."""
    if openai_batch and not str(getattr(encoder, "id", "")).startswith("openai:"):
        fail("--openai-batch is for an openai: --encoder (e.g. --encoder openai:text-embedding-3-small)")


def _batch_encoder(encoder, store, openai_batch: bool, quiet: bool):
    """The encoder, or with --openai-batch the Batch API encoder on it, announcing on stderr unless --quiet."""
    if not openai_batch:
        return encoder
    from bioprofile.encoders.openai_batch import BatchSettings, OpenAIBatchEncoder

    poll = os.environ.get("BIOPROFILE_BATCH_POLL_INTERVAL", "").strip()
    try:
        settings = BatchSettings(poll_interval=float(poll)) if poll else BatchSettings()
    except ValueError:
        fail(f"BIOPROFILE_BATCH_POLL_INTERVAL must be a number of seconds, got {poll!r}")
    say = None if quiet else (lambda line: typer.echo(line, err=True))
    return OpenAIBatchEncoder(encoder, store, settings=settings, say=say)


def _open_store(cache_dir: Path | None):
    """The store under --cache-dir, else the default one."""
    from bioprofile.store import Store

    return Store(cache_dir / "store.sqlite" if cache_dir else None)


def _write_embeddings(
    result, output: Path, *, fmt: str, force: bool, quiet: bool, nouns: tuple[str, str]
) -> None:
    """Write an embedding table and, unless quiet, show its first texts and say what was written."""
    result.write(output, format=fmt, overwrite=force)
    if not quiet:
        noun = nouns[1]
        _print_preview(result, header=nouns[0])
        source = result.provenance.get("generator") or result.provenance["source"]
        typer.echo(
            f"wrote {len(result)} {noun} x {result.dim} dims to {output} ({source} -> {result.provenance['encoder']})"
        )


def _print_preview(result, rows: int = 5, width: int = 100, header: str = "gene") -> None:
    """The first entities' profile texts, shortened, so a run shows what it embedded."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    table = Table(header, "profile", "|v|")
    for symbol, text, vector in list(zip(result.symbols, result.texts, result.vectors, strict=False))[:rows]:
        flat = " ".join(text.split())
        shown = flat if len(flat) <= width else flat[: width - 3] + "..."
        table.add_row(symbol, shown, f"{np.linalg.norm(vector):.2f}")
    if len(result) > rows:
        table.caption = f"... and {len(result) - rows} more"
    Console().print(table)


# Options both diagnose commands take.
_DiagnoseData = Annotated[
    Path, typer.Argument(help="JSONL of 'messages' or 'instruction'/'response' records.")
]
_DiagnoseModel = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Causal LM: a local path or cached hub id (default SmolLM2)."),
]
_DiagnoseOutput = Annotated[Path, typer.Option("--output", "-o", help="Folder for the tables and PNG plots.")]
_DiagnoseRefseq = Annotated[
    bool, typer.Option("--refseq", help="DATA is a 'SYMBOL: summary' file (RefSeq synopses).")
]
_DiagnoseLimit = Annotated[int | None, typer.Option("--limit", min=1, help="Use the first N records.")]
_DiagnoseForce = Annotated[
    bool, typer.Option("--force", help="Replace tables and plots an earlier run left in OUTPUT.")
]
_DiagnoseMaxLength = Annotated[
    int, typer.Option("--max-length", min=2, help="Longest prompt + response in tokens.")
]
_DiagnoseNerModel = Annotated[
    str | None,
    typer.Option(
        "--ner-model",
        metavar="NAME_OR_PATH",
        help="spaCy NER pipeline (package or nlp.to_disk folder) for gene/protein entities beside the HGNC "
        "lexicon (default: scispaCy en_ner_jnlpba_md / en_ner_bionlp13cg_md if installed).",
    ),
]


def _diagnose_examples(data: Path, output: Path, *, limit: int | None, refseq: bool):
    """The examples of DATA, once OUTPUT is known to be writable (checked before any model work)."""
    from bioprofile import diagnose as dx

    dx.check_output_dir(output)
    return dx.read_examples(data, limit=limit, refseq=refseq)


def _diagnose_model(model: str | None, ner_model: str | None, output: Path, files, force: bool):
    """The causal LM and tokenizer, loaded once a named NER pipeline loads and OUTPUT's files may be written."""
    from bioprofile import diagnose as dx

    if ner_model is not None:
        dx.load_ner_pipeline(ner_model)
    dx.check_output_dir(output, files, overwrite=force)  # an earlier run's results are kept unless --force
    return dx.load_causal_lm(model)


@diagnose_app.command("windows", cls=BoundaryCommand)
def diagnose_windows_command(
    data: _DiagnoseData,
    model: _DiagnoseModel = None,
    output: _DiagnoseOutput = Path("diagnose"),
    refseq: _DiagnoseRefseq = False,
    limit: _DiagnoseLimit = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Records per forward pass.")] = 4,
    max_length: _DiagnoseMaxLength = 1024,
    window: Annotated[int, typer.Option("--window", min=1, help="Tokens per window.")] = 16,
    stride: Annotated[
        int | None, typer.Option("--stride", min=1, help="Tokens between windows (default: --window).")
    ] = None,
    low_quantile: Annotated[
        float, typer.Option("--low-quantile", help="Low token: p below this quantile of its response's p.")
    ] = 0.5,
    low_threshold: Annotated[
        float | None, typer.Option("--low-threshold", help="Low token: p below this absolute value instead.")
    ] = None,
    sparse_max_frac: Annotated[
        float, typer.Option("--sparse-max-frac", help="Group A: low fraction at most.")
    ] = 0.25,
    sparse_max_run: Annotated[
        int, typer.Option("--sparse-max-run", help="Group A: longest low run at most.")
    ] = 2,
    dense_min_frac: Annotated[
        float, typer.Option("--dense-min-frac", help="Group B: low fraction at least...")
    ] = 0.75,
    dense_min_run: Annotated[
        int, typer.Option("--dense-min-run", help="...or longest low run at least.")
    ] = 6,
    ner_model: _DiagnoseNerModel = None,
    force: _DiagnoseForce = False,
    quiet: _Quiet = False,
) -> None:
    """Which low-confidence windows of the reference answers hold gene entities and causal links."""
    from rich.console import Console

    # lazy, as in the other commands: pandas (under diagnose and pl) would slow every other command's start
    from bioprofile import diagnose as dx
    from bioprofile.diagnose.report import DIAGNOSIS_FILES
    from bioprofile.pl import plot_group_summary

    rule = dx.WindowRule(window=window, stride=stride, low_quantile=low_quantile, low_threshold=low_threshold,
                         sparse_max_frac=sparse_max_frac, sparse_max_run=sparse_max_run,
                         dense_min_frac=dense_min_frac, dense_min_run=dense_min_run)  # fmt: skip
    examples = _diagnose_examples(data, output, limit=limit, refseq=refseq)
    _quiet_model_libraries(quiet)
    causal_lm, tokenizer = _diagnose_model(model, ner_model, output, DIAGNOSIS_FILES, force)
    with working(f"scoring {len(examples)} responses", not quiet):
        result = dx.diagnose(causal_lm, tokenizer, examples, rule=rule, batch_size=batch_size,
                             max_length=max_length, ner_model=ner_model)  # fmt: skip
    paths = dx.write_diagnosis(result, output, overwrite=force)
    paths["plot"] = output / "diagnose_groups.png"
    plot_group_summary(result.summary, paths["plot"])
    tokens = sum(r.p.size for r in result.responses)
    Console().print(dx.rich_table(result.summary, title=f"{len(examples)} responses, {tokens} tokens"))
    typer.echo("wrote " + ", ".join(str(path) for path in paths.values()))


@diagnose_app.command("weights", cls=BoundaryCommand)
def diagnose_weights_command(
    data: _DiagnoseData,
    model: _DiagnoseModel = None,
    output: _DiagnoseOutput = Path("diagnose"),
    refseq: _DiagnoseRefseq = False,
    limit: _DiagnoseLimit = None,
    max_length: _DiagnoseMaxLength = 1024,
    index: Annotated[int, typer.Option("--index", min=0, help="Which record (0-based).")] = 0,
    loss_window: Annotated[
        int | None, typer.Option("--loss-window", min=1, help="Loss window G (default per method).")
    ] = None,
    ner_model: _DiagnoseNerModel = None,
    force: _DiagnoseForce = False,
    quiet: _Quiet = False,
) -> None:
    """Per-token SFT/DFT/BFT/BFT-v1 loss weights of one reference answer, side by side."""
    from rich.console import Console

    # lazy, as in the other commands: pandas (under diagnose and pl) would slow every other command's start
    from bioprofile import diagnose as dx
    from bioprofile.diagnose.report import weights_files
    from bioprofile.pl import plot_token_weights

    examples = _diagnose_examples(data, output, limit=limit, refseq=refseq)
    if index >= len(examples):
        fail(f"--index {index} is past the last record ({len(examples) - 1}); pick a smaller index")
    _quiet_model_libraries(quiet)
    causal_lm, tokenizer = _diagnose_model(model, ner_model, output, weights_files(index), force)
    with working(f"scoring record {index}", not quiet):
        (scored,) = dx.token_confidences(causal_lm, tokenizer, [examples[index]], max_length=max_length)
    scored.index = index
    table = dx.token_weight_table(dx.tag_response(scored, ner_model=ner_model), window=loss_window)
    paths = dx.write_token_weights(table, output, index, overwrite=force)
    paths["plot"] = output / f"weights_{index}.png"
    plot_token_weights(table, paths["plot"])
    console = Console()
    console.print(dx.rich_table(dx.compact_weight_view(table), title=f"Per-token weights, record {index}"))
    betas = ", ".join(f"{m} {b:.3f}" for m, b in table.attrs["sample_weight"].items())
    console.print(f"sample weights (beta): {betas}")
    typer.echo("wrote " + ", ".join(str(path) for path in paths.values()))


@app.command("train", cls=BoundaryCommand)
def train_command(
    config: Annotated[Path, typer.Argument(help="YAML config (see docs/training.md for the keys).")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Write here instead of the config's output_dir.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key: --set key=value (value read as YAML); repeatable."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an output folder that already holds files.")
    ] = False,
    quiet: _Quiet = False,
) -> None:
    """Fine-tune the profile writer with SFT, DFT or BFT (LoRA by default) as CONFIG says."""
    _quiet_model_libraries(quiet)
    import yaml

    from bioprofile.train.trainer import train_from_config

    changes = {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set {item!r} is not key=value: write e.g. --set max_steps=100")
        try:
            changes[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            fail(f"--set {item[:80]!r}: the value is not YAML ({' '.join(str(err).split())[:120]})")
    if output_dir is not None:
        changes["output_dir"] = str(output_dir)
    out = train_from_config(config, overwrite=force, progress=not quiet, **changes)
    typer.echo(f"wrote {out}")


@data_app.command("list", cls=BoundaryCommand)
def data_list_command() -> None:
    """List the datasets in bioprofile/data_manifests/: name, size, whether the hash is recorded, description."""
    from bioprofile.data import list_manifests

    manifests = list_manifests()
    for m in manifests:
        size = (
            (f"{m.size / 1e6:.1f} MB" if m.size >= 1e5 else f"{m.size / 1e3:.0f} kB") if m.size else "size ?"
        )
        status = "sha256 ok" if m.verified else "unverified"
        typer.echo(f"{m.name:28s} {len(m.files)} file(s) {size:>10s}  {status:10s}  {m.description}")


@data_app.command("fetch", cls=BoundaryCommand)
def data_fetch_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `bioprofile data list`).")],
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Use verified copies from this folder first (shared/data layout)."),
    ] = None,
    trust_unverified: Annotated[
        bool,
        typer.Option(
            "--trust-unverified", help="Download files with no recorded sha256 and print their hash."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a cached file whose sha256 differs from the manifest's.")
    ] = False,
    quiet: _Quiet = False,
) -> None:
    """Download a dataset into the cache ($BIOPROFILE_CACHE_DIR/data or the user cache), checking sha256."""
    from bioprofile.data import fetch_dataset

    _quiet_model_libraries(quiet)
    with working(f"fetching {name}", not quiet):
        fetched = fetch_dataset(name, data_dir=data_dir, trust_unverified=trust_unverified, overwrite=force)
    for f in fetched:
        note = "verified" if f.verified else "UNVERIFIED: record this sha256 in the manifest"
        typer.echo(f"{f.path}  sha256={f.sha256}  ({note})")


@bench_app.command("gene-tasks", cls=BoundaryCommand)
def bench_gene_tasks_command(
    embeddings: Annotated[
        list[Path],
        typer.Option(
            "--embeddings",
            "-e",
            help="Embedding table (.parquet/.npz/.h5ad/.pt or GenePT .pickle); repeat to compare.",
        ),
    ],
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks", help="Comma-separated built-in tasks, or 'all' (default: dosage,ggi,functional_class)."
        ),
    ] = None,
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            "--labels", help="Your own task: CSV with gene,label (or gene_a,gene_b,label); repeatable."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Verified local copy of the task data (shared/data layout)."),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output prefix: writes PREFIX.md, .json, .png.")
    ] = Path("gene_tasks"),
    models: Annotated[
        str | None, typer.Option("--models", help="logreg,rf (default: both for genes, logreg for pairs).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of folds, models and the random baseline.")] = 0,
    pair_split: Annotated[
        str,
        typer.Option(
            "--pair-split",
            help="Folds of a pair task without its own train/test split: gene-disjoint (no gene of a test pair "
            "in any training pair; each fold's pair counts are reported) | pairs (folds over pairs: genes "
            "recur, so even random vectors can score above 0.5). A split column in the task still wins.",
        ),
    ] = "gene-disjoint",
    no_random: Annotated[bool, typer.Option("--no-random", help="Skip the random-vector baseline.")] = False,
    text_length_baseline: Annotated[
        bool,
        typer.Option(
            "--text-length-baseline",
            help="Also score length:NAME, one feature per gene: log1p(word count) of its profile text (tables "
            "with texts only; GenePT pickles have none). Shows how much text length alone predicts.",
        ),
    ] = False,
    symbol_baseline: Annotated[
        bool,
        typer.Option(
            "--symbol-baseline",
            help="Also score symbol:NAME, each gene embedded from its bare symbol (e.g. ZNF154) with the encoder "
            "of the table (or --encoder). Shows how much the gene name alone predicts.",
        ),
    ] = False,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            help="Text encoder of --symbol-baseline, as in embed-genes (default all-MiniLM-L6-v2, hf:PATH for "
            "BERT). Without it: the encoder each table records, if its id can be rebuilt.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Store location (default: $BIOPROFILE_CACHE_DIR or user cache)."),
    ] = None,
    trust_unverified: Annotated[
        bool, typer.Option("--trust-unverified", help="Allow downloading task data with no recorded sha256.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace PREFIX.md, .json and .png.")] = False,
    quiet: _Quiet = False,
) -> None:
    """Score embedding tables on GenePT's gene tasks: a markdown table, a JSON file and a ROC plot."""
    from contextlib import nullcontext

    from bioprofile import pl
    from bioprofile.evaluate.gene_tasks import (
        DEFAULT_TASKS,
        TASKS,
        GeneTaskOptions,
        load_embedding_table,
        load_user_labels,
        run_gene_tasks,
    )
    from bioprofile.evaluate.report import check_output_prefix
    from bioprofile.store import Store

    check_output_prefix(
        output, overwrite=True
    )  # the folder first: a missing one fails before anything is read
    options = GeneTaskOptions(
        models=[m.strip() for m in models.split(",")] if models else None,
        seed=seed,
        pair_split=pair_split,
        random_baseline=not no_random,
        text_length_baseline=text_length_baseline,
        symbol_baseline=symbol_baseline,
        encoder=encoder,
    )
    check_output_prefix(output, overwrite=force)  # an earlier report is kept unless --force
    names = list(DEFAULT_TASKS) if tasks is None and not labels else []
    if tasks:
        names = list(TASKS) if tasks.strip() == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    task_list = names + [load_user_labels(p) for p in labels or []]
    tables = {}
    for path in embeddings:
        tables[path.stem if path.stem not in tables else str(path)] = load_embedding_table(path)
    _quiet_model_libraries(quiet)
    with (
        Store(cache_dir / "store.sqlite" if cache_dir else None)
        if symbol_baseline
        else nullcontext() as store,
        working(f"scoring {len(tables)} tables on {len(task_list)} tasks", not quiet),
    ):
        report = run_gene_tasks(
            tables,
            task_list,
            options=options,
            data_dir=data_dir,
            store=store,
            trust_unverified=trust_unverified,
        )
    written = report.write(output, overwrite=force)
    if report.roc_panels():
        pl.roc_panels(report, output.with_suffix(".png"))
        written.append(output.with_suffix(".png"))
    typer.echo(report.to_markdown())
    typer.echo("wrote " + ", ".join(map(str, written)))


@app.command("embed-cells", cls=BoundaryCommand)
def embed_cells_command(
    ctx: typer.Context,
    input: Annotated[Path, typer.Argument(help="Cells x genes .h5ad (streamed from disk in row chunks).")],
    embeddings: Annotated[
        Path | None, typer.Option("--embeddings", "-e", help="Gene embeddings from embed-genes (GenePT-w).")
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output .h5ad: the input plus obsm/uns.")
    ] = Path("cells.h5ad"),
    method: Annotated[str, typer.Option("--method", help="genept-w | genept-s.")] = "genept-w",
    gene_key: Annotated[
        str | None,
        typer.Option("--gene-key", help="var column with symbols or Ensembl ids (default var_names)."),
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Expression from this layer instead of X.")
    ] = None,
    use_raw: Annotated[bool, typer.Option("--use-raw", help="Expression from .raw instead of X.")] = False,
    normalize: Annotated[
        str, typer.Option("--normalize", help="none (X as is) | log1p (normalize_total+log1p).")
    ] = "none",
    scale: Annotated[
        str, typer.Option("--scale", help="matched (/ n matched genes) | total (/ expression) | none.")
    ] = ("matched"),
    l2: Annotated[bool, typer.Option("--l2", help="Unit-length cell vectors.")] = False,
    top_n: Annotated[int, typer.Option("--top-n", min=1, help="Genes per GenePT-s sentence.")] = 50,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="GenePT-s text encoder (default MiniLM).")
    ] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Cells per chunk.")] = 10_000,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    min_coverage: Annotated[
        float,
        typer.Option(
            "--min-coverage",
            help="Fail when fewer than this fraction of the genes have a vector (lower it for a small panel).",
        ),
    ] = 0.05,
    nonfinite: Annotated[
        str,
        typer.Option(
            "--nonfinite", help="NaN/inf expression: raise (refuse) | zero (read as 0, with a count)."
        ),
    ] = "raise",
    quiet: _Quiet = False,
) -> None:
    """Embed cells from gene embeddings (GenePT-w) or top-gene sentences (GenePT-s) into obsm['X_bioprofile']."""
    import warnings

    from bioprofile.cells import EmbedLimits, GeneptSOptions, GeneptWOptions, embed_cells_file

    # each method's options are built only for that method, so flags of the other one are ignored as before
    if method == "genept-w":
        options = GeneptWOptions(normalize=normalize, scale=scale, l2=l2)
    elif method == "genept-s":
        options = GeneptSOptions(top_n=top_n, encoder=encoder)
    else:
        options = method  # the library names the known methods
    limits = EmbedLimits(chunk_size=chunk_size, min_coverage=min_coverage, nonfinite=nonfinite)
    _quiet_model_libraries(quiet)
    with (
        warnings.catch_warnings(record=True) as caught,
        working(f"embedding the cells of {input.name} ({method})", not quiet),
    ):
        warnings.simplefilter("always", UserWarning)
        info = embed_cells_file(
            input,
            embeddings,
            output,
            method=options,
            gene_key=gene_key,
            layer=layer,
            use_raw=use_raw,
            limits=limits,
            overwrite=force,
        )
    for warning in caught:  # each library warning as one line in flags, not Python's two-line form
        message = in_flags(" ".join(str(warning.message).split()), ctx.command.params)
        typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)
    cov = info["gene_coverage"]
    typer.echo(
        f"wrote obsm['X_bioprofile'] to {output} ({info['method']}; {cov['n_matched']} of {cov['n_vars']} "
        f"genes matched)"
    )


def _read_bench_input(
    input: Path, output: Path, *, force: bool, suffixes=(".md", ".json", ".png"), folders=()
):
    """The AnnData a cell benchmark scores, after checking input and output paths (before any work)."""
    import anndata as ad

    from bioprofile.display import display_value
    from bioprofile.embeddings import UNREADABLE_FILE_ERRORS
    from bioprofile.evaluate.report import check_output_prefix

    check_output_prefix(output, overwrite=force, suffixes=suffixes, folders=folders)
    if not input.is_file():
        what = "is a folder" if input.is_dir() else "does not exist"
        fail(f"input file {input} {what}: pass an .h5ad from embed-cells")
    try:
        return ad.read_h5ad(input)
    except UNREADABLE_FILE_ERRORS as err:
        reason = display_value(" ".join(f"{type(err).__name__}: {err}".split()), 120)
        fail(f"cannot read {input} as h5ad ({reason}): pass an AnnData .h5ad file from embed-cells")


def _write_bench_table(result, output: Path, input: Path, force: bool) -> list[Path]:
    """A benchmark result as PREFIX.md and PREFIX.json (its settings with the input file), and printed."""
    from dataclasses import replace

    result = replace(result, settings={"input": str(input), **result.settings})
    written = result.write(output, overwrite=force)
    typer.echo(result.to_markdown())
    return written


@bench_app.command("clustering", cls=BoundaryCommand)
def bench_clustering_command(
    input: Annotated[Path, typer.Argument(help=".h5ad with cell embeddings in obsm (from embed-cells).")],
    label_key: Annotated[str, typer.Option("--label-key", help="obs column with cell types.")],
    obsm_key: Annotated[
        list[str] | None,
        typer.Option("--obsm-key", help="Embeddings to score (repeatable; default X_bioprofile)."),
    ] = None,
    use_raw: Annotated[bool, typer.Option("--use-raw", help="PCA baseline on .raw.")] = False,
    n_pcs: Annotated[int, typer.Option("--n-pcs", min=2, help="PCs of the expression baseline.")] = 50,
    no_pca: Annotated[bool, typer.Option("--no-pca", help="Skip the PCA-of-expression baseline.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Prefix: PREFIX.md, .json, PREFIX_umap/*.png.")
    ] = Path("clustering"),
    force: Annotated[
        bool, typer.Option("--force", help="Replace PREFIX.md, .json and PREFIX_umap/.")
    ] = False,
    quiet: _Quiet = False,
) -> None:
    """k-means / Leiden ARI, AMI and ASW of cell embeddings against a label column, beside PCA of expression."""
    from bioprofile import pl
    from bioprofile.evaluate.clustering import benchmark_clustering

    umap_dir = output.parent / f"{output.name}_umap"
    adata = _read_bench_input(input, output, force=force, suffixes=(".md", ".json"), folders=[umap_dir])
    _quiet_model_libraries(quiet)
    with working(f"scoring clustering of {adata.n_obs} cells", not quiet):
        result = benchmark_clustering(
            adata,
            label_key,
            obsm_keys=obsm_key or ["X_bioprofile"],
            pca_baseline=not no_pca,
            n_pcs=n_pcs,
            use_raw=use_raw,
            seed=seed,
        )
    written = _write_bench_table(result, output, input, force)
    pl.clustering_umaps(result, umap_dir)
    typer.echo("wrote " + ", ".join(map(str, [*written, umap_dir])))


@bench_app.command("integration", cls=BoundaryCommand)
def bench_integration_command(
    input: Annotated[Path, typer.Argument(help=".h5ad with cell embeddings in obsm (from embed-cells).")],
    batch_key: Annotated[str, typer.Option("--batch-key", help="obs column with the batch (e.g. modality).")],
    label_key: Annotated[str, typer.Option("--label-key", help="obs column with cell types.")],
    obsm_key: Annotated[
        list[str] | None,
        typer.Option("--obsm-key", help="Embeddings to score (repeatable; default X_bioprofile)."),
    ] = None,
    baselines: Annotated[
        str, typer.Option("--baselines", help="Comma list of pca,harmony,bbknn ('' for none).")
    ] = ("pca,harmony,bbknn"),
    baseline_on: Annotated[
        str, typer.Option("--baseline-on", help="'expression' or an obsm key the baselines start from.")
    ] = "expression",
    use_raw: Annotated[bool, typer.Option("--use-raw", help="Expression baselines from .raw.")] = False,
    n_pcs: Annotated[int, typer.Option("--n-pcs", min=2, help="PCs the baselines start from.")] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Prefix: PREFIX.md, .json, .png.")] = Path(
        "integration"
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace PREFIX.md, .json and .png.")] = False,
    quiet: _Quiet = False,
) -> None:
    """ScIB metrics (scib-metrics) of cell embeddings beside unintegrated PCA, Harmony and BBKNN."""
    from bioprofile import pl
    from bioprofile.evaluate.integration import benchmark_integration

    adata = _read_bench_input(input, output, force=force)
    _quiet_model_libraries(quiet)
    with working(f"scoring integration of {adata.n_obs} cells", not quiet):
        result = benchmark_integration(
            adata,
            batch_key,
            label_key,
            obsm_keys=obsm_key or ["X_bioprofile"],
            baselines=[b.strip() for b in baselines.split(",") if b.strip()],
            baseline_on=baseline_on,
            n_pcs=n_pcs,
            use_raw=use_raw,
            seed=seed,
        )
    written = _write_bench_table(result, output, input, force)
    pl.integration_table(result, output.with_suffix(".png"))
    typer.echo("wrote " + ", ".join(map(str, [*written, output.with_suffix(".png")])))


@app.command("export-state", cls=BoundaryCommand)
def export_state_command(
    embeddings: Annotated[
        Path, typer.Option("--embeddings", "-e", help="Gene embedding table (.parquet/.npz/.h5ad/.pt).")
    ],
    adata: Annotated[Path, typer.Option("--adata", help="Perturb-seq .h5ad (only obs is read).")],
    pert_col: Annotated[str, typer.Option("--pert-col", help="obs column of perturbation labels.")],
    control: Annotated[
        str, typer.Option("--control", help="Control label, exactly as in the data (e.g. non-targeting).")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Features file (.pt); a OUTPUT.json sidecar goes beside it."),
    ] = Path("pert.pt"),
    control_vector: Annotated[
        str, typer.Option("--control-vector", help="zeros | mean (of the matched genes' vectors).")
    ] = "zeros",
    allow_missing: Annotated[
        str | None,
        typer.Option(
            "--allow-missing",
            help="What a label with no vector gets: zeros | mean | drop (default: fail, listing them).",
        ),
    ] = None,
    combination: Annotated[
        str, typer.Option("--combination", help="How the genes of a combination (A+B) combine: mean | sum.")
    ] = "mean",
    separator: Annotated[str, typer.Option("--separator", help="Separator of combination labels.")] = "+",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output and sidecar.")] = False,
) -> None:
    """Write STATE perturbation features: each label of obs[PERT_COL] -> a 1-D float32 tensor (torch.save)."""
    from bioprofile.outputs import check_output_path
    from bioprofile.perturbation import export_state_features, sidecar_path

    check_output_path(output, overwrite=force)
    check_output_path(sidecar_path(output), overwrite=force)
    result = export_state_features(
        embeddings,
        adata,
        pert_col=pert_col,
        control=control,
        control_vector=control_vector,
        allow_missing=allow_missing,
        combination=combination,
        separator=separator,
    )
    path, sidecar = result.write(output, overwrite=force)
    missing = result.record["missing"]["n"]
    if missing:
        done = "left out: drop their cells too" if allow_missing == "drop" else f"given {allow_missing}"
        typer.secho(
            f"warning: {missing} perturbation(s) had no vector and were {done} (see {sidecar})",
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(f"wrote {len(result)} perturbations x {result.dim} dims to {path} (record: {sidecar})")


@bench_app.command("gene-sets", cls=BoundaryCommand)
def bench_gene_sets_command(
    input: Annotated[
        Path,
        typer.Argument(
            help="CSV/TSV of gene sets and reference terms (GeneAgent's GO_terms.csv or your own)."
        ),
    ],
    genes_col: Annotated[
        str | None,
        typer.Option(
            "--genes-col",
            help="Column of genes, separated by spaces or commas (default: Genes, gene_set...).",
        ),
    ] = None,
    term_col: Annotated[
        str | None,
        typer.Option("--term-col", help="Column of reference terms (default: Term_Description, term...)."),
    ] = None,
    name_col: Annotated[
        str | None, typer.Option("--name-col", help="Column naming each set (default: GO, id..., else row).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Answer the first N sets.")] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output prefix: writes PREFIX.md and PREFIX.json.")
    ] = Path("gene_sets"),
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Answering model: a local path or hub id (default SmolLM2)."),
    ] = None,
    backend: _EmbedBackend = "transformers",
    base_url: _EmbedBaseUrl = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Prompts per generation batch (default: the backend's)."),
    ] = None,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Answer length cap in tokens.")
    ] = 64,
    dtype: _EmbedDtype = DType.float32,
    device: _EmbedDevice = None,
    threads: _EmbedThreads = None,
    max_retries: _EmbedMaxRetries = None,
    template: Annotated[
        str, typer.Option("--template", "-t", help="Gene-set prompt template (process).")
    ] = "process",
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            "-e",
            help="Encoder of the answer-reference cosine (default all-MiniLM-L6-v2; hf:PATH).",
        ),
    ] = None,
    use_stemmer: Annotated[
        bool, typer.Option("--use-stemmer", help="Porter-stem words before ROUGE.")
    ] = False,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Skip the most-frequent-term baseline.")
    ] = False,
    cache_dir: _EmbedCacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing PREFIX.md / PREFIX.json.")] = False,
    quiet: _Quiet = False,
) -> None:
    """Name the biological process of each gene set with a model; ROUGE and cosine against the reference term."""
    from bioprofile.evaluate.gene_sets import GeneSetOptions, read_gene_sets, run_gene_sets
    from bioprofile.evaluate.report import check_output_prefix
    from bioprofile.store import Store

    check_output_prefix(output, overwrite=force)  # before any work, so no answer is generated for nothing
    sets = read_gene_sets(input, genes_col=genes_col, term_col=term_col, name_col=name_col, limit=limit)
    # --base-url reaches the cosine's openai: encoder as it reaches the writer: the key never goes to another host.
    answer_encoder = _make_encoder(encoder, backend, base_url, DEFAULT_API_KEY_ENV)
    options = GeneSetOptions(
        template=template, encoder=answer_encoder, use_stemmer=use_stemmer, baseline=not no_baseline
    )
    settings = _generation_settings(batch_size, max_new_tokens, dtype, device, threads)
    generator = _make_generator(model, backend, base_url, settings, DEFAULT_API_KEY_ENV, max_retries)
    _quiet_model_libraries(quiet)
    with (
        Store(cache_dir / "store.sqlite" if cache_dir else None) as store,
        working(f"answering {len(sets)} gene sets", not quiet),
    ):
        result = run_gene_sets(
            sets, generator=generator, options=options, store=store, name=_model_label(model)
        )
    written = result.write(output, overwrite=force)
    typer.echo(result.to_markdown().split("\n\n", 1)[0])
    typer.echo("wrote " + ", ".join(map(str, written)))


def _model_label(model: str | None) -> str:
    """A model's name in a table: a local folder by its own name (not its whole path), a hub id as it is."""
    if model is None:
        return "default"
    path = Path(model).expanduser()
    return path.name if path.is_dir() else model


@app.command("embed-proteins", cls=BoundaryCommand)
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
    output: _EmbedOutput = Path("proteins.parquet"),
    format: _EmbedFormat = None,
    model: _EmbedModel = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            "-t",
            help="Prompt template: protein-concise | protein-plain (default: protein-concise, or the protein "
            "template --model was trained with).",
        ),
    ] = None,
    encoder: _EmbedEncoder = None,
    backend: _EmbedBackend = "transformers",
    base_url: _EmbedBaseUrl = None,
    api_key_env: _EmbedApiKeyEnv = "OPENAI_API_KEY",
    openai_batch: _EmbedOpenAIBatch = False,
    batch_size: _EmbedBatchSize = None,
    max_new_tokens: _EmbedMaxNewTokens = 256,
    dtype: _EmbedDtype = DType.float32,
    device: _EmbedDevice = None,
    threads: _EmbedThreads = None,
    max_retries: _EmbedMaxRetries = None,
    cache_dir: _EmbedCacheDir = None,
    include_isotype_controls: Annotated[
        bool,
        typer.Option(
            "--include-isotype-controls", help="Embed isotype controls too (default: report, skip)."
        ),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on any target without a gene.")] = False,
    force: _EmbedForce = False,
    quiet: _EmbedQuiet = False,
) -> None:
    """Embed proteins (CITE-seq antibody targets) by way of LLM-written profiles, one per target, to OUTPUT."""
    _quiet_model_libraries(quiet)
    from bioprofile.pipeline import embed_proteins
    from bioprofile.proteins import normalize_proteins, read_target_list

    message = "no targets given: pass antibody targets as arguments or --targets-file FILE"
    names = _given_ids(targets, targets_file, read_target_list, message)
    fmt = _checked_output(output, format, force)
    settings = _generation_settings(batch_size, max_new_tokens, dtype, device, threads)
    resolution = normalize_proteins(names, strict=strict, include_isotype_controls=include_isotype_controls)
    if not quiet and (resolution.without_gene or resolution.isotype_controls):
        typer.secho(
            f"warning: {in_flags(resolution.report(), ctx.command.params)}", err=True, fg=typer.colors.YELLOW
        )
    encoder = _make_encoder(encoder, backend, base_url, api_key_env)
    _check_openai_batch(openai_batch, encoder)
    with _open_store(cache_dir) as store:
        result = embed_proteins(
            resolution,
            generator=_make_generator(model, backend, base_url, settings, api_key_env, max_retries),
            template=template,
            encoder=_batch_encoder(encoder, store, openai_batch, quiet),
            store=store,
            show_progress=not quiet,
        )
    _write_embeddings(result, output, fmt=fmt, force=force, quiet=quiet, nouns=("protein", "proteins"))


def _named_embeddings(embeddings: list[Path]) -> dict[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its stem) for each feature set of the perturbation bench."""
    named: dict[str, Path] = {}
    for item in embeddings:
        name, sep, path = str(item).partition("=")
        name, path = (name, Path(path)) if sep else (item.stem, item)
        if name in named:
            fail(f"two --embeddings are named {name!r}: name them apart with NAME=PATH")
        named[name] = path
    return named


@bench_app.command("perturbation", cls=BoundaryCommand)
def bench_perturbation_command(
    data: Annotated[Path, typer.Argument(help="Perturb-seq .h5ad (expression in X and obsm[--embed-key]).")],
    embeddings: Annotated[
        list[Path],
        typer.Option(
            "--embeddings",
            "-e",
            help="Feature set: a gene table (.parquet/.npz/.h5ad) or a STATE .pt; NAME=PATH names it (repeatable).",
        ),
    ],
    pert_col: Annotated[str, typer.Option("--pert-col", help="obs column of perturbation labels.")] = "gene",
    control: Annotated[str, typer.Option("--control", help="Control label, exactly as in the data.")] = (
        "non-targeting"
    ),
    cell_type_key: Annotated[str, typer.Option("--cell-type-key", help="obs column of cell types.")] = (
        "cell_type"
    ),
    batch_col: Annotated[str, typer.Option("--batch-col", help="obs column of batches.")] = "gem_group",
    embed_key: Annotated[
        str, typer.Option("--embed-key", help="obsm matrix STATE models ('' for X).")
    ] = "X_hvg",
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Share of perturbations held out of training.")
    ] = 0.2,
    test_perturbations: Annotated[
        str | None, typer.Option("--test-perturbations", help="Comma list of held-out perturbations instead.")
    ] = None,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the held-out draw.")] = 0,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma list of training seeds.")] = "0",
    max_steps: Annotated[int, typer.Option("--max-steps", help="STATE training steps per run.")] = 300,
    gpu: Annotated[
        bool,
        typer.Option(
            "--gpu", help="arc-state's state_sm model and trainer sizes (default: a tiny CPU model)."
        ),
    ] = False,
    profile: Annotated[
        str, typer.Option("--profile", help="cell-eval metric profile: minimal | vcc | full.")
    ] = ("minimal"),
    random: Annotated[bool, typer.Option("--random/--no-random", help="Random-vector baseline.")] = True,
    one_hot: Annotated[bool, typer.Option("--one-hot/--no-one-hot", help="STATE's one-hot baseline.")] = True,
    control_vector: Annotated[
        str, typer.Option("--control-vector", help="Control vector of exported tables: zeros | mean.")
    ] = "zeros",
    allow_missing: Annotated[
        str | None,
        typer.Option("--allow-missing", help="A label with no vector gets: zeros | mean (default: fail)."),
    ] = None,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Prefix: PREFIX.md, .json, .png and the runs in PREFIX_state/."),
    ] = Path("perturbation"),
    force: Annotated[bool, typer.Option("--force", help="Replace the outputs and PREFIX_state/.")] = False,
    quiet: _Quiet = False,
) -> None:
    """STATE trained on each feature set, one-hot and random vectors; cell-eval metrics on held-out perturbations."""
    from bioprofile import pl
    from bioprofile.evaluate.perturbation import (
        PerturbationBenchOptions,
        prepare_perturbation_bench,
        run_perturbation_bench,
    )
    from bioprofile.evaluate.report import check_output_prefix
    from bioprofile.perturbation import PerturbationColumns, StateModelSettings

    work_dir = output.parent / f"{output.name}_state"
    check_output_prefix(output, overwrite=force, folders=[work_dir])
    try:
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        fail(f"--seeds must be a comma list of integers, got {seeds!r}")
    if max_steps < 1:
        fail(f"--max-steps must be at least 1, got {max_steps}")
    model = StateModelSettings.gpu(max_steps=max_steps) if gpu else StateModelSettings(max_steps=max_steps)
    held = (
        None
        if test_perturbations is None
        else tuple(p.strip() for p in test_perturbations.split(",") if p.strip())
    )
    options = PerturbationBenchOptions(
        test_fraction=test_fraction,
        test_perturbations=held,
        split_seed=split_seed,
        seeds=seed_list,
        model=model,
        profile=profile,
        random=random,
        one_hot=one_hot,
        control_vector=control_vector,
        allow_missing=allow_missing,
    )
    columns = PerturbationColumns(pert_col, control, cell_type_key, batch_col, embed_key or None)
    plan = prepare_perturbation_bench(
        data,
        _named_embeddings(embeddings),
        columns=columns,
        work_dir=work_dir,
        options=options,
        overwrite=force,
    )
    typer.echo(f"training {len(plan.methods) - 1} STATE model(s) x {len(seed_list)} seed(s) in {work_dir}")
    with working(f"training and scoring in {work_dir}", not quiet):
        result = run_perturbation_bench(plan)
    written = _write_bench_table(result, output, data, force)
    pl.perturbation_metrics(result, output.with_suffix(".png"))
    typer.echo("wrote " + ", ".join(map(str, [*written, output.with_suffix(".png")])))


cache_app = typer.Typer(
    no_args_is_help=True,
    help="The store of profile texts and vectors: info, prune, export, import (keep it on a local disk).",
)
app.add_typer(cache_app, name="cache")

_CacheModel = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Generator id, its name before '@', or a glob (see 'cache info' for the ids)."
    ),
]
_CacheEncoder = Annotated[
    str | None, typer.Option("--encoder", "-e", help="Encoder id, its name before '@', or a glob.")
]


def _store_file(cache_dir: Path | None) -> Path:
    """The store file under --cache-dir, else the default one."""
    from bioprofile.store import default_store_path

    return cache_dir / "store.sqlite" if cache_dir else default_store_path()


def _existing_store(cache_dir: Path | None):
    """The store under --cache-dir (or the default one), which must exist: a maintenance command creates none."""
    path = _store_file(cache_dir)
    if not path.is_file():
        fail(f"no store at {path}: nothing to do (--cache-dir names the folder that holds store.sqlite)")
    return _open_store(cache_dir)


def _human_bytes(n: int) -> str:
    """A byte count as KiB/MiB/GiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@cache_app.command("info", cls=BoundaryCommand)
def cache_info_command(
    cache_dir: _EmbedCacheDir = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Show where the store is, its size, and how many texts and vectors each model and encoder has there."""
    import json

    from rich.console import Console
    from rich.table import Column, Table

    from bioprofile.cache_admin import cache_info

    info = cache_info(_store_file(cache_dir))
    if json_output:
        typer.echo(json.dumps(info.to_dict(), indent=2))
        return
    console = Console()
    if not info.exists:
        typer.echo(f"no store at {info.path} yet (it is created by the first embed run)")
        return
    mode = "" if info.journal_mode == "wal" else f", journal {info.journal_mode}: a network file system?"
    typer.echo(
        f"store {info.path}: {_human_bytes(info.size_bytes)}, {info.n_profiles} profiles, "
        f"{info.n_vectors} vectors{mode}"
    )
    if info.generators:
        # Ids are what prune and export take: shown whole, never shortened to fit the terminal.
        widest = max(len(row["generator"]) for row in info.generators)
        table = Table(Column("generator (model id)", no_wrap=True, min_width=widest), "texts", "templates")
        table.add_column("oldest", no_wrap=True)
        table.add_column("newest", no_wrap=True)
        for row in info.generators:
            table.add_row(
                row["generator"],
                str(row["profiles"]),
                str(row["templates"]),
                row["oldest"][:10],
                row["newest"][:10],
            )
        console.print(table)
    if info.encoders:
        widest = max(len(row["encoder"]) for row in info.encoders)
        table = Table(Column("encoder", no_wrap=True, min_width=widest), "vectors", "dim", "size")
        for row in info.encoders:
            table.add_row(row["encoder"], str(row["vectors"]), str(row["dim"]), _human_bytes(row["bytes"]))
        console.print(table)
    for name, size in info.folders.items():
        typer.echo(f"{name}/: {_human_bytes(size)}")


@cache_app.command("prune", cls=BoundaryCommand)
def cache_prune_command(
    model: _CacheModel = None,
    encoder: _CacheEncoder = None,
    older_than_days: Annotated[
        float | None,
        typer.Option("--older-than-days", min=0, help="Profiles stored more than this many days ago."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Remove them (without it nothing is removed).")
    ] = False,
    cache_dir: _EmbedCacheDir = None,
) -> None:
    """Remove the profiles of a model or older than some days (and vectors only they used), or an encoder's vectors."""
    from bioprofile.cache_admin import PruneRule, prune_cache

    rule = PruneRule(model=model, encoder=encoder, older_than_days=older_than_days)
    with _existing_store(cache_dir) as store:
        plan = prune_cache(store, rule, dry_run=True)
        if not plan.n_profiles and not plan.n_vectors:
            typer.echo(f"nothing to prune in {store.path}")
            return
        what = f"{plan.n_profiles} profiles and {plan.n_vectors} vectors"
        if dry_run:
            typer.echo(f"would remove {what} from {store.path}:")
            for name, count in {**plan.profiles}.items():
                typer.echo(f"  {count} profiles of {name}")
            for name, count in plan.vectors.items():
                typer.echo(f"  {count} vectors of {name}")
            return
        if not force:
            fail(f"this removes {what} from {store.path}: add --force to remove them (--dry-run lists them)")
        done = prune_cache(store, rule)
    typer.echo(f"removed {what} from {store.path} ({_human_bytes(done.freed_bytes)} freed)")


@cache_app.command("export", cls=BoundaryCommand)
def cache_export_command(
    output: Annotated[Path, typer.Argument(help="The .parquet file to write.")],
    model: _CacheModel = None,
    encoder: _CacheEncoder = None,
    force: _EmbedForce = False,
    cache_dir: _EmbedCacheDir = None,
) -> None:
    """Write the store's texts and vectors (or one model's, one encoder's) to a parquet file for another machine."""
    from bioprofile.cache_admin import export_cache
    from bioprofile.outputs import check_output_path

    check_output_path(output, overwrite=force)
    with _existing_store(cache_dir) as store:
        result = export_cache(store, output, model=model, encoder=encoder, overwrite=force)
    typer.echo(f"wrote {result.profiles} profiles and {result.vectors} vectors to {output}")


@cache_app.command("import", cls=BoundaryCommand)
def cache_import_command(
    input: Annotated[Path, typer.Argument(help="A file 'bioprofile cache export' wrote.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace stored entries that differ from the file's.")
    ] = False,
    cache_dir: _EmbedCacheDir = None,
) -> None:
    """Add the texts and vectors of an export to this store; entries that differ stop it unless --force."""
    from bioprofile.cache_admin import import_cache

    if not input.is_file():  # before the store is opened (and, when there is none yet, created)
        fail(
            f"{input} {'is a folder' if input.is_dir() else 'does not exist'}: give a file 'cache export' wrote"
        )
    with _open_store(cache_dir) as store:
        result = import_cache(store, input, overwrite=force)
    replaced = f", replaced {result.replaced}" if result.replaced else ""
    typer.echo(
        f"added {result.profiles} profiles and {result.vectors} vectors to {store.path} "
        f"({result.identical} already there{replaced})"
    )


if __name__ == "__main__":
    app()
