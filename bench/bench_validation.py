"""CPU cost of the per-call CSR / alias validation: validate=True vs validate=False.

sample_negatives on the ML-1M training CSR (bench_sample_negatives.load_csr: 6,040 users x 3,706
items, ~132 positives per user; synthetic of that shape when the file is absent), 4,096 users
per call, S draws per user: S = 1 (RNS, one negative per positive), 32 (a DNS candidate pool),
256; uniform and alias. rank_topk at the ML-1M evaluation shape (all 6,040 users, d = 64,
k = 20, the training items excluded). Both sides give the same result (checked first).

    PYTHONPATH=. python bench/bench_validation.py        # interleaved A B B A rounds, ratios
    PYTHONPATH=. pytest bench/bench_validation.py        # pytest-benchmark, one group per case
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sample_negatives import BATCH, NUM_ITEMS, NUM_USERS, load_csr  # noqa: E402

from autosample_ext import ops  # noqa: E402

CASES = [("uniform", 1), ("uniform", 32), ("uniform", 256), ("alias", 1), ("alias", 32)]


def sampling_call(csr, users, alias, mode: str, S: int, validate: bool):
    table = alias if mode == "alias" else (None, None)
    return lambda: ops.sample_negatives(csr.indptr, csr.indices, users, NUM_ITEMS, S, 7, 3, *table,
                                        validate=validate)


def ranking_call(csr, user, items, validate: bool):
    return lambda: ops.rank_topk(user, items, csr.indptr, csr.indices, 20, validate=validate)


@pytest.fixture(scope="module")
def setup():
    csr = load_csr()
    users = torch.randint(0, NUM_USERS, (BATCH,), generator=torch.Generator().manual_seed(1))
    popularity = torch.bincount(csr.indices, minlength=NUM_ITEMS).double() + 1.0
    g = torch.Generator().manual_seed(2)
    emb = (torch.randn(NUM_USERS, 64, generator=g), torch.randn(NUM_ITEMS, 64, generator=g))
    return csr, users, ops.build_alias_table(popularity**0.75), emb


@pytest.mark.parametrize("validate", [True, False], ids=["validate", "trusted"])
@pytest.mark.parametrize(("mode", "S"), CASES, ids=[f"{m}-S{s}" for m, s in CASES])
def test_sample_negatives(benchmark, setup, mode: str, S: int, validate: bool) -> None:
    csr, users, alias, _ = setup
    fn = sampling_call(csr, users, alias, mode, S, validate)
    assert torch.equal(fn(), sampling_call(csr, users, alias, mode, S, not validate)())
    benchmark.group = f"validation-sample_negatives-{mode}-S{S}"
    benchmark(fn)


@pytest.mark.parametrize("validate", [True, False], ids=["validate", "trusted"])
def test_rank_topk(benchmark, setup, validate: bool) -> None:
    csr, _, _, (user, items) = setup
    fn = ranking_call(csr, user, items, validate)
    assert torch.equal(fn()[1], ranking_call(csr, user, items, not validate)()[1])
    benchmark.group = "validation-rank_topk-ml1m"
    benchmark.pedantic(fn, rounds=5, iterations=1)


def _time(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    csr = load_csr()
    users = torch.randint(0, NUM_USERS, (BATCH,), generator=torch.Generator().manual_seed(1))
    popularity = torch.bincount(csr.indices, minlength=NUM_ITEMS).double() + 1.0
    alias = ops.build_alias_table(popularity**0.75)
    g = torch.Generator().manual_seed(2)
    user, items = torch.randn(NUM_USERS, 64, generator=g), torch.randn(NUM_ITEMS, 64, generator=g)
    rows = [(f"sample_negatives {m} S={s}", sampling_call(csr, users, alias, m, s, True),
             sampling_call(csr, users, alias, m, s, False), max(5, 2000 // s)) for m, s in CASES]
    rows.append(("rank_topk ml-1m (6040 users)", ranking_call(csr, user, items, True),
                 ranking_call(csr, user, items, False), 2))
    print(f"threads {torch.get_num_threads()}, load average {os.getloadavg()}, "
          f"{int(csr.indices.numel())} positives, batch {BATCH}")
    print(f"{'case':34s} {'validate':>12s} {'trusted':>12s} {'ratio':>7s}")
    for name, a, b, reps in rows:
        a(), b()  # warm-up
        ta, tb = [], []
        for _ in range(5):  # A B B A
            ta.append(_time(a, reps))
            tb.append(_time(b, reps))
            tb.append(_time(b, reps))
            ta.append(_time(a, reps))
        ma, mb = statistics.median(ta), statistics.median(tb)
        print(f"{name:34s} {ma * 1e3:10.3f}ms {mb * 1e3:10.3f}ms {ma / mb:7.3f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
