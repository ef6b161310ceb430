"""Backends and cell methods by registration: a plugin outside the package adds one of each, used from the CLI."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import toy_plugin
from typer.testing import CliRunner

from bioprofile import cells, profiles
from bioprofile.cli import app
from bioprofile.embeddings import GeneEmbeddings
from bioprofile.errors import BioprofileInputError
from bioprofile.profiles.prompts import get_template

GENES = ["TP53", "MYC", "EGFR"]


@pytest.fixture
def toy_registered():
    """The toy backend and method registered for one test; the registries as they were afterwards."""
    backends, methods = profiles.registered_backends(), cells.registered_methods()
    toy_plugin.register()
    yield
    toy_plugin.unregister()
    assert profiles.registered_backends() == backends and cells.registered_methods() == methods


def test_the_built_ins_are_registered_entries():
    assert profiles.registered_backends()[:3] == ("transformers", "vllm", "openai") == profiles.BACKENDS
    assert profiles.backend_option_names("openai") == (
        "base_url",
        "api_key_env",
        "max_retries",
        "timeout",
        "total_timeout",
    )
    assert profiles.backend_option_names("transformers") == ()
    assert cells.registered_methods()[:2] == ("genept-w", "genept-s")


def test_embed_genes_with_a_registered_backend(toy_registered, tiny_bert_dir, tmp_path):
    out = tmp_path / "genes.parquet"
    args = ["embed-genes", *GENES, "-o", str(out), "--backend", "toy", "--encoder", f"hf:{tiny_bert_dir}"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    emb = GeneEmbeddings.read(out)
    template = get_template("concise")
    from bioprofile.genes import normalize_genes

    expected = [toy_plugin.toy_text("Toy", template.messages(g)) for g in normalize_genes(GENES).genes]
    assert emb.symbols == GENES and emb.texts == expected
    assert emb.provenance["generator"] == "toy:toy-model:Toy"
    assert np.isfinite(emb.vectors).all() and emb.vectors.shape[0] == 3

    # the toy's texts are cached like any backend's: a second run writes the same table from the store
    again = CliRunner().invoke(app, [*args, "--force"])
    assert again.exit_code == 0, again.output
    assert GeneEmbeddings.read(out).texts == expected


def test_backend_options_belong_to_their_backend(toy_registered):
    toy = profiles.make_generator(None, backend="toy", opening="Plugin")
    assert toy.id == "toy:toy-model:Plugin"
    assert toy.generate([[{"role": "user", "content": "q"}]]) == [
        toy_plugin.toy_text("Plugin", [{"role": "user", "content": "q"}])
    ]
    with pytest.raises(BioprofileInputError, match="base_url is for backend 'openai' only, not 'toy'") as err:
        profiles.make_generator(None, backend="toy", base_url="http://127.0.0.1:9/v1")
    assert err.value.argument == "base_url"
    with pytest.raises(BioprofileInputError, match="opening is for backend 'toy' only, not 'transformers'"):
        profiles.make_generator(None, opening="Plugin")
    with pytest.raises(
        BioprofileInputError, match="unknown backend 'onnx': use transformers or vllm or openai or toy"
    ):
        profiles.make_generator(None, backend="onnx")
    with pytest.raises(BioprofileInputError, match="already registered"):
        profiles.register_backend("toy", toy_plugin.ToyGenerator)


@pytest.fixture
def tiny_cells(tmp_path):
    """Six cells x four genes, sparse counts, in an .h5ad file."""
    counts = np.array(
        [[0, 1, 2, 0], [3, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 5], [2, 2, 0, 0], [0, 4, 0, 1]], dtype=np.float32
    )
    adata = ad.AnnData(sp.csr_matrix(counts))
    adata.var_names = ["TP53", "MYC", "EGFR", "KRAS"]
    adata.obs_names = [f"cell{i}" for i in range(len(counts))]
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path, counts


def test_embed_cells_with_a_registered_method(toy_registered, tiny_cells, tmp_path):
    path, counts = tiny_cells
    out = tmp_path / "embedded.h5ad"
    args = ["embed-cells", str(path), "-o", str(out), "--method", "toy", "--chunk-size", "4", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(toy; 4 of 4 genes matched)" in result.output

    embedded = ad.read_h5ad(out)
    expected = np.column_stack([counts.sum(axis=1), (counts > 0).sum(axis=1)])
    np.testing.assert_allclose(embedded.obsm["X_bioprofile"], expected)
    provenance = embedded.uns["X_bioprofile"]
    assert provenance["method"] == "toy" and not provenance["l2"]
    assert provenance["toy_version"] == 1 and provenance["gene_coverage"]["n_matched"] == 4

    # a flag the toy's options declare reaches it; GenePT-s's --top-n is another method's and is ignored
    l2 = CliRunner().invoke(app, [*args, "--l2", "--top-n", "3", "--force"])
    assert l2.exit_code == 0, l2.output
    unit = ad.read_h5ad(out).obsm["X_bioprofile"]
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)


def test_cell_methods_by_name_or_options(toy_registered, tiny_cells):
    path, counts = tiny_cells
    adata = ad.read_h5ad(path)
    cells.embed_cells(adata, method=toy_plugin.ToyCellOptions(l2=True))
    assert adata.uns["X_bioprofile"]["method"] == "toy" and adata.uns["X_bioprofile"]["l2"]
    with pytest.raises(
        BioprofileInputError, match="unknown method 'x': choose 'genept-w', 'genept-s' or 'toy'"
    ):
        cells.embed_cells(adata, method="x")
    with pytest.raises(BioprofileInputError, match="needs an options class"):
        cells.register_method("broken", object())
    assert isinstance(cells.options_for("genept-w", {"l2": True, "top_n": 3}), cells.GeneptWOptions)


def test_an_unknown_method_is_one_line_and_exit_2(tiny_cells, tmp_path):
    path, _ = tiny_cells
    result = CliRunner().invoke(
        app, ["embed-cells", str(path), "-o", str(tmp_path / "o.h5ad"), "--method", "toy"]
    )
    assert result.exit_code == 2
    assert result.stderr == "error: unknown --method 'toy': choose 'genept-w' or 'genept-s'\n"


def test_an_installed_plugin_is_loaded_by_its_entry_point(monkeypatch, tiny_cells, tmp_path):
    """A package's entry point (group bioprofile.cell_methods / bioprofile.backends) registers on first ask."""
    from importlib import metadata

    def entry_points(*, group, name):
        if name != "toy" or group not in ("bioprofile.backends", "bioprofile.cell_methods"):
            return []
        return [metadata.EntryPoint(name="toy", value="toy_plugin:register", group=group)]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    backends, methods = profiles.registered_backends(), cells.registered_methods()
    assert "toy" not in methods
    path, _ = tiny_cells
    try:
        result = CliRunner().invoke(
            app, ["embed-cells", str(path), "-o", str(tmp_path / "o.h5ad"), "--method", "toy"]
        )
        assert result.exit_code == 0, result.output
        assert "toy" in cells.registered_methods() and "toy" in profiles.registered_backends()
        assert profiles.make_generator(None, backend="toy").id == "toy:toy-model:Toy"
    finally:
        toy_plugin.unregister()
    assert profiles.registered_backends() == backends and cells.registered_methods() == methods
