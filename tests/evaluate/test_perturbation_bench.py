"""The STATE perturbation bench: runner overrides, baselines, cell-eval scoring, pre-flight errors, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from perturbseq import CONTROL, build_perturbseq
from typer.testing import CliRunner

from bioprofile.cli import app
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.perturbation import (
    CONTROL_MEAN,
    ONE_HOT,
    PerturbationBenchOptions,
    PerturbationBenchResult,
    prepare_perturbation_bench,
    score_perturbation_predictions,
)
from bioprofile.perturbation import (
    PerturbationColumns,
    StateModelSettings,
    control_mean_prediction,
    random_features,
    state_train_overrides,
)

COLUMNS = PerturbationColumns()


@pytest.fixture(scope="module")
def perturbseq(shared_data):
    return build_perturbseq(shared_data)


@pytest.fixture(scope="module")
def data_file(perturbseq, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("perturbseq") / "data.h5ad"
    perturbseq.adata.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def pt_file(perturbseq, tmp_path_factory) -> Path:
    """A user feature file (as an ESM2 export would be): one random vector per label of the data."""
    rng = np.random.default_rng(3)
    labels = list(dict.fromkeys(perturbseq.adata.obs["gene"].astype(str)))
    path = tmp_path_factory.mktemp("features") / "esm.pt"
    torch.save(
        {label: torch.from_numpy(rng.standard_normal(12).astype(np.float32)) for label in labels}, path
    )
    return path


# --------------------------------------------------------------------------- the semi-synthetic data


def test_perturbseq_plants_effects_by_go_set(perturbseq):
    adata = perturbseq.adata
    assert 300 <= adata.n_obs <= 600 and len(set(adata.obs["cell_type"])) == 3
    genes = [g for genes in perturbseq.groups.values() for g in genes]
    assert len(genes) == len(set(genes)) == 30 and set(perturbseq.test_perturbations) < set(genes)
    assert all(perturbseq.summaries[g] for g in genes)
    # Genes of one GO set move the same features the same way: their mean shifts correlate within a set.
    x = pd.DataFrame(adata.X, index=adata.obs["gene"].astype(str).to_numpy())
    shift = x.groupby(level=0).mean() - x.loc[CONTROL].mean()
    first, second = (shift.loc[g].to_numpy() for g in next(iter(perturbseq.groups.values()))[:2])
    other = shift.loc[list(perturbseq.groups.values())[1][0]].to_numpy()
    assert np.corrcoef(first, second)[0, 1] > 0.8 > 0.3 > abs(np.corrcoef(first, other)[0, 1])


# --------------------------------------------------------------------------- runner


def test_train_overrides_keep_everything_under_the_run_folder(tmp_path):
    run_dir = tmp_path / "runs" / "one"
    overrides = state_train_overrides(
        tmp_path / "split.toml", run_dir, columns=COLUMNS, settings=StateModelSettings(), features_file="f.pt"
    )
    values = dict(o.split("=", 1) for o in overrides)
    assert values["use_wandb"] == "false" and values["training.wandb_track"] == "false"
    assert values["output_dir"] == f"'{run_dir.parent.resolve()}'" and values["name"] == "'one'"
    assert values["wandb.local_wandb_dir"] == f"'{run_dir.resolve() / 'wandb'}'"
    assert values["data.kwargs.control_pert"] == "'non-targeting'"
    assert values["data.kwargs.perturbation_features_file"] == f"'{Path('f.pt').resolve()}'"
    assert values["data.kwargs.num_workers"] == "0" and values["model.kwargs.hidden_dim"] == "32"
    one_hot = state_train_overrides("s.toml", run_dir, columns=COLUMNS, settings=StateModelSettings.gpu())
    values = dict(o.split("=", 1) for o in one_hot)
    assert values["data.kwargs.perturbation_features_file"] == "null"
    # The GPU preset keeps arc-state's own state_sm sizes.
    assert "model.kwargs.hidden_dim" not in values and values["training.max_steps"] == "40000"


@pytest.mark.parametrize(
    ("settings", "argument"),
    [
        (StateModelSettings(max_steps=0), "max_steps"),
        (StateModelSettings(hidden_dim=30, n_heads=4), "n_heads"),
        (StateModelSettings(lr=0), "lr"),
    ],
)
def test_model_settings_are_checked(settings, argument):
    with pytest.raises(BioprofileInputError) as err:
        settings.check()
    assert err.value.argument == argument


# --------------------------------------------------------------------------- baselines


def test_random_features_match_size_and_scale_and_keep_the_control():
    rng = np.random.default_rng(0)
    features = {
        CONTROL: torch.zeros(8),
        **{f"G{i}": torch.from_numpy(rng.normal(0, 3, 8)).float() for i in range(20)},
    }
    drawn = random_features(features, control=CONTROL, seed=1)
    assert list(drawn) == list(features) and torch.equal(drawn[CONTROL], torch.zeros(8))
    assert all(v.shape == (8,) and v.dtype == torch.float32 for v in drawn.values())
    norms = lambda d: np.mean([float(v.norm()) for k, v in d.items() if k != CONTROL])  # noqa: E731
    assert norms(drawn) == pytest.approx(norms(features), rel=1e-5)
    assert not torch.allclose(drawn["G0"], features["G0"])
    assert torch.equal(random_features(features, control=CONTROL, seed=1)["G3"], drawn["G3"])


def test_control_mean_prediction_predicts_no_change(perturbseq):
    adata = perturbseq.adata
    pred = control_mean_prediction(adata, pert_col="gene", control=CONTROL, cell_type_key="cell_type")
    for ct in ("K562", "RPE1"):
        in_type = (adata.obs["cell_type"] == ct).to_numpy()
        ctrl = in_type & (adata.obs["gene"] == CONTROL).to_numpy()
        assert np.allclose(pred.X[in_type & ~ctrl], adata.X[ctrl].mean(axis=0), atol=1e-6)
        assert np.array_equal(pred.X[ctrl], adata.X[ctrl])


# --------------------------------------------------------------------------- scoring


@pytest.mark.slow  # importing cell-eval and its first (numba-compiled) DE pass take ~15 s alone
def test_cell_eval_scores_a_perfect_and_a_no_change_prediction(perturbseq, tmp_path):
    adata = perturbseq.adata
    keep = adata.obs["gene"].isin([*perturbseq.test_perturbations, CONTROL]).to_numpy()
    real = adata[keep].copy()
    perfect = score_perturbation_predictions(real.copy(), real.copy(), columns=COLUMNS, outdir=tmp_path / "a")
    flat = control_mean_prediction(real, pert_col="gene", control=CONTROL, cell_type_key="cell_type")
    none = score_perturbation_predictions(flat, real.copy(), columns=COLUMNS, outdir=tmp_path / "b")
    assert len(perfect) == len(none) == 3 * len(perturbseq.test_perturbations)
    assert set(perfect["perturbation"]) == set(perturbseq.test_perturbations)
    assert perfect["pearson_delta"].min() > 0.99 and perfect["mse"].max() < 1e-8
    assert none["mse"].mean() > 0.1 and (none["pearson_delta"].abs() < 0.99).all()
    assert perfect["discrimination_score_l1"].mean() > none["discrimination_score_l1"].mean()


def test_result_writes_markdown_json_and_plot(tmp_path):
    from bioprofile import pl

    index = pd.Index(["bioprofile", "random", ONE_HOT, CONTROL_MEAN], name="method")
    table = pd.DataFrame({"pearson_delta": [0.5, 0.1, 0.0, -0.1], "mse": [0.2, 0.4, 0.5, 0.3]}, index=index)
    result = PerturbationBenchResult(
        table=table,
        settings={"held_out_perturbations": ["A"], "options": {"seeds": [0, 1]}},
        std=table.abs() * 0.1,
    )
    md, js = result.write(tmp_path / "bench")
    assert "| control-mean | -0.100 ± 0.010 | 0.300 ± 0.030 |" in md.read_text()
    payload = json.loads(js.read_text())
    assert [r["method"] for r in payload["rows"]] == list(index) and payload["std"][0][
        "mse"
    ] == pytest.approx(0.02)
    pl.perturbation_metrics(result, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 1000


# --------------------------------------------------------------------------- pre-flight


def test_prepare_refuses_a_feature_file_missing_a_label(data_file, perturbseq, tmp_path):
    table = torch.load(_pt(perturbseq, tmp_path), weights_only=True)
    del table["AKT1"], table[CONTROL]
    torch.save(table, tmp_path / "gappy.pt")
    with pytest.raises(BioprofileInputError, match=r"2 perturbation\(s\) have no key .*non-targeting.*AKT1"):
        prepare_perturbation_bench(
            data_file, {"gappy": tmp_path / "gappy.pt"}, columns=COLUMNS, work_dir=tmp_path / "w"
        )
    assert not (tmp_path / "w").exists()


def test_prepare_refuses_drop_and_checks_the_split(data_file, pt_file, tmp_path):
    with pytest.raises(BioprofileInputError, match="cell-load fills with zeros") as err:
        prepare_perturbation_bench(
            data_file,
            {"esm": pt_file},
            columns=COLUMNS,
            work_dir=tmp_path / "w",
            options=PerturbationBenchOptions(allow_missing="drop"),
        )
    assert err.value.argument == "allow_missing"
    plan = prepare_perturbation_bench(
        data_file,
        {"esm": pt_file},
        columns=COLUMNS,
        work_dir=tmp_path / "w",
        options=PerturbationBenchOptions(test_perturbations=("AKT1", "BAX")),
    )
    assert plan.split.test_perturbations == ["AKT1", "BAX"]
    assert plan.methods == ["esm", "random", ONE_HOT, CONTROL_MEAN]
    assert all(v.shape == (12,) for v in plan.features["esm"].values())
    assert not (tmp_path / "w").exists()  # nothing is written before the runs


def _pt(perturbseq, tmp_path) -> Path:
    labels = list(dict.fromkeys(perturbseq.adata.obs["gene"].astype(str)))
    path = tmp_path / "full.pt"
    torch.save({label: torch.ones(4) for label in labels}, path)
    return path


def _bench(data_file, *args):
    return CliRunner().invoke(app, ["bench", "perturbation", str(data_file), *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--control", "NT"], "--control 'NT' is not a label of obs['gene']"),
        (["--cell-type-key", "celltype"], "--cell-type-key 'celltype' is not an obs column"),
        (["--profile", "huge"], "--profile must be one of minimal"),
        (["--seeds", "a,b"], "--seeds must be a comma list of integers"),
        (["--max-steps", "0"], "--max-steps must be at least 1"),
        (["--test-perturbations", "NOPE"], "1 test perturbation(s) are not perturbations"),
        (["--allow-missing", "drop"], "--allow-missing='drop' leaves labels without a key"),
    ],
)
def test_cli_preflight_errors_are_one_line_exit_2(data_file, pt_file, tmp_path, args, message):
    result = _bench(data_file, "-e", str(pt_file), "-o", str(tmp_path / "out"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no training started: nothing written


def test_cli_preflight_missing_vector_and_existing_output(data_file, perturbseq, tmp_path):
    table = torch.load(_pt(perturbseq, tmp_path), weights_only=True)
    del table["BAX"]
    torch.save(table, tmp_path / "gappy.pt")
    result = _bench(data_file, "-e", str(tmp_path / "gappy.pt"), "-o", str(tmp_path / "out"))
    assert (
        result.exit_code == 2 and "1 perturbation(s) have no key" in result.stderr and "BAX" in result.stderr
    )
    (tmp_path / "out_state").mkdir()
    result = _bench(data_file, "-e", str(tmp_path / "full.pt"), "-o", str(tmp_path / "out"))
    assert (
        result.exit_code == 2 and "out_state already exists" in result.stderr and "--force" in result.stderr
    )
    result = _bench(data_file, "-e", f"a={tmp_path / 'full.pt'}", "-e", f"a={tmp_path / 'full.pt'}")
    assert result.exit_code == 2 and "two --embeddings are named 'a'" in result.stderr


def test_plain_perturbseq_file_takes_x_and_one_batch_per_cell_type(
    perturbseq, pt_file, tmp_path, monkeypatch
):
    """Expression in X, no batch column: the defaults give way, said once each, and explicit names still refused."""
    import bioprofile.evaluate.perturbation as bench

    plain = perturbseq.adata.copy()
    del plain.obsm["X_hvg"], plain.obs["gem_group"]
    data = tmp_path / "plain.h5ad"
    plain.write_h5ad(data)
    plan = prepare_perturbation_bench(data, {"esm": pt_file}, columns=COLUMNS, work_dir=tmp_path / "w")
    assert plan.columns.embed_key is None and plan.columns.batch_col == "cell_type"
    assert [n.split(":")[0] for n in plan.layout_notes] == [
        "no obsm['X_hvg']",
        "no batch column 'gem_group' in obs",
    ]
    overrides = state_train_overrides(
        tmp_path / "s.toml", tmp_path / "run", columns=plan.columns, settings=StateModelSettings()
    )
    assert "data.kwargs.embed_key=null" in overrides and "data.kwargs.batch_col='cell_type'" in overrides
    # A file that has the defaults keeps them, with nothing to say.
    full, notes = COLUMNS.for_data(perturbseq.adata)
    assert full == COLUMNS and notes == []
    # A column the user named is never replaced.
    for columns, argument in [
        (PerturbationColumns(batch_col="lane"), "batch_col"),
        (PerturbationColumns(embed_key="X_pca"), "embed_key"),
    ]:
        with pytest.raises(BioprofileInputError) as err:
            prepare_perturbation_bench(data, {"esm": pt_file}, columns=columns, work_dir=tmp_path / "w")
        assert err.value.argument == argument

    # The command says each default it gave up on stderr, one line each, before any training.
    def stop(plan):
        raise SystemExit(f"stopped before training: {plan.columns.batch_col}")

    monkeypatch.setattr(bench, "run_perturbation_bench", stop)
    result = _bench(data, "-e", str(pt_file), "-o", str(tmp_path / "out"))
    assert "stopped before training: cell_type" in str(result.exception) or result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("no obsm['X_hvg']: STATE models the expression in X")
    assert lines[1].startswith("no batch column 'gem_group' in obs: one batch per cell type")


def test_result_settings_record_the_layout_defaults_taken(perturbseq, pt_file, tmp_path):
    import bioprofile.evaluate.perturbation as bench

    plain = perturbseq.adata.copy()
    del plain.obs["gem_group"]
    data = tmp_path / "plain.h5ad"
    plain.write_h5ad(data)
    plan = prepare_perturbation_bench(data, {"esm": pt_file}, columns=COLUMNS, work_dir=tmp_path / "w")
    rows = pd.DataFrame(
        {
            "method": ["esm"],
            "seed": [0],
            "cell_type": ["K562"],
            "perturbation": [plan.split.test_perturbations[0]],
            "held_out": [True],
            "mse": [0.5],
        }
    )
    result = bench._summarise(plan, rows)  # the step that writes settings
    assert result.settings["columns"]["batch_col"] == "cell_type"
    assert result.settings["columns"]["embed_key"] == "X_hvg"
    assert result.settings["layout_defaults_taken"] == plan.layout_notes and len(plan.layout_notes) == 1


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_bench_end_to_end_on_cpu(perturbseq, data_file, tmp_path, monkeypatch):
    """Real MiniLM vectors of RefSeq summaries; STATE trained, predicted and scored for every method."""
    from bioprofile.pipeline import embed_genes
    from bioprofile.store import Store

    with Store(tmp_path / "store.sqlite") as store:
        embed_genes(list(perturbseq.summaries), summaries=perturbseq.summaries, store=store).write(
            tmp_path / "genes.parquet"
        )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "bench" / "perturbation"
    out.parent.mkdir()
    result = _bench(
        data_file,
        "-e",
        f"bioprofile={tmp_path / 'genes.parquet'}",
        "--test-perturbations",
        ",".join(perturbseq.test_perturbations),
        "--max-steps",
        "10",  # a few steps: this checks the chain, benchmarks/perturbation_state.py measures the quality
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.with_suffix(".json").read_text())
    rows = {r["method"]: r for r in payload["rows"]}
    assert list(rows) == ["bioprofile", "random", ONE_HOT, CONTROL_MEAN]
    for row in rows.values():
        assert all(np.isfinite(row[m]) for m in ("pearson_delta", "mse", "mae", "discrimination_score_l1"))
    held = {r["perturbation"] for r in payload["per_perturbation"] if r["held_out"]}
    assert held == set(perturbseq.test_perturbations)
    assert "| control-mean |" in out.with_suffix(".md").read_text() and out.with_suffix(".png").is_file()
    # Everything STATE wrote is under the output folder, nothing in the working folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "genes.parquet", "store.sqlite"]
    runs = sorted(p.name for p in (out.parent / "perturbation_state" / "runs").iterdir())
    assert runs == ["bioprofile-seed0", "one-hot-seed0", "random-seed0"]
