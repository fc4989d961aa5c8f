"""Where a training run's time goes: py-spy samples grouped into phases, and the hottest leaves.

Record a run with py-spy's raw (collapsed-stack) format, then summarise it:

    py-spy record --rate 200 --format raw -o prof.txt -- \\
        python -m autosample_ext.train --protocol dens --data ../shared/data/lastfm \\
            --sampler rns --epochs 100 --patience 0 --threads 1 --no-progress --out /tmp/run
    python bench/profile_buckets.py prof.txt [--markdown]

A sample is put in the first phase (in the order of PHASES) whose marker appears anywhere in its
stack, so "backward" holds everything under loss.backward(), "propagation" the forward graph
products, and so on; "imports" is module loading (pandas, scipy, torch submodules).
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("checkpoint (save)", ("save_checkpoint",)),
    ("imports", ("_find_and_load",)),
    ("data loading", ("data/loader.py", "data/readers.py", "data/tables.py", "data/raw.py", "norm_adj")),
    ("evaluation", ("evaluate_model", "evaluate_full_ranking")),
    ("backward", ("backward (torch/_tensor.py", "run_backward", "_engine_run_backward")),
    ("forward propagation", ("propagate (", "layer_embeddings", "_layers (", "graph_propagate",
                             "mean_of_layers")),
    ("negative sampling", ("sample (autosample_ext/samplers", "sample_negatives")),
    ("scores + loss", ("step_loss", "score_and_loss", "candidate_losses")),
    ("optimizer step", ("optimizer_step", "adam.py", "_fused_adam", "step (torch/optim")),
    ("zero_grad", ("zero_grad",)),
]


def parse(path: Path) -> list[tuple[list[str], int]]:
    rows = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            rows.append((stack.split(";"), int(count)))
    return rows


def phase_of(frames: list[str]) -> str:
    text = ";".join(frames)
    for name, markers in PHASES:
        if any(m in text for m in markers):
            return name
    return "other"


def summarise(rows: list[tuple[list[str], int]], top: int = 15) -> tuple[dict[str, float], list[tuple[str, float]]]:
    total = sum(c for _, c in rows) or 1
    phases: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for frames, count in rows:
        phases[phase_of(frames)] += count
        leaf = re.sub(r"\s*\(.*?:\d+\)$", "", frames[-1]) if frames else "?"
        leaves[leaf] += count
    share = {k: 100.0 * v / total for k, v in phases.most_common()}
    return share, [(k, 100.0 * v / total) for k, v in leaves.most_common(top)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profiles", nargs="+", type=Path, help="py-spy --format raw outputs")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    for path in args.profiles:
        rows = parse(path)
        phases, leaves = summarise(rows, args.top)
        print(f"## {path.name}: {sum(c for _, c in rows)} samples\n")
        print("| phase | share |\n|---|---|")
        for name, pct in phases.items():
            print(f"| {name} | {pct:.1f}% |")
        print("\n| hottest leaf frame | share |\n|---|---|")
        for name, pct in leaves:
            print(f"| `{name[:90]}` | {pct:.1f}% |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
