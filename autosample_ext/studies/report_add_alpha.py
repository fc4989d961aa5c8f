"""Add the alpha trajectories of re-run AutoSample searches to an experiments report.json that
lacks them, so that Figure 4 can be redrawn from the JSON alone
(``python -m autosample_ext.experiments --report-only --from-json report.json``).

    python -m autosample_ext.studies.report_add_alpha bench/results/experiments/report.json \\
        lastfm-mf=runs/alpha-lastfm-mf lastfm-lightgcn=runs/alpha-lastfm-lightgcn ...

Each ``SETTING=RUN`` names a run folder of ``python -m autosample_ext.train`` with the compare
run's data, model, seeds and search settings (the default AutoSample search). A search is a
deterministic function of its settings and seed, so the re-run's trajectories are the compare
run's; this is checked, not assumed: per seed the re-run must have the same best search epoch,
the same chosen sampler and alpha* equal within ``--tolerance``; otherwise nothing is written.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def check_and_rows(compare: dict, run: Path, tolerance: float) -> tuple[list[dict], float]:
    """The re-run's alpha.csv rows and the largest |alpha* difference|; raises ValueError when
    the re-run is not the compare run's search."""
    metrics = json.loads((run / "metrics.json").read_text())
    worst = 0.0
    for seed, block in compare["autosample"].items():
        again = metrics["autosample"].get(seed)
        if again is None:
            raise ValueError(f"{run}: seed {seed} was not re-run")
        if again["chosen"] != block["chosen"]:
            raise ValueError(f"{run}: seed {seed} chose {again['chosen']}, the report {block['chosen']}")
        diff = max(abs(again["alpha_star"][k] - v) for k, v in block["alpha_star"].items())
        worst = max(worst, diff)
        if diff > tolerance:
            raise ValueError(f"{run}: seed {seed} alpha* differs by {diff:.2e}")
    best = {(r["seed"], r["best_epoch"]) for r in compare["runs"] if r["method"] == "search"}
    again_best = {(r["seed"], r["best_epoch"]) for r in metrics["runs"] if r["method"] == "search"}
    if best != again_best:
        raise ValueError(f"{run}: best search epochs {sorted(again_best)}, the report {sorted(best)}")
    with open(run / "alpha.csv", newline="", encoding="utf-8") as fh:
        rows = [{k: (int(v) if k in ("seed", "epoch") else float(v)) for k, v in row.items()}
                for row in csv.DictReader(fh)]
    return rows, worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path)
    p.add_argument("runs", nargs="+", metavar="SETTING=RUN")
    p.add_argument("--tolerance", type=float, default=1e-6)
    ns = p.parse_args(argv)
    report = json.loads(ns.report.read_text())
    for spec in ns.runs:
        setting, _, run = spec.partition("=")
        compare = report[setting]["compare"]
        rows, worst = check_and_rows(compare, Path(run), ns.tolerance)
        compare["alpha"] = rows
        print(f"{setting}: {len(rows)} rows from {run}; alpha* equal within {worst:.1e}, "
              f"same picks and best epochs")
    ns.report.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
