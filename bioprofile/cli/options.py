"""Option definitions several commands share: defined once here, reused by name in each command's signature.

Each alias is an ``Annotated`` type typer reads as one flag with its help; a command gives the default. Options only
one command takes stay in that command's module.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

# Options embed-genes, embed-proteins and bench gene-sets share: output, generation, encoding and the store.
EmbedOutput = Annotated[
    Path, typer.Option("--output", "-o", help="Output file (.parquet, .npz, .h5ad or .pt).")
]
EmbedFormat = Annotated[
    str | None, typer.Option("--format", help="parquet | npz | h5ad | pt (default: from the suffix).")
]
EmbedModel = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Profile writer: a local path or hub id (default SmolLM2)."),
]
EmbedEncoder = Annotated[
    str | None,
    typer.Option(
        "--encoder",
        "-e",
        help="Text encoder (default all-MiniLM-L6-v2; hf:PATH for BERT; openai:MODEL[?dimensions=N] for OpenAI "
        "embeddings or any OpenAI-compatible /v1/embeddings server).",
    ),
]
Backend = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Generation engine: transformers | vllm (the vllm extra) | openai (an OpenAI-compatible server; "
        "--model is the served name, the key comes from --api-key-env).",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="API root for --backend openai and openai: encoders (default $OPENAI_BASE_URL, else OpenAI).",
    ),
]
ApiKeyEnv = Annotated[
    str,
    typer.Option(
        "--api-key-env",
        help="Environment variable that holds the API key of --backend openai and of openai: encoders.",
    ),
]
OpenAIBatch = Annotated[
    bool,
    typer.Option(
        "--openai-batch",
        help="Encode through the OpenAI Batch API (half the price, up to 24 h): says inputs, tokens and price "
        "before sending, records the batches in the store; rerun the same command to collect them. Polls every "
        "$BIOPROFILE_BATCH_POLL_INTERVAL seconds (default 30).",
    ),
]
OpenAIBatchPrice = Annotated[
    float | None,
    typer.Option(
        "--batch-price",
        min=0,
        metavar="USD",
        help="With --openai-batch: the Batch API's price in US dollars per 1M input tokens, for the announcement "
        "(default: the model's published rate, whose date the announcement gives).",
    ),
]
EmbedBatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        help="Prompts per generation batch (default 16; 64 with vllm; requests in flight).",
    ),
]
# Options of the commands that ask a model questions (bench gene-sets, bench de-reasoning, analyze-responses).
AnswerModel = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Answering model: a local path or hub id (default SmolLM2)."),
]
AnswerBatchSize = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Prompts per generation batch (default: the backend's)."),
]
EmbedMaxNewTokens = Annotated[
    int, typer.Option("--max-new-tokens", min=1, help="Profile length cap in tokens.")
]


class DType(StrEnum):
    """The weights' dtypes a local writer runs in (``auto``: the engine's choice; vLLM picks bf16 even on CPU)."""

    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    auto = "auto"


WriterDtype = Annotated[
    DType,
    typer.Option(
        "--dtype",
        help="Weights' dtype of a local writer; float32 (the default on every backend) makes transformers and "
        "vllm write the same tokens.",
    ),
]
WriterDevice = Annotated[
    str | None,
    typer.Option("--device", help="Where a local writer runs: cpu, cuda, cuda:N (default: a GPU if any)."),
]
WriterThreads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads of a local writer (default: the CPUs allowed); on a loaded machine 1 can be faster.",
    ),
]
MaxRetries = Annotated[
    int | None,
    typer.Option(
        "--max-retries", min=0, help="Retries of a failed request with --backend openai (default 3)."
    ),
]
RequestTimeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        help="Seconds one try of a server request may wait for an answer (default: 300 for --backend openai, "
        "60 for an openai: encoder).",
    ),
]
TotalTimeout = Annotated[
    float | None,
    typer.Option(
        "--total-timeout",
        min=0,
        help="Seconds a server request may take in all, retries included (default: three tries' worth, at most "
        "600); a server that sends a byte a second trips it.",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Write the missing profiles on a Ray cluster (the ray extra), the driver storing them as they come: "
        "local (a new one here), auto (the one 'ray start --head' runs here), HOST:PORT or ray://HOST:10001. "
        "Every worker needs bioprofile, the backend's extra and the model.",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Store location (default: $BIOPROFILE_CACHE_DIR or user cache)."),
]
ForceOutput = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
QuietSummary = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")]
# Every long command takes it: its progress bars (on stderr) and the model libraries' bars off.
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]

# Options of the benchmarks that score cell embeddings in an .h5ad (bench clustering and bench integration).
CellsInput = Annotated[Path, typer.Argument(help=".h5ad with cell embeddings in obsm (from embed-cells).")]
LabelKey = Annotated[str, typer.Option("--label-key", help="obs column with cell types.")]
ObsmKeys = Annotated[
    list[str] | None,
    typer.Option("--obsm-key", help="Embeddings to score (repeatable; default X_bioprofile)."),
]
Seed = Annotated[int, typer.Option("--seed")]
ForceReport = Annotated[bool, typer.Option("--force", help="Replace PREFIX.md, .json and .png.")]
# The perturbation label column of export-state and bench perturbation.
PertCol = Annotated[str, typer.Option("--pert-col", help="obs column of perturbation labels.")]
