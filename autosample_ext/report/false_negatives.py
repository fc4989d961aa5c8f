"""Plots and the report of the false-negative analysis (:mod:`.false_negatives`): the H / G
densities of planted vs ordinary negatives, the planted-selection lift per sampler, report.md.

Everything here reads the analysis's saved numbers only (``false_negatives.json``, and the
``snapshots_<sampler>.npz`` beside it when present), so the figures of any earlier analysis
can be redrawn (:func:`replot`; ``python -m autosample_ext.studies.false_negatives
--report-only``). The population snapshots are drawn from the histograms the JSON holds
(``snapshots.<epoch>.<key>.hist``), else from the ``.npz`` values, else (older files, which
kept only quantiles) as their 10-90% range, median and mean.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from autosample_ext.report.figures import MODEL_NAMES, line_style, pyplot

BINS = np.linspace(0.0, 1.0, 51)
KINDS = (("planted", "tab:red", "-"), ("ordinary", "tab:blue", "--"))
AXIS = {"h": "H = mean over positives i of sigmoid(r_uj - r_ui)",
        "g": "G, the gain state (1.0 = never selected)"}


def histogram(values: np.ndarray) -> list[int]:
    """Counts of ``values`` (clipped to [0, 1]) in :data:`BINS`."""
    return np.histogram(np.clip(values, 0, 1), BINS)[0].tolist()


def describe(title_of: dict[str, Any]) -> str:
    """``ml-1m, GMF, GDNS protocol``: the data, the model and the protocol of an analysis."""
    model = title_of.get("settings", {}).get("model", "")
    return f"{title_of.get('data', '?')}, {MODEL_NAMES.get(model, model)}, GDNS protocol"


def _snapshot_counts(snap: dict[str, Any], key: str, npz: dict[str, np.ndarray] | None,
                     epoch: str) -> list[int] | None:
    entry = snap.get(key)
    if isinstance(entry, dict) and entry.get("hist"):
        return entry["hist"]
    if npz is not None and f"e{epoch}_{key}" in npz:
        return histogram(npz[f"e{epoch}_{key}"])
    return None


def _density(ax, counts: list[int], colour: str, style: str, label: str) -> None:
    counts = np.asarray(counts, dtype=float)
    if counts.sum():
        ax.stairs(counts / counts.sum() / np.diff(BINS), BINS, color=colour, linestyle=style,
                  linewidth=1.4, label=label)


def _quantiles(ax, stats: dict[str, Any], key: str) -> None:
    """An older analysis's snapshot, of which only quantiles were saved."""
    for y, (kind, colour, _) in enumerate(KINDS):
        s = stats.get(f"{key}_{kind}")
        if not s:
            continue
        ax.plot([s["p10"], s["p90"]], [y, y], color=colour, linewidth=4, alpha=0.5,
                label=f"{kind}: 10-90%")
        ax.plot([s["median"]], [y], marker="|", markersize=14, color=colour)
        ax.plot([s["mean"]], [y], marker="o", markersize=5, color=colour)
    ax.set_yticks([0, 1], [k for k, _, _ in KINDS], fontsize=8)
    ax.set_ylim(-0.7, 1.7)


def _axes(ax, key: str, *, density: bool) -> None:
    ax.set_xlim(0, 1.02)  # values of exactly 1.0 (G of a pair never selected) stay in view
    ax.grid(alpha=0.3)
    ax.set_xlabel(AXIS[key], fontsize=8)
    if density:
        ax.set_ylabel("density" + (" (log scale)" if key == "g" else ""), fontsize=8)
        if key == "g":
            ax.set_yscale("log", nonpositive="mask")


def write_density_plot(result: dict[str, Any], path: Path, sampler: str = "gdns",
                       npz: dict[str, np.ndarray] | None = None) -> bool:
    """Rows: H and G of the population snapshot (planted pairs and one ordinary non-positive
    pair per user), then H and G of the negatives the sampler selected in that epoch; columns:
    the snapshot epochs. G is drawn on a log scale: most pairs were never selected and sit at
    G = 1.0, a spike that would flatten everything else. False when there is nothing to draw."""
    entry = result["samplers"].get(sampler, {})
    snaps = entry.get("snapshots") or {}
    if not snaps:
        return False
    plt = pyplot()
    epochs = sorted(snaps, key=int)
    fig, axes = plt.subplots(4, len(epochs), figsize=(3.6 * len(epochs) + 0.6, 11.0), squeeze=False)
    for col, epoch in enumerate(epochs):
        for row, key in enumerate(("h", "g")):
            ax = axes[row][col]
            counts = {kind: _snapshot_counts(snaps[epoch], f"{key}_{kind}", npz, epoch)
                      for kind, _, _ in KINDS}
            if any(c is not None for c in counts.values()):
                for kind, colour, style in KINDS:
                    if counts[kind] is not None:
                        _density(ax, counts[kind], colour, style, kind)
                _axes(ax, key, density=True)
                ax.set_title(f"{key.upper()} of all planted / ordinary pairs, epoch {epoch}",
                             fontsize=8.5)
            else:
                _quantiles(ax, snaps[epoch], key)
                _axes(ax, key, density=False)
                ax.set_title(f"{key.upper()} of all pairs, epoch {epoch} (only quantiles saved:\n"
                             f"bar 10-90%, | median, o mean)", fontsize=8.5)
        counts_e = entry.get("epochs", {}).get(epoch, {})
        for row, key in ((2, "h"), (3, "g")):
            ax = axes[row][col]
            for kind, colour, style in KINDS:
                if counts_e.get(f"{key}_{kind}"):
                    _density(ax, counts_e[f"{key}_{kind}"], colour, style, kind)
            _axes(ax, key, density=True)
            ax.set_title(f"{key.upper()} of the negatives {sampler.upper()} selected, epoch {epoch}",
                         fontsize=8.5)
    handles = [plt.Line2D([], [], color=c, linestyle=s, label=k) for k, c, s in KINDS]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.suptitle(f"{describe(result)}: H and G of planted false negatives vs ordinary "
                 f"negatives under {sampler.upper()}", fontsize=11)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_selection_plot(result: dict[str, Any], path: Path) -> None:
    """Per sampler and epoch: planted selections over the uniform expectation (1 = uniform)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.4, 4.0))
    for i, (name, entry) in enumerate(result["samplers"].items()):
        epochs = sorted(int(e) for e in entry["epochs"])
        ax.plot(epochs, [entry["epochs"][str(e)]["lift"] for e in epochs], markersize=5,
                label=name.upper(), **line_style(i))
    ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="uniform draw")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.6, 1, 2 rather than 6x10^-1
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("planted selections / uniform expectation")
    ax.set_title(f"{describe(result)}:\nhow often each sampler selects a planted false negative",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
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


def write_outputs(result: dict[str, Any], out: Path, *, prefix: str = "",
                  npz_dir: Path | None = None) -> list[Path]:
    """selection.png, densities.png (when a sampler has snapshots) and report.md in ``out``,
    from the analysis's numbers; ``snapshots_<sampler>.npz`` in ``npz_dir`` (default ``out``)
    fills in the snapshot histograms an older JSON lacks. Returns the files written."""
    written = [out / f"{prefix}selection.png"]
    write_selection_plot(result, written[0])
    for name, entry in result["samplers"].items():
        if entry.get("snapshots"):
            npz_path = (npz_dir or out) / f"snapshots_{name}.npz"
            npz = dict(np.load(npz_path)) if npz_path.is_file() else None
            if write_density_plot(result, out / f"{prefix}densities.png", name, npz):
                written.append(out / f"{prefix}densities.png")
            break
    written.append(out / f"{prefix}report.md")
    written[-1].write_text(render_report(result))
    return written


def replot(json_path: Path, out: Path, *, prefix: str = "") -> list[Path]:
    """Redraw an earlier analysis's figures and report into ``out`` from its
    ``false_negatives.json`` (with the ``snapshots_<sampler>.npz`` files beside it, if any)."""
    try:
        result = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{json_path}: cannot be read as JSON ({exc})") from None
    try:
        dict(result["samplers"])
    except (TypeError, KeyError, ValueError):
        raise ValueError(f"{json_path}: not a false_negatives.json (no 'samplers')") from None
    out.mkdir(parents=True, exist_ok=True)
    return write_outputs(result, out, prefix=prefix, npz_dir=Path(json_path).parent)
