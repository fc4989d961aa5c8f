"""Reporting of a run's results: aggregates over seeds, paired t-tests, the Table 3 layout,
the alpha trajectories (CSV + plot) and the printed summary. Reads results; runs nothing."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from autosample_ext.experiment.phases import AUTOSAMPLE, PhaseRecord

if TYPE_CHECKING:  # pandas is imported when a run reports, not when the CLI starts
    import pandas as pd

    from autosample_ext.experiment.driver import RunSummary

TABLE_METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hit")
TABLE_ABBREV = {"recall": "R", "ndcg": "N", "precision": "P", "hit": "H"}


def alpha_frame(records: Sequence[PhaseRecord]) -> pd.DataFrame:
    """Alpha per candidate per search epoch: columns seed, epoch, <candidate>..."""
    import pandas as pd

    rows = []
    for rec in records:
        if rec.method != "search":
            continue
        for entry in rec.result.log:
            rows.append({"seed": rec.seed, "epoch": entry["epoch"], **entry["alpha"]})
    return pd.DataFrame(rows)


def write_alpha_plot(frame: pd.DataFrame, path: Path) -> None:
    """alpha.png: one panel per seed, one line per candidate (the paper's Figure 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(frame["seed"].unique())
    candidates = [c for c in frame.columns if c not in ("seed", "epoch")]
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.5 * len(seeds), 3.4), squeeze=False,
                             sharey=True)
    for ax, seed in zip(axes[0], seeds):
        sub = frame[frame["seed"] == seed]
        for cand in candidates:
            ax.plot(sub["epoch"], sub[cand], marker="o", markersize=2.5, label=cand.upper())
        ax.set_title(f"seed {seed}")
        ax.set_xlabel("search epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("alpha")
    axes[0][-1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def method_label(method: str) -> str:
    return "AutoSample" if method == AUTOSAMPLE else method.upper()


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
        if rec.method == "search":
            continue
        metrics = rec.result.test if split == "test" else rec.result.valid
        rows.append({"method": rec.method, "seed": rec.seed, **metrics})
    return pd.DataFrame(rows)


def paired_ttests(frame: pd.DataFrame, ks: Sequence[int]) -> dict[str, dict[str, Any]]:
    """AutoSample vs the best single sampler (by mean, per metric), paired over seeds."""
    from scipy import stats

    out: dict[str, dict[str, Any]] = {}
    if AUTOSAMPLE not in set(frame["method"]):
        return out
    singles = [m for m in frame["method"].unique() if m != AUTOSAMPLE]
    if not singles:
        return out
    auto = frame[frame["method"] == AUTOSAMPLE].set_index("seed")
    for k in ks:
        for name in TABLE_METRICS:
            metric = f"{name}@{k}"
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
                 ttests: dict[str, dict[str, Any]] | None = None) -> str:
    """Markdown table in the layout of the paper's Table 3.

    Rows: methods; columns: R/N/P/H@k as mean (± std over seeds) with the rank of the row in
    that metric (1 = best), then the average rank. AutoSample vs the best single sampler of the
    metric, paired t-test over seeds, p < 0.05: ``*`` significantly better, ``†`` significantly
    worse.
    """
    frame = metrics_frame(records, split)
    cols = [f"{m}@{k}" for m in TABLE_METRICS]
    grouped = frame.groupby("method", sort=False)[cols]
    mean, std, count = grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.count()
    ranks = mean.rank(ascending=False, method="min")
    header = ["Sampler"] + [f"{TABLE_ABBREV[m]}@{k}" for m in TABLE_METRICS] + ["Avg rank"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    several = int(count.max().max()) > 1
    for method in mean.index:
        cells = [method_label(method)]
        for col in cols:
            text = f"{mean.loc[method, col]:.4f}"
            if several:
                text += f" ± {std.loc[method, col]:.4f}"
            test = (ttests or {}).get(col, {})
            if method == AUTOSAMPLE and test.get("significant"):
                text += "*" if test["mean_diff"] > 0 else "†"
            text += f" ({int(ranks.loc[method, col])})"
            cells.append(text)
        cells.append(f"{ranks.loc[method].mean():.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_text(summary: RunSummary) -> str:
    """The readable final report printed by the CLI."""
    m = summary.metrics
    lines = [summary.table.rstrip()]
    for seed, a in m.get("autosample", {}).items():
        alpha = ", ".join(f"{n.upper()} {v:.3f}" for n, v in a["alpha_star"].items())
        lines.append(f"seed {seed}: AutoSample chose {a['chosen'].upper()} (alpha*: {alpha}); "
                     f"search {a['search_seconds']:.1f}s + retrain {a['retrain_seconds']:.1f}s")
    for seed, g in m.get("grid", {}).items():
        lines.append(f"seed {seed}: grid search best {g['best'].upper()} by validation; "
                     f"total {g['seconds']:.1f}s")
    pop = m["popularity"]["test"]
    k = m["table_k"]
    lines.append(f"popularity ranking (reference floor), test: R@{k} {pop[f'recall@{k}']:.4f}, "
                 f"N@{k} {pop[f'ndcg@{k}']:.4f}")
    lines.append(f"{m['reported_split']}; outputs in {summary.path} ({summary.seconds:.1f}s)")
    return "\n".join(lines)
