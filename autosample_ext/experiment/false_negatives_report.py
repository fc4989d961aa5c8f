"""Plots and the report of the false-negative analysis (:mod:`.false_negatives`): the H / G
densities of planted vs ordinary negatives, the planted-selection lift per sampler, report.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BINS = np.linspace(0.0, 1.0, 51)


def write_density_plot(snaps: dict[int, dict[str, np.ndarray]],
                       counts: dict[int, Any], path: Path) -> None:
    """Rows: H and G of the population snapshot, then H and G of the selected negatives;
    columns: epochs; planted vs ordinary densities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = sorted(snaps)
    fig, axes = plt.subplots(4, len(epochs), figsize=(3.2 * len(epochs), 9.5), squeeze=False)
    centers = (BINS[:-1] + BINS[1:]) / 2
    for col, epoch in enumerate(epochs):
        s = snaps[epoch]
        for row, key in enumerate(("h", "g")):
            ax = axes[row][col]
            for kind, colour in (("planted", "tab:red"), ("ordinary", "tab:blue")):
                values = s[f"{key}_{kind}"]
                if values is not None:
                    ax.hist(np.clip(values, 0, 1), BINS, density=True, histtype="step",
                            color=colour, label=kind)
            ax.set_title(f"{key.upper()} of all pairs, epoch {epoch}", fontsize=9)
        c = counts.get(epoch - 1)
        for row, key in ((2, "h"), (3, "g")):
            ax = axes[row][col]
            if c is not None:
                for kind, colour in (("planted", "tab:red"), ("ordinary", "tab:blue")):
                    hist = getattr(c, f"{key}_{kind}")
                    if hist.sum():
                        ax.step(centers, hist / hist.sum() / np.diff(BINS), where="mid",
                                color=colour, label=kind)
            ax.set_title(f"{key.upper()} of selected, epoch {epoch}", fontsize=9)
    for ax in axes.flat:
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    axes[0][0].set_ylabel("density")
    fig.suptitle("GDNS: H and G of planted false negatives vs ordinary negatives", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_selection_plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, entry in result["samplers"].items():
        epochs = sorted(int(e) for e in entry["epochs"])
        ax.plot(epochs, [entry["epochs"][str(e)]["lift"] for e in epochs], marker="o",
                markersize=3, label=name.upper())
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("planted selections / uniform expectation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_report(result: dict[str, Any]) -> str:
    names = list(result["samplers"])
    epochs = sorted({int(e) for n in names for e in result["samplers"][n]["epochs"]})
    lines = [f"# False-negative analysis (GDNS §4.6) on {result['data']}", "",
             f"{result['users_with_planted']} users with one planted false negative; "
             f"{result['epochs']} epochs, seed {result['seed']}, plant seed "
             f"{result['plant_seed']}. Lift = planted selections / the uniform expectation.", "",
             "| epoch | " + " | ".join(f"{n.upper()} rate | {n.upper()} lift" for n in names) + " |",
             "|---|" + "---|---|" * len(names)]
    for e in epochs:
        cells = []
        for n in names:
            c = result["samplers"][n]["epochs"].get(str(e))
            cells += [f"{c['rate']:.2e}", f"{c['lift']:.2f}"] if c else ["", ""]
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        entry = result["samplers"][n]
        total_p = sum(c["planted"] for c in entry["epochs"].values())
        total_s = sum(c["selected"] for c in entry["epochs"].values())
        total_e = sum(c["expected_uniform"] for c in entry["epochs"].values())
        lines.append(f"- {n.upper()}: {total_p} planted of {total_s} selected negatives over "
                     f"training (rate {total_p / max(total_s, 1):.2e}, lift "
                     f"{total_p / max(total_e, 1e-12):.2f}); best validation "
                     f"{entry['valid_best']} at epoch {entry['best_epoch']}")
    return "\n".join(lines) + "\n"
