"""The table of ``reproduce.py``: model x metric, mean ± std over seeds, every method beside SFT, and its plots.

A difference from SFT is called a tie when it is within the seed spread: ``|mean - mean_sft| <= max(std, std_sft)``
(sample standard deviations over seeds). With one seed there is no spread, and no call is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: Metric -> (column title, True if higher is better, False if lower is, None if it only describes).
METRICS: dict[str, tuple[str, bool | None]] = {
    "heldout_rougeL": ("held-out profile ROUGE-L vs RefSeq", True),
    "heldout_cosine": ("held-out profile cosine vs RefSeq", True),
    "heldout_token_acc": ("held-out token accuracy (teacher-forced)", True),
    "token_nll": ("held-out summary token NLL", False),
    "geneset_rougeL": ("GO gene-set ROUGE-L", True),
    "geneset_cosine": ("GO gene-set cosine", True),
    "leiden_ari": ("pbmc Leiden ARI", True),
    "kmeans_ari": ("pbmc k-means ARI", True),
    "entities": ("gene entities per profile", None),
    "connectives": ("causal connectives per profile", None),
    "words": ("words per profile", None),
    "dense_low_share": ("dense-low window share", None),
}
SFT = "sft"


def _task_metric(task: str) -> str:
    return f"{task}_auc"


def _stats(values: list[float]) -> dict[str, Any]:
    arr = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not arr.size:
        return {"mean": None, "std": None, "n": 0, "values": []}
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size), "values": arr.tolist()}


def build_table(results: dict, buckets: dict, *, methods: tuple[str, ...], base: str) -> dict[str, Any]:
    """Rows (base, each method, the baselines) x metrics, each ``{"mean", "std", "n", "values"}``, and the calls.

    Parameters
    ----------
    results
        ``{"models": {row name: scores}, "seeds": {"row name/fold seed": scores}, "train": {"method/seed": record}}``
        as :func:`reproduce.run_chain` collects them; a tuned model's row name is ``method/seed``.
    buckets
        ``{"method/seed": NLL by base-model confidence rows}``.
    methods, base
        The methods in table order and the base model's row name.
    """
    tasks = sorted({t for s in results["seeds"].values() for t in s["gene_tasks"]})
    metric_names = list(METRICS) + [_task_metric(t) for t in tasks]
    per_row: dict[str, dict[str, list[float]]] = {}

    def add(row: str, metric: str, value: Any) -> None:
        if value is not None:
            per_row.setdefault(row, {}).setdefault(metric, []).append(float(value))

    for name, scores in results["models"].items():
        row = name.split("/")[0]
        for metric in METRICS:
            if metric in scores:
                add(row, metric, scores[metric])
        add("most-frequent term", "geneset_rougeL", scores.get("geneset_baseline_rougeL"))
        add("most-frequent term", "geneset_cosine", scores.get("geneset_baseline_cosine"))
    for key, record in results["train"].items():
        add(key.split("/")[0], "heldout_token_acc", (record.get("eval") or {}).get("token_accuracy"))
    for key, scores in results["seeds"].items():
        row = key.split("/")[0]
        for task, by in scores["gene_tasks"].items():
            add(row, _task_metric(task), by.get("model", {}).get("auc"))
            if row == base:
                add("symbol-only", _task_metric(task), by.get("symbol", {}).get("auc"))
                add("random", _task_metric(task), by.get("random", {}).get("auc"))
        add(row, "leiden_ari", scores["clustering"]["model"]["leiden_ari"])
        add(row, "kmeans_ari", scores["clustering"]["model"]["kmeans_ari"])
        if row == base:
            add("PCA of expression", "leiden_ari", scores["clustering"]["pca"]["leiden_ari"])
            add("PCA of expression", "kmeans_ari", scores["clustering"]["pca"]["kmeans_ari"])
    # the most-frequent-term baseline is one answer for every model: keep one value per set of sets
    if "most-frequent term" in per_row:
        per_row["most-frequent term"] = {k: v[:1] for k, v in per_row["most-frequent term"].items()}
    order = [base, *[m for m in methods if m in per_row], "symbol-only", "random", "PCA of expression"]
    order += ["most-frequent term"]
    rows = {
        row: {metric: _stats(per_row[row].get(metric, [])) for metric in metric_names}
        for row in order
        if row in per_row
    }
    calls = {}
    if SFT in rows:
        for method in methods:
            if method == SFT or method not in rows:
                continue
            calls[method] = {m: _call(rows[method][m], rows[SFT][m], m) for m in metric_names}
    nll = _mean_buckets(buckets)
    return {
        "metrics": metric_names,
        "rows": rows,
        "vs_sft": calls,
        "nll_by_base_confidence": nll,
        "tasks": tasks,
    }


def _direction(metric: str) -> bool | None:
    if metric.endswith("_auc"):
        return True
    return METRICS[metric][1]


def _call(a: dict, b: dict, metric: str) -> str:
    """``tie`` / ``better`` / ``worse`` (or ``higher`` / ``lower`` for descriptive metrics) of ``a`` against ``b``."""
    if a["mean"] is None or b["mean"] is None or min(a["n"], b["n"]) < 2:
        return "n/a"
    diff = a["mean"] - b["mean"]
    if abs(diff) <= max(a["std"], b["std"]):
        return "tie"
    up = diff > 0
    direction = _direction(metric)
    if direction is None:
        return "higher" if up else "lower"
    return "better" if up == direction else "worse"


def _mean_buckets(buckets: dict) -> dict[str, list[dict]]:
    """Per method, the bucket rows averaged over seeds (``nll_after`` mean and std)."""
    by_method: dict[str, list[list[dict]]] = {}
    for key, rows in buckets.items():
        by_method.setdefault(key.split("/")[0], []).append(rows)
    out = {}
    for method, runs in by_method.items():
        merged = []
        for i, first in enumerate(runs[0]):
            after = [r[i]["nll_after"] for r in runs if r[i]["nll_after"] is not None]
            merged.append(
                {
                    "base_p": first["base_p"],
                    "n_tokens": first["n_tokens"],
                    "nll_before": first["nll_before"],
                    **_prefixed(_stats(after), "nll_after_"),
                }
            )
        out[method] = merged
    return out


def _prefixed(stats: dict, prefix: str) -> dict:
    return {f"{prefix}{k}": v for k, v in stats.items() if k != "values"}


def _cell(stats: dict) -> str:
    if stats["mean"] is None:
        return ""
    if stats["n"] < 2:
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _title(metric: str) -> str:
    if metric.endswith("_auc"):
        return f"{metric[: -len('_auc')]} ROC-AUC"
    return METRICS[metric][0]


def to_markdown(table: dict, meta: dict) -> str:
    """The table (rows x metrics, transposed: one row per metric, one column per model) and the calls vs SFT."""
    rows = table["rows"]
    names = list(rows)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in table["metrics"]:
        if all(rows[n][metric]["mean"] is None for n in names):
            continue
        lines.append(f"| {_title(metric)} | " + " | ".join(_cell(rows[n][metric]) for n in names) + " |")
    n_seeds = max((s["n"] for r in rows.values() for s in r.values()), default=0)
    out = [
        f"Mean ± sample std over seeds (up to {n_seeds}); a single value has no spread.",
        "",
        *lines,
        "",
    ]
    if table["vs_sft"]:
        methods = list(table["vs_sft"])
        out += [
            "Against SFT (tie: the difference is within the larger seed std):",
            "",
            "| metric | " + " | ".join(methods) + " |",
            "|---" * (len(methods) + 1) + "|",
        ]
        for metric in table["metrics"]:
            calls = [table["vs_sft"][m][metric] for m in methods]
            if all(c == "n/a" for c in calls):
                continue
            out.append(f"| {_title(metric)} | " + " | ".join(calls) + " |")
        out.append("")
    if table["nll_by_base_confidence"]:
        out += [
            "Held-out summary token NLL by the base model's probability of the token (mean over seeds):",
            "",
        ]
        methods = list(table["nll_by_base_confidence"])
        first = table["nll_by_base_confidence"][methods[0]]
        out += [
            "| base p | tokens | base | " + " | ".join(methods) + " |",
            "|---" * (len(methods) + 3) + "|",
        ]
        for i, bucket in enumerate(first):
            before = bucket["nll_before"]
            cells = []
            for m in methods:
                value = table["nll_by_base_confidence"][m][i]["nll_after_mean"]
                cells.append("" if value is None else f"{value:.3f}")
            before_text = "" if before is None else f"{before:.3f}"
            out.append(
                f"| {bucket['base_p']} | {bucket['n_tokens']} | {before_text} | " + " | ".join(cells) + " |"
            )
        out.append("")
    out.append(
        f"Run time (every call of this run folder together): {meta['run_seconds_total'] / 60:.1f} min; command: `{meta['command']}`"
    )
    return "\n".join(out) + "\n"


def write_table(table: dict, meta: dict, prefix: Path) -> dict[str, Path]:
    """Write ``PREFIX.md``, ``PREFIX.json`` and the plots ``PREFIX_metrics.png``, ``PREFIX_nll.png``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = {"md": prefix.with_name(prefix.name + ".md"), "json": prefix.with_name(prefix.name + ".json")}
    paths["md"].write_text(to_markdown(table, meta))
    paths["json"].write_text(json.dumps({**meta, **table}, indent=2) + "\n")
    paths.update(plot_table(table, prefix))
    return paths


def plot_table(table: dict, prefix: Path) -> dict[str, Path]:
    """Bars (mean, seed std as error bars) of every model on every metric; NLL by base confidence as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in table["metrics"] if any(r[m]["mean"] is not None for r in table["rows"].values())]
    cols = 4
    n_rows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.2 * cols, 3.2 * n_rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        names = [n for n, r in table["rows"].items() if r[metric]["mean"] is not None]
        means = [table["rows"][n][metric]["mean"] for n in names]
        stds = [table["rows"][n][metric]["std"] or 0.0 for n in names]
        ax.bar(range(len(names)), means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_title(_title(metric), fontsize=9)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.tight_layout()
    paths = {"metrics_png": prefix.with_name(prefix.name + "_metrics.png")}
    fig.savefig(paths["metrics_png"], dpi=110)
    plt.close(fig)
    nll = table["nll_by_base_confidence"]
    if nll:
        fig, ax = plt.subplots(figsize=(6, 4))
        first = next(iter(nll.values()))
        x = range(len(first))
        ax.plot(x, [b["nll_before"] or np.nan for b in first], "k--", label="base")
        for method, buckets in nll.items():
            ax.plot(x, [b["nll_after_mean"] or np.nan for b in buckets], marker="o", label=method)
        ax.set_xticks(list(x), [b["base_p"] for b in first], fontsize=8)
        ax.set_xlabel("base-model probability of the token")
        ax.set_ylabel("mean NLL on held-out summaries")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths["nll_png"] = prefix.with_name(prefix.name + "_nll.png")
        fig.savefig(paths["nll_png"], dpi=110)
        plt.close(fig)
    return paths
