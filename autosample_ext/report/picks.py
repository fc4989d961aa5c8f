"""The pick table of the experiments' report: AutoSample with the validation-driven alpha (the
default) and with the paper's training-loss alpha against the grid's pick, per setting and seed,
with their costs. Reads ``compare`` runs' ``metrics.json``; runs nothing."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: the method names of the two alpha objectives in a compare run whose own objective is valid
VALID, TRAIN = "autosample", "autosample-train"


def _run(m: dict[str, Any], method: str, seed: str) -> dict[str, Any] | None:
    return next((r for r in m["runs"] if r["method"] == method and str(r["seed"]) == seed), None)


def _price_per_step(m: dict[str, Any], seed: str, steps_per_epoch: int) -> dict[str, float]:
    """CPU seconds per training step of every single sampler of the seed (its run's CPU seconds
    over its steps: the epoch's validation shared out over its steps)."""
    out = {}
    for r in m["runs"]:
        if str(r["seed"]) == seed and r["method"] == r["sampler"] and ":" not in r["method"]:
            out[r["method"]] = r["cpu_seconds"] / max(r["epochs_run"] * steps_per_epoch, 1)
    return out


def epoch_priced(m: dict[str, Any], seed: str) -> float:
    """A load-independent check of the validation-driven AutoSample's CPU ratio to the grid: its
    training steps (by the candidate drawn, ``selected`` in the search's log), its probes' steps
    (every active candidate's look-ahead steps) and its retrain's steps, each priced at that
    sampler's single run's CPU seconds per step, over the grid's CPU seconds. NaN when the run
    lacks what it needs (a run written before the log had ``active``)."""
    path = Path(m["_path"])
    cfg = json.loads((path / "config.json").read_text())
    steps = -(-cfg["data"]["train"] // cfg["config"]["batch_size"])
    price = _price_per_step(m, seed, steps)
    grid = m.get("grid", {}).get(seed)
    auto = _run(m, VALID, seed)
    if grid is None or auto is None or not price:
        return float("nan")
    log = [json.loads(x) for x in (path / "log.jsonl").read_text().splitlines()]
    search = [e for e in log if e.get("run") == f"seed{seed}/search"]
    if not search or any("active" not in e for e in search):
        return float("nan")
    cost, probes = 0.0, 0
    active = list(cfg["config"]["search_space"])   # probes run before an epoch's drops
    for e in search:
        cost += sum(n * price[c] for c, n in e["selected"].items())
        new = e["probes"] - probes
        probes = e["probes"]
        cost += new * cfg["config"]["probe_steps"] * sum(price[c] for c in active)
        active = e["active"]
    cost += auto["epochs_run"] * steps * price[auto["sampler"]]
    return cost / grid["cpu_seconds"]


def pick_rows(runs: dict[str, dict[str, dict[str, Any]]], metric: str) -> list[dict[str, Any]]:
    """One row per (setting, seed) of every compare run that has both AutoSample rows."""
    rows = []
    for setting, named in runs.items():
        m = named.get("compare")
        if m is None or VALID not in m or TRAIN not in m or "grid" not in m:
            continue
        grid_tests = {s: _run(m, "grid", s)["test"][metric] for s in m["grid"]}
        std = float(np.std(list(grid_tests.values()), ddof=1)) if len(grid_tests) > 1 else 0.0
        per_seed = m["costs"]["per_seed"]
        for seed in sorted(m["grid"], key=int):
            grid_pick = m["grid"][seed]["best"]
            auto, paper = _run(m, VALID, seed), _run(m, TRAIN, seed)
            gap = auto["test"][metric] - grid_tests[seed]
            rows.append({
                "setting": setting, "seed": int(seed), "grid": grid_pick,
                "grid_test": grid_tests[seed], "grid_std": std,
                "auto": auto["sampler"], "auto_test": auto["test"][metric], "gap": gap,
                "ok": auto["sampler"] == grid_pick or gap >= -std,
                "paper": paper["sampler"], "paper_test": paper["test"][metric],
                "auto_cpu": per_seed[seed][VALID]["cpu_seconds"] / per_seed[seed]["grid"]["cpu_seconds"],
                "paper_cpu": per_seed[seed][TRAIN]["cpu_seconds"] / per_seed[seed]["grid"]["cpu_seconds"],
                "auto_priced": epoch_priced(m, seed),
                "sh": m.get("sh", {}).get(seed, {}).get("chosen", "?"),
            })
    return rows


def pick_table(runs: dict[str, dict[str, dict[str, Any]]], metric: str) -> str | None:
    """Markdown: the pick table and a summary line (share of runs on target, mean CPU ratio)."""
    rows = pick_rows(runs, metric)
    if not rows:
        return None
    lines = [f"| setting | seed | grid pick ({metric}) | AutoSample pick | AutoSample {metric} "
             f"| vs grid pick | on target | CPU / grid | epoch-priced | paper's pick | paper's "
             f"{metric} | paper CPU / grid | SH pick |",
             "|" + "---|" * 13]
    for r in rows:
        verdict = "pick = grid's" if r["auto"] == r["grid"] else \
            ("within 1 std" if r["ok"] else f"MISS by {-r['gap'] - r['grid_std']:.4f} beyond 1 std")
        lines.append(
            f"| {r['setting']} | {r['seed']} | {r['grid'].upper()} {r['grid_test']:.4f} | "
            f"{r['auto'].upper()} | {r['auto_test']:.4f} | {r['gap']:+.4f} | {verdict} | "
            f"{r['auto_cpu']:.2f} | {r['auto_priced']:.2f} | {r['paper'].upper()} | "
            f"{r['paper_test']:.4f} | {r['paper_cpu']:.2f} | {r['sh'].upper()} |")
    ok = sum(r["ok"] for r in rows)
    same = sum(r["auto"] == r["grid"] for r in rows)
    paper_same = sum(r["paper"] == r["grid"] for r in rows)
    lines.append("")
    lines.append(f"On target (pick = the grid's, or test {metric} at most 1 std of the grid pick's "
                 f"over seeds below it): {ok} of {len(rows)} runs ({100 * ok / len(rows):.0f}%); "
                 f"same pick as the grid {same} of {len(rows)} (the paper's alpha: {paper_same}). "
                 f"Mean CPU over the grid's: AutoSample {np.mean([r['auto_cpu'] for r in rows]):.2f} "
                 f"(epoch-priced {_priced_mean(rows)}), the paper's "
                 f"{np.mean([r['paper_cpu'] for r in rows]):.2f}.")
    return "\n".join(lines) + "\n"


def _priced_mean(rows: list[dict[str, Any]]) -> str:
    """The mean epoch-priced ratio over the rows that have one ("n/a" when none has: runs
    whose single-sampler CPU per step was not recorded)."""
    priced = [r["auto_priced"] for r in rows if not np.isnan(r["auto_priced"])]
    return f"{np.mean(priced):.2f}" if priced else "n/a"
