"""One result shape for every benchmark: to_frame, write, a pl function, and write_result's files and lines.

Results are built directly from small tables (no scoring runs here), so every check is quick.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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
from bioprofile.evaluate.report import BenchmarkResult, RocCurve, WritesItself


def _score(task: str, embedding: str, auc: float, roc: bool = True) -> TaskScore:
    curve = RocCurve(fpr=np.array([0.0, 0.3, 1.0]), tpr=np.array([0.0, 0.8, 1.0]), auc=auc) if roc else None
    return TaskScore(
        embedding, task, "logreg", "ROC-AUC", auc, 0.02, "5-fold CV", 100, 90, [auc] * 5, {}, curve
    )


def gene_task_report(roc: bool = True) -> GeneTaskReport:
    scores = [_score("dosage", "bioprofile", 0.8, roc), _score("dosage", "random:bioprofile", 0.5, roc)]
    return GeneTaskReport(scores=scores, settings={"tasks": ["dosage"]})


def gene_set_result() -> GeneSetResult:
    sets = [
        {
            "name": f"GO:{i}",
            "key": f"geneset:{i}",
            "genes": ["TP53", "MDM2"],
            "term": "apoptosis",
            "raw_answer": "Apoptosis",
            "answers": {"smol": "apoptosis", "baseline": "cell cycle"},
            "scores": {
                "smol": {"rouge1": 1.0, "rouge2": 0.0, "rougeL": 1.0, "cosine": 0.9 - 0.1 * i},
                "baseline": {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "cosine": 0.2},
            },
        }
        for i in range(2)
    ]
    return GeneSetResult(sets=sets, methods=["smol", "baseline"], settings={"baseline_term": "cell cycle"})


def clustering_result() -> ClusteringResult:
    table = pd.DataFrame(
        {"kmeans_ari": [0.9, 0.4], "asw": [0.7, 0.5], "dim": [8, 50]},
        index=pd.Index(["X_bioprofile", "PCA of expression (50 PCs)"], name="method"),
    )
    rng = np.random.default_rng(0)
    embeddings = {name: rng.normal(size=(20, 3)) for name in table.index}
    return ClusteringResult(
        table=table, settings={"seed": 0}, embeddings=embeddings, labels=np.array(["a", "b"] * 10)
    )


def integration_result() -> IntegrationResult:
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        rng.uniform(size=(2, len(INTEGRATION_COLUMNS))),
        columns=INTEGRATION_COLUMNS,
        index=pd.Index(["X_bioprofile", "pca"], name="method"),
    )
    return IntegrationResult(table=table, settings={"batch_key": "batch"})


def perturbation_result() -> PerturbationBenchResult:
    table = pd.DataFrame(
        {"pearson_delta": [0.5, -0.1], "mse": [0.2, 0.3]},
        index=pd.Index(["bioprofile", CONTROL_MEAN], name="method"),
    )
    return PerturbationBenchResult(
        table=table, settings={"held_out_perturbations": ["A"], "options": {"seeds": [0]}}, std=table * 0
    )


RESULTS = {
    "gene_tasks": gene_task_report,
    "gene_sets": gene_set_result,
    "clustering": clustering_result,
    "integration": integration_result,
    "perturbation": perturbation_result,
}


@pytest.fixture
def fixed_umaps(monkeypatch):
    """UMAP coordinates without running UMAP: the clustering figure is drawn from these."""

    def coords(self):
        return {name: np.asarray(X)[:, :2] for name, X in self.embeddings.items()}

    monkeypatch.setattr(ClusteringResult, "umap_coordinates", coords)


@pytest.mark.parametrize("name", RESULTS)
def test_every_result_has_the_shape(name):
    result = RESULTS[name]()
    assert isinstance(result, BenchmarkResult) and isinstance(result, WritesItself)
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    assert json.loads(json.dumps(result.to_dict(), default=str))["settings"] == result.settings


def test_frames_keep_numbers_as_numbers():
    tasks = gene_task_report().to_frame()
    assert list(tasks["auc_mean"]) == [0.8, 0.5] and tasks["coverage"].iloc[0] == pytest.approx(0.9)
    assert {"embedding", "task", "model", "auc_std", "n_labelled", "n_covered"} <= set(tasks.columns)
    sets = gene_set_result().to_frame()
    assert list(sets.index) == ["smol", "baseline"] and sets.loc["smol", "cosine"] == pytest.approx(0.85)
    assert sets.loc["smol", "cosine_std"] == pytest.approx(0.05) and sets.loc["baseline", "n_sets"] == 2
    table = integration_result()
    frame = table.to_frame()
    frame.iloc[0, 0] = -1.0  # a copy: the result's own table is untouched
    assert table.table.iloc[0, 0] != -1.0


def test_gene_set_summary_is_the_first_table_of_the_markdown():
    result = gene_set_result()
    assert result.to_markdown().split("\n\n", 1)[0] == result.summary_markdown()
    assert (
        result.summary_markdown().startswith("| method | ROUGE-1 |")
        and "GO:0" not in result.summary_markdown()
    )


@pytest.mark.parametrize(
    ("name", "figure"),
    [
        ("gene_tasks", "run.png"),
        ("gene_sets", "run.png"),
        ("clustering", "run_umap"),
        ("integration", "run.png"),
        ("perturbation", "run.png"),
    ],
)
def test_write_result_writes_tables_and_the_figure(tmp_path, fixed_umaps, name, figure):
    result = RESULTS[name]()
    lines: list[str] = []
    written = pl.write_result(result, tmp_path / "run", echo=lines.append)
    assert written == [tmp_path / "run.md", tmp_path / "run.json", tmp_path / figure]
    assert pl.figure_path(result, tmp_path / "run") == tmp_path / figure
    assert (tmp_path / "run.md").read_text() == result.to_markdown()
    assert json.loads((tmp_path / "run.json").read_text())["settings"] == result.settings
    out = tmp_path / figure
    assert (out.stat().st_size > 1000) if out.suffix else (out / "umap_all.png").stat().st_size > 1000
    assert lines == [result.summary_markdown(), "wrote " + ", ".join(map(str, written))]


def test_write_result_records_extra_settings_first(tmp_path):
    written = pl.write_result(perturbation_result(), tmp_path / "p", plot=False, settings={"input": "d.h5ad"})
    assert written == [tmp_path / "p.md", tmp_path / "p.json"] and not (tmp_path / "p.png").exists()
    settings = json.loads((tmp_path / "p.json").read_text())["settings"]
    assert list(settings)[0] == "input" and settings["input"] == "d.h5ad"


def test_gene_tasks_without_a_curve_write_no_figure(tmp_path):
    written = pl.write_result(gene_task_report(roc=False), tmp_path / "t")
    assert written == [tmp_path / "t.md", tmp_path / "t.json"] and not (tmp_path / "t.png").exists()


def test_write_result_refuses_an_existing_figure_before_writing(tmp_path, fixed_umaps):
    (tmp_path / "i.png").write_bytes(b"old")
    with pytest.raises(BioprofileInputError) as err:
        pl.write_result(integration_result(), tmp_path / "i")
    assert err.value.argument == "overwrite" and not (tmp_path / "i.md").exists()
    (tmp_path / "c_umap").mkdir()
    with pytest.raises(BioprofileInputError):
        pl.write_result(clustering_result(), tmp_path / "c")
    assert not (tmp_path / "c.md").exists()
    assert pl.write_result(integration_result(), tmp_path / "i", overwrite=True)[-1] == tmp_path / "i.png"
    assert (tmp_path / "i.png").read_bytes() != b"old"


@dataclass(frozen=True, eq=False)
class _ToyResult(WritesItself):
    """A benchmark from outside the package: a frame, markdown, JSON, and its own plot registered."""

    settings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"score": [1.0]}, index=pd.Index(["toy"], name="method"))

    def to_markdown(self) -> str:
        return "| method | score |\n|---|---|\n| toy | 1.000 |\n"

    def to_dict(self) -> dict:
        return {"settings": self.settings, "rows": [{"method": "toy", "score": 1.0}]}


def test_a_new_result_type_needs_one_registration_line(tmp_path):
    assert pl.figure_path(_ToyResult(), tmp_path / "toy") is None
    assert pl.write_result(_ToyResult(), tmp_path / "toy") == [tmp_path / "toy.md", tmp_path / "toy.json"]

    def draw(result, path):
        path.write_bytes(b"png")
        return "figure"

    pl.register_plot(_ToyResult, draw, output=".svg")
    written = pl.write_result(_ToyResult(), tmp_path / "toy2")
    assert written[-1] == tmp_path / "toy2.svg" and (tmp_path / "toy2.svg").read_bytes() == b"png"


def test_pl_function_of_gene_sets_draws_the_result(tmp_path):
    fig = pl.gene_set_scores(gene_set_result(), tmp_path / "g.png", show=False, return_fig=True)
    assert (tmp_path / "g.png").stat().st_size > 1000
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "ROUGE-1",
        "ROUGE-2",
        "ROUGE-L",
        "cosine",
    ]
