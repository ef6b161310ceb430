"""benchmarks/integration_scale.py: its clock splits a run honestly, and its instant Benchmarker is shaped as the real one."""

from __future__ import annotations

import json
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from integration_scale import (  # noqa: E402
    _instant_results,
    benchmarker_clock,
    main,
    prepared_benchmarker,
    synthetic_pairs,
)


def test_the_instant_results_have_the_real_benchmarkers_rows_and_columns():
    # the own-work timing is only fair if bioprofile handles the instant table exactly as it handles a real one
    bench = prepared_benchmarker(synthetic_pairs(60, 3, 8))
    bench.benchmark()
    real = bench.get_results(min_max_scale=False).drop("Metric Type")
    instant = _instant_results(bench, min_max_scale=False)
    assert list(instant.index) == list(real.index)
    assert set(instant.columns) == set(real.columns)  # scib_scores picks the columns by name, not by place


def test_the_clock_restores_the_benchmarker_and_counts_only_its_methods(tmp_path):
    from scib_metrics.benchmark import Benchmarker

    before = {name: getattr(Benchmarker, name) for name in ("prepare", "benchmark", "get_results")}
    with benchmarker_clock(instant=True) as spent:
        assert Benchmarker.benchmark is not before["benchmark"]
    assert {name: getattr(Benchmarker, name) for name in before} == before
    assert spent == [spent[0]] and 0.0 <= spent[0] < 1.0

    output = tmp_path / "own.json"
    main(
        [
            "--cells",
            "40",
            "--types",
            "3",
            "--dim",
            "8",
            "--repeats",
            "1",
            "--own-work-only",
            "-o",
            str(output),
        ]
    )
    result = json.loads(output.read_text(encoding="utf-8"))
    assert result["rows"] == 80 and len(result["bioprofile_own_seconds"]) == 1
    assert result["bioprofile_own_seconds"][0] > 0.0
    assert {name: getattr(Benchmarker, name) for name in before} == before
