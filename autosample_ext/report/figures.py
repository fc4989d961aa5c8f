"""The figures of a run and of the experiments' report, drawn from saved numbers only (a
run's ``alpha.csv`` and ``metrics.json``, or a report's ``report.json``), so that any of them
can be redrawn later without training.

Every figure says what it shows in its title (the data, the model, the method), has labelled
axes with whole-number epochs, tells overlapping lines apart by marker and line style as well
as colour, and marks where the reported value is read (alpha* at the search's best validation
epoch).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def pyplot():
    """matplotlib's pyplot on the file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: how the papers write the models' names
MODEL_NAMES = {"mf": "MF", "gmf": "GMF", "lightgcn": "LightGCN", "ngcf": "NGCF"}


def setting_title(data: str, model: str) -> str:
    """``lastfm, LightGCN``: the data and the model of a figure."""
    return f"{data}, {MODEL_NAMES.get(model, model)}" if model else data


def split_setting(setting: str) -> tuple[str, str]:
    """``"lastfm-lightgcn"`` (the experiments' folder of a dataset and model) -> its parts."""
    data, _, model = setting.rpartition("-")
    return (data, model) if data else (setting, "")


def line_style(i: int) -> dict[str, object]:
    """Marker, line style and colour of the i-th line: no two of the first 8 lines share a
    marker, so lines that lie on top of each other stay distinguishable."""
    return {"marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "color": f"C{i % 10}"}


def write_alpha_plot(frame: pd.DataFrame, path: Path, *, title: str = "",
                     best_epochs: Mapping[int, int] | None = None) -> None:
    """alpha.png: AutoSample's sampler weights per search epoch, one panel per seed (the
    paper's Figure 4). ``frame``: columns seed, epoch, one per candidate (``alpha.csv``).
    ``title``: the data and model (``lastfm, MF``). ``best_epochs``: per seed, the search's
    best validation epoch, where alpha* (the weights the retrain's sampler is chosen from) is
    read: a dotted line and a star on every candidate's value there."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    seeds = sorted(int(s) for s in frame["seed"].unique())
    candidates = [c for c in frame.columns if c not in ("seed", "epoch")]
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.6 * len(seeds) + 0.4, 3.9), squeeze=False,
                             sharey=True)
    for ax, seed in zip(axes[0], seeds):
        sub = frame[frame["seed"] == seed].sort_values("epoch")
        every = max(1, len(sub) // 12)
        for i, cand in enumerate(candidates):  # markers staggered: lines on top of each other
            start = (i * max(1, every // len(candidates))) % every  # still show every marker
            ax.plot(sub["epoch"], sub[cand], markersize=4.5, markevery=(start, every),
                    linewidth=1.4, label=cand.upper(), **line_style(i))
        best = (best_epochs or {}).get(seed)
        heading = f"seed {seed}"
        if best is not None and best in set(sub["epoch"]):
            row = sub[sub["epoch"] == best].iloc[0]
            ax.axvline(best, color="0.35", linestyle=":", linewidth=1.2)
            for i, cand in enumerate(candidates):
                ax.plot([best], [row[cand]], marker="*", markersize=11, color=f"C{i % 10}",
                        markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
            heading += f": alpha* at epoch {best} (best validation)"
        ax.set_title(heading, fontsize=9)
        ax.set_xlabel("search epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("alpha (sampler weight)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if best_epochs:
        handles.append(plt.Line2D([], [], marker="*", markersize=10, color="0.5",
                                  markeredgecolor="black", linestyle=":"))
        labels.append("alpha* (best validation epoch)")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
               frameon=False)
    fig.suptitle(f"{title + ': ' if title else ''}AutoSample search, sampler weights alpha "
                 f"per epoch", fontsize=10)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_cost_plot(series: Mapping[str, Mapping[str, Sequence[float]]], path: Path, *,
                    seeds: str = "") -> None:
    """fig3_search_cost.png: per setting (panel), the CPU seconds of each search strategy
    (horizontal bars: mean over seeds ± std), with its ratio to the grid's beside the bar.
    ``series``: ``{setting: {strategy label: [CPU seconds per seed]}}``, the grid labelled
    ``grid``."""
    import numpy as np

    plt = pyplot()
    settings = list(series)
    labels = list(dict.fromkeys(k for s in settings for k in series[s]))
    colours = {k: f"C{i % 10}" for i, k in enumerate(labels)}
    fig, axes = plt.subplots(1, len(settings), figsize=(1.2 + 3.3 * len(settings), 0.9 + 0.45 * len(labels)),
                             squeeze=False, sharey=True)
    for ax, setting in zip(axes[0], settings):
        named = series[setting]
        grid = float(np.mean(named["grid"])) if named.get("grid") else None
        ys = range(len(labels))
        means = [float(np.mean(named[k])) if named.get(k) else 0.0 for k in labels]
        stds = [float(np.std(named[k], ddof=1)) if len(named.get(k, ())) > 1 else 0.0 for k in labels]
        ax.barh(list(ys), means, xerr=stds, capsize=2, color=[colours[k] for k in labels])
        top = max((m + s for m, s in zip(means, stds)), default=1.0) or 1.0
        for y, k, m, s in zip(ys, labels, means, stds):
            text = "not run" if not named.get(k) else (f"{m / grid:.2f}x grid" if grid else f"{m:.1f}s")
            ax.text(m + s + 0.02 * top, y, text, va="center", fontsize=7)
        ax.set_xlim(0, top * 1.35)
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.set_title(setting_title(*split_setting(setting)), fontsize=9)
        ax.set_xlabel("CPU seconds of the whole search", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # shared: once, the first strategy on top
    fig.suptitle("Search cost per strategy: CPU seconds (mean ± std over seeds"
                 + (f" {seeds}" if seeds else "") + ") and the mean's ratio to the grid's mean",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
