"""The bench group: gene tasks, clustering, integration, gene sets and perturbation, each written as a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioprofile.cli.boundary import fail
from bioprofile.cli.options import (
    AnswerBatchSize,
    AnswerModel,
    Backend,
    BaseUrl,
    CacheDir,
    CellsInput,
    DType,
    ForceReport,
    LabelKey,
    MaxRetries,
    ObsmKeys,
    PertCol,
    Quiet,
    RequestTimeout,
    Seed,
    TotalTimeout,
    WriterDevice,
    WriterDtype,
    WriterThreads,
)
from bioprofile.cli.steps import (
    encoder_from_flags,
    generator_from_flags,
    open_store,
    quiet_model_libraries,
    settings_from_flags,
)
from bioprofile.openai_api import DEFAULT_API_KEY_ENV
from bioprofile.progress import working


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
    cache_dir: CacheDir = None,
    trust_unverified: Annotated[
        bool, typer.Option("--trust-unverified", help="Allow downloading task data with no recorded sha256.")
    ] = False,
    force: ForceReport = False,
    quiet: Quiet = False,
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
    from bioprofile.evaluate.inputs import named_tables
    from bioprofile.evaluate.report import check_output_prefix

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
    tables = {name: load_embedding_table(path) for name, path in named_tables(embeddings).items()}
    quiet_model_libraries(quiet)
    with (
        open_store(cache_dir) if symbol_baseline else nullcontext() as store,
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
    pl.write_result(report, output, overwrite=force, echo=typer.echo)


def _read_bench_input(
    input: Path, output: Path, *, force: bool, suffixes=(".md", ".json", ".png"), folders=()
):
    """The AnnData a cell benchmark scores, once the output prefix is known to be writable (before any work)."""
    from bioprofile.evaluate.report import check_output_prefix
    from bioprofile.readers import read_h5ad

    check_output_prefix(output, overwrite=force, suffixes=suffixes, folders=folders)
    return read_h5ad(input, what="input file")


def bench_clustering_command(
    input: CellsInput,
    label_key: LabelKey,
    obsm_key: ObsmKeys = None,
    use_raw: Annotated[bool, typer.Option("--use-raw", help="PCA baseline on .raw.")] = False,
    n_pcs: Annotated[int, typer.Option("--n-pcs", min=2, help="PCs of the expression baseline.")] = 50,
    no_pca: Annotated[bool, typer.Option("--no-pca", help="Skip the PCA-of-expression baseline.")] = False,
    seed: Seed = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Prefix: PREFIX.md, .json, PREFIX_umap/*.png.")
    ] = Path("clustering"),
    force: Annotated[
        bool, typer.Option("--force", help="Replace PREFIX.md, .json and PREFIX_umap/.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """k-means / Leiden ARI, AMI and ASW of cell embeddings against a label column, beside PCA of expression."""
    from bioprofile import pl
    from bioprofile.evaluate.clustering import benchmark_clustering

    umap_dir = output.parent / f"{output.name}_umap"
    adata = _read_bench_input(input, output, force=force, suffixes=(".md", ".json"), folders=[umap_dir])
    quiet_model_libraries(quiet)
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
    pl.write_result(result, output, overwrite=force, settings={"input": str(input)}, echo=typer.echo)


def bench_integration_command(
    input: CellsInput,
    batch_key: Annotated[str, typer.Option("--batch-key", help="obs column with the batch (e.g. modality).")],
    label_key: LabelKey,
    obsm_key: ObsmKeys = None,
    baselines: Annotated[
        str, typer.Option("--baselines", help="Comma list of pca,harmony,bbknn ('' for none).")
    ] = ("pca,harmony,bbknn"),
    baseline_on: Annotated[
        str, typer.Option("--baseline-on", help="'expression' or an obsm key the baselines start from.")
    ] = "expression",
    use_raw: Annotated[bool, typer.Option("--use-raw", help="Expression baselines from .raw.")] = False,
    n_pcs: Annotated[int, typer.Option("--n-pcs", min=2, help="PCs the baselines start from.")] = 50,
    neighbors: Annotated[
        str,
        typer.Option(
            "--neighbors", help="kNN search of cLISI, iLISI, graph connectivity: exact, pynndescent or faiss."
        ),
    ] = "exact",
    max_cells: Annotated[
        int | None,
        typer.Option(
            "--max-cells",
            help="Silhouettes on a subsample of N cells, stratified by label x batch (default: all cells).",
        ),
    ] = None,
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Prefix: PREFIX.md, .json, .png.")] = Path(
        "integration"
    ),
    force: ForceReport = False,
    quiet: Quiet = False,
) -> None:
    """ScIB metrics (scib-metrics) of cell embeddings beside unintegrated PCA, Harmony and BBKNN."""
    from bioprofile import pl
    from bioprofile.evaluate.integration import IntegrationOptions, benchmark_integration

    options = IntegrationOptions(neighbors=neighbors, max_cells=max_cells, show_progress=not quiet).check()
    adata = _read_bench_input(input, output, force=force)
    quiet_model_libraries(quiet)
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
        options=options,
    )
    pl.write_result(result, output, overwrite=force, settings={"input": str(input)}, echo=typer.echo)


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
    model: AnswerModel = None,
    backend: Backend = "transformers",
    base_url: BaseUrl = None,
    batch_size: AnswerBatchSize = None,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Answer length cap in tokens.")
    ] = 64,
    dtype: WriterDtype = DType.float32,
    device: WriterDevice = None,
    threads: WriterThreads = None,
    max_retries: MaxRetries = None,
    timeout: RequestTimeout = None,
    total_timeout: TotalTimeout = None,
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
    cache_dir: CacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing PREFIX.md / PREFIX.json.")] = False,
    quiet: Quiet = False,
) -> None:
    """Name the biological process of each gene set with a model; ROUGE and cosine against the reference term."""
    from bioprofile import pl
    from bioprofile.evaluate.gene_sets import GeneSetOptions, read_gene_sets, run_gene_sets
    from bioprofile.evaluate.inputs import model_label
    from bioprofile.evaluate.report import check_output_prefix

    check_output_prefix(output, overwrite=force)  # before any work, so no answer is generated for nothing
    sets = read_gene_sets(input, genes_col=genes_col, term_col=term_col, name_col=name_col, limit=limit)
    # --base-url reaches the cosine's openai: encoder as it reaches the writer: the key never goes to another host.
    timeouts = {"timeout": timeout, "total_timeout": total_timeout}
    answer_encoder = encoder_from_flags(encoder, backend, base_url, DEFAULT_API_KEY_ENV, timeouts)
    options = GeneSetOptions(
        template=template, encoder=answer_encoder, use_stemmer=use_stemmer, baseline=not no_baseline
    )
    settings = settings_from_flags(batch_size, max_new_tokens, dtype, device, threads)
    generator = generator_from_flags(
        model, backend, base_url, settings, DEFAULT_API_KEY_ENV, max_retries, timeouts
    )
    quiet_model_libraries(quiet)
    with (
        open_store(cache_dir) as store,
        working(f"answering {len(sets)} gene sets", not quiet),
    ):
        result = run_gene_sets(
            sets, generator=generator, options=options, store=store, name=model_label(model)
        )
    # plot=False: the command's outputs stay PREFIX.md and PREFIX.json (bioprofile.pl.gene_set_scores draws one)
    pl.write_result(result, output, overwrite=force, plot=False, echo=typer.echo)


def bench_perturbation_command(
    data: Annotated[
        Path, typer.Argument(help="Perturb-seq .h5ad (expression in X, and obsm[--embed-key] if there).")
    ],
    embeddings: Annotated[
        list[Path],
        typer.Option(
            "--embeddings",
            "-e",
            help="Feature set: a gene table (.parquet/.npz/.h5ad) or a STATE .pt; NAME=PATH names it (repeatable).",
        ),
    ],
    pert_col: PertCol = "gene",
    control: Annotated[str, typer.Option("--control", help="Control label, exactly as in the data.")] = (
        "non-targeting"
    ),
    cell_type_key: Annotated[str, typer.Option("--cell-type-key", help="obs column of cell types.")] = (
        "cell_type"
    ),
    batch_col: Annotated[
        str, typer.Option("--batch-col", help="obs column of batches (if absent: one per cell type).")
    ] = "gem_group",
    embed_key: Annotated[
        str, typer.Option("--embed-key", help="obsm matrix STATE models ('' or absent: X).")
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
    quiet: Quiet = False,
) -> None:
    """STATE trained on each feature set, one-hot and random vectors; cell-eval metrics on held-out perturbations."""
    from bioprofile import pl
    from bioprofile.evaluate.inputs import named_tables
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
        named_tables(embeddings),
        columns=columns,
        work_dir=work_dir,
        options=options,
        overwrite=force,
    )
    for note in plan.layout_notes:
        typer.echo(note, err=True)
    typer.echo(f"training {len(plan.methods) - 1} STATE model(s) x {len(seed_list)} seed(s) in {work_dir}")
    with working(f"training and scoring in {work_dir}", not quiet):
        result = run_perturbation_bench(plan)
    pl.write_result(result, output, overwrite=force, settings={"input": str(data)}, echo=typer.echo)
