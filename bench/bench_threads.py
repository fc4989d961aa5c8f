"""One thread or two: LightGCN training steps and a full-ranking evaluation, CPU.

Each side is a fresh process (the thread pool is set before any work, as --threads does) that
runs STEPS training steps of LightGCN (DENS settings, RNS, propagation="ops") and one
full-ranking evaluation on the test split, and prints the seconds of each part. Sides alternate
(A B B A) in one run. The machine's load average is recorded: on a shared 2-core machine a
second thread is only worth it when a core is idle.

    PYTHONPATH=. pytest bench/bench_threads.py -s --benchmark-json=bench/results/threads.json
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from interleave import DATA, ROOT, need_dataset

STEPS = {"lastfm": 40, "beauty": 12, "ml-1m": 4}

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
sys.path.insert(0, sys.argv[4])
from bench_lightgcn import dens_trainer
from autosample_ext.data import load
data = load(sys.argv[1], split="given")
t = dens_trainer(data, "ops")
users, items = t.train_users[:2048], t.train_items[:2048]
t._train_step(users, items, 0)
t0 = time.perf_counter()
for s in range(int(sys.argv[2])):
    t._train_step(users, items, s + 1)
steps = (time.perf_counter() - t0) / int(sys.argv[2])
t0 = time.perf_counter()
t._evaluate("test")
print(json.dumps({"step_ms": steps * 1e3, "eval_ms": (time.perf_counter() - t0) * 1e3}))
"""


def child(name: str, threads: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(DATA / name), str(STEPS[name]),
                          str(threads), str(ROOT / "bench")],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(STEPS))
def test_one_vs_two_threads(benchmark, name):
    need_dataset(name)
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}

    def pair(state={"i": 0}):  # noqa: B006 - A B then B A
        order = (1, 2) if state["i"] % 2 == 0 else (2, 1)
        for threads in order:
            runs[threads].append(child(name, threads))
        state["i"] += 1

    benchmark.group = f"threads {name}"
    benchmark.pedantic(pair, rounds=2, iterations=1, warmup_rounds=0)
    med = {t: {k: sorted(r[k] for r in rs)[len(rs) // 2] for k in rs[0]} for t, rs in runs.items()}
    info = {"median_ms": {f"threads={t}": v for t, v in med.items()},
            "step_ratio_2_over_1": round(med[2]["step_ms"] / med[1]["step_ms"], 2),
            "eval_ratio_2_over_1": round(med[2]["eval_ms"] / med[1]["eval_ms"], 2),
            "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    benchmark.extra_info.update(info)
    print(f"\n{benchmark.group}: {info}")
