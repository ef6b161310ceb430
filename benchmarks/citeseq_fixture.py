"""Write the semi-synthetic CITE-seq fixture, and the joint RNA + protein embedding of it, for ``bench integration``.

The fixture is the one the tests use (``tests/citeseq.py``: scanpy's ``pbmc68k_reduced`` cells and cell types,
with ADT counts derived from the RNA of each antibody's target gene); this script imports it from there rather
than keeping a copy. Given a gene table and a protein table from one text encoder, it also writes the joint
embedding (:func:`bioprofile.cells.embed_multimodal`: RNA cells from gene vectors, ADT cells from protein vectors,
``obs["modality"]`` the batch), ready for ``bioprofile bench integration``.

Usage (the recorded run, docs/integration.md)::

    python benchmarks/citeseq_fixture.py --cells 700 --genes genes.parquet --proteins proteins.parquet \
        -o citeseq_joint.h5ad
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _paths import ROOT

from bioprofile.cells import embed_multimodal
from bioprofile.embeddings import check_output_path

sys.path.insert(0, str(ROOT / "tests"))  # the fixture builder lives with the tests that use it
from citeseq import PANEL, citeseq_fixture  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Write RNA/ADT fixture files (``--rna``/``--adt``) and, with both tables, the joint embedding."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=700, help="cells kept of the 700 (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--genes", type=Path, help="gene table (embed-genes) for the RNA cells")
    parser.add_argument("--proteins", type=Path, help="protein table (embed-proteins) for the ADT cells")
    parser.add_argument("--rna", type=Path, help="also write the RNA AnnData here")
    parser.add_argument("--adt", type=Path, help="also write the ADT AnnData here")
    parser.add_argument("--targets", action="store_true", help="print the panel's targets and stop")
    parser.add_argument("-o", "--output", type=Path, default=Path("citeseq_joint.h5ad"))
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    if args.targets:
        print(" ".join(PANEL))
        return
    joint = args.genes is not None and args.proteins is not None
    for path in (args.rna, args.adt, args.output if joint else None):
        if path is not None:
            check_output_path(path, overwrite=args.force)
    rna, adt = citeseq_fixture(None if args.cells >= 700 else args.cells, seed=args.seed)
    for adata, path in ((rna, args.rna), (adt, args.adt)):
        if path is not None:
            adata.write_h5ad(path)
            print(f"wrote {path} ({adata.n_obs} cells x {adata.n_vars})")
    if not joint:
        return
    combined = embed_multimodal(
        rna,
        adt,
        args.genes,
        args.proteins,
        rna_kwargs={"l2": True},
        adt_kwargs={"normalize": "log1p", "l2": True},
    )
    combined.write_h5ad(args.output)
    coverage = {m: combined.uns["X_bioprofile"][m].get("gene_coverage") for m in ("RNA", "ADT")}
    print(f"wrote {args.output} ({combined.n_obs} cells, obsm['X_bioprofile']); coverage: {coverage}")


if __name__ == "__main__":
    main()
