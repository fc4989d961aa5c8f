"""rank_topk (tiled at::mm + bounded top-k with exclusion walk) against matmul + mask + topk.

ML-1M shape: 6,040 users x 3,706 items, d=64, K=20, on average ~165 excluded (training) items
per user, float32, CPU, 2 threads. Baselines in the same run: reference.rank_topk_fast
(matmul, masked_fill -inf, torch.topk) and torch.compile of it.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

USERS, ITEMS, D, K = 6040, 3706, 64, 20
ROUNDS = 5


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(0)
    user = torch.randn(USERS, D, generator=gen)
    item = torch.randn(ITEMS, D, generator=gen)
    counts = torch.randint(20, 311, (USERS,), generator=gen)  # mean ~165
    ranks = torch.rand(USERS, ITEMS, generator=gen).argsort(dim=1)
    rows = [ranks[u, : int(c)].sort().values for u, c in enumerate(counts.tolist())]
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    return user, item, indptr, torch.cat(rows)


IMPLS = {
    "autosample": ops.rank_topk,
    "reference_fast": ref.rank_topk_fast,
    "compiled_reference_fast": torch.compile(ref.rank_topk_fast, dynamic=False),
}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_rank_topk(benchmark, inputs, impl):
    benchmark.group = f"rank_topk {USERS}x{ITEMS} d={D} K={K}"
    fn = IMPLS[impl]
    scores, items = fn(*inputs, K)
    want_scores, want_items = ref.rank_topk(*inputs, K)
    torch.testing.assert_close(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert (items == want_items).all(dim=1).float().mean().item() > 0.999
    benchmark.pedantic(fn, args=(*inputs, K), rounds=ROUNDS, iterations=1, warmup_rounds=1)
