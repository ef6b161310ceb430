import numpy as np
import pytest

from bioprofile.embeddings import FORMATS, GeneEmbeddings
from bioprofile.errors import BioprofileInputError


@pytest.fixture
def emb():
    rng = np.random.default_rng(0)
    return GeneEmbeddings(
        ids=["HGNC:11998", "HGNC:1100"],
        symbols=["TP53", "BRCA1"],
        texts=["TP53 is a tumour suppressor.", "BRCA1 repairs DNA."],
        vectors=rng.normal(size=(2, 5)).astype(np.float32),
        provenance={"generator": "tiny@abc", "template": "concise", "encoder": "minilm", "params": {"t": 0}},
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, emb, fmt):
    path = emb.write(tmp_path / f"genes.{fmt}")
    back = GeneEmbeddings.read(path)
    assert back.symbols == emb.symbols
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    if fmt != "pt":  # STATE's .pt is a bare {symbol: tensor} dict
        assert back.ids == emb.ids and back.texts == emb.texts
        assert back.provenance == emb.provenance
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_refuses_to_overwrite(tmp_path, emb):
    path = emb.write(tmp_path / "genes.parquet")
    before = path.read_bytes()
    other = GeneEmbeddings(emb.ids, emb.symbols, emb.texts, emb.vectors + 1, emb.provenance)
    with pytest.raises(BioprofileInputError, match="set overwrite"):
        other.write(path)
    assert path.read_bytes() == before
    other.write(path, overwrite=True)
    np.testing.assert_array_equal(GeneEmbeddings.read(path).vectors, other.vectors)


def test_bad_paths(tmp_path, emb):
    with pytest.raises(BioprofileInputError, match="does not exist"):
        emb.write(tmp_path / "missing" / "genes.parquet")
    with pytest.raises(BioprofileInputError, match="unknown format"):
        emb.write(tmp_path / "genes.bin", format="bin")
    with pytest.raises(ValueError, match="one id, symbol"):
        GeneEmbeddings(["a"], ["A", "B"], ["x"], np.zeros((1, 3)))


def test_anndata_keys(emb):
    adata = emb.to_anndata()
    assert adata.shape == (2, 5)
    assert adata.uns["bioprofile"]["template"] == "concise"
    assert list(adata.obs_names) == ["TP53", "BRCA1"]


def test_select_reorders_rows_and_keeps_provenance(emb):
    picked = emb.select(["BRCA1", "TP53"])
    assert picked.symbols == ["BRCA1", "TP53"] and picked.ids == ["HGNC:1100", "HGNC:11998"]
    assert picked.texts == [emb.texts[1], emb.texts[0]]
    np.testing.assert_array_equal(picked.vectors, emb.vectors[[1, 0]])
    assert picked.provenance == emb.provenance
    with pytest.raises(BioprofileInputError, match="1 gene.*not in the table"):
        emb.select(["TP53", "MYC"])
