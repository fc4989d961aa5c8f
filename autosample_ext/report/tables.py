"""Reporting of a run's results: aggregates over seeds, paired t-tests, the Table 3 layout,
the alpha trajectories (CSV + plot) and the printed summary. Reads results; runs nothing."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from autosample_ext.search.records import (
    AUTOSAMPLE,
    BUDGET_SUFFIX,
    GRID,
    SH,
    PhaseRecord,
    is_autosample,
    is_search_stage,
)
from autosample_ext.report.printout import below_floor_line, legend_line

if TYPE_CHECKING:  # pandas is imported when a run reports, not when the CLI starts
    import pandas as pd

    from autosample_ext.run.driver import RunSummary

TABLE_METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hit")
TABLE_ABBREV = {"recall": "R", "ndcg": "N", "precision": "P", "hit": "H", "mrr": "MRR"}


def column_label(metric: str) -> str:
    """``"recall@20"`` -> ``"R@20"``."""
    name, _, k = metric.partition("@")
    return f"{TABLE_ABBREV.get(name, name)}@{k}"
#: methods that search (tested against the best single sampler) and the grid's pick
SEARCH_METHODS: tuple[str, ...] = (AUTOSAMPLE, SH)
NOT_SINGLE: frozenset[str] = frozenset({AUTOSAMPLE, SH, GRID, "search"})


def is_single(method: str) -> bool:
    """A sampler (or schedule) trained alone with the run's budget rules."""
    return (method not in NOT_SINGLE and not method.endswith(BUDGET_SUFFIX)
            and not is_autosample(method) and not is_search_stage(method))


def alpha_frame(records: Sequence[PhaseRecord]) -> pd.DataFrame:
    """Alpha per candidate per search epoch: columns seed, epoch, <candidate>..."""
    import pandas as pd

    rows = []
    for rec in records:
        if rec.method != "search":  # the run's own alpha objective
            continue
        for entry in rec.result.log:
            rows.append({"seed": rec.seed, "epoch": entry["epoch"], **entry["alpha"]})
    return pd.DataFrame(rows)


def write_alpha_plot(frame: pd.DataFrame, path: Path, *, title: str = "",
                     best_epochs: dict[int, int] | None = None) -> None:
    """alpha.png: one panel per seed, one line per candidate (the paper's Figure 4); see
    :func:`autosample_ext.report.figures.write_alpha_plot`."""
    from autosample_ext.report.figures import write_alpha_plot as draw

    draw(frame, path, title=title, best_epochs=best_epochs)


def candidate_label(name: str) -> str:
    """A candidate as the tables print it: sampler names upper case, options as written
    (``aobpr@4+dns(top_k=2)`` -> ``AOBPR@4+DNS(top_k=2)``)."""
    out, depth = [], 0
    for ch in name:
        depth += (ch == "(") - (ch == ")")
        out.append(ch.upper() if depth == 0 else ch)
    return "".join(out)


def method_label(method: str) -> str:
    if method == AUTOSAMPLE:
        return "AutoSample"
    if is_autosample(method):  # the other alpha objective of --compare
        objective = method[len(AUTOSAMPLE) + 1:]
        return {"train": "AutoSample (paper: alpha by training loss)",
                "valid": "AutoSample (alpha by validation)"}.get(objective, method)
    if method == SH:
        return "SH"
    if method == GRID:
        return "Grid pick"
    if method.endswith(BUDGET_SUFFIX):
        return f"{candidate_label(method[:-len(BUDGET_SUFFIX)])} (AutoSample's epochs)"
    return candidate_label(method)


def flag_below_popularity(metrics: dict[str, Any], metric: str) -> list[str]:
    """Mark every reported run of ``metrics`` whose ``metric`` on the reported split is below
    the popularity ranking's (``runs[i]["below_popularity"]``) and list them in
    ``metrics["below_popularity"]`` as ``{"run", "value", "popularity"}``: a model worse than
    ranking by item counts has diverged or not learned. Returns the flagged run names."""
    pop = metrics["popularity"]["test"]
    if metric not in pop:  # --metric's cut-off is not among --ks: the same metric at the first k
        metric = next((m for m in pop if m.partition("@")[0] == metric.partition("@")[0]), metric)
    floor = pop.get(metric)
    flagged = []
    for entry in metrics["runs"]:
        if is_search_stage(entry["method"]):
            continue
        reported = entry.get("best_test", entry.get("test")) or {}
        value = reported.get(metric)
        below = floor is not None and value is not None and value < floor
        entry["below_popularity"] = bool(below)
        if below:
            name = f"seed{entry['seed']}/{entry['method']}"
            flagged.append({"run": name, "metric": metric, "value": value, "popularity": floor})
    metrics["below_popularity"] = flagged
    return [f["run"] for f in flagged]


def aggregate(records: Sequence[PhaseRecord], split: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {metric: {mean, std, n}}}`` over seeds (std with ddof=1, 0 for one seed)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    frame = metrics_frame(records, split)
    for method, sub in frame.groupby("method", sort=False):
        out[str(method)] = {}
        for metric in sub.columns.drop(["method", "seed"]):
            values = sub[metric].to_numpy(dtype=float)
            out[str(method)][metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                "n": int(values.size)}
    return out


def metrics_frame(records: Sequence[PhaseRecord], split: str) -> pd.DataFrame:
    """One row per (method, seed) of the reported methods with the ``split`` metrics."""
    import pandas as pd

    rows = []
    for rec in records:
        if is_search_stage(rec.method):
            continue
        metrics = rec.result.test if split == "test" else rec.result.valid
        rows.append({"method": rec.method, "seed": rec.seed, **metrics})
    return pd.DataFrame(rows)


def paired_ttests(frame: pd.DataFrame, ks: Sequence[int], method: str = AUTOSAMPLE,
                  columns: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``method`` (AutoSample, SH) vs the best single sampler (by mean, per metric), paired over
    seeds. Single samplers: every method that is not a search, a grid pick or a budget run.
    ``columns``: the metrics tested (default R/N/P/H at every k of ``ks``)."""
    from scipy import stats

    out: dict[str, dict[str, Any]] = {}
    if method not in set(frame["method"]):
        return out
    singles = [m for m in frame["method"].unique() if is_single(str(m))]
    if not singles:
        return out
    auto = frame[frame["method"] == method].set_index("seed")
    if columns is None:
        columns = [f"{name}@{k}" for k in ks for name in TABLE_METRICS]
    for metric in columns:
        means = {m: frame.loc[frame["method"] == m, metric].mean() for m in singles}
        best = max(means, key=lambda m: means[m])
        base = frame[frame["method"] == best].set_index("seed")
        seeds = sorted(set(auto.index) & set(base.index))
        entry: dict[str, Any] = {"baseline": best, "n": len(seeds),
                                 "mean_diff": float(auto.loc[seeds, metric].mean()
                                                    - base.loc[seeds, metric].mean())}
        if len(seeds) >= 2:
            diff = auto.loc[seeds, metric].to_numpy() - base.loc[seeds, metric].to_numpy()
            if np.allclose(diff, diff[0]):
                entry["p_value"] = 0.0 if diff[0] != 0 else 1.0
            else:
                res = stats.ttest_rel(auto.loc[seeds, metric].to_numpy(),
                                      base.loc[seeds, metric].to_numpy())
                entry["t"] = float(res.statistic)
                entry["p_value"] = float(res.pvalue)
            entry["significant"] = bool(entry["p_value"] < 0.05)
        out[metric] = entry
    return out


def render_table(records: Sequence[PhaseRecord], split: str, k: int,
                 ttests: dict[str, dict[str, Any]] | None = None,
                 sh_ttests: dict[str, dict[str, Any]] | None = None,
                 columns: Sequence[str] | None = None) -> str:
    """Markdown table in the layout of the paper's Table 3.

    Rows: methods; columns: R/N/P/H@k (or ``columns``, metric keys such as ``"ndcg@3"``) as
    mean (± std over seeds) with the rank of the row in that metric (1 = best), then the
    average rank (no ranks for a table of one row). AutoSample vs the best single sampler of the
    metric, paired t-test over seeds, p < 0.05: ``*`` significantly better, ``†`` significantly
    worse (``ttests``); the same for SH (``sh_ttests``).
    """
    frame = metrics_frame(records, split)
    cols = list(columns) if columns is not None else [f"{m}@{k}" for m in TABLE_METRICS]
    grouped = frame.groupby("method", sort=False)[cols]
    mean, std, count = grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.count()
    ranks = mean.rank(ascending=False, method="min")
    ranked = len(mean.index) > 1  # a rank among one row says nothing
    header = ["Sampler"] + [column_label(c) for c in cols] + (["Avg rank"] if ranked else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    several = int(count.max().max()) > 1
    for method in mean.index:
        cells = [method_label(method)]
        for col in cols:
            text = f"{mean.loc[method, col]:.4f}"
            if several:
                text += f" ± {std.loc[method, col]:.4f}"
            marks = {AUTOSAMPLE: ttests, SH: sh_ttests}.get(method) or {}
            test = marks.get(col, {})
            if test.get("significant"):
                text += "*" if test["mean_diff"] > 0 else "†"
            if ranked:
                text += f" ({int(ranks.loc[method, col])})"
            cells.append(text)
        if ranked:
            cells.append(f"{ranks.loc[method].mean():.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cost_summary(records: Sequence[PhaseRecord]) -> dict[str, Any]:
    """Search costs side by side: per seed and method, CPU (process) and wall seconds of
    AutoSample (search + retrain), SH (the whole race), the grid (every candidate) and each
    single sampler; means over seeds and the ratios to the grid's CPU seconds."""
    per_seed: dict[str, dict[str, dict[str, float]]] = {}
    for rec in records:
        if is_search_stage(rec.method) or rec.method.endswith(BUDGET_SUFFIX):
            continue
        if is_autosample(rec.method):
            cpu = rec.extra["search_cpu_seconds"] + rec.extra["retrain_cpu_seconds"]
            wall = rec.extra["search_seconds"] + rec.extra["retrain_seconds"]
        elif rec.method in (SH, GRID):
            cpu, wall = rec.extra["cpu_seconds"], rec.extra["wall_seconds"]
        else:
            cpu, wall = rec.result.cpu_seconds, rec.result.seconds
        epochs = rec.extra.get("search_epochs", 0) + rec.extra.get("retrain_epochs", 0) \
            if is_autosample(rec.method) else None
        entry = {"cpu_seconds": float(cpu), "wall_seconds": float(wall)}
        if epochs is not None:
            entry["epochs"] = int(epochs)
        per_seed.setdefault(str(rec.seed), {})[rec.method] = entry
    if not any(m in SEARCH_METHODS or m == GRID or is_autosample(m)
               for d in per_seed.values() for m in d):
        return {}
    methods = list(dict.fromkeys(m for d in per_seed.values() for m in d))
    mean: dict[str, dict[str, float]] = {}
    for m in methods:
        cpu = np.array([d[m]["cpu_seconds"] for d in per_seed.values() if m in d])
        wall = np.array([d[m]["wall_seconds"] for d in per_seed.values() if m in d])
        mean[m] = {"cpu_seconds": float(cpu.mean()),
                   "cpu_std": float(cpu.std(ddof=1)) if cpu.size > 1 else 0.0,
                   "wall_seconds": float(wall.mean()), "n": int(cpu.size)}
    out: dict[str, Any] = {"per_seed": per_seed, "mean": mean}
    if GRID in mean:
        # ratio per seed, then averaged (the grid and the search ran on the same seed)
        ratios: dict[str, float] = {}
        for m in methods:
            r = [d[m]["cpu_seconds"] / d[GRID]["cpu_seconds"] for d in per_seed.values()
                 if m in d and GRID in d and d[GRID]["cpu_seconds"] > 0]
            if r:
                ratios[m] = float(np.mean(r))
        out["cpu_ratio_to_grid"] = ratios
    return out


def render_cost_table(costs: dict[str, Any]) -> str:
    """Markdown: method, CPU seconds (mean ± std over seeds), wall seconds, ratio to the grid."""
    ratios = costs.get("cpu_ratio_to_grid", {})
    lines = ["| Method | CPU s | wall s | CPU / grid CPU |", "|---|---|---|---|"]
    first = [AUTOSAMPLE] + sorted(m for m in costs["mean"] if is_autosample(m)
                                  and m != AUTOSAMPLE) + [SH, GRID]
    order = [m for m in first if m in costs["mean"]] + \
        [m for m in costs["mean"] if m not in first]
    for m in order:
        c = costs["mean"][m]
        cpu = f"{c['cpu_seconds']:.1f}" + (f" ± {c['cpu_std']:.1f}" if c["n"] > 1 else "")
        ratio = f"{ratios[m]:.2f}" if m in ratios else ""
        lines.append(f"| {method_label(m)} | {cpu} | {c['wall_seconds']:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def how_chosen(entry: dict[str, Any], metrics: dict[str, Any]) -> str:
    """One line on how AutoSample's pick was made (``metrics.json``'s per-seed entry)."""
    tail = ("the pick is argmax alpha at the search's best validation epoch, retrained alone "
            "from the searched weights")
    if entry.get("alpha_objective") == "train":
        return f"alpha followed the training loss (the paper's Algorithm 1); {tail}"
    metric = metrics.get("validation_metric", "the validation metric")
    return (f"alpha followed each candidate's look-ahead gain in a smooth validation {metric} "
            f"({entry.get('probes', 0)} probes, each candidate training a few steps from the "
            f"same state); {tail}")


def summary_text(summary: RunSummary) -> str:
    """The readable final report printed by the CLI."""
    m = summary.metrics
    lines = [summary.table.rstrip()]
    for method in [k for k in m if is_autosample(k)]:
        for seed, a in m[method].items():
            alpha = ", ".join(f"{n.upper()} {v:.3f}" for n, v in a["alpha_star"].items())
            lines.append(f"seed {seed}: {method_label(method)} chose {a['chosen'].upper()} "
                         f"(alpha*: {alpha}); search {a['search_seconds']:.1f}s + retrain "
                         f"{a['retrain_seconds']:.1f}s")
        lines.append(f"  how: {how_chosen(next(iter(m[method].values())), m)}")
    for seed, r in m.get("sh", {}).items():
        lines.append(f"seed {seed}: successive halving chose {candidate_label(r['chosen'])}; "
                     f"{r['cpu_seconds']:.1f} CPU s, {r['wall_seconds']:.1f}s")
    for seed, g in m.get("grid", {}).items():
        lines.append(f"seed {seed}: grid search best {g['best'].upper()} by validation; "
                     f"total {g['cpu_seconds']:.1f} CPU s, {g['seconds']:.1f}s")
    ratios = {k: v for k, v in m.get("costs", {}).get("cpu_ratio_to_grid", {}).items()
              if k in SEARCH_METHODS or is_autosample(k)}
    if ratios:  # the grid alone has no search to compare with it
        lines.append("CPU seconds / grid's: " + ", ".join(
            f"{method_label(k)} {v:.2f}" for k, v in ratios.items()))
    pop = m["popularity"]["test"]
    k = m["table_k"]
    lines.append(f"popularity ranking (reference floor), test: R@{k} {pop[f'recall@{k}']:.4f}, "
                 f"N@{k} {pop[f'ndcg@{k}']:.4f}")
    warning = below_floor_line(m.get("below_popularity", []))
    if warning:
        lines.append(warning)
    lines.append(legend_line(m))
    lines.append(f"{m['reported_split']}; outputs in {summary.path} ({summary.seconds:.1f}s)")
    return "\n".join(lines)
