"""Do RefSeq-summary text vectors let STATE predict held-out perturbations? bioprofile vs one-hot vs random.

The semi-synthetic Perturb-seq data of the test suite (``tests/perturbseq.py``), larger: perturbed genes drawn
from disjoint GO gene sets of GeneAgent's ``GO_terms.csv``, each set shifting its own block of expression features
in one direction; some genes of every set held out of training in every cell type. Features:

- ``bioprofile``: MiniLM vectors of each gene's RefSeq summary (GeneAgent's ``gene_narrative_synopsis.txt``),
  through ``bioprofile.pipeline.embed_genes`` and ``export_state_features``;
- ``random``: random vectors of the same size and scale (drawn per seed);
- ``one-hot``: STATE's default encoding;
- ``control-mean``: no change (the control mean of each cell type), not trained.

STATE's transition model is arc-state's ``state_sm`` shrunk to CPU size (``StateModelSettings()``: width 32, one
layer, cell sets of 16), trained ``--max-steps`` steps per method and seed; cell-eval's ``minimal`` profile scores
the held-out perturbations. ::

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/perturbation_state.py --seeds 0,1,2

Writes ``benchmarks/results/perturbation_state.{md,json,png}`` (the STATE runs go to a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _paths import ROOT, SHARED

from bioprofile import pl
from bioprofile.evaluate.perturbation import PerturbationBenchOptions, benchmark_perturbation
from bioprofile.perturbation import PerturbationColumns, StateModelSettings
from bioprofile.pipeline import embed_genes
from bioprofile.store import Store

sys.path.insert(0, str(ROOT / "tests"))
from perturbseq import build_perturbseq  # noqa: E402  (the suite's builder, at a larger size)


def main() -> None:
    """Build the data, embed the summaries, run the bench, write and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--genes-per-group", type=int, default=5)
    parser.add_argument("--test-per-group", type=int, default=2)
    parser.add_argument("--cells", type=int, default=6, help="cells per perturbation and cell type")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "perturbation_state")
    args = parser.parse_args()
    start = time.time()
    data = build_perturbseq(
        SHARED,
        n_groups=args.groups,
        genes_per_group=args.genes_per_group,
        n_test_per_group=args.test_per_group,
        cells_per_perturbation=args.cells,
        n_features=8 * args.groups,
    )
    with tempfile.TemporaryDirectory(prefix="perturbation_state_") as tmp:
        tmp = Path(tmp)
        data.adata.write_h5ad(tmp / "data.h5ad")
        with Store(tmp / "store.sqlite") as store:
            genes = embed_genes(list(data.summaries), summaries=data.summaries, store=store)
        genes.write(tmp / "refseq_minilm.parquet")
        options = PerturbationBenchOptions(
            test_perturbations=tuple(data.test_perturbations),
            seeds=tuple(int(s) for s in args.seeds.split(",")),
            model=StateModelSettings(max_steps=args.max_steps),
        )
        result = benchmark_perturbation(
            tmp / "data.h5ad",
            {"bioprofile": tmp / "refseq_minilm.parquet"},
            columns=PerturbationColumns(),
            work_dir=tmp / "bench",
            options=options,
        )
    settings = {
        **result.settings,
        "data": {
            "n_cells": data.adata.n_obs,
            "n_features": data.adata.n_vars,
            "cell_types": sorted(set(data.adata.obs["cell_type"])),
            "go_groups": data.groups,
            "builder": "tests/perturbseq.py build_perturbseq",
        },
        "encoder": genes.provenance.get("encoder"),
        "seconds": round(time.time() - start, 1),
        "command": "HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/perturbation_state.py "
        + " ".join(sys.argv[1:]),
    }
    from dataclasses import replace

    result = replace(result, settings=settings)
    pl.write_result(result, args.output, overwrite=True, echo=print)  # .md, .json, .png; the table printed
    print(f"{settings['seconds']} s")


if __name__ == "__main__":
    main()
