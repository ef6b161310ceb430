"""Modality matching on hand-checked arrays, and RNA + protein-table cells in one space on the CITE-seq fixture."""

from __future__ import annotations

import numpy as np
import pytest
from citeseq import DISCORDANT, PANEL, citeseq_fixture, citeseq_tables
from scipy.spatial.distance import cdist

from bioprofile.cells import CELL_ID_KEY, GeneptWOptions, embed_cells, embed_multimodal
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.modality_matching import foscttm, matching_accuracy, modality_matching


def test_perfect_pairs_match_and_have_zero_foscttm():
    a = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    b = a + 0.1
    assert matching_accuracy(a, b) == 1.0 and foscttm(a, b) == 0.0
    assert modality_matching(a, b) == {"Matching accuracy": 1.0, "FOSCTTM": 0.0}


def test_two_swapped_cells_by_hand():
    a = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    b = np.array([[10.0, 0.0], [0.0, 0.0], [0.0, 10.0]])  # cells 0 and 1 swapped in b
    # a0: b1 is nearer than b0 (0 < 10), b2 ties (10 = 10, not nearer): 1/2; a1 likewise 1/2; a2: 0. Same
    # backwards, so FOSCTTM = (1/2 + 1/2 + 0) / 3; only cell 2 finds its partner.
    assert foscttm(a, b) == pytest.approx(1 / 3)
    assert matching_accuracy(a, b) == pytest.approx(1 / 3) == matching_accuracy(b, a)


def test_ties_miss_in_accuracy_and_do_not_count_in_foscttm():
    a = np.array([[0.0, 0.0], [2.0, 0.0]])
    b = np.array([[1.0, 0.0], [-1.0, 0.0]])
    # a0 is 1 from b0 and 1 from b1 (a tie: a miss); a1 is 3 from b1 but 1 from b0 (a miss)
    assert matching_accuracy(a, b) == 0.0
    # forward: a0 0 (tie), a1 1; backward: b0 0 (tie with a1), b1 1 (a0 at 1 < 3)
    assert foscttm(a, b) == pytest.approx(0.5)


def test_chunks_and_brute_force_agree():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(57, 5))
    b = a + rng.normal(scale=0.8, size=a.shape)
    d = cdist(a, b)
    true = np.diag(d)
    expected_acc = np.mean([(np.delete(d[i], i) > true[i]).all() for i in range(len(a))])
    n = len(a)
    fwd = np.array([(np.delete(d[i], i) < true[i]).sum() / (n - 1) for i in range(n)])
    bwd = np.array([(np.delete(d[:, i], i) < true[i]).sum() / (n - 1) for i in range(n)])
    assert matching_accuracy(a, b, chunk_size=4) == pytest.approx(expected_acc) == matching_accuracy(a, b)
    assert (
        foscttm(a, b, chunk_size=5) == pytest.approx(np.mean((fwd + bwd) / 2)) == pytest.approx(foscttm(a, b))
    )
    assert 0.0 < foscttm(a, b) < 0.5
    with pytest.raises(BioprofileInputError, match="same"):
        foscttm(a, b[:, :3])
    with pytest.raises(BioprofileInputError, match="at least 2"):
        matching_accuracy(a[:1], b[:1])


def test_fixture_is_seeded_real_cells_with_a_panel():
    rna, adt = citeseq_fixture(120)
    again, adt_again = citeseq_fixture(120)
    np.testing.assert_array_equal(adt.X, adt_again.X)
    assert list(rna.obs_names) == list(adt.obs_names) and rna.n_vars == 765 and adt.n_vars == len(PANEL)
    assert 15 <= len(PANEL) <= 25 and set(DISCORDANT) <= set(PANEL)
    assert rna.obs["cell_type"].nunique() >= 5  # pbmc68k_reduced's bulk_labels
    # a concordant target follows its gene's RNA, a discordant one does not
    rho = {t: np.corrcoef(adt[:, t].X.ravel(), rna[:, PANEL[t]].X.toarray().ravel())[0, 1] for t in PANEL}
    assert rho["CD20"] > 0.4 and abs(rho["CD47"]) < 0.25


def test_protein_table_matches_antibodies_by_target():
    rna, adt = citeseq_fixture(80)
    genes, proteins = citeseq_tables(rna)
    # vendor-decorated names map to their targets, never through HGNC (CD45RA and CD45RO stay apart)
    adt.var_names = [f"{t}_TotalSeqC" for t in adt.var_names]
    adt = adt[:, [*adt.var_names]].copy()
    adt.var["extra"] = 0
    joint = embed_multimodal(rna, adt, genes, proteins, adt_kwargs={"normalize": "log1p", "l2": True})
    n = rna.n_obs
    assert joint.obs["modality"].value_counts().to_dict() == {"RNA": n, "ADT": n}
    assert (
        list(joint.obs[CELL_ID_KEY][:n]) == list(joint.obs[CELL_ID_KEY][n:]) == list(map(str, rna.obs_names))
    )
    adt_prov = joint.uns["X_bioprofile"]["ADT"]
    assert adt_prov["protein_targets"]["CD45RO_TotalSeqC"] == "CD45RO"
    assert adt_prov["antibodies_without_vector"] == [] and adt_prov["gene_coverage"]["n_matched"] == len(
        PANEL
    )
    assert adt_prov["protein_table_genes"]["CD45RA"] == ["PTPRC"]
    # the same as embedding the ADT cells alone, named by their targets, with each target's row
    alone = adt.copy()
    alone.var_names = list(PANEL)
    by_target = dict(zip(proteins.symbols, proteins.vectors, strict=True))
    assert not np.allclose(by_target["CD45RA"], by_target["CD45RO"])
    embed_cells(alone, by_target, method=GeneptWOptions(normalize="log1p", l2=True))
    np.testing.assert_allclose(joint.obsm["X_bioprofile"][n:], alone.obsm["X_bioprofile"], rtol=1e-5)
    # an antibody the table lacks is reported, the rest still embed
    short = proteins.select([s for s in proteins.symbols if s != "CD47"])
    partial = embed_multimodal(rna, adt, genes, short)
    assert partial.uns["X_bioprofile"]["ADT"]["antibodies_without_vector"] == ["CD47_TotalSeqC"]
