"""gdns_lookup / gdns_contains / gdns_update (C++ CPU kernels) vs vectorised PyTorch equivalents.

Shape: U = 10,000 users, S = 256 slots, B = 2,048 rows, M = 64 candidates (lookup), N = 32
selected negatives and P = 32 positives (update). The table is pre-filled (about half full) by
earlier updates. Correctness is checked before timing.

Baselines (what a user would write without the ops):
* lookup: ``keys[users][:, None, :] == items[..., None]`` -> any / argmax -> gather, 1.0 if absent.
* contains: the same match -> any.
* update: the same match for existing pairs; new pairs take their user's free slots in slot
  order. It handles only DUPLICATE-FREE batches (no (user, item) pair twice, which the kernel
  applies sequentially) and tables with enough free slots (no eviction), so the benchmark
  batches have distinct users and distinct items per row. Its slot placement differs from the
  kernel's hashing; both are compared through their own lookups.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference_gdns

U, S, B, M, N, P, ITEMS = 10_000, 256, 2048, 64, 32, 32, 50_000
ALPHA, EPS = 0.9, 1e-3


def baseline_lookup(slot_keys, slot_g, users, items):
    keys = slot_keys[users]  # [B, S]
    match = keys[:, None, :] == items[..., None]  # [B, M, S]
    found = match.any(dim=2)
    g = torch.gather(slot_g[users], 1, match.to(torch.int8).argmax(dim=2))
    return torch.where(found, g, torch.ones_like(g))


def baseline_contains(slot_keys, users, items):
    return (slot_keys[users][:, None, :] == items[..., None]).any(dim=2)


def baseline_update(slot_keys, slot_h, slot_g, users, items, pos, neg, alpha, eps):
    """Duplicate-free batches and enough free slots only (see the module docstring)."""
    keys = slot_keys[users]
    match = keys[:, None, :] == items[..., None]  # [B, N, S]
    found = match.any(dim=2)
    slot = match.to(torch.int8).argmax(dim=2)
    # New pairs: the j-th new item of row b takes the j-th free slot of users[b].
    free_first = torch.sort((keys != -1).to(torch.int8), dim=1, stable=True).indices
    new_rank = torch.cumsum((~found).long(), dim=1) - 1
    slot = torch.where(found, slot, torch.gather(free_first, 1, new_rank.clamp_min(0)))
    rows = users[:, None].expand_as(items)
    h_old = torch.where(found, slot_h[rows, slot], torch.ones_like(pos[:, :1]))
    g_old = torch.where(found, slot_g[rows, slot], torch.ones_like(pos[:, :1]))
    h_new = torch.sigmoid(neg[:, :, None] - pos[:, None, :]).mean(dim=2)
    gain = torch.sigmoid((h_old - h_new) / (h_new + eps))
    slot_keys[rows, slot] = items
    slot_g[rows, slot] = alpha * g_old + (1 - alpha) * gain
    slot_h[rows, slot] = h_new


def batch(gen: torch.Generator, cols: int):
    users = torch.randperm(U, generator=gen)[:B]
    items = torch.rand(B, 2 * cols, generator=gen).argsort(dim=1)[:, :cols]  # distinct per row
    items = items * (ITEMS // (2 * cols)) + torch.randint(0, ITEMS // (2 * cols), (B, 1), generator=gen)
    return users, items


@pytest.fixture(scope="module")
def state():
    """A table filled to about half its slots by kernel updates (values the baseline shares)."""
    gen = torch.Generator().manual_seed(0)
    keys = torch.full((U, S), -1, dtype=torch.long)
    h, g = torch.ones(U, S), torch.ones(U, S)
    for _ in range(20):
        users, items = batch(gen, N)
        ops.gdns_update(keys, h, g, users, items, torch.randn(B, P, generator=gen),
                        torch.randn(B, N, generator=gen), ALPHA, EPS)
    assert 0.2 < (keys >= 0).float().mean() < 0.8
    return keys, h, g, gen


@pytest.mark.benchmark(group="gdns_lookup")
def test_lookup_kernel(benchmark, state) -> None:
    keys, _, g, gen = state
    users, items = batch(gen, M)
    items[:, ::2] = keys[users, :M // 2]  # half the candidates are in the table
    items[:, ::2] = torch.where(items[:, ::2] < 0, 0, items[:, ::2])
    small = slice(0, 64)
    assert torch.equal(ops.gdns_lookup(keys, g, users[small], items[small]),
                       reference_gdns.gdns_lookup(keys, g, users[small], items[small]))
    got = ops.gdns_lookup(keys, g, users, items)
    assert torch.equal(got, baseline_lookup(keys, g, users, items))
    assert (got != 1).float().mean() > 0.2
    benchmark(ops.gdns_lookup, keys, g, users, items)


@pytest.mark.benchmark(group="gdns_lookup")
def test_lookup_baseline(benchmark, state) -> None:
    keys, _, g, gen = state
    users, items = batch(gen, M)
    benchmark(baseline_lookup, keys, g, users, items)


def contains_inputs(state):
    keys, _, _, gen = state
    users, items = batch(gen, M)
    items[:, ::2] = torch.where(keys[users, :M // 2] < 0, 0, keys[users, :M // 2])  # half held
    return keys, users, items


@pytest.mark.benchmark(group="gdns_contains")
def test_contains_kernel(benchmark, state) -> None:
    keys, users, items = contains_inputs(state)
    small = slice(0, 64)
    assert torch.equal(ops.gdns_contains(keys, users[small], items[small]),
                       reference_gdns.gdns_contains(keys, users[small], items[small]))
    got = ops.gdns_contains(keys, users, items)
    assert torch.equal(got, baseline_contains(keys, users, items))
    assert 0.2 < got.float().mean() < 0.8
    benchmark(ops.gdns_contains, keys, users, items)


@pytest.mark.benchmark(group="gdns_contains")
def test_contains_baseline(benchmark, state) -> None:
    keys, users, items = contains_inputs(state)
    benchmark(baseline_contains, keys, users, items)


def update_inputs(state):
    keys, h, g, gen = state
    _, items = batch(gen, N)
    roomy = ((keys < 0).sum(dim=1) >= N).nonzero().squeeze(1)  # no eviction for the baseline
    users = roomy[torch.randperm(roomy.numel(), generator=gen)[:B]]
    items += ITEMS  # ids never stored yet, so the pairs below stay duplicate-free
    items[:, ::4] = torch.where(keys[users, :N // 4] >= 0, keys[users, :N // 4], items[:, ::4])
    srt = items.sort(dim=1).values
    assert (srt[:, 1:] != srt[:, :-1]).all() and users.unique().numel() == B
    pos, neg = torch.randn(B, P, generator=gen), torch.randn(B, N, generator=gen)
    return users, items, pos, neg


@pytest.mark.benchmark(group="gdns_update")
def test_update_kernel(benchmark, state) -> None:
    users, items, pos, neg = update_inputs(state)
    keys, h, g, _ = state
    mine = [keys.clone(), h.clone(), g.clone()]
    theirs = [keys.clone(), h.clone(), g.clone()]
    ops.gdns_update(*mine, users, items, pos, neg, ALPHA, EPS)
    baseline_update(*theirs, users, items, pos, neg, ALPHA, EPS)
    assert (mine[0] != keys).any()
    probe = torch.cat([items, torch.randint(0, ITEMS, (B, 8))], dim=1)
    torch.testing.assert_close(ops.gdns_lookup(mine[0], mine[2], users, probe),
                               baseline_lookup(theirs[0], theirs[2], users, probe))

    def setup():
        return (keys.clone(), h.clone(), g.clone(), users, items, pos, neg, ALPHA, EPS), {}

    benchmark.pedantic(ops.gdns_update, setup=setup, rounds=10)


@pytest.mark.benchmark(group="gdns_update")
def test_update_baseline(benchmark, state) -> None:
    users, items, pos, neg = update_inputs(state)
    keys, h, g, _ = state

    def setup():
        return (keys.clone(), h.clone(), g.clone(), users, items, pos, neg, ALPHA, EPS), {}

    benchmark.pedantic(baseline_update, setup=setup, rounds=10)
