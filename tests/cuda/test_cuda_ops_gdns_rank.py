"""CUDA kernels of the GDNS slot table (gdns_lookup / gdns_update) and of rank_topk against the CPU
kernel and the oracles (``autosample_ext.ops.reference_gdns``, ``autosample_ext.ops.reference``;
split from test_cuda_ops.py; same conventions: exact integer-valued inputs, asynchronous errors
checked after every test). Skipped when no GPU is visible or the build has no CUDA kernels."""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref
from autosample_ext.ops import reference_gdns
from cudakit import _no_pending_device_error  # noqa: F401 (autouse: no asynchronous error left behind)
from cudakit import (DEV, DTYPES, empty_table, int_valued, raises_async, random_csr, to_dev,
                     tol)


# ---------------------------------------------------------------------------------------------
# GDNS
# ---------------------------------------------------------------------------------------------



@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [3, 64])  # 3: rows fill up and evict; 64: never full
def test_gdns_update_sequence_matches(dtype: torch.dtype, S: int) -> None:
    gen = torch.Generator().manual_seed(S)
    U, num_items = 6, 12
    cpu_state = empty_table(U, S, dtype)
    ref_state = empty_table(U, S, dtype)
    dev_state = tuple(t.to(DEV) for t in empty_table(U, S, dtype))
    for step in range(6):
        B, N, P = 9, 4, 3
        users = torch.randint(0, U, (B,), generator=gen)  # repeated users across rows
        items = torch.randint(0, num_items, (B, N), generator=gen)  # duplicates within rows too
        items[0, 1] = items[0, 0]
        pos = torch.randn(B, P, generator=gen, dtype=dtype)
        neg = torch.randn(B, N, generator=gen, dtype=dtype)
        ops.gdns_update(*dev_state, *to_dev(users, items, pos, neg), 0.7, 1e-3)
        ops.gdns_update(*cpu_state, users, items, pos, neg, 0.7, 1e-3)
        reference_gdns.gdns_update(*ref_state, users, items, pos, neg, 0.7, 1e-3)
        assert torch.equal(dev_state[0].cpu(), ref_state[0]), f"keys differ at step {step}"
        assert torch.equal(dev_state[0].cpu(), cpu_state[0])
        for a, b, c in zip(dev_state[1:], ref_state[1:], cpu_state[1:]):
            torch.testing.assert_close(a.cpu(), b, **tol(dtype))
            torch.testing.assert_close(a.cpu(), c, **tol(dtype))
        query_users = torch.randint(0, U, (5,), generator=gen)
        query = torch.randint(0, num_items + 3, (5, 7), generator=gen)
        got = ops.gdns_lookup(dev_state[0], dev_state[2], *to_dev(query_users, query))
        torch.testing.assert_close(got.cpu(), reference_gdns.gdns_lookup(ref_state[0], ref_state[2], query_users, query),
                                   **tol(dtype))
        torch.testing.assert_close(got.cpu(), ops.gdns_lookup(cpu_state[0], cpu_state[2], query_users, query),
                                   **tol(dtype))


@pytest.mark.cuda
def test_gdns_dense_equivalence_when_large() -> None:
    gen = torch.Generator().manual_seed(21)
    U, num_items, S = 4, 10, 16
    keys, h, g = (t.to(DEV) for t in empty_table(U, S, torch.float64))
    dense_h = torch.ones(U, num_items, dtype=torch.float64)
    dense_g = torch.ones(U, num_items, dtype=torch.float64)
    for _ in range(5):
        users = torch.randint(0, U, (7,), generator=gen)
        items = torch.randint(0, num_items, (7, 3), generator=gen)
        pos = torch.randn(7, 2, generator=gen, dtype=torch.float64)
        neg = torch.randn(7, 3, generator=gen, dtype=torch.float64)
        ops.gdns_update(keys, h, g, *to_dev(users, items, pos, neg), 0.5, 1e-6)
        reference_gdns.gdns_dense_update(dense_h, dense_g, users, items, pos, neg, 0.5, 1e-6)
    all_items = torch.arange(num_items).repeat(U, 1)
    got = ops.gdns_lookup(keys, g, torch.arange(U, device=DEV), all_items.to(DEV))
    torch.testing.assert_close(got.cpu(), dense_g, rtol=1e-12, atol=1e-12)


@pytest.mark.cuda
def test_gdns_errors_leave_table_untouched() -> None:
    keys, h, g = (t.to(DEV) for t in empty_table(3, 4, torch.float32))
    items = torch.tensor([[1, 2]], device=DEV)
    pos = torch.zeros(1, 1, device=DEV)
    neg = torch.zeros(1, 2, device=DEV)
    with raises_async(r"gdns_update.*'users'.*5"):
        ops.gdns_update(keys, h, g, torch.tensor([5], device=DEV), items, pos, neg, 0.5, 1e-3)
    with raises_async(r"gdns_update.*'items'.*-1"):
        ops.gdns_update(keys, h, g, torch.tensor([0], device=DEV), items - 2, pos, neg, 0.5, 1e-3)
    assert (keys == -1).all() and (h == 1).all() and (g == 1).all()
    with raises_async(r"gdns_lookup.*'users'.*-2"):
        ops.gdns_lookup(keys, g, torch.tensor([-2], device=DEV), items)
    out = ops.gdns_lookup(keys, g, torch.zeros(0, dtype=torch.int64, device=DEV),
                          torch.zeros(0, 3, dtype=torch.int64, device=DEV))
    assert out.shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# rank_topk
# ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("B", "N", "k"), [(1, 5, 2), (70, 300, 20), (33, 3000, 1), (33, 3000, 50),
                                           (40, 1000, 128), (10, 700, 129), (100, 64, 40)])
@pytest.mark.parametrize("d", [3, 64])
def test_rank_topk_exact(dtype: torch.dtype, B: int, N: int, k: int, d: int) -> None:
    gen = torch.Generator().manual_seed(B * N + k + d)
    user, items = int_valued((B, d), gen, dtype, -2, 3), int_valued((N, d), gen, dtype, -2, 3)
    indptr, excl = random_csr(B, N, gen, max_deg=min(N - k, 200))
    args = (user, items, indptr, excl, k)
    vals, ids = ops.rank_topk(*to_dev(*args))
    rv, ri = ref.rank_topk(*args)
    cv, ci = ops.rank_topk(*args)
    assert vals.shape == (B, k) and ids.dtype == torch.int64
    assert torch.equal(ids.cpu(), ri) and torch.equal(ids.cpu(), ci)
    assert torch.equal(vals.cpu(), rv) and torch.equal(vals.cpu(), cv)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_topk_random_floats(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(99)
    B, N, d, k = 50, 2000, 32, 20
    user, items = torch.randn(B, d, generator=gen, dtype=dtype), torch.randn(N, d, generator=gen, dtype=dtype)
    indptr, excl = random_csr(B, N, gen, max_deg=300)
    vals, ids = ops.rank_topk(*to_dev(user, items, indptr, excl), k)
    rv, ri = ref.rank_topk(user, items, indptr, excl, k)
    assert torch.equal(ids.cpu(), ri)
    torch.testing.assert_close(vals.cpu(), rv, **tol(dtype))


@pytest.mark.cuda
def test_rank_topk_edge_cases_and_errors() -> None:
    user = torch.ones(2, 4, device=DEV)
    items = torch.zeros(6, 4, device=DEV)
    items[3] = float("nan")
    indptr = torch.tensor([0, 2, 2], device=DEV)
    excl = torch.tensor([0, 3], device=DEV)
    vals, ids = ops.rank_topk(user, items, indptr, excl, 4)
    assert ids.tolist() == [[1, 2, 4, 5], [3, 0, 1, 2]]  # NaN first; ties by item id
    assert ops.rank_topk(user, items, indptr, excl, 0)[1].shape == (2, 0)
    assert ops.rank_topk(user[:0], items, indptr[:1], excl[:0], 3)[1].shape == (0, 3)
    with raises_async(r"rank_topk.*'k'.*5.*row 0"):
        ops.rank_topk(user, items, indptr, excl, 5)
    with raises_async(r"rank_topk.*'excl_indices'.*row 0"):
        ops.rank_topk(user, items, indptr, torch.tensor([3, 0], device=DEV), 2)
    with raises_async(r"rank_topk.*'excl_indices'.*row 0"):
        ops.rank_topk(user, items, indptr, torch.tensor([0, 6], device=DEV), 2)
    with pytest.raises(RuntimeError, match=r"rank_topk.*'k'"):
        ops.rank_topk(user, items, indptr, excl, 7)
