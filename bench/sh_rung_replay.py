"""Replay successive halving's rule on a grid run's validation curves, for other first rungs and
reduction factors: which sampler it would pick and what it would cost, without training.

A race's candidate trains exactly as the same sampler alone on the same seed (same initial
weights, data order and draws), so the grid run's per-epoch validation values ARE the race's;
what a replay cannot recompute is the paired-bootstrap SE of each rung test (it needs the
models' per-user values), so every test uses the median SE the setting's real race (``sh``)
recorded. Costs are epoch-priced: each candidate's epochs at its single run's CPU seconds per
epoch, over the grid's CPU seconds (as the race table's epoch-priced ratio).

    python bench/sh_rung_replay.py --runs runs/exp19 --settings default-mf,lastfm-mf \
        --rungs 4:2,3:2,2:2,1:2,4:3,2:3 --out bench/results/sh_rung_replay
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from autosample_ext.search.rungs import decide_race, rung_epochs

CANDIDATES = ("rns", "pns", "dns", "aobpr")


def curves(grid_dir: Path) -> dict[str, dict[str, dict[int, float]]]:
    """``{seed: {sampler: {epoch: validation value}}}`` from a grid run's log."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for line in (grid_dir / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "valid" in rec and "run" in rec:
            seed, sampler = rec["run"].split("/")
            out.setdefault(seed.removeprefix("seed"), {}).setdefault(sampler, {})[rec["epoch"]] = \
                rec["valid"]["recall@20"]
    return out


def replay(setting_dir: Path, first_rung: int, eta: int, tie_se: float = 2.0,
           catch_up_se: float = 2.0) -> list[dict[str, Any]]:
    """One replayed race per seed: ``{seed, chosen, priced, pick_alone}``."""
    grid = json.loads((setting_dir / "grid" / "metrics.json").read_text())
    race = json.loads((setting_dir / "sh" / "metrics.json").read_text())
    se = statistics.median(t["se"] for b in race["sh"].values() for d in b["decisions"]
                           for t in d["ties"])
    out = []
    for seed, cs in sorted(curves(setting_dir / "grid").items()):
        runs = {r["method"]: r for r in grid["runs"]
                if str(r["seed"]) == seed and r["method"] in CANDIDATES}
        price = {n: runs[n]["cpu_seconds"] / runs[n]["epochs_run"] for n in CANDIDATES}
        total = sum(runs[n]["cpu_seconds"] for n in CANDIDATES)
        last = {n: max(cs[n]) for n in CANDIDATES}         # where the run alone stopped

        def best(n: str, e: int, cs=cs, last=last) -> float:
            return max(v for k, v in cs[n].items() if k <= min(e, last[n]))

        alive, trained = list(CANDIDATES), dict.fromkeys(CANDIDATES, 0)
        for i, e in enumerate(rung_epochs(first_rung, eta, 300)):
            if len(alive) <= 1:
                break
            for n in alive:
                trained[n] = max(trained[n], min(e, last[n]))
            values = {n: best(n, e) for n in alive}
            order = sorted(alive, key=lambda n: (-values[n], CANDIDATES.index(n)))
            previous = {n: best(n, math.ceil(e / eta)) for n in alive}
            alive = decide_race(order, values, previous, eta=eta, tie_se=tie_se,
                                catch_up_se=catch_up_se, first_rung=i == 0,
                                se=lambda a, b, r: se, index=i, epochs=e).kept
        for n in alive:
            trained[n] = last[n]
        chosen = max(alive, key=lambda n: (max(cs[n].values()), -CANDIDATES.index(n)))
        out.append({"seed": seed, "chosen": chosen,
                    "priced": sum(trained[n] * price[n] for n in CANDIDATES) / total,
                    "pick_alone": runs[chosen]["cpu_seconds"] / total})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True, help="the experiments command's --runs folder")
    p.add_argument("--settings", required=True, help="comma-separated setting folders")
    p.add_argument("--rungs", default="4:2,3:2,2:2,1:2,4:3,2:3",
                   help="comma-separated first_rung:eta pairs")
    p.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
    ns = p.parse_args()
    pairs = [tuple(int(x) for x in pair.split(":")) for pair in ns.rungs.split(",")]
    results: dict[str, dict[str, Any]] = {}
    lines = ["| setting | grid's picks | " + " | ".join(f"r0={r} eta={e}" for r, e in pairs) + " |",
             "|---|---|" + "---|" * len(pairs)]
    for setting in ns.settings.split(","):
        sdir = Path(ns.runs) / setting
        grid = json.loads((sdir / "grid" / "metrics.json").read_text())
        picks = [grid["grid"][s]["chosen"] for s in sorted(grid["grid"])]
        results[setting] = {"grid_picks": picks}
        cells = []
        for r0, eta in pairs:
            got = replay(sdir, r0, eta)
            results[setting][f"{r0}:{eta}"] = got
            chosen = [g["chosen"].upper() for g in got]
            wrong = sum(c.lower() != p for c, p in zip(chosen, picks))
            cells.append(f"{statistics.mean(g['priced'] for g in got):.2f} "
                         f"({', '.join(chosen)}{'; ' + str(wrong) + ' wrong' if wrong else ''})")
        lines.append(f"| {setting} | {', '.join(x.upper() for x in picks)} | " + " | ".join(cells) + " |")
    Path(ns.out + ".json").write_text(json.dumps(results, indent=1) + "\n")
    Path(ns.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
