"""The cell-load experiment TOML: zero-shot and few-shot splits, read back by tomllib and by cell-load itself."""

from __future__ import annotations

import tomllib

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from bioprofile.errors import BioprofileInputError
from bioprofile.perturbation import StateSplit, make_state_split, write_cell_load_toml

PERTURBATIONS = [f"GENE{i}" for i in range(10)] + ["MYC+MAX", 'odd "label"']


def perturb_seq() -> ad.AnnData:
    """Three cell types (one with a dot in its name) x the control and twelve perturbations, two cells each."""
    rows = [
        (ct, p)
        for ct in ("K562", "HepG2", "rpe1.v2")
        for p in ["non-targeting", *PERTURBATIONS]
        for _ in range(2)
    ]
    obs = pd.DataFrame(rows, columns=["cell_type", "gene"], index=[f"c{i}" for i in range(len(rows))])
    return ad.AnnData(X=np.zeros((len(rows), 3), dtype=np.float32), obs=obs)


def split_of(adata=None, **kwargs):
    return make_state_split(
        perturb_seq() if adata is None else adata,
        pert_col="gene",
        control="non-targeting",
        cell_type_key="cell_type",
        **kwargs,
    )


def test_few_shot_holds_out_the_same_perturbations_in_every_cell_type():
    split = split_of(test_fraction=0.25, val_fraction=0.1, zeroshot_cell_types=["HepG2"])
    assert split.zeroshot == {"HepG2": "test"}
    assert set(split.fewshot) == {"K562", "rpe1.v2"}
    test, val = split.fewshot["K562"]["test"], split.fewshot["K562"]["val"]
    assert len(test) == 3 and len(val) == 1 and not set(test) & set(val)
    assert "non-targeting" not in test + val
    assert split.fewshot["rpe1.v2"] == split.fewshot["K562"]
    assert split.test_perturbations == sorted(test)
    assert split_of(test_fraction=0.25, val_fraction=0.1, zeroshot_cell_types=["HepG2"]) == split  # seeded
    assert split_of(test_fraction=0.25, seed=1).test_perturbations != split.test_perturbations


def test_named_test_perturbations():
    split = split_of(test_perturbations=["GENE3", "MYC+MAX"])
    assert split.test_perturbations == ["GENE3", "MYC+MAX"]
    with pytest.raises(BioprofileInputError, match="'GENE99'") as info:
        split_of(test_perturbations=["GENE3", "GENE99"])
    assert info.value.argument == "test_perturbations"


def test_bad_splits_fail_before_anything_is_written():
    with pytest.raises(BioprofileInputError) as info:
        split_of(test_fraction=1.5)
    assert info.value.argument == "test_fraction"
    with pytest.raises(BioprofileInputError, match="'Jurkat'") as info:
        split_of(zeroshot_cell_types=["Jurkat"])
    assert info.value.argument == "zeroshot_cell_types"
    with pytest.raises(BioprofileInputError, match="no perturbation is left"):
        split_of(test_fraction=0.5, val_fraction=0.5)
    adata = perturb_seq()
    adata = adata[
        ~((adata.obs["cell_type"] == "K562") & (adata.obs["gene"] == "non-targeting")).to_numpy()
    ].copy()
    with pytest.raises(BioprofileInputError, match="no control cells"):
        split_of(adata)


def test_the_toml_reads_back(tmp_path):
    split = split_of(test_fraction=0.25, val_fraction=0.1, zeroshot_cell_types=["HepG2"])
    data = tmp_path / "data.h5ad"
    perturb_seq().write_h5ad(data)
    path = write_cell_load_toml(split, tmp_path / "split.toml", data_path=data, dataset="replogle")
    config = tomllib.loads(path.read_text())
    assert config["datasets"] == {"replogle": str(data.resolve())}
    assert config["training"] == {"replogle": "train"}
    assert config["zeroshot"] == {"replogle.HepG2": "test"}
    assert config["fewshot"]["replogle.rpe1.v2"] == split.fewshot["rpe1.v2"]
    assert config["fewshot"]["replogle.K562"]["test"] == split.fewshot["K562"]["test"]

    with pytest.raises(BioprofileInputError, match="already exists"):
        write_cell_load_toml(split, path, data_path=data)
    with pytest.raises(BioprofileInputError, match="free of dots"):
        write_cell_load_toml(split, path, data_path=data, dataset="a.b", overwrite=True)


def test_odd_labels_survive_the_toml(tmp_path):
    split = split_of(test_perturbations=['odd "label"', "MYC+MAX"])
    path = write_cell_load_toml(split, tmp_path / "split.toml", data_path=tmp_path / "data.h5ad")
    config = tomllib.loads(path.read_text())
    assert config["fewshot"]["data.K562"]["test"] == ["MYC+MAX", 'odd "label"']


def test_control_characters_in_names_survive_the_toml(tmp_path):
    # DEL (U+007F) is not escaped by JSON, and TOML forbids it raw in a string: tomli-w escapes it
    odd = ["a\x7fb", "back\\slash", "tab\there", "ünï"]
    split = StateSplit(("K562\x7f",), {}, {"K562\x7f": {"val": [], "test": odd}})
    config = tomllib.loads(split.to_toml(tmp_path / "data.h5ad"))
    assert config["fewshot"] == {"data.K562\x7f": {"val": [], "test": odd}}
    assert split.to_toml(tmp_path / "data.h5ad").startswith("# cell-load experiment config")


def test_cell_load_parses_it(tmp_path):
    config_mod = pytest.importorskip("cell_load.config", reason="cell-load comes with the state extra")
    split = split_of(test_fraction=0.25, val_fraction=0.1, zeroshot_cell_types=["HepG2"])
    data = tmp_path / "data.h5ad"
    perturb_seq().write_h5ad(data)
    path = write_cell_load_toml(split, tmp_path / "split.toml", data_path=data, dataset="replogle")

    config = config_mod.ExperimentConfig.from_toml(str(path))
    config.validate()
    assert config.get_all_datasets() == {"replogle"}
    assert config.get_zeroshot_celltypes("replogle") == {"HepG2": "test"}
    fewshot = config.get_fewshot_celltypes("replogle")
    assert set(fewshot) == {"K562", "rpe1.v2"}
    assert fewshot["K562"]["test"] == split.fewshot["K562"]["test"]
