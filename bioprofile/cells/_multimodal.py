"""RNA and ADT (protein) cells embedded into one text-defined space, with per-modality provenance.

The ADT side takes either vectors keyed by gene (or target) names, or a protein table (an
:class:`~bioprofile.embeddings.EntityEmbeddings` of kind ``"protein"``, as :func:`bioprofile.embed_proteins` writes):
then each antibody name is mapped to its target by :func:`bioprofile.proteins.normalize_proteins` and matched to the
table's row of that target by key (``"adt:<target>"``), never through HGNC, so CD45RA and CD45RO keep their own
vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioprofile.cells._anndata import KEY_ADDED, embed_cells, expression_matrix, var_identifiers
from bioprofile.cells._genept import GeneptWOptions
from bioprofile.cells._match import GeneTable
from bioprofile.embeddings import EntityEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.proteins import KEY_PREFIX, normalize_proteins

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["CELL_ID_KEY", "embed_multimodal"]

#: ``obs`` column of the joint AnnData with each cell's name in its own modality: equal values are paired cells.
CELL_ID_KEY = "cell_id"
# var column of the ADT view holding each antibody's protein-table key (never an HGNC symbol)
_PROTEIN_KEY = "bioprofile_protein_key"

_GENEPT_W_FIELDS = frozenset(f.name for f in fields(GeneptWOptions))


def _modality_options(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`embed_cells` keywords of one modality; GenePT-w fields given flat become ``method=GeneptWOptions``."""
    options = dict(extra or {})
    flat = {k: options.pop(k) for k in list(options) if k in _GENEPT_W_FIELDS}
    if flat:
        if "method" in options:
            raise BioprofileInputError(
                f"pass GenePT-w options ({', '.join(sorted(flat))}) inside method=GeneptWOptions(...) or flat, "
                "not both",
                argument="method",
            )
        options["method"] = GeneptWOptions(**flat)
    return options


def _protein_keys(names: list[str], table: EntityEmbeddings) -> tuple[list[str], dict[str, Any]]:
    """The protein-table key of each antibody name (the name itself where none) and the mapping, for provenance."""
    resolution = normalize_proteins(names, include_isotype_controls=True)
    keys = set(table.ids)
    targets: dict[str, str | None] = {}
    out = []
    for name in names:
        target = resolution.inputs.get(" ".join(name.split()))
        key = f"{KEY_PREFIX}{target}" if target is not None else None
        targets[name] = target if key in keys else None
        out.append(key if key in keys else name)
    mapping = {
        "protein_targets": targets,
        "antibodies_without_vector": [n for n, t in targets.items() if t is None],
        "protein_table_genes": {
            t: info.get("genes", []) for t, info in table.provenance.get("protein_targets", {}).items()
        },
    }
    return out, mapping


def embed_multimodal(
    rna: AnnData,
    adt: AnnData,
    gene_embeddings: GeneTable,
    protein_embeddings: GeneTable,
    *,
    rna_gene_key: str | None = None,
    adt_target_key: str | None = None,
    rna_kwargs: Mapping[str, Any] | None = None,
    adt_kwargs: Mapping[str, Any] | None = None,
    modality_key: str = "modality",
    key_added: str = KEY_ADDED,
) -> AnnData:
    """Embed RNA cells with gene vectors and ADT (protein) cells with protein-target vectors into one space.

    Both tables must come from the same text encoder, so both modalities land in the same vector space without
    any paired training; the joint embedding is then scored with ``modality_key`` as the batch
    (:func:`bioprofile.evaluate.integration.benchmark_integration`).

    Parameters
    ----------
    rna, adt
        RNA cells x genes and ADT cells x antibodies.
    gene_embeddings, protein_embeddings
        Vectors for RNA genes and for the antibodies: a protein table (kind ``"protein"``, or a file holding
        one), whose rows are matched by target, or vectors keyed by the genes (or names) the antibodies target.
    rna_gene_key, adt_target_key
        ``var`` columns holding the gene symbols / target names (``None``: ``var_names``).
    rna_kwargs, adt_kwargs
        Further :func:`embed_cells` keywords per modality (``method``, ``layer``, ``use_raw``, ``limits``);
        :class:`GeneptWOptions` fields may be given flat (``{"normalize": "log1p", "l2": True}``).
    modality_key
        ``obs`` column of the result naming each cell's modality (``"RNA"`` or ``"ADT"``).
    key_added
        ``obsm`` key of the joint embedding and ``uns`` key of the per-modality provenance.

    Returns
    -------
    AnnData
        ``rna.n_obs + adt.n_obs`` cells with the shared ``obs`` columns, ``obs[modality_key]``,
        ``obs["cell_id"]`` (:data:`CELL_ID_KEY`: the cell's name in its own AnnData, so equal ids are paired cells),
        ``obsm[key_added]`` and ``uns[key_added]`` = ``{"RNA": provenance, "ADT": provenance}``; with a protein
        table the ADT provenance also maps each antibody to its target (``protein_targets``).
    """
    import anndata as ad
    import pandas as pd

    if isinstance(protein_embeddings, (str, Path)):
        protein_embeddings = EntityEmbeddings.read(protein_embeddings)
    parts, provenance = [], {}
    for name, data, table, gene_key, extra in (
        ("RNA", rna, gene_embeddings, rna_gene_key, rna_kwargs),
        ("ADT", adt, protein_embeddings, adt_target_key, adt_kwargs),
    ):
        options = _modality_options(extra)
        layer, use_raw = options.pop("layer", None), options.pop("use_raw", False)
        view = ad.AnnData(
            X=expression_matrix(data, layer, use_raw),
            obs=data.obs.copy(),
            var=(data.raw.var if use_raw else data.var).copy(),
        )
        mapping = None
        if name == "ADT" and isinstance(table, EntityEmbeddings) and table.kind == "protein":
            names, _ = var_identifiers(view, gene_key, False)
            view.var[_PROTEIN_KEY], mapping = _protein_keys(names, table)
            table, gene_key = dict(zip(table.ids, table.vectors, strict=True)), _PROTEIN_KEY
        embed_cells(view, table, gene_key=gene_key, key_added=key_added, **options)
        parts.append((name, view))
        provenance[name] = dict(view.uns[key_added]) | (mapping or {})
    dims = {v.obsm[key_added].shape[1] for _, v in parts}
    if len(dims) != 1:
        raise BioprofileInputError(
            f"gene and protein vectors differ in width ({sorted(dims)}): embed both with the same encoder"
        )
    shared = [
        c
        for c in parts[0][1].obs.columns
        if c in parts[1][1].obs.columns and c not in (modality_key, CELL_ID_KEY)
    ]
    obs = pd.concat(
        [
            v.obs[shared].assign(**{modality_key: name, CELL_ID_KEY: list(map(str, v.obs_names))})
            for name, v in parts
        ]
    )
    obs.index = [f"{name}:{i}" for name, v in parts for i in v.obs_names]
    obs[modality_key] = pd.Categorical(obs[modality_key], categories=["RNA", "ADT"])
    joint = ad.AnnData(obs=obs, obsm={key_added: np.vstack([v.obsm[key_added] for _, v in parts])})
    joint.uns[key_added] = provenance
    return joint
