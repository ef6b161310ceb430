r"""Compare two ``bench gene-sets`` results on the same sets: paired differences with a bootstrap interval.

Each set is answered by both models, so the difference is taken set by set (tuned minus base) and resampled over
sets (10,000 seeded bootstrap draws); a 95% interval that holds 0 is a tie. The most-frequent-term baseline of the
first file stands beside both, and so does a length control: the base answer cut to as many words as the tuned
answer has, scored the same way (ROUGE's F-measure against a term of a few words rises as an answer gets shorter,
so a shorter answer can gain ROUGE without knowing more). Writes ``PREFIX.md`` and ``PREFIX.json``::

    python benchmarks/gene_sets_compare.py benchmarks/results/gene_sets_100_base.json \
        benchmarks/results/gene_sets_100_bft_seed0.json -o benchmarks/results/gene_sets_100_compare
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bioprofile.atomic import atomic_write_text

METRICS = ("rouge1", "rouge2", "rougeL", "cosine")


def _scores(payload: dict) -> tuple[str, dict[str, dict[str, float]]]:
    """The model's row name and its per-set scores (``{set key: {metric: value}}``)."""
    (method,) = [row["method"] for row in payload["summary"] if row["method"] != "baseline"]
    return method, {s["key"]: s["scores"][method] for s in payload["sets"]}


def compare(base: dict, tuned: dict, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Per metric: both means, the baseline's, the paired mean difference, its bootstrap 95% interval, wins."""
    base_name, base_scores = _scores(base)
    tuned_name, tuned_scores = _scores(tuned)
    if set(base_scores) != set(tuned_scores):
        raise SystemExit("the two results answer different gene sets: run both on the same file")
    keys = sorted(base_scores)
    baseline = {s["key"]: s["scores"]["baseline"] for s in base["sets"] if "baseline" in s["scores"]}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(keys), size=(n_boot, len(keys)))
    cut = _base_cut_to_tuned_length(base, tuned, base_name, tuned_name)
    rows = {}
    for metric in METRICS:
        a = np.array([base_scores[k][metric] for k in keys])
        b = np.array([tuned_scores[k][metric] for k in keys])
        diff = b - a
        boot = diff[draws].mean(axis=1)
        low, high = np.quantile(boot, [0.025, 0.975])
        rows[metric] = {
            "base": float(a.mean()),
            "tuned": float(b.mean()),
            "baseline": float(np.mean([baseline[k][metric] for k in keys])) if baseline else None,
            "base_at_tuned_length": float(np.mean([cut[k][metric] for k in keys]))
            if metric in cut[keys[0]]
            else None,
            "difference": float(diff.mean()),
            "ci95": [float(low), float(high)],
            "tuned_higher": int((diff > 0).sum()),
            "tuned_lower": int((diff < 0).sum()),
            "equal": int((diff == 0).sum()),
            "reading": _reading(low, high),
        }
        if metric in cut[keys[0]]:  # ROUGE: the tuned answer against the base answer cut to its length
            c = np.array([cut[k][metric] for k in keys])
            c_low, c_high = np.quantile((b - c)[draws].mean(axis=1), [0.025, 0.975])
            rows[metric]["base_at_tuned_length"] = float(c.mean())
            rows[metric]["vs_cut_ci95"] = [float(c_low), float(c_high)]
            rows[metric]["vs_cut_reading"] = _reading(c_low, c_high)
    return {"base": base_name, "tuned": tuned_name, "n_sets": len(keys), "n_boot": n_boot, "metrics": rows}


def _reading(low: float, high: float) -> str:
    return "tie" if low <= 0 <= high else ("tuned higher" if low > 0 else "tuned lower")


def _base_cut_to_tuned_length(base: dict, tuned: dict, base_name: str, tuned_name: str) -> dict[str, dict]:
    """ROUGE of each base answer cut to the tuned answer's word count (the length control)."""
    from bioprofile.evaluate.gene_sets import rouge

    tuned_answers = {s["key"]: s["answers"][tuned_name] for s in tuned["sets"]}
    cut = {}
    for s in base["sets"]:
        n_words = len(tuned_answers[s["key"]].split())
        cut[s["key"]] = rouge(" ".join(s["answers"][base_name].split()[:n_words]), s["term"])
    return cut


def to_markdown(result: dict) -> str:
    """One row per metric."""
    lines = [
        f"{result['n_sets']} gene sets; base `{result['base']}`, tuned `{result['tuned']}`; paired bootstrap over "
        f"sets ({result['n_boot']} draws)",
        "",
        "| metric | base | tuned | most-frequent term | base cut to tuned's length | tuned - base | 95% interval "
        "| sets higher / lower / equal | reading | tuned vs cut base, 95% interval |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for metric, r in result["metrics"].items():
        baseline = "" if r["baseline"] is None else f"{r['baseline']:.3f}"
        cut = "" if r["base_at_tuned_length"] is None else f"{r['base_at_tuned_length']:.3f}"
        vs_cut = (
            f"[{r['vs_cut_ci95'][0]:+.3f}, {r['vs_cut_ci95'][1]:+.3f}] {r['vs_cut_reading']}"
            if "vs_cut_ci95" in r
            else ""
        )
        lines.append(
            f"| {metric} | {r['base']:.3f} | {r['tuned']:.3f} | {baseline} | {cut} | {r['difference']:+.3f} | "
            f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] | {r['tuned_higher']} / {r['tuned_lower']} / {r['equal']} "
            f"| {r['reading']} | {vs_cut} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Read the two results, compare, write PREFIX.md and PREFIX.json, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="bench gene-sets JSON of the base model")
    parser.add_argument("tuned", type=Path, help="bench gene-sets JSON of the tuned model, same sets")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output prefix")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    outputs = [args.output.with_suffix(".md"), args.output.with_suffix(".json")]
    if any(p.exists() for p in outputs) and not args.force:
        parser.error(f"{args.output}.md or .json exists; pass --force to replace them")
    result = compare(json.loads(args.base.read_text()), json.loads(args.tuned.read_text()))
    for path, text in zip(outputs, (to_markdown(result), json.dumps(result, indent=2) + "\n"), strict=True):
        atomic_write_text(path, text)
    print(to_markdown(result), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
