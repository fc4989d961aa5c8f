"""autosample::gdns_dense_lookup / gdns_dense_update (the paper's exact gain, a dense users x
items table) on CPU against the oracles (ops/reference_gdns.py), and against the slot table when it
has room for every pair."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_op_gdns import empty_table, random_step, tol

from autosample_ext import ops
from autosample_ext.ops import reference_gdns


def dense_table(num_users: int, num_items: int, dtype=torch.float32):
    return torch.ones(num_users, num_items, dtype=dtype), torch.ones(num_users, num_items, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_update_and_lookup_match_oracle(dtype) -> None:
    rng = np.random.default_rng(11)
    num_users, num_items = 7, 9  # small: pairs repeat within and across calls
    mine, oracle = dense_table(num_users, num_items, dtype), dense_table(num_users, num_items, dtype)
    for step in range(10):
        users, items, pos, neg = random_step(rng, num_users, num_items, int(rng.integers(0, 12)),
                                             int(rng.integers(1, 6)), int(rng.integers(1, 4)), dtype)
        ops.gdns_dense_update(*mine, users, items, pos, neg, 0.2, 1e-8)
        reference_gdns.gdns_dense_update(*oracle, users, items, pos, neg, 0.2, 1e-8)
        torch.testing.assert_close(mine[0], oracle[0], **tol(dtype), msg=f"H after step {step}")
        torch.testing.assert_close(mine[1], oracle[1], **tol(dtype), msg=f"G after step {step}")
        q_users = torch.from_numpy(rng.integers(0, num_users, 6))
        q_items = torch.from_numpy(rng.integers(0, num_items, (6, 4)))
        got = ops.gdns_dense_lookup(mine[1], q_users, q_items)
        assert got.dtype == dtype
        assert torch.equal(got, reference_gdns.gdns_dense_lookup(mine[1], q_users, q_items))
    assert (mine[1] < 1).any() and (mine[1] == 1).any()  # some pairs updated, some never selected


def test_equals_the_slot_table_with_room_for_every_pair() -> None:
    rng = np.random.default_rng(12)
    num_users, num_items = 10, 24
    h, g = dense_table(num_users, num_items, torch.float64)
    slots = empty_table(num_users, num_items + 1, torch.float64)  # never full: exact
    for _ in range(20):
        users, items, pos, neg = random_step(rng, num_users, num_items, 12, 5, 3, torch.float64)
        ops.gdns_dense_update(h, g, users, items, pos, neg, 0.2, 1e-8)
        ops.gdns_update(*slots, users, items, pos, neg, 0.2, 1e-8)
    every = torch.arange(num_items).repeat(num_users, 1)
    users = torch.arange(num_users)
    assert torch.equal(ops.gdns_dense_lookup(g, users, every), ops.gdns_lookup(slots[0], slots[2], users, every))


def test_repeated_pair_is_updated_twice_in_row_major_order() -> None:
    h, g = dense_table(2, 6, torch.float64)
    users = torch.tensor([1, 0, 1])
    items = torch.tensor([[4, 4], [4, 2], [4, 3]])
    pos = torch.tensor([[0.1, -0.3], [0.0, 0.2], [0.5, 0.4]], dtype=torch.float64)
    neg = torch.tensor([[0.7, 1.5], [0.2, 0.0], [-1.0, 0.3]], dtype=torch.float64)
    ops.gdns_dense_update(h, g, users, items, pos, neg, 0.6, 1e-3)
    h_new = reference_gdns.gdns_h_new(pos, neg)
    g_val, h_val = torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    for b, n in [(0, 0), (0, 1), (2, 0)]:  # (user 1, item 4) three times, in this order
        g_val = reference_gdns.gdns_next_gain(g_val, h_val, h_new[b, n], 0.6, 1e-3)
        h_val = h_new[b, n]
    torch.testing.assert_close(g[1, 4], g_val)
    torch.testing.assert_close(h[1, 4], h_val)


def test_non_contiguous_inputs_and_empty_batch() -> None:
    rng = np.random.default_rng(13)
    users, items, pos, neg = random_step(rng, 5, 8, 10, 4, 3, torch.float32)
    a, b = dense_table(5, 8), dense_table(5, 8)
    ops.gdns_dense_update(*a, torch.stack([users, users], 1)[:, 0], items.T.contiguous().T,
                          pos.T.contiguous().T, neg.T.contiguous().T, 0.5, 1e-3)
    ops.gdns_dense_update(*b, users, items, pos, neg, 0.5, 1e-3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    g_nc = torch.stack([a[1], a[1]], 2)[..., 0]
    assert torch.equal(ops.gdns_dense_lookup(g_nc, users, items), ops.gdns_dense_lookup(a[1], users, items))
    before = a[1].clone()
    ops.gdns_dense_update(*a, torch.zeros(0, dtype=torch.long), torch.zeros(0, 3, dtype=torch.long),
                          torch.zeros(0, 1), torch.zeros(0, 3), 0.5, 1e-3)
    assert torch.equal(a[1], before)
    assert ops.gdns_dense_lookup(a[1], torch.zeros(0, dtype=torch.long),
                                 torch.zeros(0, 2, dtype=torch.long)).shape == (0, 2)


def _update_args(**kw):
    h, g = dense_table(3, 5)
    args = dict(h=h, g=g, users=torch.tensor([0, 2]), items=torch.tensor([[1, 2], [3, 4]]),
                pos_scores=torch.zeros(2, 3), neg_scores=torch.zeros(2, 2), alpha=0.5, eps=1e-3)
    args.update(kw)
    return list(args.values())


@pytest.mark.parametrize("kw, pattern", [
    (dict(users=torch.tensor([0, 3])), r"gdns_dense_update: argument 'users' holds user 3 at position 1, outside \[0, 3\)"),
    (dict(items=torch.tensor([[1, 5], [3, 4]])),
     r"gdns_dense_update: argument 'items' holds item id 5 at position \(0, 1\), outside \[0, 5\)"),
    (dict(items=torch.tensor([[1, 2], [-1, 4]])), r"gdns_dense_update: argument 'items' holds item id -1 at position \(1, 0\)"),
    (dict(g=torch.ones(3, 4)), r"gdns_dense_update: argument 'g' .* must have the shape of 'h'"),
    (dict(g=torch.ones(3, 5, dtype=torch.float64)), r"gdns_dense_update: argument 'g' has dtype Double"),
    (dict(h=torch.ones(5, 3).T), r"gdns_dense_update.*contiguous"),
    (dict(neg_scores=torch.zeros(2, 3)), r"gdns_dense_update: argument 'neg_scores'.*N"),
    (dict(pos_scores=torch.zeros(2, 0)), r"gdns_dense_update.*'pos_scores'.*at least one"),
    (dict(alpha=-0.1), r"gdns_dense_update: argument 'alpha'.*-0.1"),
    (dict(users=torch.tensor([0.0, 2.0])), r"gdns_dense_update: argument 'users' must be int64"),
])
def test_update_errors(kw, pattern) -> None:
    args = _update_args(**kw)
    h_before = args[0].clone()
    with pytest.raises(RuntimeError, match=pattern):
        torch.ops.autosample.gdns_dense_update(*args)
    if args[0].shape == h_before.shape:
        assert torch.equal(args[0], h_before)  # a refused call writes nothing


@pytest.mark.parametrize("users, items, pattern", [
    (torch.tensor([3]), torch.tensor([[1]]), r"gdns_dense_lookup: argument 'users' holds user 3"),
    (torch.tensor([0]), torch.tensor([[7]]), r"gdns_dense_lookup: argument 'items' holds item id 7 .*outside \[0, 5\)"),
    (torch.tensor([0, 1]), torch.tensor([[1]]), r"gdns_dense_lookup: argument 'items'.*batch size"),
])
def test_lookup_errors(users, items, pattern) -> None:
    with pytest.raises(RuntimeError, match=pattern):
        ops.gdns_dense_lookup(torch.ones(3, 5), users, items)


def test_opcheck() -> None:
    rng = np.random.default_rng(14)
    h, g = dense_table(4, 10)
    users, items, pos, neg = random_step(rng, 4, 10, 5, 3, 2, torch.float32)
    ops.gdns_dense_update(h, g, users, items, pos, neg, 0.5, 1e-3)
    torch.library.opcheck(torch.ops.autosample.gdns_dense_lookup, (g, users, items))
    torch.library.opcheck(torch.ops.autosample.gdns_dense_update,
                          (h.clone(), g.clone(), users, items, pos, neg, 0.5, 1e-3))


def test_torch_compile_fullgraph() -> None:
    rng = np.random.default_rng(15)
    users, items, pos, neg = random_step(rng, 4, 10, 6, 3, 2, torch.float32)

    def step(h, g, users, items, pos, neg):
        ops.gdns_dense_update(h, g, users, items, pos, neg, 0.5, 1e-3)
        return ops.gdns_dense_lookup(g, users, items) * 2

    a, b = dense_table(4, 10), dense_table(4, 10)
    got = torch.compile(step, fullgraph=True, backend="aot_eager")(*a, users, items, pos, neg)
    want = step(*b, users, items, pos, neg)
    assert torch.equal(got, want) and torch.equal(a[1], b[1])
    assert (want != 2).any()
