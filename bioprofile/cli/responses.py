"""The analyze-responses command: response-level metrics of models' answers, from files or asked here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import fail
from bioprofile.cli.options import (
    AnswerBatchSize,
    Backend,
    BaseUrl,
    CacheDir,
    DType,
    ForceReport,
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


def _named_models(specs: list[str]) -> dict[str, str | None]:
    """``NAME=SPEC`` as given, a bare spec by its label (a local folder by its name); the default model alone."""
    from bioprofile.evaluate.inputs import model_label

    if not specs:
        return {model_label(None): None}
    named: dict[str, str | None] = {}
    for spec in specs:
        name, sep, model = spec.partition("=")
        if not (sep and name.strip() and model.strip()) or Path(spec).exists():
            name, model = model_label(spec), spec
        if name.strip() in named:
            fail(f"two --model entries are named {name.strip()!r}: name them apart with --model NAME=SPEC")
        named[name.strip()] = model.strip()
    return named


def analyze_responses_command(
    responses: Annotated[
        list[Path] | None,
        typer.Argument(
            help='JSONL files, one {"model": ..., "response": ...} object per line (several allowed).'
        ),
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            help="Prompts to ask every --model: a text file, one per line, or .jsonl with a 'prompt' field.",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model asked the --prompts: path or hub id (adapter folders too), NAME=SPEC to name its row; "
            "repeat to compare (default: SmolLM2).",
        ),
    ] = None,
    backend: Backend = "transformers",
    base_url: BaseUrl = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", min=0, help="Sampling temperature of --prompts (0: greedy); required."),
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", min=1, help="Answer length cap in tokens; required.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampler seed (with --temperature above 0).")] = 0,
    batch_size: AnswerBatchSize = None,
    dtype: WriterDtype = DType.float32,
    device: WriterDevice = None,
    threads: WriterThreads = None,
    max_retries: MaxRetries = None,
    timeout: RequestTimeout = None,
    total_timeout: TotalTimeout = None,
    drugs: Annotated[
        Path | None,
        typer.Option(
            "--drugs",
            help="Drug list, one name per line (default: the built-in bioprofile.text.DRUG_NAMES).",
        ),
    ] = None,
    no_drug_stems: Annotated[
        bool,
        typer.Option(
            "--no-drug-stems", help="Count only the drug list's names, not words with an INN drug stem."
        ),
    ] = False,
    ner_model: Annotated[
        str | None,
        typer.Option(
            "--ner-model",
            metavar="NAME_OR_PATH",
            help="spaCy NER pipeline for gene/protein entities beside the HGNC lexicon (default: scispaCy "
            "en_ner_jnlpba_md / en_ner_bionlp13cg_md if installed).",
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output prefix: writes PREFIX.md, PREFIX.json, PREFIX.png.")
    ] = Path("responses"),
    cache_dir: CacheDir = None,
    force: ForceReport = False,
    quiet: Quiet = False,
) -> None:
    """Response metrics per model: length, gene entities, causal connectives, shares naming a drug or a mutation."""
    from bioprofile import pl
    from bioprofile.evaluate.report import check_output_prefix
    from bioprofile.evaluate.responses import (
        analyze_responses,
        generate_responses,
        read_drug_names,
        read_prompts,
        read_responses,
    )
    from bioprofile.text import load_ner_pipeline

    if not responses and prompts is None:
        fail("give response files (JSONL of model and response), or --prompts to ask models")
    if prompts is None and model:
        fail("--model needs --prompts: the questions to ask it")
    if prompts is not None and (temperature is None or max_new_tokens is None):
        fail("--prompts needs --temperature and --max-new-tokens: set how the answers are sampled")
    # every input is read and every output checked before a model loads, so bad input costs nothing
    check_output_prefix(output, overwrite=force)
    answers = read_responses(responses) if responses else []
    questions = read_prompts(prompts) if prompts is not None else []
    if drugs is not None:
        read_drug_names(drugs)
    if ner_model is not None:
        load_ner_pipeline(ner_model)
    generated: dict = {}
    if questions:
        models = _named_models(model or [])
        clash = sorted(set(models) & {a.model for a in answers})
        if clash:
            fail(
                f"model {clash[0]!r} is named both in a response file and by --model: name it apart (NAME=SPEC)"
            )
        settings = settings_from_flags(batch_size, max_new_tokens, dtype, device, threads)
        settings = replace(settings, do_sample=temperature > 0, temperature=temperature or 1.0, seed=seed)
        timeouts = {"timeout": timeout, "total_timeout": total_timeout}
        generators = {
            name: generator_from_flags(
                spec, backend, base_url, settings, DEFAULT_API_KEY_ENV, max_retries, timeouts
            )
            for name, spec in models.items()
        }
        generated = {name: {"generator": g.id, "params": dict(g.params)} for name, g in generators.items()}
        quiet_model_libraries(quiet)
        with (
            open_store(cache_dir) as store,
            working(f"asking {len(generators)} model(s) {len(questions)} prompts", not quiet),
        ):
            answers += generate_responses(questions, generators, store=store)
    result = analyze_responses(answers, drugs=drugs, drug_stems=not no_drug_stems, ner_model=ner_model)
    inputs = {
        "response_files": [str(p) for p in responses or []],
        "prompts": None if prompts is None else str(prompts),
        "generation": generated,
    }
    pl.write_result(result, output, overwrite=force, settings=inputs, echo=typer.echo)
