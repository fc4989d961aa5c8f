"""The race table of the experiments' report: per setting, the best of the four default samplers
(each trained alone: the ``grid`` run), successive halving at its defaults (``sh``) and over
``--search-space auto`` (``sh-auto``), with their costs over the grid's and the targets they
meet or miss, by how much. Reads run directories' ``metrics.json``; runs nothing."""
from __future__ import annotations

from typing import Any

import numpy as np

from autosample_ext.report.tables import candidate_label
from autosample_ext.search.space import parse_candidate

#: the targets the table checks
AUTO_GAIN = 0.03        # SH over auto: at least 3% above the best single sampler (paired)
AUTO_COST = 1.0         # at most the grid's CPU
SH_COST = 0.35          # SH at its defaults: at most 0.35 of the grid's CPU


def _singles(grid: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """``{sampler: {seed: run}}`` of the grid run's single runs."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in grid["runs"]:
        if r["method"] not in ("grid", "sh", "autosample", "search") and ":" not in r["method"]:
            out.setdefault(r["method"], {})[int(r["seed"])] = r
    return out


def _race_runs(race: dict[str, Any], metric: str) -> dict[int, float]:
    """``{seed: test metric}`` of a race run's result."""
    return {int(r["seed"]): r["test"][metric] for r in race["runs"] if r["method"] == "sh"}


def priced_candidates(grid: dict[str, Any], race: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per seed, each race candidate's epochs priced at the single runs' CPU seconds per epoch,
    over the grid's CPU seconds. A candidate's epochs are priced segment by segment at its
    sampler's single-run price (a branch's inherited prefix is its parent's, counted there); a
    configured DNS (``dns(num_candidates=8)``) at DNS's price. The curriculum stage, when the
    race ran one, is the entry ``"curriculum stage"``."""
    singles = _singles(grid)
    out: dict[str, dict[str, float]] = {}
    for seed, block in race["sh"].items():
        s = int(seed)
        if any(s not in runs for runs in singles.values()):
            continue
        price = {n: runs[s]["cpu_seconds"] / max(runs[s]["epochs_run"], 1)
                 for n, runs in singles.items()}
        total = sum(runs[s]["cpu_seconds"] for runs in singles.values())
        costs: dict[str, float] = {}
        for c in block["runs"]:
            cand = parse_candidate(c["sampler"])
            start = c.get("branch_epoch") or 0
            edges = [0]
            for seg in cand.segments[:-1]:
                edges.append(edges[-1] + seg.epochs)
            cost = 0.0
            for i, seg in enumerate(cand.segments):
                lo = max(edges[i], start)
                hi = c["epochs_run"] if i == len(cand.segments) - 1 else min(edges[i + 1],
                                                                            c["epochs_run"])
                if hi > lo:
                    cost += (hi - lo) * price.get(seg.sampler, np.nan)
            costs[c["sampler"]] = cost / total
        stage = block.get("curriculum") or {}
        if stage.get("harder"):
            costs["curriculum stage"] = stage["epochs_run"] * price.get(
                parse_candidate(stage["harder"]).samplers[-1], np.nan) / total
        out[seed] = costs
    return out


def epoch_priced(grid: dict[str, Any], race: dict[str, Any]) -> dict[str, float]:
    """Per seed, the race's epochs priced at the single runs' CPU seconds per epoch, over the
    grid's CPU seconds (:func:`priced_candidates`, summed): a check of the CPU ratio that does
    not depend on the machine's load. Rung decisions are not priced."""
    return {seed: sum(c.values()) for seed, c in priced_candidates(grid, race).items()}


def sh_cost_why(grid: dict[str, Any], race: dict[str, Any]) -> str:
    """Where a race's epoch-priced cost went, averaged over seeds: the pick's own run and the
    other candidates' rungs, the costliest of them named."""
    per = priced_candidates(grid, race)
    if not per:
        return ""
    own = np.mean([c[race["sh"][seed]["chosen"]] for seed, c in per.items()])
    others: dict[str, list[float]] = {}
    for seed, c in per.items():
        for name, v in c.items():
            if name != race["sh"][seed]["chosen"]:
                others.setdefault(name, []).append(v)
    rest = {n: float(np.sum(v)) / len(per) for n, v in others.items()}
    top = max(rest, key=rest.get) if rest else None
    text = f"the pick's own run {own:.2f}, the other candidates' rungs {sum(rest.values()):.2f}"
    return text + (f" ({candidate_label(top)} {rest[top]:.2f})" if top else "")


def cpu_ratio(grid: dict[str, Any], race: dict[str, Any]) -> dict[str, float]:
    """Per seed, the race's CPU seconds over the grid's (separate runs on the same seed)."""
    g = {seed: b["cpu_seconds"] for seed, b in grid["grid"].items()}
    return {seed: b["cpu_seconds"] / g[seed] for seed, b in race["sh"].items() if seed in g}


def _fmt(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.4f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.4f}"


def _race_numbers(grid: dict[str, Any], race: dict[str, Any], seeds: list[int],
                  metric: str) -> tuple[np.ndarray, float, float]:
    """A race's test values on ``seeds``, its CPU ratio and its epoch-priced ratio."""
    got = _race_runs(race, metric)
    return (np.asarray([got[s] for s in seeds]), _mean(cpu_ratio(grid, race)),
            _mean(epoch_priced(grid, race)))


def _picks(race: dict[str, Any], seeds: list[int]) -> str:
    return ", ".join(candidate_label(race["sh"][str(s)]["chosen"]) for s in seeds)


def _by(x: float) -> str:
    """A miss, signed; three decimals where two would read +0.00."""
    return f"{x:+.2f}" if abs(x) >= 0.005 else f"{x:+.3f}"


def _mean(d: dict[str, float]) -> float:
    return float(np.mean(list(d.values()))) if d else float("nan")


def setting_row(setting: str, named: dict[str, dict[str, Any]], metric: str) -> list[str] | None:
    """The cells of one setting's row, or None when its grid run is missing."""
    from scipy import stats

    grid = named.get("grid")
    if grid is None:
        return None
    singles = _singles(grid)
    seeds = sorted(next(iter(singles.values())))
    test = {n: [runs[s]["test"][metric] for s in seeds] for n, runs in singles.items()}
    best = max(test, key=lambda n: np.mean(test[n]))
    b = np.asarray(test[best])
    cells = [f"{setting} ({len(seeds)} seeds)", f"{candidate_label(best)} {_fmt(test[best])}"]
    picks = [grid["grid"][str(s)]["chosen"] for s in seeds]
    pick_test = np.asarray([singles[p][s]["test"][metric] for p, s in zip(picks, seeds)])
    winner_share = np.mean([singles[p][s]["cpu_seconds"]
                            / grid["grid"][str(s)]["cpu_seconds"] for p, s in zip(picks, seeds)])
    classic = named.get("sh-classic")
    if classic is None:
        cells.append("not run")
    else:
        v, ratio, priced = _race_numbers(grid, classic, seeds, metric)
        cells.append(f"{_fmt(v)} ({_picks(classic, seeds)}); CPU {ratio:.2f} ({priced:.2f})")
    sh = named.get("sh")
    if sh is None:
        cells += ["not run"] * 3
    else:
        v, ratio, priced = _race_numbers(grid, sh, seeds, metric)
        std = pick_test.std(ddof=1) if pick_test.size > 1 else 0.0
        within = abs(v.mean() - pick_test.mean()) <= std or v.mean() >= pick_test.mean()
        met = within and max(ratio, priced) <= SH_COST
        cells += [(f"{_fmt(v)} ({_picks(sh, seeds)})"
                  f"; {'within' if within else 'NOT within'} 1 std of the grid's pick"),
                  f"{ratio:.2f} ({priced:.2f}); the grid's pick alone {winner_share:.2f}",
                  "met" if met else
                  f"missed by {_by(max(ratio, priced) - SH_COST)}: {sh_cost_why(grid, sh)}"
                  if within else "missed: pick"]
    auto = named.get("sh-auto")
    if auto is None:
        cells += ["not run"] * 3
    else:
        v, ratio, priced = _race_numbers(grid, auto, seeds, metric)
        rel = float(np.mean(v / b - 1))
        p = float(stats.ttest_rel(v, b).pvalue) if v.size > 1 and not np.allclose(v - b, (v - b)[0]) \
            else float("nan")
        better = int((v > b).sum())
        gain_ok, cost_ok = rel >= AUTO_GAIN, max(ratio, priced) <= AUTO_COST
        why = [] if gain_ok else [f"gain {100 * (rel - AUTO_GAIN):+.1f} pts short"]
        if not cost_ok:
            raced = np.mean([len(auto["sh"][str(s)]["runs"]) for s in seeds])
            why.append(f"cost {_by(max(ratio, priced) - AUTO_COST)} over ({raced:.0f} candidates "
                       f"raced; {sh_cost_why(grid, auto)})")
        cells += [f"{_fmt(v)} ({_picks(auto, seeds)})",
                  (f"{100 * rel:+.1f}% (better in {better}/{len(seeds)}, p = {p:.2g}); "
                  f"CPU {ratio:.2f} ({priced:.2f})"),
                  "met" if gain_ok and cost_ok else "missed: " + ", ".join(why)]
    return cells


def race_headline(runs: dict[str, dict[str, dict[str, Any]]], metric: str) -> str | None:
    """The markdown table, one row per setting that has a grid run; None when none has."""
    rows = [r for setting, named in runs.items() if (r := setting_row(setting, named, metric))]
    if not rows:
        return None
    head = ["setting", f"best single ({metric})",
            "SH as first shipped (picks); CPU / grid (epoch-priced)", "SH at its defaults (picks)",
            "SH CPU / grid (epoch-priced)", "SH target", "SH over auto (picks)",
            "auto vs best single (paired); CPU / grid (epoch-priced)", "auto target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def curriculum_table(runs: dict[str, dict[str, dict[str, Any]]], metric: str) -> str | None:
    """The curriculum stage on top of the auto races (``sh-auto-harder``: the same races, then
    the winner's best state trained on with the next harder candidate, kept where validation
    improves): per setting, the races' result, the stage's, how often it was kept, its cost."""
    rows = []
    for setting, named in runs.items():
        auto, cur = named.get("sh-auto"), named.get("sh-auto-harder")
        if auto is None or cur is None:
            continue
        base, after = _race_runs(auto, metric), _race_runs(cur, metric)
        seeds = sorted(base)
        stages = [cur["sh"][str(s)].get("curriculum") or {} for s in seeds]
        kept = sum(1 for st in stages if st.get("kept"))
        tried = [st for st in stages if st.get("harder")]
        extra = np.mean([cur["sh"][str(s)]["cpu_seconds"] / auto["sh"][str(s)]["cpu_seconds"] - 1
                         for s in seeds])
        a, c = np.asarray([base[s] for s in seeds]), np.asarray([after[s] for s in seeds])
        rows.append(f"| {setting} | {_fmt(a)} | {_fmt(c)} | "
                    f"{', '.join(st.get('harder') or 'none' for st in stages)} | "
                    f"{kept}/{len(tried)} | {100 * float(np.mean(c / a - 1)):+.1f}% | "
                    f"{100 * extra:+.0f}% |")
    if not rows:
        return None
    return ("| setting | SH over auto | + curriculum stage | harder candidate (per seed) | kept "
            "(validation better) | test change | extra CPU over the race |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
