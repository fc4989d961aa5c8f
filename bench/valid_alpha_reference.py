"""AutoSample runs (``--search autosample``) against the grid of another run folder, where no
``--compare`` run of one code version fits the time: per seed the grid's pick and test value,
AutoSample's pick and test value, the gap and whether it is on target (the pick table's rule:
the grid's pick, or a test value at most one std of the grid pick's below it), and the CPU
seconds of each side (measured in different runs: a rough ratio only).

    python bench/valid_alpha_reference.py --setting beauty-lightgcn \
        --auto runs/auto-beauty-lightgcn --grid path/to/grid/run [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _test(m: dict[str, Any], method: str, seed: str, metric: str) -> float | None:
    for r in m["runs"]:
        if r["method"] == method and str(r["seed"]) == seed:
            return float(r["test"][metric])
    return None


def reference_rows(setting: str, auto: dict[str, Any], grid: dict[str, Any],
                   metric: str = "recall@20") -> list[dict[str, Any]]:
    """One row per seed that both runs finished."""
    grid_tests = {s: _test(grid, "grid", s, metric) for s in grid["grid"]}
    std = float(np.std(list(grid_tests.values()), ddof=1)) if len(grid_tests) > 1 else 0.0
    rows = []
    for seed in sorted(set(auto["autosample"]) & set(grid["grid"]), key=int):
        pick, got = auto["autosample"][seed]["chosen"], _test(auto, "autosample", seed, metric)
        gap = got - grid_tests[seed]
        rows.append({"setting": setting, "seed": int(seed), "grid": grid["grid"][seed]["best"],
                     "grid_test": grid_tests[seed], "grid_std": std, "auto": pick,
                     "auto_test": got, "gap": gap,
                     "ok": pick == grid["grid"][seed]["best"] or gap >= -std,
                     "auto_cpu": auto["autosample"][seed]["cpu_seconds"],
                     "grid_cpu": grid["grid"][seed]["cpu_seconds"]})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| setting | seed | grid pick (R@20) | AutoSample pick | AutoSample R@20 | vs grid pick "
            "| on target | CPU s AutoSample / grid (separate runs) |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        verdict = "pick = grid's" if r["auto"] == r["grid"] else (
            "within 1 std" if r["ok"] else f"MISS by {-r['gap'] - r['grid_std']:.4f} beyond 1 std")
        lines.append(f"| {r['setting']} | {r['seed']} | {r['grid'].upper()} {r['grid_test']:.4f} "
                     f"| {r['auto'].upper()} | {r['auto_test']:.4f} | {r['gap']:+.4f} | {verdict} "
                     f"| {r['auto_cpu']:.1f} / {r['grid_cpu']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setting", required=True)
    p.add_argument("--auto", required=True, help="run folder of --search autosample")
    p.add_argument("--grid", required=True, help="run folder of --grid (or --compare)")
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args()
    auto, grid = (json.loads((Path(d) / "metrics.json").read_text()) for d in (a.auto, a.grid))
    rows = reference_rows(a.setting, auto, grid)
    print(markdown(rows), end="")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
