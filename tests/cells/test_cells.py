"""GenePT-w / GenePT-s cell embeddings: hand computations, dense = sparse, chunked = in memory, on-disk streaming."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from citeseq import cite_seq_fixture

from bioprofile.cells import (
    EmbedLimits,
    GeneptSOptions,
    GeneptWOptions,
    embed_cells,
    embed_cells_file,
    embed_multimodal,
    genept_s_sentences,
    genept_w,
    match_genes,
)
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError

# Three genes with vectors (one listed by an alias, one by Ensembl id in a var column) and one without.
VARS = ["TP53", "INK4A", "EGFR", "NOTAGENE"]
ENSEMBL = ["ENSG00000141510", "ENSG00000147889", "ENSG00000146648", "ENSG00000000000"]
VECTORS = {
    "TP53": np.array([1.0, 0.0, 2.0], dtype=np.float32),
    "CDKN2A": np.array([0.0, 1.0, -1.0], dtype=np.float32),
    "EGFR": np.array([3.0, 1.0, 0.0], dtype=np.float32),
}
X = np.array(
    [
        [1.0, 0.0, 2.0, 5.0],
        [0.0, 0.0, 0.0, 3.0],  # no matched expression
        [2.0, 4.0, 0.0, 0.0],
    ],
    dtype=np.float32,
)


def tiny_adata(sparse: bool = False) -> ad.AnnData:
    var = pd.DataFrame({"ensembl": ENSEMBL}, index=VARS)
    return ad.AnnData(
        X=sp.csr_matrix(X) if sparse else X.copy(),
        var=var,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(3)]),
    )


def hand_genept_w(x: np.ndarray, *, scale: str, l2: bool = False) -> np.ndarray:
    E = np.stack([VECTORS["TP53"], VECTORS["CDKN2A"], VECTORS["EGFR"]])
    out = []
    for row in x:
        v = sum(row[j] * E[j] for j in range(3))
        if scale == "matched":
            v = v / 3
        elif scale == "total":
            total = row[:3].sum()
            v = v / total if total else np.zeros(3)
        if l2 and np.linalg.norm(v) > 0:
            v = v / np.linalg.norm(v)
        out.append(v)
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("scale", ["matched", "total", "none"])
def test_genept_w_matches_hand_computation(sparse, scale):
    adata = tiny_adata(sparse)
    embed_cells(
        adata,
        VECTORS,
        method=GeneptWOptions(scale=scale),
        limits=EmbedLimits(min_coverage=0.1, warn_coverage=0.0),
    )
    np.testing.assert_allclose(adata.obsm["X_bioprofile"], hand_genept_w(X, scale=scale), rtol=1e-6)
    info = adata.uns["X_bioprofile"]
    assert info["gene_coverage"]["n_matched"] == 3 and info["gene_coverage"]["unmatched_examples"] == [
        "NOTAGENE"
    ]
    assert info["method"] == "genept-w" and info["scale"] == scale


def test_log1p_normalisation_uses_all_genes_and_l2():
    adata = tiny_adata(sparse=True)
    embed_cells(
        adata, VECTORS, method=GeneptWOptions(normalize="log1p", target_sum=10.0, scale="total", l2=True)
    )
    totals = X.sum(axis=1, keepdims=True)
    expected = hand_genept_w(np.log1p(X / totals * 10.0), scale="total", l2=True)
    np.testing.assert_allclose(adata.obsm["X_bioprofile"], expected, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(adata.obsm["X_bioprofile"][[0, 2]], axis=1), 1.0, rtol=1e-6)
    assert not adata.obsm["X_bioprofile"][1].any()  # the cell with no matched expression stays zero


def test_sparse_input_stays_sparse_and_equals_dense():
    dense, sparse = tiny_adata(False), tiny_adata(True)
    embed_cells(dense, VECTORS, method=GeneptWOptions(normalize="log1p"))
    embed_cells(sparse, VECTORS, method=GeneptWOptions(normalize="log1p"))
    assert sp.issparse(sparse.X) and sparse.X.nnz == np.count_nonzero(X)  # input not densified or modified
    np.testing.assert_allclose(sparse.X.toarray(), X)
    np.testing.assert_allclose(dense.obsm["X_bioprofile"], sparse.obsm["X_bioprofile"], rtol=1e-6)


def random_counts(n_cells=257, n_genes=40, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.7, size=(n_cells, n_genes)).astype(np.float32)
    return sp.csr_matrix(counts)


def test_chunked_equals_in_memory_and_backed(tmp_path):
    from bioprofile.genes import normalize_genes

    genes = [
        g.symbol
        for g in normalize_genes(["TP53", "EGFR", "MYC", "KRAS", "BRCA1", "CD4", "CD8A", "GAPDH"]).genes
    ]
    rng = np.random.default_rng(1)
    table = {g: rng.normal(size=16).astype(np.float32) for g in genes}
    names = genes * 5  # 40 columns, repeats allowed: every column keeps its own weight
    var = pd.DataFrame({"symbol": names}, index=[f"{n}-{i}" for i, n in enumerate(names)])
    adata = ad.AnnData(X=random_counts(), var=var)
    opts = {"gene_key": "symbol", "method": GeneptWOptions(normalize="log1p", scale="total", l2=True)}
    embed_cells(adata, table, limits=EmbedLimits(chunk_size=10**6), **opts)
    whole = adata.obsm["X_bioprofile"].copy()
    embed_cells(adata, table, limits=EmbedLimits(chunk_size=13), **opts)
    np.testing.assert_allclose(adata.obsm["X_bioprofile"], whole, rtol=1e-6, atol=1e-7)

    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    embed_cells(backed, table, limits=EmbedLimits(chunk_size=50), **opts)
    np.testing.assert_allclose(backed.obsm["X_bioprofile"], whole, rtol=1e-6, atol=1e-7)
    backed.file.close()

    out = tmp_path / "out.h5ad"
    info = embed_cells_file(path, table, out, limits=EmbedLimits(chunk_size=64), **opts)
    result = ad.read_h5ad(out)
    np.testing.assert_allclose(result.obsm["X_bioprofile"], whole, rtol=1e-6, atol=1e-7)
    assert (
        result.uns["X_bioprofile"]["gene_coverage"]["n_matched"] == 40 == info["gene_coverage"]["n_matched"]
    )
    np.testing.assert_allclose(result.X.toarray(), adata.X.toarray())  # the rest of the file is untouched
    with pytest.raises(BioprofileInputError, match="already exists"):
        embed_cells_file(path, table, out, **opts)


def test_matching_by_alias_and_ensembl_column():
    match = match_genes(VARS, VECTORS, warn_coverage=0.0)
    assert match.symbols == ["TP53", "CDKN2A", "EGFR"] and match.var_positions.tolist() == [0, 1, 2]
    by_ensembl = tiny_adata()
    embed_cells(by_ensembl, VECTORS, gene_key="ensembl", method=GeneptWOptions(scale="none"))
    np.testing.assert_allclose(by_ensembl.obsm["X_bioprofile"], hand_genept_w(X, scale="none"), rtol=1e-6)


def test_wrong_id_column_is_a_clear_error_and_low_coverage_warns():
    adata = tiny_adata()
    adata.var["junk"] = ["a1", "b2", "c3", "d4"]
    with pytest.raises(BioprofileInputError, match=r"only 0 of 4 genes in var\['junk'\].*gene_key"):
        embed_cells(adata, VECTORS, gene_key="junk")
    with pytest.raises(BioprofileInputError, match="no column 'nope'"):
        embed_cells(adata, VECTORS, gene_key="nope")
    with pytest.warns(UserWarning, match="low gene coverage: 1 of 4"):
        embed_cells(adata, {"TP53": VECTORS["TP53"]})
    with pytest.raises(BioprofileInputError, match="only 1 of 4"):
        embed_cells(adata, {"TP53": VECTORS["TP53"]}, limits=EmbedLimits(min_coverage=0.5))


def test_embeddings_file_and_provenance(tmp_path):
    emb = GeneEmbeddings(
        ids=["HGNC:11998", "HGNC:1787", "HGNC:3236"],
        symbols=list(VECTORS),
        texts=["a", "b", "c"],
        vectors=np.stack(list(VECTORS.values())),
        provenance={"source": "summaries", "encoder": "enc-x"},
    )
    path = emb.write(tmp_path / "genes.parquet")
    adata = tiny_adata()
    embed_cells(adata, path)
    assert adata.uns["X_bioprofile"]["encoder"] == "enc-x"
    assert adata.uns["X_bioprofile"]["embeddings"]["source"] == "summaries"
    adata.write_h5ad(tmp_path / "roundtrip.h5ad")  # provenance must be writable


def test_genept_s_sentences_order_and_cache(tmp_path):
    match = match_genes(VARS, VECTORS, warn_coverage=0.0)
    assert genept_s_sentences(sp.csr_matrix(X), match, top_n=2) == ["EGFR TP53", "", "CDKN2A TP53"]

    class CountingEncoder:
        id, dim = "counting", 2

        def __init__(self):
            self.seen = []

        def encode(self, texts):
            self.seen += list(texts)
            return np.array([[len(t), t.count(" ")] for t in texts], dtype=np.float32)

    from bioprofile.store import Store

    encoder = CountingEncoder()
    with Store(tmp_path / "s.sqlite") as store:
        adata = tiny_adata(sparse=True)
        embed_cells(adata, VECTORS, method=GeneptSOptions(top_n=2, encoder=encoder, store=store))
        embed_cells(adata, VECTORS, method=GeneptSOptions(top_n=2, encoder=encoder, store=store))
    assert sorted(encoder.seen) == sorted(["EGFR TP53", "", "CDKN2A TP53"])  # second run: all from the cache
    np.testing.assert_allclose(adata.obsm["X_bioprofile"][0], [9, 1])
    assert adata.uns["X_bioprofile"]["method"] == "genept-s"


def test_multimodal_joint_embedding():
    rna, adt, vectors = cite_seq_fixture()
    joint = embed_multimodal(
        rna,
        adt,
        vectors,
        {t: vectors[t] for t in adt.var["target"]},
        adt_target_key="target",
        rna_kwargs={"normalize": "log1p", "l2": True},
        adt_kwargs={"normalize": "log1p", "l2": True},
    )
    assert joint.n_obs == rna.n_obs + adt.n_obs and joint.obsm["X_bioprofile"].shape == (joint.n_obs, 8)
    assert joint.obs["modality"].value_counts().to_dict() == {"RNA": rna.n_obs, "ADT": adt.n_obs}
    assert list(joint.obs["cell_type"][: rna.n_obs]) == list(rna.obs["cell_type"])
    assert joint.uns["X_bioprofile"]["ADT"]["gene_coverage"]["n_matched"] == 6
    # ADT cells must be embedded with their own counts: same as embedding ADT alone
    alone = adt.copy()
    embed_cells(alone, vectors, gene_key="target", method=GeneptWOptions(normalize="log1p", l2=True))
    np.testing.assert_allclose(joint.obsm["X_bioprofile"][rna.n_obs :], alone.obsm["X_bioprofile"], rtol=1e-6)
    with pytest.raises(BioprofileInputError, match="differ in width"):
        embed_multimodal(
            rna, adt, vectors, {t: np.ones(3) for t in adt.var["target"]}, adt_target_key="target"
        )


def test_key_added_keeps_each_calls_result_and_provenance():
    adata = tiny_adata()
    embed_cells(adata, VECTORS, method=GeneptWOptions(scale="matched"), key_added="X_matched")
    embed_cells(adata, VECTORS, method=GeneptWOptions(scale="total", l2=True), key_added="X_total")
    assert adata.uns["X_matched"]["scale"] == "matched" and adata.uns["X_matched"]["key_added"] == "X_matched"
    assert adata.uns["X_total"]["scale"] == "total" and adata.uns["X_total"]["l2"] is True
    np.testing.assert_allclose(adata.obsm["X_matched"], hand_genept_w(X, scale="matched"), rtol=1e-6)
    np.testing.assert_allclose(adata.obsm["X_total"], hand_genept_w(X, scale="total", l2=True), rtol=1e-6)
    assert "bioprofile" not in adata.uns and "X_bioprofile" not in adata.obsm


def test_copy_returns_a_new_anndata_and_leaves_the_input_alone(tmp_path):
    adata = tiny_adata(sparse=True)
    result = embed_cells(adata, VECTORS, copy=True)
    assert result is not adata and "X_bioprofile" not in adata.obsm and not adata.uns
    np.testing.assert_allclose(adata.X.toarray(), X)
    np.testing.assert_allclose(result.obsm["X_bioprofile"], hand_genept_w(X, scale="matched"), rtol=1e-6)
    assert result.uns["X_bioprofile"]["method"] == "genept-w"
    assert embed_cells(adata, VECTORS) is None  # in place: nothing returned, the input holds the result
    np.testing.assert_array_equal(adata.obsm["X_bioprofile"], result.obsm["X_bioprofile"])

    path = tmp_path / "in.h5ad"
    tiny_adata().write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    with pytest.raises(BioprofileInputError, match="copy=True needs an AnnData in memory") as err:
        embed_cells(backed, VECTORS, copy=True)
    assert err.value.argument == "copy"
    backed.file.close()


def test_options_objects_are_checked_and_equal_the_defaults():
    match = match_genes(VARS, VECTORS, warn_coverage=0.0)
    sparse = sp.csr_matrix(X)
    np.testing.assert_array_equal(genept_w(sparse, match), genept_w(sparse, match, GeneptWOptions()))
    np.testing.assert_array_equal(
        genept_w(sparse, match, GeneptWOptions(normalize="log1p", l2=True), chunk_size=1),
        genept_w(X, match, GeneptWOptions(normalize="log1p", l2=True)),
    )
    adata, by_name = tiny_adata(), tiny_adata()
    embed_cells(adata, VECTORS)
    embed_cells(by_name, VECTORS, method="genept-w", limits=EmbedLimits())
    np.testing.assert_array_equal(adata.obsm["X_bioprofile"], by_name.obsm["X_bioprofile"])
    assert adata.uns["X_bioprofile"] == by_name.uns["X_bioprofile"]
    for make, argument in (
        (lambda: GeneptWOptions(normalize="log2"), "normalize"),
        (lambda: GeneptWOptions(scale="mean"), "scale"),
        (lambda: GeneptSOptions(top_n=0), "top_n"),
        (lambda: EmbedLimits(chunk_size=0), "chunk_size"),
        (lambda: embed_cells(tiny_adata(), VECTORS, method="genept-x"), "method"),
        (lambda: embed_cells(tiny_adata(), None), "embeddings"),
        (lambda: embed_cells(tiny_adata(), VECTORS, use_raw=True), "use_raw"),
        (lambda: embed_cells(tiny_adata(), VECTORS, layer="counts"), "layer"),
    ):
        with pytest.raises(BioprofileInputError) as err:
            make()
        assert err.value.argument == argument and argument in str(err.value)
        assert "--" not in str(err.value)  # the library names Python arguments; the CLI translates them


def test_embed_cells_file_follows_key_added(tmp_path):
    path, first, second = tmp_path / "in.h5ad", tmp_path / "first.h5ad", tmp_path / "second.h5ad"
    tiny_adata(sparse=True).write_h5ad(path)
    info = embed_cells_file(path, VECTORS, first, method=GeneptWOptions(scale="total"), key_added="X_total")
    assert info["key_added"] == "X_total" and info["scale"] == "total"
    embed_cells_file(first, VECTORS, second)
    result = ad.read_h5ad(second)
    assert set(result.obsm) == {"X_total", "X_bioprofile"} and {"X_total", "X_bioprofile"} <= set(result.uns)
    assert result.uns["X_total"]["scale"] == "total" and result.uns["X_bioprofile"]["scale"] == "matched"
    np.testing.assert_allclose(result.obsm["X_total"], hand_genept_w(X, scale="total"), rtol=1e-6)
    np.testing.assert_allclose(result.obsm["X_bioprofile"], hand_genept_w(X, scale="matched"), rtol=1e-6)
    embed_cells_file(
        second, VECTORS, first, method=GeneptWOptions(scale="none"), key_added="X_total", overwrite=True
    )
    replaced = ad.read_h5ad(first)
    assert replaced.uns["X_total"]["scale"] == "none"  # the same key is replaced, the other kept
    np.testing.assert_allclose(replaced.obsm["X_total"], hand_genept_w(X, scale="none"), rtol=1e-6)
    assert "X_bioprofile" in replaced.obsm
    with pytest.raises(BioprofileInputError, match="must differ") as err:
        embed_cells_file(path, VECTORS, path, overwrite=True)
    assert err.value.argument == "output_path"
    with pytest.raises(BioprofileInputError, match="unknown method"):
        embed_cells_file(path, VECTORS, tmp_path / "never.h5ad", method="genept-x")
    assert not (tmp_path / "never.h5ad").exists()


def test_multimodal_key_added_and_options_object():
    rna, adt, vectors = cite_seq_fixture(n_per_type=10)
    proteins = {t: vectors[t] for t in adt.var["target"]}
    flat = embed_multimodal(
        rna, adt, vectors, proteins, adt_target_key="target", adt_kwargs={"normalize": "log1p", "l2": True}
    )
    joint = embed_multimodal(
        rna,
        adt,
        vectors,
        proteins,
        adt_target_key="target",
        adt_kwargs={
            "method": GeneptWOptions(normalize="log1p", l2=True),
            "limits": EmbedLimits(chunk_size=7),
        },
        key_added="X_joint",
    )
    np.testing.assert_array_equal(joint.obsm["X_joint"], flat.obsm["X_bioprofile"])
    assert set(joint.uns["X_joint"]) == {"RNA", "ADT"} and "X_bioprofile" not in joint.uns
    assert (
        joint.uns["X_joint"]["ADT"]["normalize"] == "log1p"
        and joint.uns["X_joint"]["RNA"]["normalize"] == "none"
    )
    with pytest.raises(BioprofileInputError, match="not both"):
        embed_multimodal(
            rna, adt, vectors, proteins, adt_kwargs={"normalize": "log1p", "method": GeneptWOptions()}
        )


def test_public_cell_functions_take_at_most_ten_parameters():
    import inspect

    import bioprofile.cells as cells

    for name in cells.__all__:
        obj = getattr(cells, name)
        if callable(obj):
            assert len(inspect.signature(obj).parameters) <= 10, name
