"""gdns_dense_lookup / gdns_dense_update (C++ CPU kernels, the exact gain) vs the vectorised
PyTorch a user would write, at GDNS's ml-1m step: U = 6,040 users x I = 3,706 items, B = 1,024
users a step, M = 64 candidates (lookup), N = 32 selected negatives and P = 32 positives
(update). Correctness is checked before timing.

Baselines:
* lookup: ``g[users[:, None], items]`` (advanced indexing).
* update: ``h_new = sigmoid(neg[:, :, None] - pos[:, None, :]).mean(2)``, the gain formula on
  the gathered ``h, g`` and an ``index_put_``; it is right only for DUPLICATE-FREE batches (a
  pair twice in one call is applied once, where the kernel applies it twice in order), so the
  benchmark batches have distinct users and distinct items per row.

    PYTHONPATH=. pytest bench/bench_gdns_dense.py --benchmark-only
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops

U, I, B, M, N, P = 6040, 3706, 1024, 64, 32, 32
ALPHA, EPS = 0.2, 1e-8


def baseline_update(h, g, users, items, pos, neg, alpha, eps):
    rows = users[:, None].expand_as(items)
    h_new = torch.sigmoid(neg[:, :, None] - pos[:, None, :]).mean(dim=2)
    h_old, g_old = h[rows, items], g[rows, items]
    gain = torch.sigmoid((h_old - h_new) / (h_new + eps))
    g.index_put_((rows, items), alpha * g_old + (1 - alpha) * gain)
    h.index_put_((rows, items), h_new)


def step_inputs(gen: torch.Generator, cols: int):
    users = torch.randperm(U, generator=gen)[:B]
    items = torch.rand(B, I, generator=gen).argsort(dim=1)[:, :cols]  # distinct per row
    return users, items


@pytest.fixture(scope="module")
def state():
    gen = torch.Generator().manual_seed(0)
    h, g = torch.ones(U, I), torch.ones(U, I)
    for _ in range(5):  # some pairs seen, most not: as in the first epochs
        users, items = step_inputs(gen, N)
        ops.gdns_dense_update(h, g, users, items, torch.randn(B, P, generator=gen),
                              torch.randn(B, N, generator=gen), ALPHA, EPS)
    return h, g, gen


@pytest.mark.benchmark(group="gdns_dense_lookup")
def test_lookup_kernel(benchmark, state) -> None:
    _, g, gen = state
    users, items = step_inputs(gen, M)
    assert torch.equal(ops.gdns_dense_lookup(g, users, items), g[users[:, None], items])
    benchmark(ops.gdns_dense_lookup, g, users, items)


@pytest.mark.benchmark(group="gdns_dense_lookup")
def test_lookup_baseline(benchmark, state) -> None:
    _, g, gen = state
    users, items = step_inputs(gen, M)
    benchmark(lambda: g[users[:, None], items])


def update_inputs(state):
    h, g, gen = state
    users, items = step_inputs(gen, N)
    return users, items, torch.randn(B, P, generator=gen), torch.randn(B, N, generator=gen)


@pytest.mark.benchmark(group="gdns_dense_update")
def test_update_kernel(benchmark, state) -> None:
    h, g, _ = state
    users, items, pos, neg = update_inputs(state)
    mine, theirs = [h.clone(), g.clone()], [h.clone(), g.clone()]
    ops.gdns_dense_update(*mine, users, items, pos, neg, ALPHA, EPS)
    baseline_update(*theirs, users, items, pos, neg, ALPHA, EPS)
    torch.testing.assert_close(mine[0], theirs[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mine[1], theirs[1], rtol=1e-5, atol=1e-6)
    benchmark.pedantic(ops.gdns_dense_update, setup=lambda: ((h.clone(), g.clone(), users, items, pos, neg,
                                                              ALPHA, EPS), {}), rounds=10)


@pytest.mark.benchmark(group="gdns_dense_update")
def test_update_baseline(benchmark, state) -> None:
    h, g, _ = state
    users, items, pos, neg = update_inputs(state)
    benchmark.pedantic(baseline_update, setup=lambda: ((h.clone(), g.clone(), users, items, pos, neg,
                                                        ALPHA, EPS), {}), rounds=10)
