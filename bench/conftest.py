"""Benchmark helpers: results are compared side by side within one run."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _bench_threads():
    """CPU benchmarks use 2 threads (the CI machine), as the issues ask."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def cuda_sync_timer(fn):
    """Wrap fn so pytest-benchmark measures completed GPU work."""

    def run(*args, **kwargs):
        out = fn(*args, **kwargs)
        torch.cuda.synchronize()
        return out

    return run
