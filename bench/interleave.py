"""Side-by-side timing for the graph benchmarks: every side runs once per round, in the order
A B C ... then reversed (A B B A), so drifting load on a shared machine hits all sides alike.
Ratios are medians of the same run: baseline median / ours median. Also the settings the graph
benchmarks share: the data folder and their thread count."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AUTOSAMPLE_DATA_DIR", ROOT.parent / "shared" / "data"))
# The issues' goals are at one thread; AUTOSAMPLE_BENCH_THREADS=2 for the other measurement.
THREADS = int(os.environ.get("AUTOSAMPLE_BENCH_THREADS", "1"))


@pytest.fixture
def bench_threads():
    """Runs the benchmark with THREADS threads (bench/conftest.py sets 2 for the others)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(previous)


def need_dataset(name: str) -> Path:
    """The folder of a shared dataset, or skip the benchmark when it is missing."""
    if not (DATA / name / "train.txt").is_file():
        pytest.skip(f"{name} not found under {DATA} (set AUTOSAMPLE_DATA_DIR)")
    return DATA / name


class Interleaved:
    """Runs ``sides`` (name -> callable) round by round and keeps every side's times (s)."""

    def __init__(self, sides: dict[str, Callable[[], object]]) -> None:
        self.sides = sides
        self.times: dict[str, list[float]] = {name: [] for name in sides}
        self._round = 0

    def round(self) -> None:
        names = list(self.sides)
        if self._round % 2:
            names.reverse()
        for name in names:
            t0 = time.perf_counter()
            self.sides[name]()
            self.times[name].append(time.perf_counter() - t0)
        self._round += 1

    def medians_ms(self) -> dict[str, float]:
        return {n: round(statistics.median(t) * 1e3, 3) for n, t in self.times.items() if t}

    def ratios(self, ours: str = "autosample") -> dict[str, float]:
        """Baseline median / ours median for every other side."""
        med = self.medians_ms()
        return {n: round(m / med[ours], 2) for n, m in med.items() if n != ours}

    def record(self, benchmark, ours: str = "autosample", **extra: object) -> dict[str, object]:
        """Puts medians, ratios and the load average into pytest-benchmark's extra_info."""
        import os

        info = {"median_ms": self.medians_ms(), "ratio_vs_" + ours: self.ratios(ours),
                "rounds": len(next(iter(self.times.values()))),
                "loadavg_1m": round(os.getloadavg()[0], 2), **extra}
        if benchmark is not None:
            benchmark.extra_info.update(info)
        return info
