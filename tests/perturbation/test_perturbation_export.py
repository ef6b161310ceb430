"""STATE perturbation features: export from a small table, load with weights_only, and every missing-label rule."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.genes import normalize_genes
from bioprofile.perturbation import (
    MissingPerturbationsError,
    export_state_features,
    sidecar_path,
)

TABLE_GENES = ["TP53", "MYC", "MAX", "CEBPE", "KRAS", "GATA1"]


@pytest.fixture(scope="module")
def table() -> GeneEmbeddings:
    """Six real genes (HGNC ids as the ids, as embed-genes writes them), 8-dim vectors."""
    genes = normalize_genes(TABLE_GENES, strict=True).genes
    rng = np.random.default_rng(0)
    return GeneEmbeddings(
        ids=[g.hgnc_id for g in genes],
        symbols=[g.symbol for g in genes],
        texts=[f"{g.symbol} profile" for g in genes],
        vectors=rng.normal(size=(len(genes), 8)),
        provenance={"encoder": "test-encoder", "generator": "test-writer"},
    )


def cells(labels: list[str], repeat: int = 3) -> ad.AnnData:
    """An AnnData with ``repeat`` cells of each perturbation label in obs['gene']."""
    obs = pd.DataFrame({"gene": [label for label in labels for _ in range(repeat)]})
    obs.index = [f"c{i}" for i in range(len(obs))]
    var = pd.DataFrame(index=[f"g{i}" for i in range(4)])
    return ad.AnnData(X=np.zeros((len(obs), 4), dtype=np.float32), obs=obs, var=var)


def vector(table: GeneEmbeddings, symbol: str) -> np.ndarray:
    return table.vectors[table.symbols.index(symbol)]


def test_export_writes_a_dict_that_loads_with_weights_only(table, tmp_path):
    labels = ["non-targeting", "TP53", "MYC", "KRAS"]
    result = export_state_features(table, cells(labels), pert_col="gene", control="non-targeting")
    path, sidecar = result.write(tmp_path / "pert.pt")

    loaded = torch.load(path, weights_only=True)
    assert list(loaded) == labels
    for name, value in loaded.items():
        assert value.dtype == torch.float32 and value.ndim == 1 and value.shape[0] == 8, name
    np.testing.assert_allclose(loaded["TP53"].numpy(), vector(table, "TP53"), rtol=1e-6)
    assert torch.equal(loaded["non-targeting"], torch.zeros(8))

    assert sidecar == tmp_path / "pert.pt.json" == sidecar_path(path)
    record = json.loads(sidecar.read_text())
    assert record["control"] == {"label": "non-targeting", "vector": "zeros"}
    assert record["missing"]["n"] == 0 and record["allow_missing"] is None
    assert record["embeddings"]["provenance"]["encoder"] == "test-encoder"
    assert record["dim"] == 8 and record["n_perturbations"] == 4 and record["output"] == "pert.pt"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_keys_equal_the_obs_strings_exactly(table):
    # Odd control labels, aliases, Ensembl ids and stray spaces are keys as written; genes resolve through HGNC.
    labels = ["DMSO_TF", "p53", "ENSG00000136997", " KRAS ", "TP53"]
    result = export_state_features(table, cells(labels), pert_col="gene", control="DMSO_TF")
    assert list(result.features) == labels
    np.testing.assert_allclose(result.features["p53"].numpy(), vector(table, "TP53"), rtol=1e-6)
    np.testing.assert_allclose(result.features["ENSG00000136997"].numpy(), vector(table, "MYC"), rtol=1e-6)
    np.testing.assert_allclose(result.features[" KRAS "].numpy(), vector(table, "KRAS"), rtol=1e-6)
    assert result.record["genes"]["p53"] == ["TP53"]


def test_categorical_obs_with_unused_categories_gives_only_the_labels_present(table):
    adata = cells(["ctrl", "MYC"])
    adata.obs["gene"] = pd.Categorical(adata.obs["gene"], categories=["ctrl", "MYC", "GATA1"])
    result = export_state_features(table, adata, pert_col="gene", control="ctrl")
    assert list(result.features) == ["ctrl", "MYC"]


def test_a_missing_perturbation_fails_with_every_name_and_the_count(table):
    labels = ["non-targeting", "TP53", "NOTAGENE1", "MYC", "NOTAGENE2", "XYZ_FAKE"]
    with pytest.raises(MissingPerturbationsError) as info:
        export_state_features(table, cells(labels), pert_col="gene", control="non-targeting")
    message = str(info.value)
    assert "3 of 5 perturbation(s)" in message
    for name in ("NOTAGENE1", "NOTAGENE2", "XYZ_FAKE"):
        assert repr(name) in message
    assert "\n" not in message and info.value.argument == "allow_missing"
    assert info.value.missing == ["NOTAGENE1", "NOTAGENE2", "XYZ_FAKE"]


def test_a_real_gene_the_table_lacks_is_missing_too(table):
    with pytest.raises(MissingPerturbationsError, match="'BRCA1'"):
        export_state_features(table, cells(["ctrl", "BRCA1"]), pert_col="gene", control="ctrl")


def test_many_missing_names_are_shown_truncated_but_all_counted(table):
    fakes = [f"FAKE{i:03d}" for i in range(60)]
    with pytest.raises(MissingPerturbationsError) as info:
        export_state_features(table, cells(["ctrl", *fakes], repeat=1), pert_col="gene", control="ctrl")
    message = str(info.value)
    assert message.startswith("60 of 60 perturbation(s)")
    assert "'FAKE049'" in message and "'FAKE050'" not in message and "... and 10 more" in message
    assert info.value.missing == fakes


@pytest.mark.parametrize("mode", ["zeros", "mean", "drop"])
def test_each_allow_missing_mode_does_what_it_says(table, tmp_path, mode):
    labels = ["ctrl", "TP53", "MYC", "NOTAGENE"]
    result = export_state_features(table, cells(labels), pert_col="gene", control="ctrl", allow_missing=mode)
    mean = np.mean([vector(table, "TP53"), vector(table, "MYC")], axis=0)
    if mode == "drop":
        assert list(result.features) == ["ctrl", "TP53", "MYC"]
    else:
        expected = np.zeros(8) if mode == "zeros" else mean
        np.testing.assert_allclose(result.features["NOTAGENE"].numpy(), expected, rtol=1e-6, atol=1e-7)
    _, sidecar = result.write(tmp_path / "pert.pt")
    record = json.loads(sidecar.read_text())
    assert record["allow_missing"] == mode
    assert record["missing"]["labels"] == ["NOTAGENE"] and record["missing"]["n"] == 1
    assert "NOTAGENE: not found" in record["missing"]["reasons"]["NOTAGENE"]
    assert record["dropped"] == (["NOTAGENE"] if mode == "drop" else [])


def test_control_vector_modes(table):
    labels = ["non-targeting", "TP53", "MYC", "MYC+MAX"]
    zeros = export_state_features(table, cells(labels), pert_col="gene", control="non-targeting")
    mean = export_state_features(
        table, cells(labels), pert_col="gene", control="non-targeting", control_vector="mean"
    )
    assert torch.equal(zeros.features["non-targeting"], torch.zeros(8))
    # The mean of the distinct genes the data matched (MAX only through the combination), each once.
    expected = np.mean([vector(table, s) for s in ("TP53", "MYC", "MAX")], axis=0)
    np.testing.assert_allclose(mean.features["non-targeting"].numpy(), expected, rtol=1e-5)
    assert mean.record["control"]["vector"] == "mean"


def test_combinations_are_the_mean_of_their_parts_by_default(table):
    labels = ["ctrl", "MYC+MAX", "CEBPE+ctrl", "TP53 + KRAS", "MYC+NOTAGENE"]
    result = export_state_features(
        table, cells(labels), pert_col="gene", control="ctrl", allow_missing="zeros"
    )
    np.testing.assert_allclose(
        result.features["MYC+MAX"].numpy(), (vector(table, "MYC") + vector(table, "MAX")) / 2, rtol=1e-6
    )
    # A part equal to the control label is no gene: "CEBPE+ctrl" is CEBPE alone.
    np.testing.assert_allclose(result.features["CEBPE+ctrl"].numpy(), vector(table, "CEBPE"), rtol=1e-6)
    assert result.record["genes"]["TP53 + KRAS"] == ["TP53", "KRAS"]
    # One missing part makes the whole combination missing (no silent half-vector).
    assert result.record["missing"]["labels"] == ["MYC+NOTAGENE"]
    assert result.record["missing"]["reasons"]["MYC+NOTAGENE"] == "NOTAGENE: not found"
    assert result.record["combination"]["labels"] == ["MYC+MAX", "CEBPE+ctrl", "TP53 + KRAS"]

    summed = export_state_features(
        table, cells(labels[:2]), pert_col="gene", control="ctrl", combination="sum"
    )
    np.testing.assert_allclose(
        summed.features["MYC+MAX"].numpy(), vector(table, "MYC") + vector(table, "MAX"), rtol=1e-6
    )


def test_other_separator(table):
    result = export_state_features(
        table, cells(["ctrl", "MYC_MAX"]), pert_col="gene", control="ctrl", separator="_"
    )
    assert result.record["genes"]["MYC_MAX"] == ["MYC", "MAX"]


def test_bad_input_is_one_line_naming_the_argument(table):
    data = cells(["non-targeting", "TP53"])
    with pytest.raises(BioprofileInputError) as info:
        export_state_features(table, data, pert_col="perturbation", control="non-targeting")
    assert info.value.argument == "pert_col" and "'gene'" in str(info.value)
    with pytest.raises(BioprofileInputError) as info:
        export_state_features(table, data, pert_col="gene", control="Non-Targeting")
    assert info.value.argument == "control" and "did you mean 'non-targeting'" in str(info.value)
    for argument, value in (("control_vector", "ones"), ("allow_missing", "skip"), ("combination", "max")):
        with pytest.raises(BioprofileInputError) as info:
            export_state_features(table, data, pert_col="gene", control="non-targeting", **{argument: value})
        assert info.value.argument == argument


def test_write_refuses_an_existing_output_unless_overwrite(table, tmp_path):
    result = export_state_features(table, cells(["ctrl", "TP53"]), pert_col="gene", control="ctrl")
    result.write(tmp_path / "pert.pt")
    with pytest.raises(BioprofileInputError, match="already exists") as info:
        result.write(tmp_path / "pert.pt")
    assert info.value.argument == "overwrite"
    result.write(tmp_path / "pert.pt", overwrite=True)


def test_files_in_files_out(table, tmp_path):
    table.write(tmp_path / "genes.parquet")
    cells(["ctrl", "TP53", "GATA1"]).write_h5ad(tmp_path / "data.h5ad")
    result = export_state_features(
        tmp_path / "genes.parquet", tmp_path / "data.h5ad", pert_col="gene", control="ctrl"
    )
    assert list(result.features) == ["ctrl", "TP53", "GATA1"]
    assert result.record["data"]["n_obs"] == 9 and len(result.record["data"]["sha256"]) == 64
    assert result.record["embeddings"]["path"].endswith("genes.parquet")


def export_args(folder, *extra: str) -> list[str]:
    return [
        "export-state",
        "--embeddings",
        str(folder / "genes.parquet"),
        "--adata",
        str(folder / "data.h5ad"),
        "--pert-col",
        "gene",
        "--control",
        "non-targeting",
        "-o",
        str(folder / "pert.pt"),
        *extra,
    ]


def test_cli_exports_and_fails_with_flags(table, tmp_path):
    table.write(tmp_path / "genes.parquet")
    cells(["non-targeting", "TP53", "MYC+MAX", "NOTAGENE", "FAKE2"]).write_h5ad(tmp_path / "data.h5ad")
    runner = CliRunner()

    failed = runner.invoke(app, export_args(tmp_path))
    assert failed.exit_code == 2, failed.output
    assert "2 of 4 perturbation(s)" in failed.output and "'NOTAGENE', 'FAKE2'" in failed.output
    assert "--allow-missing" in failed.output and not (tmp_path / "pert.pt").exists()

    done = runner.invoke(app, export_args(tmp_path, "--allow-missing", "mean", "--control-vector", "mean"))
    assert done.exit_code == 0, done.output
    loaded = torch.load(tmp_path / "pert.pt", weights_only=True)
    assert list(loaded) == ["non-targeting", "TP53", "MYC+MAX", "NOTAGENE", "FAKE2"]
    record = json.loads((tmp_path / "pert.pt.json").read_text())
    assert record["allow_missing"] == "mean" and record["control"]["vector"] == "mean"

    again = runner.invoke(app, export_args(tmp_path, "--allow-missing", "drop"))
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(app, export_args(tmp_path, "--allow-missing", "drop", "--force"))
    assert forced.exit_code == 0, forced.output
    assert list(torch.load(tmp_path / "pert.pt", weights_only=True)) == ["non-targeting", "TP53", "MYC+MAX"]

    bad = runner.invoke(app, export_args(tmp_path, "--pert-col", "perturbation", "--force"))
    assert bad.exit_code == 2 and "--pert-col 'perturbation' is not an obs column" in bad.output


def test_written_files_follow_the_umask_and_leave_no_temporary_file(table, tmp_path):
    import os

    old = os.umask(0o027)
    try:
        result = export_state_features(
            table, cells(["non-targeting", "TP53"]), pert_col="gene", control="non-targeting"
        )
        path, sidecar = result.write(tmp_path / "pert.pt")
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in (path, sidecar)} == {0o640}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pert.pt", "pert.pt.json"]
