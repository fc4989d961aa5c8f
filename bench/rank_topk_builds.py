"""rank_topk of two builds of this package, process by process (one build per process: both
register the same operator names, so they cannot share one).

    python bench/rank_topk_builds.py --inputs /tmp/rank_inputs.pt --threads 1     # makes them once
    for r in 1 2 3; do for b in OLD NEW; do PYTHONPATH=$b python bench/rank_topk_builds.py \
        --inputs /tmp/rank_inputs.pt --threads 1; done; done

Inputs (saved once, so that every process ranks the same tables): bench_rank_topk.py's ML-1M
shape (random tables, ~165 exclusions per user, k=20) and its trained beauty tables (3 epochs of
fused MF + DNS, training items excluded, k=20 as the validation and k=50 as AOBPR). Prints, per
case, the best of 5 calls in CPU seconds of the process and in wall seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = (("ml-1m random", "ml", 20), ("beauty trained", "beauty", 20), ("beauty trained", "beauty", 50))


def make_inputs(path: Path) -> None:
    import bench_rank_topk as b

    torch.save({"ml": b.inputs._get_wrapped_function()(),
                "beauty": b.beauty_tables._get_wrapped_function()()}, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.inputs.exists():
        make_inputs(args.inputs)
    from autosample_ext import ops

    inputs = torch.load(args.inputs)
    cells = []
    for label, key, k in CASES:
        tables = inputs[key]
        ops.rank_topk(*tables, k)  # warm-up
        cpu = wall = float("inf")
        for _ in range(args.calls):
            c0, w0 = time.process_time(), time.perf_counter()
            ops.rank_topk(*tables, k)
            cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
        cells.append(f"{label} k={k}: cpu {cpu * 1e3:.1f} ms wall {wall * 1e3:.1f} ms")
    build = Path(sys.modules["autosample_ext"].__file__).parent.parent
    print(f"{build} threads={args.threads} load={os.getloadavg()[0]:.2f} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
