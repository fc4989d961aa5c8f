"""Data-layer benchmarks: reading ml-1m (1M pairs) and building its CSR, on 2 CPU threads.

Run: PYTHONPATH=. python -m pytest bench/bench_data.py --benchmark-json=bench/results/cpu_data.json
Each benchmark checks its result against the README numbers before timing.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from autosample_ext.data import CSR, default_dataset, load
from autosample_ext.data.readers import read_lines

ROOT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("AUTOSAMPLE_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def ml1m() -> Path:
    path = _data_dir() / "ml-1m"
    if not (path / "train.txt").is_file():
        pytest.skip(f"ml-1m not found under {_data_dir()} (set AUTOSAMPLE_DATA_DIR)")
    logging.getLogger("autosample_ext.data").setLevel(logging.ERROR)
    return path


def test_load_ml1m(benchmark, ml1m):
    """Whole load(): read train.txt + test.txt (1,000,209 pairs), dedup, CSRs, summary."""
    data = load(ml1m)
    assert (data.num_users, data.num_items) == (6040, 3706)
    assert (data.train.nnz, data.test.nnz) == (800_005, 200_204)
    benchmark.extra_info["pairs"] = data.train.nnz + data.test.nnz
    benchmark.pedantic(load, args=(ml1m,), rounds=5, iterations=1, warmup_rounds=1)


def test_read_ml1m_train(benchmark, ml1m):
    """Tokenize ml-1m train.txt (800,005 pairs) into user / item arrays."""
    table = read_lines(ml1m / "train.txt")
    assert len(table) == 800_005
    benchmark.pedantic(read_lines, args=(ml1m / "train.txt",), rounds=5, iterations=1,
                       warmup_rounds=1)


def test_build_csr_ml1m_train(benchmark, ml1m):
    """CSR of ml-1m's 800,005 training pairs (dedup + sort + row pointers)."""
    table = read_lines(ml1m / "train.txt")
    u, i = table.users, table.items
    csr = CSR.from_pairs(u, i, 6040, 3706)
    assert csr.nnz == 800_005
    users, items = csr.pairs()
    assert bool(((users * 3706 + items).diff() > 0).all())  # rows sorted, no duplicates
    benchmark.pedantic(lambda: CSR.from_pairs(u, i, 6040, 3706), rounds=5, iterations=1,
                       warmup_rounds=1)


def test_default_dataset(benchmark):
    """Generate and split the embedded default dataset (2,000 users x 1,500 items)."""
    logging.getLogger("autosample_ext.data").setLevel(logging.ERROR)
    data = default_dataset(seed=0)
    assert (data.num_users, data.num_items) == (2000, 1500)
    benchmark.pedantic(default_dataset, kwargs={"seed": 0}, rounds=3, iterations=1)
