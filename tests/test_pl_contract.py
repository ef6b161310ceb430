"""Every plot of ``bioprofile.pl`` keeps scanpy's ``sc.pl`` contract: ``ax``, ``show``, ``save``, ``return_fig``.

A notebook shows a figure pyplot knows; ``show=False`` hands back the Axes to keep drawing; ``return_fig=True`` the
Figure; ``save`` writes it. Each plot is drawn from a tiny result (no UMAP, no model), on the Agg backend.
"""

from __future__ import annotations

import inspect

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest

from bioprofile import pl
from bioprofile.errors import BioprofileInputError
from bioprofile.evaluate.clustering import ClusteringResult
from bioprofile.evaluate.gene_sets import GeneSetResult
from bioprofile.evaluate.gene_tasks import GeneTaskReport
from bioprofile.evaluate.gene_tasks.protocol import TaskScore
from bioprofile.evaluate.integration import INTEGRATION_COLUMNS, IntegrationResult
from bioprofile.evaluate.perturbation import CONTROL_MEAN, PerturbationBenchResult
from bioprofile.evaluate.report import RocCurve
from bioprofile.evaluate.responses import Response, analyze_responses
from bioprofile.train.grpo_log import GRPOLog

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONTRACT = {"ax": None, "show": None, "save": None, "return_fig": False}
# the public names of pl that are no plot: a palette, and the result writer and its registry
NOT_PLOTS = {"category_colors", "figure_path", "register_plot", "write_result"}


def _cells() -> ad.AnnData:
    rng = np.random.default_rng(0)
    adata = ad.AnnData(
        X=rng.random((12, 3)), obs=pd.DataFrame({"group": pd.Categorical(["a", "b", "c"] * 4)})
    )
    adata.obsm["X_umap"] = rng.normal(size=(12, 2))
    return adata


def _gene_tasks() -> GeneTaskReport:
    # the curve's own area is 0.75; the 0.8 is the mean of the folds' AUCs, which the legend must not give it
    curve = RocCurve(fpr=np.array([0.0, 0.3, 1.0]), tpr=np.array([0.0, 0.8, 1.0]), auc=0.8)
    score = TaskScore(
        "bioprofile", "dosage", "logreg", "ROC-AUC", 0.8, 0.02, "5-fold CV", 100, 90, [0.8] * 5, {}, curve
    )
    return GeneTaskReport(scores=[score], settings={"tasks": ["dosage"]})


def _gene_sets() -> GeneSetResult:
    sets = [
        {
            "name": f"GO:{i}",
            "key": f"geneset:{i}",
            "genes": ["TP53", "MDM2"],
            "term": "apoptosis",
            "raw_answer": "Apoptosis",
            "answers": {"smol": "apoptosis"},
            "scores": {"smol": {"rouge1": 1.0, "rouge2": 0.0, "rougeL": 1.0, "cosine": 0.9}},
        }
        for i in range(3)
    ]
    return GeneSetResult(sets=sets, methods=["smol"], settings={})


def _clustering() -> ClusteringResult:
    table = pd.DataFrame({"kmeans_ari": [0.9]}, index=pd.Index(["X_bioprofile"], name="method"))
    embeddings = {"X_bioprofile": np.random.default_rng(0).normal(size=(10, 3))}
    return ClusteringResult(table=table, settings={}, embeddings=embeddings, labels=np.array(["a", "b"] * 5))


def _integration() -> IntegrationResult:
    table = pd.DataFrame(
        np.full((2, len(INTEGRATION_COLUMNS)), 0.5),
        columns=INTEGRATION_COLUMNS,
        index=pd.Index(["X_bioprofile", "pca"], name="method"),
    )
    return IntegrationResult(table=table, settings={})


def _perturbation() -> PerturbationBenchResult:
    table = pd.DataFrame({"mse": [0.2, 0.3]}, index=pd.Index(["bioprofile", CONTROL_MEAN], name="method"))
    return PerturbationBenchResult(
        table=table, settings={"held_out_perturbations": ["A", "B"]}, std=table * 0
    )


def _responses():
    answers = [
        Response("bft", "TP53 loss leads to growth"),
        Response("bft", "KRAS G12C"),
        Response("base", "A gene."),
    ]
    return analyze_responses(answers, symbols=frozenset({"TP53", "KRAS"}), ner_model=None)


def _grpo() -> GRPOLog:
    history = [
        {
            "step": step,
            "reward": reward,
            "frac_reward_zero_std": zero,
            "malformed_rate": 0.1,
            "kl": 0.01 * step,
        }
        for step, reward, zero in [(1, 0.25, 0.5), (2, 0.5, 0.25), (3, 0.75, 0.0)]
    ]
    return GRPOLog.from_log_history(history, num_generations=4)


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {"group": ["sparse-low"], "windows": [4], "frac_with_entity": [0.5], "frac_with_connective": [0.25]}
    )


def _tokens() -> pd.DataFrame:
    return pd.DataFrame({"position": [0, 1], "token": ["a", "b"], "p": [0.2, 0.9], "entity": [True, False],
                         "connective": [False, False], "sft": [1.0, 1.0], "dft": [0.2, 0.9]})  # fmt: skip


# plot name -> (draw with the contract's keywords, how many panels, a word its title or labels hold: the n drawn)
PLOTS = {
    "cell_embedding": (
        lambda **kw: pl.cell_embedding(_cells(), basis="umap", color="group", **kw),
        1,
        "n=12",
    ),
    "roc_panels": (lambda **kw: pl.roc_panels(_gene_tasks(), **kw), 1, "n=90 genes"),
    "gene_set_scores": (lambda **kw: pl.gene_set_scores(_gene_sets(), **kw), 1, "n=3 sets"),
    "clustering_umaps": (lambda **kw: pl.clustering_umaps(_clustering(), **kw), 1, "n=10 cells"),
    "integration_table": (lambda **kw: pl.integration_table(_integration(), **kw), 1, "n=2"),
    "perturbation_metrics": (lambda **kw: pl.perturbation_metrics(_perturbation(), **kw), 1, "n=2"),
    "response_metrics": (
        lambda **kw: pl.response_metrics(_responses(), metrics=["entities", "drug_share"], **kw),
        2,
        "bft n=2",
    ),
    "grpo_rewards": (lambda **kw: pl.grpo_rewards(_grpo(), **kw), 2, "n=3 steps, 4 replies per group"),
    "plot_group_summary": (lambda **kw: pl.plot_group_summary(_summary(), **kw), 1, "n=4"),
    "plot_token_weights": (lambda **kw: pl.plot_token_weights(_tokens(), **kw), 2, "n=2"),
}


@pytest.fixture(autouse=True)
def _no_figures_left(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(plt.get_fignums()))
    plt.close("all")
    yield shown
    plt.close("all")


@pytest.fixture
def fixed_umaps(monkeypatch):
    """UMAP coordinates without running UMAP."""
    monkeypatch.setattr(
        ClusteringResult,
        "umap_coordinates",
        lambda self: {k: np.asarray(v)[:, :2] for k, v in self.embeddings.items()},
    )


def _texts(fig) -> str:
    words = [fig.get_suptitle()]
    for axes in fig.axes:
        words += [axes.get_title(), axes.get_xlabel(), axes.get_ylabel()]
    return " ".join(words)


def test_every_public_plot_takes_the_contract():
    plots = sorted(set(pl.__all__) - NOT_PLOTS)
    assert plots == sorted(PLOTS)
    for name in plots:
        parameters = inspect.signature(getattr(pl, name)).parameters
        assert {k: parameters[k].default for k in CONTRACT if k in parameters} == CONTRACT, name


@pytest.mark.parametrize("name", PLOTS)
def test_ax_is_drawn_on(name, fixed_umaps):
    draw, n_panels, _ = PLOTS[name]
    fig, axes = plt.subplots(1, n_panels, squeeze=False)
    given = axes[0][0] if n_panels == 1 else list(axes[0])
    returned = draw(ax=given, show=False)
    assert returned is given if n_panels == 1 else list(returned) == given
    assert all(a.has_data() or a.images or a.texts for a in (given if n_panels > 1 else [given]))
    assert plt.get_fignums() == [fig.number]  # nothing else opened
    assert draw(ax=given, show=False, return_fig=True) is fig


@pytest.mark.parametrize("name", PLOTS)
def test_return_fig_show_and_save(name, fixed_umaps, tmp_path, monkeypatch, _no_figures_left):
    draw, _, n_word = PLOTS[name]
    fig = draw(show=False, return_fig=True)
    assert (
        isinstance(fig, matplotlib.figure.Figure) and fig.number in plt.get_fignums()
    )  # a notebook shows it
    assert n_word in _texts(fig)
    assert not _no_figures_left
    returned = draw(show=False)
    assert returned is not None and not isinstance(returned, matplotlib.figure.Figure)
    assert draw() is not None and not _no_figures_left  # not interactive (Agg): not shown by default
    assert draw(show=True) is None and len(_no_figures_left) == 1
    draw(save=tmp_path / "plot.png", show=False)
    assert (tmp_path / "plot.png").read_bytes()[:8] == PNG_MAGIC
    monkeypatch.chdir(tmp_path)
    draw(save=True, show=False)
    assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC


def test_show_follows_interactive_mode(_no_figures_left):
    draw = PLOTS["plot_group_summary"][0]
    with plt.ion():
        assert draw() is None
    assert len(_no_figures_left) == 1


def test_path_still_saves_and_cannot_be_given_with_save(tmp_path):
    pl.plot_group_summary(_summary(), tmp_path / "g.png", show=False)
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(BioprofileInputError, match="path or save") as err:
        pl.plot_group_summary(_summary(), tmp_path / "g.png", save=tmp_path / "h.png")
    assert err.value.argument == "save"


def test_ax_must_hold_one_axes_per_panel():
    _, axes = plt.subplots(1, 3)
    with pytest.raises(BioprofileInputError, match="2 panel") as err:
        pl.plot_token_weights(_tokens(), ax=list(axes))
    assert err.value.argument == "ax"


def test_basis_takes_scanpys_short_name():
    adata = _cells()
    short = pl.cell_embedding(adata, basis="umap", show=False)
    assert "X_umap" in short.get_xlabel()
    with pytest.raises(BioprofileInputError, match="no obsm\\['pca'\\]"):
        pl.cell_embedding(adata, basis="pca", show=False)


def test_roc_legend_gives_the_area_of_the_curve_drawn():
    ax = pl.roc_panels(_gene_tasks(), show=False)
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "0.75" in labels[0] and "0.8" not in labels[0]  # the pooled curve's area, not the mean fold AUC
    assert "pooled" in legend.get_title().get_text()


def test_write_result_leaves_no_figure_open(tmp_path):
    pl.write_result(_gene_sets(), tmp_path / "sets")
    assert (tmp_path / "sets.png").read_bytes()[:8] == PNG_MAGIC and plt.get_fignums() == []
