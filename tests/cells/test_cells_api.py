"""The scanpy-shaped API: bioprofile.tl (obsm/uns/varm, key_added, copy) and bioprofile.pl for cells (axes, colours)."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba

import bioprofile as bp
from bioprofile import cells
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError

MARKERS = ["CD3D", "CD3E", "CD79A", "CD79B", "MS4A1", "LYZ", "FCGR3A", "NKG7", "GNLY", "CST3"]


@pytest.fixture(scope="module")
def pbmc():
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    lognorm = adata.raw.to_adata()  # log-normalised, 765 genes; uns holds scanpy's bulk_labels_colors
    lognorm.obs = adata.obs[["bulk_labels", "n_counts"]].copy()
    lognorm.obsm["X_umap"] = adata.obsm["X_umap"]
    return lognorm


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return GeneEmbeddings(ids=MARKERS, symbols=MARKERS, texts=MARKERS, vectors=rng.normal(size=(10, 6)))


def test_tl_is_the_cells_api_under_scanpys_name():
    assert bp.tl.embed_cells is cells.embed_cells
    assert bp.tl.gene_vectors_to_varm is cells.gene_vectors_to_varm
    assert bp.tl.embed_multimodal is cells.embed_multimodal
    assert set(bp.__all__) >= {"tl", "pl"}


def test_import_bioprofile_stays_light():
    code = "import sys, bioprofile; print('scipy' in sys.modules, 'bioprofile.cells' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_embed_cells_key_added_and_copy(pbmc, table):
    limits = cells.EmbedLimits(min_coverage=0.0, warn_coverage=0.0)
    original = pbmc.copy()
    out = bp.tl.embed_cells(pbmc, table, key_added="X_markers", copy=True, limits=limits)
    assert "X_markers" not in pbmc.obsm and "X_markers" not in pbmc.uns  # the input is untouched
    assert out.obsm["X_markers"].shape == (700, 6) and out.uns["X_markers"]["key_added"] == "X_markers"
    assert bp.tl.embed_cells(original, table, key_added="X_markers", limits=limits) is None  # in place
    np.testing.assert_array_equal(original.obsm["X_markers"], out.obsm["X_markers"])


def test_gene_vectors_to_varm_records_genes_without_a_vector(pbmc, table, tmp_path):
    out = bp.tl.gene_vectors_to_varm(pbmc, table, copy=True)
    assert "bioprofile" not in pbmc.varm
    varm = out.varm["bioprofile"]
    assert varm.shape == (765, 6) and np.isfinite(varm).all()
    has = out.var["bioprofile_has_vector"].to_numpy()
    assert has.sum() == 10
    record = out.uns["bioprofile"]
    assert record["n_vars"] == 765 and record["n_with_vector"] == 10
    assert len(record["genes_without_vector"]) == 755 and "CD3D" not in record["genes_without_vector"]
    vectors = table.to_dict()
    for gene in MARKERS:
        np.testing.assert_allclose(varm[list(out.var_names).index(gene)], vectors[gene])
    assert not varm[~has].any()  # rows of genes without a vector are zero, and flagged as such
    out.write_h5ad(tmp_path / "varm.h5ad")  # the record is plain data h5ad stores
    assert ad.read_h5ad(tmp_path / "varm.h5ad").uns["bioprofile"]["n_with_vector"] == 10


def test_gene_vectors_to_varm_by_ensembl_column_and_in_place():
    adata = ad.AnnData(
        X=np.ones((2, 3), dtype=np.float32),
        var=pd.DataFrame(
            {"ensembl": ["ENSG00000141510", "ENSG00000146648", "ENSG00000000000"]}, index=list("abc")
        ),
    )
    vectors = {"TP53": np.array([1.0, 2.0]), "EGFR": np.array([3.0, 4.0])}
    assert bp.tl.gene_vectors_to_varm(adata, vectors, gene_key="ensembl", key_added="genes") is None
    np.testing.assert_allclose(adata.varm["genes"], [[1, 2], [3, 4], [0, 0]])
    assert adata.var["genes_has_vector"].tolist() == [True, True, False]
    assert adata.uns["genes"]["genes_without_vector"] == ["c"]


def test_gene_vectors_to_varm_refuses_no_match():
    adata = ad.AnnData(X=np.ones((2, 2), dtype=np.float32), var=pd.DataFrame(index=["x1", "y2"]))
    with pytest.raises(BioprofileInputError, match="only 0 of 2 genes"):
        bp.tl.gene_vectors_to_varm(adata, {"TP53": np.ones(2)})


def test_cell_embedding_returns_axes_and_reuses_scanpys_colours(pbmc):
    ax = bp.pl.cell_embedding(pbmc, basis="X_umap", color="bulk_labels")
    assert isinstance(ax, Axes)
    categories = list(pbmc.obs["bulk_labels"].cat.categories)
    stored = list(pbmc.uns["bulk_labels_colors"])
    drawn = {c.get_label(): c.get_facecolor()[0] for c in ax.collections}
    assert list(drawn) == categories
    for category, colour in zip(categories, stored, strict=True):
        np.testing.assert_allclose(drawn[category], to_rgba(colour))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == categories
    assert "bulk_labels_colors" in pbmc.uns and len(pbmc.uns["bulk_labels_colors"]) == len(stored)


def test_cell_embedding_numbers_palette_and_errors(pbmc):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert bp.pl.cell_embedding(pbmc, basis="X_umap", color="n_counts", ax=ax) is ax
    assert len(ax.figure.axes) == 2  # a colour bar for numbers
    plain = pbmc.copy()
    plain.obs["group"] = pd.Categorical(["a", "b"] * 350)
    ax = bp.pl.cell_embedding(plain, basis="X_umap", color="group")
    assert len(ax.collections) == 2 and "group_colors" not in plain.uns  # a palette, uns not written
    with pytest.raises(BioprofileInputError, match="no obsm\\['X_nope'\\]"):
        bp.pl.cell_embedding(pbmc, basis="X_nope")
    with pytest.raises(BioprofileInputError, match="no obs column 'nope'"):
        bp.pl.cell_embedding(pbmc, basis="X_umap", color="nope")
    with pytest.raises(BioprofileInputError, match="components"):
        bp.pl.cell_embedding(pbmc, basis="X_umap", components=(0, 5))
