"""The diagnose group: teacher-forced confidence diagnostics of a writer (windows, weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import fail
from bioprofile.cli.options import Quiet
from bioprofile.cli.steps import quiet_model_libraries
from bioprofile.progress import working

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
    quiet: Quiet = False,
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
    quiet_model_libraries(quiet)
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
    quiet: Quiet = False,
) -> None:
    """Per-token SFT/DFT/BFT/BFT-v1 loss weights of one reference answer, side by side."""
    from rich.console import Console

    # lazy, as in the other commands: pandas (under diagnose and pl) would slow every other command's start
    from bioprofile import diagnose as dx
    from bioprofile.diagnose.report import weights_files
    from bioprofile.pl import plot_token_weights

    dx.check_weight_window(loss_window)  # before any record is read or model loaded
    examples = _diagnose_examples(data, output, limit=limit, refseq=refseq)
    if index >= len(examples):
        fail(f"--index {index} is past the last record ({len(examples) - 1}); pick a smaller index")
    quiet_model_libraries(quiet)
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
