"""autosample::gdns_lookup / gdns_update (the slot table) on CPU against the oracles
(ops/reference_gdns.py); the dense layout's ops are in test_op_gdns_dense.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference_gdns


def empty_table(num_users: int, num_slots: int, dtype=torch.float32):
    keys = torch.full((num_users, num_slots), -1, dtype=torch.long)
    return keys, torch.ones(num_users, num_slots, dtype=dtype), torch.ones(num_users, num_slots, dtype=dtype)


def random_step(rng, num_users, num_items, batch, n, p, dtype):
    users = torch.from_numpy(rng.integers(0, num_users, batch))
    items = torch.from_numpy(rng.integers(0, num_items, (batch, n)))
    pos = torch.from_numpy(rng.normal(size=(batch, p))).to(dtype)
    neg = torch.from_numpy(rng.normal(size=(batch, n))).to(dtype)
    return users, items, pos, neg


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_slots", [1, 3, 8])
def test_update_and_lookup_match_oracle(dtype, num_slots: int) -> None:
    rng = np.random.default_rng(num_slots)
    num_users, num_items = 6, 12  # small: tables fill up and evict
    mine, oracle = empty_table(num_users, num_slots, dtype), empty_table(num_users, num_slots, dtype)
    for step in range(8):
        users, items, pos, neg = random_step(rng, num_users, num_items, int(rng.integers(0, 9)),
                                             int(rng.integers(1, 5)), int(rng.integers(1, 4)), dtype)
        ops.gdns_update(*mine, users, items, pos, neg, 0.7, 1e-3)
        reference_gdns.gdns_update(*oracle, users, items, pos, neg, 0.7, 1e-3)
        assert torch.equal(mine[0], oracle[0]), f"keys differ after step {step}"
        torch.testing.assert_close(mine[1], oracle[1], **tol(dtype))
        torch.testing.assert_close(mine[2], oracle[2], **tol(dtype))
        q_users = torch.from_numpy(rng.integers(0, num_users, 7))
        q_items = torch.from_numpy(rng.integers(0, num_items, (7, 5)))
        got = ops.gdns_lookup(mine[0], mine[2], q_users, q_items)
        assert got.dtype == dtype
        torch.testing.assert_close(got, reference_gdns.gdns_lookup(mine[0], mine[2], q_users, q_items),
                                   rtol=0, atol=0)


def test_large_table_equals_dense_model() -> None:
    rng = np.random.default_rng(0)
    num_users, num_items, num_slots = 20, 30, 32  # S >= items a user can ever have selected
    keys, h, g = empty_table(num_users, num_slots, torch.float64)
    dense_h = torch.ones(num_users, num_items, dtype=torch.float64)
    dense_g = torch.ones(num_users, num_items, dtype=torch.float64)
    for _ in range(25):
        users, items, pos, neg = random_step(rng, num_users, num_items, 16, 6, 4, torch.float64)
        ops.gdns_update(keys, h, g, users, items, pos, neg, 0.9, 1e-2)
        reference_gdns.gdns_dense_update(dense_h, dense_g, users, items, pos, neg, 0.9, 1e-2)
    all_items = torch.arange(num_items).repeat(num_users, 1)
    torch.testing.assert_close(ops.gdns_lookup(keys, g, torch.arange(num_users), all_items), dense_g,
                               rtol=1e-12, atol=1e-12)
    assert (dense_g != 1).any()  # the sequence changed the state
    for u in range(num_users):
        stored = keys[u][keys[u] >= 0]
        order = torch.argsort(stored)
        slots = (keys[u] >= 0).nonzero().squeeze(1)[order]
        torch.testing.assert_close(h[u, slots], dense_h[u, stored[order]], rtol=1e-12, atol=1e-12)


def test_lookup_unseen_pairs_is_one() -> None:
    keys, h, g = empty_table(3, 4)
    ops.gdns_update(keys, h, g, torch.tensor([1]), torch.tensor([[5]]), torch.tensor([[0.0]]),
                    torch.tensor([[3.0]]), 0.5, 1e-3)
    got = ops.gdns_lookup(keys, g, torch.tensor([0, 1, 1, 2]), torch.tensor([[5], [5], [6], [5]]))
    assert got[1, 0] != 1.0
    assert torch.equal(got[[0, 2, 3]], torch.ones(3, 1))


def test_full_row_reads_its_mean_and_evicts_the_entry_closest_to_it() -> None:
    num_slots = 4
    keys = torch.tensor([[10, 11, 12, 13]])
    h = torch.full((1, num_slots), 0.5, dtype=torch.float64)
    g = torch.tensor([[0.2, 0.9, 0.3, 0.9]], dtype=torch.float64)
    mean = (0.2 + 0.9 + 0.3 + 0.9) / 4  # 0.575: an unknown pair neither wins nor loses by construction
    got = ops.gdns_lookup(keys, g, torch.tensor([0]), torch.tensor([[11, 99, 12]]))
    torch.testing.assert_close(got, torch.tensor([[0.9, mean, 0.3]], dtype=torch.float64))
    pos, neg = torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    ops.gdns_update(keys, h, g, torch.tensor([0]), torch.tensor([[99]]), pos, neg, 0.5, 0.0)
    assert keys.tolist() == [[10, 11, 99, 13]]  # |0.3 - 0.575| is the smallest distance
    h_new = torch.sigmoid(torch.tensor(1.0, dtype=torch.float64))
    expected_g = 0.5 * mean + 0.5 * torch.sigmoid((1.0 - h_new) / h_new)  # H_old = 1, G_old = the mean
    torch.testing.assert_close(g[0, 2], expected_g)
    torch.testing.assert_close(h[0, 2], h_new)
    assert g[0, [0, 1, 3]].tolist() == [0.2, 0.9, 0.9]
    # Ties in the distance: the lowest slot.
    keys = torch.tensor([[10, 11, 12, 13]])
    g = torch.tensor([[0.4, 0.6, 0.4, 0.6]], dtype=torch.float64)  # mean 0.5, every distance 0.1
    ops.gdns_update(keys, h, g, torch.tensor([0]), torch.tensor([[77]]), pos, neg, 0.5, 0.0)
    assert keys.tolist() == [[77, 11, 12, 13]]


def test_absent_pairs_read_one_until_the_row_is_full() -> None:
    keys, h, g = empty_table(1, 4, torch.float64)
    pos, neg = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)
    ops.gdns_update(keys, h, g, torch.tensor([0]), torch.tensor([[10, 11, 12]]), pos, neg, 0.5, 0.0)
    stored = ops.gdns_lookup(keys, g, torch.tensor([0]), torch.tensor([[10, 11, 12]]))
    assert (stored < 1).all()
    assert ops.gdns_lookup(keys, g, torch.tensor([0]), torch.tensor([[99]])).item() == 1.0  # never selected
    ops.gdns_update(keys, h, g, torch.tensor([0]), torch.tensor([[13]]), pos, neg[:, :1], 0.5, 0.0)
    assert (keys >= 0).all()  # full: an absent pair may have been evicted, it reads the mean
    torch.testing.assert_close(ops.gdns_lookup(keys, g, torch.tensor([0]), torch.tensor([[99]]))[0, 0],
                               g[0].mean())


def test_duplicate_pairs_apply_twice_in_row_major_order() -> None:
    keys, h, g = empty_table(2, 8, torch.float64)
    users = torch.tensor([1, 0, 1])
    items = torch.tensor([[4, 4], [4, 2], [4, 3]])
    pos = torch.tensor([[0.1, -0.3], [0.0, 0.2], [0.5, 0.4]], dtype=torch.float64)
    neg = torch.tensor([[0.7, 1.5], [0.2, 0.0], [-1.0, 0.3]], dtype=torch.float64)
    alpha, eps = 0.6, 1e-3
    ops.gdns_update(keys, h, g, users, items, pos, neg, alpha, eps)
    h_new = reference_gdns.gdns_h_new(pos, neg)
    g_val, h_val = torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    for b, n in [(0, 0), (0, 1), (2, 0)]:  # (user 1, item 4) three times, in this order
        g_val = reference_gdns.gdns_next_gain(g_val, h_val, h_new[b, n], alpha, eps)
        h_val = h_new[b, n]
    torch.testing.assert_close(ops.gdns_lookup(keys, g, torch.tensor([1]), torch.tensor([[4]]))[0, 0],
                               g_val)
    slot = (keys[1] == 4).nonzero().item()
    torch.testing.assert_close(h[1, slot], h_val)
    assert (keys[1] == 4).sum() == 1


def test_many_rows_per_user_parallel_equals_sequential() -> None:
    rng = np.random.default_rng(3)
    users, items, pos, neg = random_step(rng, 4, 40, 256, 8, 3, torch.float64)
    a, b = empty_table(4, 16, torch.float64), empty_table(4, 16, torch.float64)
    ops.gdns_update(*a, users, items, pos, neg, 0.8, 1e-3)
    reference_gdns.gdns_update(*b, users, items, pos, neg, 0.8, 1e-3)
    assert torch.equal(a[0], b[0])
    torch.testing.assert_close(a[2], b[2], rtol=1e-12, atol=1e-12)


def test_non_contiguous_inputs() -> None:
    rng = np.random.default_rng(4)
    users, items, pos, neg = random_step(rng, 5, 20, 12, 6, 4, torch.float32)
    items_t = items.T.contiguous().T
    pos_t, neg_t = pos.T.contiguous().T, neg[:, :].T.contiguous().T
    users_nc = torch.stack([users, users], 1)[:, 0]
    assert not (items_t.is_contiguous() or pos_t.is_contiguous() or users_nc.is_contiguous())
    a, b = empty_table(5, 8), empty_table(5, 8)
    ops.gdns_update(*a, users_nc, items_t, pos_t, neg_t, 0.5, 1e-3)
    ops.gdns_update(*b, users, items, pos, neg, 0.5, 1e-3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    g_nc = torch.stack([a[2], a[2]], 2)[..., 0]
    assert torch.equal(ops.gdns_lookup(a[0], g_nc, users_nc, items_t),
                       ops.gdns_lookup(a[0], a[2], users, items))


def test_empty_batch() -> None:
    keys, h, g = empty_table(3, 4)
    ops.gdns_update(keys, h, g, torch.zeros(0, dtype=torch.long), torch.zeros(0, 2, dtype=torch.long),
                    torch.zeros(0, 1), torch.zeros(0, 2), 0.5, 1e-3)
    assert (keys == -1).all()
    assert ops.gdns_lookup(keys, g, torch.zeros(0, dtype=torch.long),
                           torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3)


def _update_args(**kw):
    keys, h, g = empty_table(3, 4)
    args = dict(slot_keys=keys, slot_h=h, slot_g=g, users=torch.tensor([0, 2]),
                items=torch.tensor([[1, 2], [3, 4]]), pos_scores=torch.zeros(2, 3),
                neg_scores=torch.zeros(2, 2), alpha=0.5, eps=1e-3)
    args.update(kw)
    return list(args.values())


@pytest.mark.parametrize("kw, pattern", [
    (dict(users=torch.tensor([0, 3])), r"gdns_update.*'users'.*user 3.*\[0, 3\)"),
    (dict(users=torch.tensor([-1, 0])), r"gdns_update.*'users'.*user -1"),
    (dict(items=torch.tensor([[1, -1], [3, 4]])), r"gdns_update.*'items'.*-1"),
    (dict(users=torch.tensor([0.0, 2.0])), r"gdns_update.*'users'.*int64"),
    (dict(items=torch.tensor([1, 2])), r"gdns_update.*'items'.*2-D"),
    (dict(pos_scores=torch.zeros(2, 3, dtype=torch.float64)), r"gdns_update.*'pos_scores'.*Double"),
    (dict(neg_scores=torch.zeros(2, 3)), r"gdns_update.*'neg_scores'.*N"),
    (dict(pos_scores=torch.zeros(2, 0)), r"gdns_update.*'pos_scores'.*at least one"),
    (dict(alpha=1.5), r"gdns_update.*'alpha'.*1.5"),
    (dict(slot_h=torch.ones(4, 3).T), r"gdns_update.*contiguous"),
])
def test_update_errors(kw, pattern) -> None:
    with pytest.raises(RuntimeError, match=pattern):
        torch.ops.autosample.gdns_update(*_update_args(**kw))


@pytest.mark.parametrize("users, items, pattern", [
    (torch.tensor([5]), torch.tensor([[1]]), r"gdns_lookup.*'users'.*user 5"),
    (torch.tensor([0]), torch.tensor([[-1]]), r"gdns_lookup.*'items'.*-1"),
    (torch.tensor([0]), torch.tensor([[1.0]]), r"gdns_lookup.*'items'.*int64"),
    (torch.tensor([0, 1]), torch.tensor([[1]]), r"gdns_lookup.*'items'.*batch size"),
])
def test_lookup_errors(users, items, pattern) -> None:
    keys, _, g = empty_table(3, 4)
    with pytest.raises(RuntimeError, match=pattern):
        ops.gdns_lookup(keys, g, users, items)


def test_opcheck() -> None:
    rng = np.random.default_rng(5)
    keys, h, g = empty_table(4, 8)
    users, items, pos, neg = random_step(rng, 4, 20, 5, 3, 2, torch.float32)
    ops.gdns_update(keys, h, g, users, items, pos, neg, 0.5, 1e-3)
    torch.library.opcheck(torch.ops.autosample.gdns_lookup, (keys, g, users, items))
    torch.library.opcheck(torch.ops.autosample.gdns_update,
                          (keys.clone(), h.clone(), g.clone(), users, items, pos, neg, 0.5, 1e-3))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(backend: str) -> None:
    rng = np.random.default_rng(6)
    users, items, pos, neg = random_step(rng, 4, 20, 6, 3, 2, torch.float32)

    def step(keys, h, g, users, items, pos, neg):
        ops.gdns_update(keys, h, g, users, items, pos, neg, 0.5, 1e-3)
        return ops.gdns_lookup(keys, g, users, items) * 2

    a, b = empty_table(4, 8), empty_table(4, 8)
    compiled = torch.compile(step, fullgraph=True, backend=backend)
    got = compiled(*a, users, items, pos, neg)
    want = step(*b, users, items, pos, neg)
    assert torch.equal(got, want)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
    assert (want != 2).any()
