"""The experiments' report: reads the run directories' ``metrics.json`` (and ``alpha.csv``) of
every setting under a runs folder and writes ``report.md`` with the paper's tables and the
figures as PNGs. Runs nothing."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autosample_ext.run.config import SEARCHES
from autosample_ext.search.records import is_autosample, is_search_stage
from autosample_ext.report.tables import method_label
from autosample_ext.report.picks import pick_table
from autosample_ext.report.experiments_figures import (
    alpha_rows,
    figure3,
    figure4,
    paper_method,
    replot_from_json,
)


def load_runs(runs: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{setting: {run name: metrics.json}}`` for every finished run under ``runs``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for file in sorted(Path(runs).glob("*/*/metrics.json")):
        setting, name = file.parent.parent.name, file.parent.name
        metrics = json.loads(file.read_text())
        metrics["_path"] = str(file.parent)
        out.setdefault(setting, {})[name] = metrics
    return out


def frame(metrics: dict[str, Any], k: int | None = None) -> pd.DataFrame:
    """One row per (method, seed): test metrics, the sampler trained, CPU seconds."""
    rows = []
    for r in metrics["runs"]:
        if is_search_stage(r["method"]):
            continue
        rows.append({"method": r["method"], "seed": r["seed"], "sampler": r["sampler"],
                     **r.get("test", r.get("best_test", {}))})
    return pd.DataFrame(rows)


def mean_std(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def fmt(values, digits: int = 4) -> str:
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def chosen_list(metrics: dict[str, Any], block: str) -> str:
    picks = [metrics.get(block, {}).get(str(s), {}).get("chosen") for s in _seeds(metrics)]
    return ", ".join((p or "?").upper() for p in picks)


def _seeds(metrics: dict[str, Any]) -> list[int]:
    return sorted({r["seed"] for r in metrics["runs"]})


def _singles(metrics: dict[str, Any]) -> list[str]:
    methods = dict.fromkeys(r["method"] for r in metrics["runs"])
    return [m for m in methods if m not in SEARCHES and ":" not in m and not is_autosample(m)
            and not is_search_stage(m)]


def headline(runs: dict[str, dict[str, dict[str, Any]]], metric: str) -> str:
    """SH and AutoSample against the best single sampler, with costs, one row per setting."""
    lines = [f"| setting | best single ({metric}) | SH | SH within 1 std | SH picks | SH CPU / grid "
             f"| SH / grid, epoch-priced | AutoSample (paper) | AutoSample picks "
             f"| AutoSample CPU / grid | AutoSample (validation alpha) | its picks | its CPU / grid "
             f"| grid picks |",
             "|" + "---|" * 14]
    for setting, named in runs.items():
        m = named.get("compare")
        if m is None:
            continue
        df = frame(m)
        singles = {s: df.loc[df.method == s, metric].to_numpy() for s in _singles(m)}
        best = max(singles, key=lambda s: singles[s].mean())
        b_mean, b_std = mean_std(singles[best])
        sh = df.loc[df.method == "sh", metric].to_numpy()
        paper = paper_method(m)
        auto = df.loc[df.method == paper, metric].to_numpy()
        ratios = m["costs"]["cpu_ratio_to_grid"]
        within = abs(sh.mean() - b_mean) <= b_std or sh.mean() >= b_mean
        valid = ["", "", ""]
        if paper != "autosample":
            valid = [fmt(df.loc[df.method == "autosample", metric].to_numpy()),
                     chosen_list(m, "autosample"), f"{ratios['autosample']:.2f}"]
        lines.append(
            f"| {setting} | {best.upper()} {fmt(singles[best])} | {fmt(sh)} | "
            f"{'yes' if within else 'NO'} ({sh.mean() - b_mean:+.4f}) | {chosen_list(m, 'sh')} | "
            f"{ratios['sh']:.2f} | {sh_epoch_weighted_ratio(m, m):.2f} | {fmt(auto)} | "
            f"{chosen_list(m, paper)} | "
            f"{ratios[paper]:.2f} | {' | '.join(valid)} | {chosen_list(m, 'grid')} |")
        for alt_name, alt_label in (("sh-tie0", "SH without tie rule"),
                                    ("sh-tiebest", "SH, ties vs the leader")):
            alt = named.get(alt_name)
            if alt is None:
                continue
            fa = frame(alt)
            sh0 = fa.loc[fa.method == "sh", metric].to_numpy()
            ratio0 = sh0_ratio(m, alt)
            ok = abs(sh0.mean() - b_mean) <= b_std or sh0.mean() >= b_mean
            lines.append(f"| {setting}, {alt_label} | | {fmt(sh0)} | "
                         f"{'yes' if ok else 'NO'} ({sh0.mean() - b_mean:+.4f}) | "
                         f"{chosen_list(alt, 'sh')} | {ratio0:.2f} | "
                         f"{sh_epoch_weighted_ratio(m, alt):.2f} | | | | | | | |")
    return "\n".join(lines) + "\n"


def sh0_ratio(compare: dict[str, Any], alt: dict[str, Any]) -> float:
    """CPU seconds of the ``sh-tie0`` race over the compare run's grid, per seed, averaged
    (the same seeds, init and data order: the grid is the compare run's)."""
    grid = compare["costs"]["per_seed"]
    return float(np.mean([alt["sh"][s]["cpu_seconds"] / grid[s]["grid"]["cpu_seconds"]
                          for s in alt["sh"] if s in grid]))


def sh_epoch_weighted_ratio(compare: dict[str, Any], race: dict[str, Any]) -> float:
    """A load-independent estimate of SH's cost over the grid's: every candidate's epochs in the
    race priced at its single run's CPU seconds per epoch (a candidate's race epochs are the
    first epochs of its single run: same init, data order and negatives), over the grid's CPU
    seconds; per seed, averaged. Rung decisions are not priced."""
    ratios = []
    for seed, block in race["sh"].items():
        singles = {r["method"]: r for r in compare["runs"] if str(r["seed"]) == seed
                   and r["method"] in {c["sampler"] for c in block["runs"]}}
        if len(singles) != len(block["runs"]):
            continue
        price = {n: r["cpu_seconds"] / max(r["epochs_run"], 1) for n, r in singles.items()}
        cost = sum(c["epochs_run"] * price[c["sampler"]] for c in block["runs"])
        ratios.append(cost / sum(r["cpu_seconds"] for r in singles.values()))
    return float(np.mean(ratios)) if ratios else float("nan")


def table3(m: dict[str, Any]) -> str:
    """The compare run's own table.md (Table 3 layout with ranks and t-test marks, costs)."""
    path = Path(m["_path"]) / "table.md"
    picks = (f"Picks per seed: AutoSample {chosen_list(m, 'autosample')}; SH "
             f"{chosen_list(m, 'sh')}; grid {chosen_list(m, 'grid')}. Budget singles: "
             f"AutoSample's search + retrain epochs per seed: "
             f"{[m['autosample'][str(s)]['epochs'] for s in _seeds(m)]}. CPU seconds over the "
             f"grid's per seed: SH {_ratios(m, 'sh')}, AutoSample {_ratios(m, 'autosample')}.\n")
    return path.read_text() + "\n" + picks


def _ratios(m: dict[str, Any], method: str) -> str:
    per = m["costs"]["per_seed"]
    return ", ".join(f"{per[s][method]['cpu_seconds'] / per[s]['grid']['cpu_seconds']:.2f}"
                     for s in per if method in per[s] and "grid" in per[s])


def table4(named: dict[str, dict[str, Any]], metric: str) -> str | None:
    m, neg = named.get("compare"), named.get("negatives")
    if m is None or neg is None:
        return None
    df, dn = frame(m), frame(neg)
    t = int(json.loads((Path(neg["_path"]) / "config.json").read_text())["config"]["num_negatives"])
    lines = [f"| sampler | 1 negative | {t} negatives |", "|---|---|---|"]
    for s in _singles(m):
        lines.append(f"| {s.upper()} | {fmt(df.loc[df.method == s, metric])} | "
                     f"{fmt(dn.loc[dn.method == s, metric])} |")
    lines.append(f"| AutoSample ({t} candidates, 1 negative each) | "
                 f"{fmt(df.loc[df.method == 'autosample', metric])} | |")
    lines.append(f"| SH | {fmt(df.loc[df.method == 'sh', metric])} | |")
    return "\n".join(lines) + "\n"


def table5(named: dict[str, dict[str, Any]], metric: str) -> str | None:
    m = named.get("compare")
    subsets = sorted({n.rsplit("-", 1)[0] for n in named if n.startswith("space-")})
    if m is None or not subsets:
        return None
    df = frame(m)
    lines = ["| search space | AutoSample | picks | SH | picks | best single in the space |",
             "|---|---|---|---|---|---|"]

    def row(space: list[str], auto: dict | None, sh: dict | None, note: str = "") -> str:
        singles = {s: df.loc[df.method == s, metric].to_numpy() for s in space
                   if s in set(df.method)}
        cells = [",".join(space).upper() + note]
        for block, mm in (("autosample", auto), ("sh", sh)):
            if mm is None:
                cells += ["not run", ""]
                continue
            f = frame(mm)
            cells += [fmt(f.loc[f.method == block, metric]), chosen_list(mm, block)]
        if len(singles) == len(space):
            best = max(singles, key=lambda s: singles[s].mean())
            cells.append(f"{best.upper()} {fmt(singles[best])}")
        else:
            cells.append("(not every sampler of the space ran alone in compare)")
        return "| " + " | ".join(cells) + " |"

    for prefix in subsets:
        auto, sh = named.get(f"{prefix}-as"), named.get(f"{prefix}-sh")
        cfg = json.loads((Path((auto or sh)["_path"]) / "config.json").read_text())["config"]
        lines.append(row(cfg["search_space"], auto, sh))
    full = json.loads((Path(m["_path"]) / "config.json").read_text())["config"]["search_space"]
    lines.append(row(full, m, m, " (full, the compare run)"))
    return "\n".join(lines) + "\n"


def table6(named: dict[str, dict[str, Any]], metric: str) -> str | None:
    m, rnd = named.get("compare"), named.get("retrain-random")
    if m is None or rnd is None:
        return None
    ndcg = metric.replace("recall", "ndcg")
    lines = [f"| retrain from | {metric} | {ndcg} | picks |", "|---|---|---|---|"]
    for label, mm in (("searched weights W' (paper)", m), ("random init", rnd)):
        f = frame(mm)
        sub = f[f.method == "autosample"]
        lines.append(f"| {label} | {fmt(sub[metric])} | {fmt(sub[ndcg])} | "
                     f"{chosen_list(mm, 'autosample')} |")
    return "\n".join(lines) + "\n"


def schedule_table(named: dict[str, dict[str, Any]], metric: str) -> str | None:
    from scipy import stats

    m, sched = named.get("compare"), named.get("schedule")
    if m is None or sched is None:
        return None
    df, ds = frame(m), frame(sched)
    lines = [f"| sampler | {metric} | per seed | vs DNS (paired t-test) |", "|---|---|---|---|"]
    dns = df[df.method == "dns"].set_index("seed")[metric]
    for label, sub in [(s.upper(), df[df.method == s]) for s in ("dns", "aobpr") if s in set(df.method)] + \
            [(s, ds[ds.method == s]) for s in dict.fromkeys(ds.method)]:
        values = sub.set_index("seed")[metric]
        per_seed = ", ".join(f"{v:.4f}" for v in values.sort_index())
        test = ""
        if label != "DNS" and len(values) > 1:
            seeds = sorted(set(values.index) & set(dns.index))
            diff = values.loc[seeds].to_numpy() - dns.loc[seeds].to_numpy()
            p = float(stats.ttest_rel(values.loc[seeds], dns.loc[seeds]).pvalue) \
                if not np.allclose(diff, diff[0]) else float("nan")
            test = f"{diff.mean():+.4f}, better in {int((diff > 0).sum())}/{len(diff)}, p = {p:.3g}"
        lines.append(f"| {label} | {fmt(values)} | {per_seed} | {test} |")
    race = named.get("sh-schedules")
    if race is not None:
        f = frame(race)
        lines.append(f"| SH over {', '.join(_space(race))} | {fmt(f.loc[f.method == 'sh', metric])} "
                     f"| picks {chosen_list(race, 'sh')} | |")
    return "\n".join(lines) + "\n"


def _space(m: dict[str, Any]) -> list[str]:
    return json.loads((Path(m["_path"]) / "config.json").read_text())["config"]["search_space"]


def write_report(runs_root: str | Path, out: str | Path, command: str = "") -> Path:
    """Write ``out/report.md`` and its PNGs from every finished run under ``runs_root``."""
    runs = load_runs(runs_root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k = next((m["table_k"] for named in runs.values() for m in named.values()), 20)
    metric = f"recall@{k}"
    parts = ["# Experiments: the paper's tables with successive halving and schedules\n",
             f"Generated {time.strftime('%Y-%m-%d %H:%M')} on {platform.node() or 'this host'} "
             f"({os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
             f"when the report was written) from `{runs_root}`."
             + (f" Command: `{command}`." if command else "") + "\n",
             "Protocol: random 3:1:1 split per user (split seed 0), full ranking with train items "
             "(and validation items for test) excluded, test metrics at the best validation epoch, "
             "mean ± std over the training seeds. Budget rules, the same for every strategy and "
             "stage: up to --epochs epochs, stop after --patience evaluations without "
             "improvement. CPU seconds are process CPU time of the training epochs "
             "(evaluation included, final test excluded), 1 thread.\n"]
    if any("compare" in named for named in runs.values()):
        parts.append(
            f"## Headline: SH and AutoSample against the best single sampler\n\n"
            f"{headline(runs, metric)}\n"
            "'within 1 std': |SH - best single| <= the best single's std over seeds (or SH "
            "above it). CPU / grid: the whole search's CPU seconds over the grid's (every "
            "candidate trained alone), per seed, averaged; measured side by side in one "
            "run per setting, on a shared machine whose load inflates CPU seconds unevenly. "
            "Epoch-priced: each candidate's race epochs priced at its own single run's CPU "
            "seconds per epoch (the race's epochs are the first epochs of the single runs), "
            "over the grid's: the same ratio without the load's noise.\n")
    picks = pick_table(runs, metric)
    if picks:
        parts.append("## The pick table: AutoSample's alpha by validation and by training loss "
                     "against the grid\n\n" + picks + "\nPer (setting, seed): the grid's pick "
                     "(best validation among the candidates trained alone) and its test value; "
                     "AutoSample's pick (search + retrain) and its test value with the gap to the "
                     "grid pick's; 1 std = the grid pick's std over seeds. CPU / grid: the whole "
                     "pipeline's process CPU seconds over the grid's, measured side by side in one "
                     "run; epoch-priced: its steps priced at the single runs' CPU seconds per step "
                     "(load-independent).\n")
    from autosample_ext.report.race_table import race_headline

    race = race_headline(runs, metric)
    if race:
        parts.append("## Racing configurations: the grid, SH at its defaults, SH over "
                     "`--search-space auto`\n\n" + race + "\n"
                     "Best single: the best of the four default samplers by mean test "
                     f"{metric}, each trained alone (the grid run). SH within 1 std: its mean "
                     "is within the std over seeds of the grid's pick, or above it. CPU / grid: "
                     "the race's CPU seconds over the grid's, per seed, averaged (separate runs "
                     "on the same seeds); in parentheses the epoch-priced ratio (every race "
                     "epoch priced at its sampler's single-run CPU seconds per epoch), which does "
                     "not depend on the machine's load. The grid's pick alone: its single run's "
                     "share of the grid's CPU, the floor of any search that trains its winner "
                     f"to convergence. auto vs best single: mean over seeds of auto / best - 1, "
                     "paired t-test p. Targets: SH <= 0.35 of the grid's CPU (both ratios) with "
                     "its pick within 1 std; auto >= +3% at <= 1.0 of the grid's CPU. SH as first "
                     "shipped: `--sh-rule halving --sh-first-rung 3 --sh-tie-anchor last "
                     "--sh-catch-up-se 0 --sh-bootstrap-users 0`. A setting named `-loo-` uses the "
                     "leave-one-out split (one validation and one test item per user).\n")
    from autosample_ext.report.race_table import curriculum_table

    stage = curriculum_table(runs, metric)
    if stage:
        parts.append("### The curriculum stage (`--sh-curriculum harder`) on top of the auto "
                     "races\n\n" + stage + "\nThe same races (their checkpoints copied), then "
                     "the winner's best state trained on with the next harder candidate of the "
                     "race at a fifth of the learning rate, kept where its validation value beats "
                     "the race's. Test change: mean over seeds of the ratio minus 1.\n")
    sections = [("Table 3: every sampler, AutoSample (paper) and SH", lambda n: table3(n["compare"])
                 if "compare" in n else None),
                ("Table 4 (RQ2): baselines with T negatives per positive", lambda n: table4(n, metric)),
                ("Table 5: search-space ablation", lambda n: table5(n, metric)),
                ("Table 6: retraining from the searched weights or a random init",
                 lambda n: table6(n, metric)),
                ("Schedules: AOBPR then DNS", lambda n: schedule_table(n, metric))]
    for title, make in sections:
        body = [f"### {s}\n\n{text}" for s, named in runs.items() if (text := make(named))]
        if body:
            parts.append(f"## {title}\n\n" + "\n".join(body))
    if figure3(runs, out / "fig3_search_cost.png"):
        parts.append("## Figure 3: search cost\n\n![search cost](fig3_search_cost.png)\n")
    figs = [s for s, named in runs.items() if figure4(s, named, out / f"fig4_alpha_{s}.png")]
    if figs:
        parts.append("## Figure 4: alpha trajectories of the AutoSample search\n\n" + "\n".join(
            f"{s}:\n\n![alpha {s}](fig4_alpha_{s}.png)\n" for s in figs))
    path = out / "report.md"
    path.write_text("\n".join(parts))
    saved = {s: {n: {k2: v for k2, v in m.items() if k2 != "_path"} for n, m in named.items()}
             for s, named in runs.items()}
    for s, named in runs.items():  # what Figure 4 needs, so that report.json redraws it
        if "compare" in named and (rows := alpha_rows(named["compare"])):
            saved[s]["compare"]["alpha"] = rows
    (out / "report.json").write_text(json.dumps(saved, indent=1))
    return path


__all__ = ["headline", "load_runs", "method_label", "replot_from_json", "write_report"]
