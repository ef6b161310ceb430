"""``bench de-reasoning``: a model answers VCWorld's questions, scored per cell line beside two baselines.

Each question: is gene G differentially expressed after drug D in cell line C? The baselines are the majority class
and always-yes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.options import (
    AnswerBatchSize,
    AnswerModel,
    Backend,
    BaseUrl,
    CacheDir,
    DType,
    MaxRetries,
    Quiet,
    RequestTimeout,
    TotalTimeout,
    WriterDevice,
    WriterDtype,
    WriterThreads,
)
from bioprofile.cli.steps import generator_from_flags, open_store, quiet_model_libraries, settings_from_flags
from bioprofile.openai_api import DEFAULT_API_KEY_ENV
from bioprofile.progress import working


def bench_de_reasoning_command(
    records: Annotated[
        list[Path],
        typer.Argument(
            metavar="RECORDS",
            help="Record files: VCWorld's <cell line>_DE.csv (pert,gene,label,split), or one table with a "
            "cell_line column; labels yes/no or 1/0.",
        ),
    ],
    split: Annotated[
        str | None,
        typer.Option("--split", help="Score only this split (e.g. test: VCWorld's held-out drugs)."),
    ] = None,
    cell_line: Annotated[
        list[str] | None, typer.Option("--cell-line", help="Score only this cell line (repeatable).")
    ] = None,
    per_cell_line: Annotated[
        int | None,
        typer.Option(
            "--per-cell-line",
            min=2,
            help="Ask at most N questions per cell line, drawn with --seed keeping both classes.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --per-cell-line draw.")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output prefix: writes PREFIX.md and PREFIX.json.")
    ] = Path("de_reasoning"),
    model: AnswerModel = None,
    backend: Backend = "transformers",
    base_url: BaseUrl = None,
    batch_size: AnswerBatchSize = None,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Answer length cap in tokens (reasoning included).")
    ] = 256,
    dtype: WriterDtype = DType.float32,
    device: WriterDevice = None,
    threads: WriterThreads = None,
    max_retries: MaxRetries = None,
    timeout: RequestTimeout = None,
    total_timeout: TotalTimeout = None,
    template: Annotated[
        str,
        typer.Option(
            "--template",
            "-t",
            help="DE-question prompt template: de-reasoning (reasoning, then the answer line) or de-direct (the answer alone).",
        ),
    ] = "de-reasoning",
    cache_dir: CacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing PREFIX.md / PREFIX.json.")] = False,
    quiet: Quiet = False,
) -> None:
    """Ask a model whether each gene is differentially expressed after each drug; accuracy per cell line."""
    from bioprofile import pl
    from bioprofile.cli.boundary import fail
    from bioprofile.evaluate.de_reasoning import read_de_records, run_de_reasoning
    from bioprofile.evaluate.inputs import model_label
    from bioprofile.evaluate.report import check_output_prefix
    from bioprofile.profiles import backend_option_names
    from bioprofile.profiles.de_prompts import get_de_template

    # Everything a user can get wrong is checked before the store opens or a model loads.
    check_output_prefix(output, overwrite=force)
    questions = read_de_records(
        records, split=split, cell_lines=cell_line, per_cell_line=per_cell_line, seed=seed
    )
    question_template = get_de_template(template)
    if base_url is not None and "base_url" not in backend_option_names(backend):
        fail(f"--base-url is not an option of --backend {backend}: drop it or choose --backend openai")
    settings = settings_from_flags(batch_size, max_new_tokens, dtype, device, threads)
    timeouts = {"timeout": timeout, "total_timeout": total_timeout}
    generator = generator_from_flags(
        model, backend, base_url, settings, DEFAULT_API_KEY_ENV, max_retries, timeouts
    )
    quiet_model_libraries(quiet)
    with (
        open_store(cache_dir) as store,
        working(f"answering {len(questions)} DE questions", not quiet),
    ):
        result = run_de_reasoning(
            questions, generator=generator, template=question_template, store=store, name=model_label(model)
        )
    pl.write_result(
        result,
        output,
        overwrite=force,
        plot=False,
        # what chose the questions, so the run can be repeated from the JSON alone
        settings={
            "records": [str(p) for p in records],
            "split": split,
            "cell_line": cell_line,
            "per_cell_line": per_cell_line,
            "seed": seed,
        },
        echo=typer.echo,
    )
