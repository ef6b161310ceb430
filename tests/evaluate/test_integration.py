"""scIB integration benchmark: a batch-free embedding beats unintegrated PCA on batch metrics; the multimodal
(RNA + ADT) path runs end to end on a synthetic CITE-seq fixture."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from citeseq import cite_seq_fixture, citeseq_fixture, citeseq_tables

from bioprofile import pl
from bioprofile.cells import embed_multimodal
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.integration import INTEGRATION_COLUMNS, benchmark_integration, paired_rows
from bioprofile.evaluate.modality_matching import MATCHING_COLUMNS, foscttm


def batchy_cells(n_per: int = 40, seed: int = 0):
    """Three cell types × two batches; the batch adds a constant shift to every cell of batch b."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(3, 12))
    labels = np.tile(np.repeat(["A", "B", "C"], n_per), 2)
    batch = np.repeat(["b0", "b1"], 3 * n_per)
    clean = centres[np.searchsorted(["A", "B", "C"], labels)] + rng.normal(scale=0.5, size=(len(labels), 12))
    shifted = clean + (batch == "b1")[:, None] * 2.0
    return clean.astype(np.float32), shifted.astype(np.float32), labels, batch


def test_benchmark_with_baselines_and_plot(tmp_path):
    clean, shifted, labels, batch = batchy_cells()
    adata = ad.AnnData(
        X=np.abs(shifted),
        obs=pd.DataFrame({"batch": batch, "cell_type": labels}, index=[f"c{i}" for i in range(len(labels))]),
    )
    adata.obsm["X_bioprofile"] = clean
    result = benchmark_integration(adata, "batch", "cell_type", n_pcs=10)
    pl.integration_table(result, tmp_path / "scib.png")
    table = result.table
    assert list(table.index) == [
        "X_bioprofile",
        "Unintegrated PCA (expression)",
        "Harmony (expression)",
        "BBKNN (expression)",
    ]
    assert list(table.columns) == INTEGRATION_COLUMNS and table.notna().all().all()
    # the batch-free embedding mixes batches; unintegrated PCA of the shifted data does not
    assert table.loc["X_bioprofile", "iLISI"] > table.loc["Unintegrated PCA (expression)", "iLISI"] + 0.2
    assert table.loc["X_bioprofile", "KMeans ARI"] > 0.9
    np.testing.assert_allclose(
        table["Total"], 0.4 * table["Batch correction"] + 0.6 * table["Bio conservation"]
    )
    assert table.loc["Harmony (expression)", "iLISI"] > table.loc["Unintegrated PCA (expression)", "iLISI"]
    assert (tmp_path / "scib.png").stat().st_size > 1000
    written = result.write(tmp_path / "scib")
    payload = json.loads(written[1].read_text())
    assert payload["settings"]["batch_key"] == "batch" and payload["settings"]["n_pcs"] == 10
    assert payload["provenance"]["libraries"]["scib-metrics"]
    assert [row["method"] for row in payload["rows"]] == list(table.index)
    assert written[0].read_text() == result.to_markdown()
    with pytest.raises(BioprofileInputError, match="no column 'donor'"):
        benchmark_integration(adata, "donor", "cell_type")
    with pytest.raises(BioprofileInputError, match="unknown baselines"):
        benchmark_integration(adata, "batch", "cell_type", baselines=["scvi"])


def test_multimodal_cite_seq_through_scib():
    rna, adt, vectors = cite_seq_fixture(n_per_type=30)
    joint = embed_multimodal(
        rna,
        adt,
        vectors,
        vectors,
        adt_target_key="target",
        rna_kwargs={"normalize": "log1p", "l2": True},
        adt_kwargs={"normalize": "log1p", "l2": True},
    )
    table = benchmark_integration(
        joint, "modality", "cell_type", baselines=["pca"], baseline_on="X_bioprofile", n_pcs=6
    ).table
    assert list(table.index) == ["X_bioprofile", "Unintegrated PCA (X_bioprofile)"]
    assert table.loc["X_bioprofile", "Bio conservation"] > 0.5  # the marker programme survives the text space
    assert 0.0 <= table.loc["X_bioprofile", "Total"] <= 1.0


PAPER_TABLE_2 = [
    "Isolated labels",
    "KMeans NMI",
    "cLISI",
    "Silhouette batch",
    "iLISI",
    "Graph connectivity",
    "Bio conservation",
    "Batch correction",
    "Total",
]


@pytest.mark.slow
def test_semi_synthetic_citeseq_table_with_modality_matching(tmp_path):
    """RNA + protein cells of pbmc68k_reduced in one text space, beside Harmony, BBKNN and PCA, with matching."""
    rna, adt = citeseq_fixture(300)
    genes, proteins = citeseq_tables(rna)
    joint = embed_multimodal(
        rna,
        adt,
        genes,
        proteins,
        rna_kwargs={"l2": True},
        adt_kwargs={"normalize": "log1p", "l2": True},
    )
    result = benchmark_integration(joint, "modality", "cell_type", baseline_on="X_bioprofile", n_pcs=20)
    table = result.table
    print("\n" + result.to_markdown())
    assert list(table.index) == [
        "X_bioprofile",
        "Unintegrated PCA (X_bioprofile)",
        "Harmony (X_bioprofile)",
        "BBKNN (X_bioprofile)",
    ]
    assert set(PAPER_TABLE_2) <= set(table.columns) and table.notna().all().all()
    assert list(table.columns[-5:]) == [*MATCHING_COLUMNS, "Bio conservation", "Batch correction", "Total"]
    assert result.settings["paired_modalities"] == ["ADT", "RNA"]
    np.testing.assert_allclose(
        table["Total"], 0.4 * table["Batch correction"] + 0.6 * table["Bio conservation"]
    )
    assert ((table[MATCHING_COLUMNS] >= 0) & (table[MATCHING_COLUMNS] <= 1)).all().all()
    # the text space pairs a cell's RNA with its own protein far better than chance (1/300, FOSCTTM 0.5)
    assert table.loc["X_bioprofile", "Matching accuracy"] > 2 / 300
    assert table.loc["X_bioprofile", "FOSCTTM"] < 0.4
    # the matching columns come from the pure functions on the paired rows
    first, second = paired_rows(joint, "modality")
    X = joint.obsm["X_bioprofile"]
    assert table.loc["X_bioprofile", "FOSCTTM"] == pytest.approx(foscttm(X[first], X[second]))
    written = result.write(tmp_path / "citeseq")
    pl.integration_table(result, tmp_path / "citeseq.png")
    assert json.loads(written[1].read_text())["rows"][0]["FOSCTTM"] == pytest.approx(table.iloc[0]["FOSCTTM"])
    # unpaired cells (one modality's ids renamed) get no matching columns
    joint.obs["cell_id"] = [
        f"{m}{i}" for m, i in zip(joint.obs["modality"], joint.obs["cell_id"], strict=True)
    ]
    assert paired_rows(joint, "modality") is None


def test_foscttm_is_drawn_on_its_own_inverted_scale():
    """Green is good in every column: FOSCTTM 0 (perfect) gets the colour of a 1 elsewhere, FOSCTTM 1 that of a 0."""
    table = pd.DataFrame(
        {"KMeans NMI": [1.0, 0.0, 0.5], "FOSCTTM": [0.0, 1.0, 0.5], "Total": [0.9, 0.1, np.nan]},
        index=pd.Index(["good", "bad", "mid"], name="method"),
    )
    fig = pl.integration_table(table, show=False, return_fig=True)
    ax = fig.axes[0]
    rgba = np.asarray(ax.images[0].get_array())
    rows = [t.get_text() for t in ax.get_yticklabels()]
    good, bad = rows.index("good"), rows.index("bad")
    np.testing.assert_allclose(rgba[good, 1], rgba[good, 0])  # FOSCTTM 0 looks like NMI 1
    np.testing.assert_allclose(rgba[bad, 1], rgba[bad, 0])  # FOSCTTM 1 looks like NMI 0
    assert not np.allclose(rgba[good, 1], rgba[bad, 1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["KMeans NMI", "FOSCTTM (↓)", "Total"]
    np.testing.assert_allclose(rgba[rows.index("mid"), 2], (0.9, 0.9, 0.9, 1.0))  # a missing score is grey


def test_harmony_on_batches_that_share_no_neighbourhood_says_it_changed_nothing():
    """Why Harmony's row can equal PCA's: every Harmony cluster holds one batch, so it has nothing to regress."""
    from bioprofile.evaluate.integration import harmony_embedding

    clean, shifted, labels, batch = batchy_cells()
    # the batches far apart, as RNA and ADT cells of a joint text space are
    apart = (clean + np.where(batch == "b1", 1.0, -1.0)[:, None] * 20.0).astype(np.float32)
    with pytest.warns(UserWarning, match="Harmony left the embedding unchanged"):
        unchanged = harmony_embedding(apart, batch)
    np.testing.assert_array_equal(unchanged, apart)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a batch shift Harmony can see is corrected, without the warning
        corrected = harmony_embedding(shifted, batch)
    assert not np.allclose(corrected, shifted)
