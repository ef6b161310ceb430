"""Pre-flight checks before STATE: each problem is one line naming the argument at fault."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from bioprofile.errors import BioprofileInputError
from bioprofile.perturbation import (
    check_control_in_cell_types,
    check_feature_coverage,
    check_feature_dims,
    check_obs_column,
    check_obsm_key,
    check_perturbation_data,
    check_var_names,
)


def perturb_seq(n_genes: int = 5) -> ad.AnnData:
    """Two cell types x three labels (two cells each), a batch column and a cell embedding."""
    rows = [
        (ct, p, b) for ct in ("K562", "HepG2") for p in ("non-targeting", "TP53", "MYC") for b in ("b1", "b2")
    ]
    obs = pd.DataFrame(
        rows, columns=["cell_type", "gene", "gem_group"], index=[f"c{i}" for i in range(len(rows))]
    )
    adata = ad.AnnData(
        X=np.zeros((len(rows), n_genes), dtype=np.float32),
        obs=obs,
        var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]),
    )
    adata.obsm["X_hvg"] = np.zeros((len(rows), 3), dtype=np.float32)
    return adata


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_good_dataset_passes_and_its_columns_become_categorical():
    adata = perturb_seq()
    check_perturbation_data(
        adata,
        pert_col="gene",
        control="non-targeting",
        cell_type_key="cell_type",
        batch_col="gem_group",
        embed_key="X_hvg",
    )
    for column in ("gene", "cell_type", "gem_group"):
        assert isinstance(adata.obs[column].dtype, pd.CategoricalDtype), column


@pytest.mark.parametrize(
    ("argument", "key"), [("pert_col", "perturbation"), ("cell_type_key", "celltype"), ("batch_col", "batch")]
)
def test_an_absent_obs_column_names_its_argument(argument, key):
    with pytest.raises(BioprofileInputError) as info:
        check_obs_column(perturb_seq(), key, argument=argument)
    assert info.value.argument == argument
    assert one_line(info).startswith(f"{argument} {key!r} is not an obs column")
    assert "'gene'" in str(info.value)  # the columns there are


def test_an_obs_column_with_missing_values_fails():
    adata = perturb_seq()
    adata.obs["gene"] = adata.obs["gene"].astype(object)
    adata.obs.iloc[0, adata.obs.columns.get_loc("gene")] = None
    with pytest.raises(BioprofileInputError, match="1 cell") as info:
        check_obs_column(adata, "gene", argument="pert_col")
    assert info.value.argument == "pert_col"


def test_the_control_must_be_in_every_cell_type():
    adata = perturb_seq()
    keep = ~((adata.obs["cell_type"] == "HepG2") & (adata.obs["gene"] == "non-targeting")).to_numpy()
    adata = adata[keep].copy()
    with pytest.raises(BioprofileInputError) as info:
        check_control_in_cell_types(
            adata, pert_col="gene", control="non-targeting", cell_type_key="cell_type"
        )
    assert info.value.argument == "control"
    assert "1 cell type(s)" in one_line(info) and "'HepG2'" in str(info.value)
    # Only the cell types used count.
    check_control_in_cell_types(
        adata, pert_col="gene", control="non-targeting", cell_type_key="cell_type", cell_types=["K562"]
    )
    with pytest.raises(BioprofileInputError, match="'Jurkat'") as info:
        check_control_in_cell_types(
            adata, pert_col="gene", control="non-targeting", cell_type_key="cell_type", cell_types=["Jurkat"]
        )
    assert info.value.argument == "cell_type_key"


def test_a_control_label_that_is_not_in_the_data_suggests_the_ones_that_are():
    with pytest.raises(BioprofileInputError) as info:
        check_perturbation_data(perturb_seq(), pert_col="gene", control="DMSO_TF")
    assert info.value.argument == "control"
    assert "did you mean 'non-targeting'" in one_line(info)


def test_gene_names_must_be_present_and_unique():
    adata = perturb_seq()
    adata.var_names = ["G0", "G1", "G1", "G3", "G3"]
    with pytest.raises(BioprofileInputError, match="repeats 2 gene name") as info:
        check_var_names(adata)
    assert "'G1', 'G3'" in one_line(info)

    adata = perturb_seq()
    adata.var["symbol"] = ["A", "B", "", "D", "E"]
    with pytest.raises(BioprofileInputError, match=r"var\['symbol'\] has 1 blank"):
        check_var_names(adata, gene_key="symbol")
    with pytest.raises(BioprofileInputError) as info:
        check_var_names(adata, gene_key="gene_symbol")
    assert info.value.argument == "gene_key"
    with pytest.raises(BioprofileInputError, match="no genes"):
        check_var_names(perturb_seq()[:, []].copy())


def test_the_obsm_key_must_be_there():
    with pytest.raises(BioprofileInputError) as info:
        check_obsm_key(perturb_seq(), "X_state")
    assert info.value.argument == "embed_key" and "'X_hvg'" in one_line(info)
    with pytest.raises(BioprofileInputError) as info:
        check_perturbation_data(perturb_seq(), pert_col="gene", control="non-targeting", embed_key="X_pca")
    assert info.value.argument == "embed_key"


def test_feature_dimension_is_checked_within_and_across_files(tmp_path):
    a = {"TP53": torch.ones(8), "MYC": torch.zeros(8)}
    b = {"TP53": torch.ones(16), "MYC": torch.zeros(16)}
    torch.save(a, tmp_path / "a.pt")
    torch.save(b, tmp_path / "b.pt")
    assert check_feature_dims([tmp_path / "a.pt", a]) == 8
    with pytest.raises(BioprofileInputError, match="differ in dimension") as info:
        check_feature_dims([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert "8 in" in one_line(info) and "16 in" in str(info.value) and info.value.argument == "embeddings"
    with pytest.raises(BioprofileInputError, match=r"mixes vector lengths \[4, 8\]"):
        check_feature_dims([{"TP53": torch.ones(8), "MYC": torch.ones(4)}])


def test_feature_values_must_be_1d_float_tensors(tmp_path):
    with pytest.raises(BioprofileInputError, match="1 value"):
        check_feature_dims([{"TP53": torch.ones(8), "MYC": torch.ones(1, 8)}])
    with pytest.raises(BioprofileInputError, match="not 1-D float"):
        check_feature_dims([{"TP53": torch.ones(8, dtype=torch.long)}])
    # numpy arrays are what break STATE's weights_only loading: refused on load.
    torch.save({"TP53": np.ones(8, dtype=np.float32)}, tmp_path / "np.pt")
    with pytest.raises(BioprofileInputError, match="weights_only"):
        check_feature_dims([tmp_path / "np.pt"])
    with pytest.raises(BioprofileInputError, match="does not exist"):
        check_feature_dims([tmp_path / "absent.pt"])


def test_feature_coverage_counts_every_missing_label():
    features = {"non-targeting": torch.zeros(4), "TP53": torch.ones(4)}
    check_feature_coverage(features, ["non-targeting", "TP53", "TP53"])
    with pytest.raises(BioprofileInputError) as info:
        check_feature_coverage(features, ["non-targeting", "TP53", "MYC", "DMSO_TF"])
    assert one_line(info).startswith("2 perturbation(s) have no key") and "'MYC', 'DMSO_TF'" in str(
        info.value
    )
