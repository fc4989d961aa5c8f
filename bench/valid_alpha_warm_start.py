"""The warm start of AutoSample's retrain: per seed, the retrain from the searched weights (the
default) against the retrain from a random init of the same search (its ``seedN-search.pt``
reused in a run with ``--retrain-init random``): pick, test recall@20, epochs and CPU seconds.

    python bench/valid_alpha_warm_start.py SETTING=SEARCHED_RUN:RANDOM_RUN ... [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _retrains(run: str, metric: str) -> dict[str, dict[str, Any]]:
    m = json.loads((Path(run) / "metrics.json").read_text())
    return {str(r["seed"]): {"pick": r["sampler"], "test": r["test"][metric],
                             "epochs": r["epochs_run"], "cpu": r["cpu_seconds"]}
            for r in m["runs"] if r["method"] == "autosample"}


def rows(pairs: list[tuple[str, str, str]], metric: str = "recall@20") -> list[dict[str, Any]]:
    out = []
    for setting, searched, random in pairs:
        warm, cold = _retrains(searched, metric), _retrains(random, metric)
        for seed in sorted(set(warm) & set(cold), key=int):
            out.append({"setting": setting, "seed": int(seed), "searched": warm[seed],
                        "random": cold[seed]})
    return out


def markdown(table: list[dict[str, Any]]) -> str:
    head = ("| setting | seed | pick | R@20 searched init | R@20 random init | searched - random "
            "| epochs (searched / random) | CPU s (searched / random) |")
    lines = [head, "|" + "---|" * 8]
    for r in table:
        w, c = r["searched"], r["random"]
        lines.append(f"| {r['setting']} | {r['seed']} | {w['pick'].upper()} | {w['test']:.4f} | "
                     f"{c['test']:.4f} | {w['test'] - c['test']:+.4f} | {w['epochs']} / "
                     f"{c['epochs']} | {w['cpu']:.1f} / {c['cpu']:.1f} |")
    diffs = [r["searched"]["test"] - r["random"]["test"] for r in table]
    lines.append("")
    lines.append(f"Searched init better in {sum(d > 0 for d in diffs)} of {len(diffs)} runs; mean "
                 f"difference {np.mean(diffs):+.4f}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pairs", nargs="+", help="SETTING=SEARCHED_RUN:RANDOM_RUN")
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args()
    pairs = [(s, *runs.split(":", 1)) for s, runs in (x.split("=", 1) for x in a.pairs)]
    table = rows(pairs)
    print(markdown(table), end="")
    if a.json:
        Path(a.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
