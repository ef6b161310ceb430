"""benchmarks/integration_scale.py: bioprofile's scIB table equals scib-metrics' Benchmarker's on the same cells and
kNN graph, and the script's step clock says where the seconds went."""

from __future__ import annotations

import json
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from integration_scale import (  # noqa: E402
    EMBEDDINGS,
    benchmarker_table,
    differences,
    main,
    prepared_benchmarker,
    run_bioprofile,
    synthetic_pairs,
)


def test_bioprofile_scores_equal_the_benchmarkers_with_the_same_neighbours():
    cells = synthetic_pairs(60, 3, 8)
    cells.obsm["X_bioprofile"][:4] = cells.obsm["X_bioprofile"][60:64]  # duplicate rows (scib-metrics#77)
    bench = prepared_benchmarker(cells)
    bench.benchmark()
    theirs = benchmarker_table(bench)
    _, ours, steps = run_bioprofile(cells)
    assert list(ours.index) == EMBEDDINGS
    diff = differences(ours, theirs)
    assert diff.shape == (2, 11) and diff.notna().all().all()
    assert float(diff.abs().max().max()) < 1e-5, diff.to_string()
    # every step of each embedding is timed, the modality matching of the paired cells too
    assert {"X_pca: cLISI", "X_bioprofile: KMeans NMI/ARI", "X_pca: modality matching"} <= set(steps)
    assert all(seconds >= 0 for seconds in steps.values())


def test_the_script_times_bioprofile_alone_and_writes_json(tmp_path, capsys):
    output = tmp_path / "alone.json"
    main(
        [
            "--cells",
            "40",
            "--types",
            "3",
            "--dim",
            "8",
            "--skip-benchmarker",
            "--skip-pynndescent",
            "-o",
            str(output),
        ]
    )
    result = json.loads(output.read_text(encoding="utf-8"))
    assert result["rows"] == 80 and len(result["seconds"]["bioprofile"]) == 1
    assert result["seconds"]["scib_benchmarker"] == []
    assert set(result["tables"]["bioprofile"]) == set(EMBEDDINGS)
    assert result["bioprofile_seconds_per_step"]["X_bioprofile: silhouettes and exact kNN graph"] > 0
    assert len(result["load_before"]) == 3
    assert "repeat 0: bioprofile" in capsys.readouterr().out
