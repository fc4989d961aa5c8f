"""Property-based tests (hypothesis) of every operator against its oracle.

Every operator, spmm and graph_propagate included. Random shapes (empty ones included), ties,
NaN and +-inf, extreme k (0 and the largest allowed), unsorted and repeated CSR columns: no
crash, outputs of the right shape and range, and the oracle's result (ids exactly; values
exactly where they are exact, i.e. small-integer embeddings, NaN equal to NaN). Run on every
device present. Derandomised: CI runs the same examples every time.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autosample_ext
from autosample_ext import ops
from autosample_ext.ops import reference as ref
from autosample_ext.ops import reference_gdns

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and autosample_ext.cuda_compiled() else [])
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SPECIAL = [float("nan"), float("inf"), float("-inf")]


def values(draw, shape, dtype, special: bool) -> torch.Tensor:
    """Small integers (exact dot products in any order), sometimes NaN / +-inf, many ties."""
    n = 1
    for s in shape:
        n *= s
    pool = list(range(-2, 3)) + (SPECIAL if special else [])
    flat = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    return torch.tensor(flat, dtype=dtype).reshape(shape)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.equal(a.isnan(), b.isnan())) and \
        bool(torch.equal(a.nan_to_num(0.0, 1e300, -1e300), b.nan_to_num(0.0, 1e300, -1e300)))


def csr(draw, rows: int, num_items: int, max_deg: int) -> tuple[torch.Tensor, torch.Tensor]:
    lists = [sorted(draw(st.sets(st.integers(0, num_items - 1), max_size=min(max_deg, num_items))))
             for _ in range(rows)]
    indptr = torch.tensor([0] + [len(r) for r in lists], dtype=torch.int64).cumsum(0)
    return indptr, torch.tensor([i for r in lists for i in r], dtype=torch.int64)


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_select_topk(dev: str, data) -> None:
    B, M = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 160))
    k = data.draw(st.one_of(st.just(0), st.just(M), st.integers(0, M)))
    keys = values(data.draw, (B, M), data.draw(st.sampled_from([torch.float32, torch.float64])), special=True)
    v, p = ops.select_topk(keys.to(dev), k)
    rv, rp = ref.select_topk(keys, k)
    assert torch.equal(p.cpu(), rp) and same(v.cpu(), rv)


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_score_candidates_and_topk(dev: str, data) -> None:
    B, M, N = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 40)), data.draw(st.integers(1, 12))
    d = data.draw(st.sampled_from([1, 2, 3, 4, 8, 9, 12, 16, 17]))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    special = data.draw(st.booleans())
    user, items = values(data.draw, (B, d), dtype, special), values(data.draw, (N, d), dtype, special)
    cand = torch.tensor(data.draw(st.lists(st.integers(0, N - 1), min_size=B * M, max_size=B * M)),
                        dtype=torch.int64).reshape(B, M)
    scores = ops.score_candidates(user.to(dev), items.to(dev), cand.to(dev))
    assert same(scores.cpu(), ref.score_candidates(user, items, cand))
    k = data.draw(st.one_of(st.just(0), st.just(M), st.integers(0, M)))
    v, ids = ops.score_topk(user.to(dev), items.to(dev), cand.to(dev), k)
    rv, rids = ref.score_topk(user, items, cand, k)
    assert same(v.cpu(), rv) and torch.equal(ids.cpu(), rids)


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_rank_topk(dev: str, data) -> None:
    B, N, d = data.draw(st.integers(0, 4)), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 6))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    special = data.draw(st.booleans())
    user, items = values(data.draw, (B, d), dtype, special), values(data.draw, (N, d), dtype, special)
    indptr, excl = csr(data.draw, B, N, N - 1)
    room = int((N - (indptr[1:] - indptr[:-1])).min()) if B else N
    k = data.draw(st.one_of(st.just(0), st.just(room), st.integers(0, room)))
    v, ids = ops.rank_topk(user.to(dev), items.to(dev), indptr.to(dev), excl.to(dev), k)
    rv, rids = ref.rank_topk(user, items, indptr, excl, k)
    assert torch.equal(ids.cpu(), rids) and same(v.cpu(), rv)


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_sample_negatives(dev: str, data) -> None:
    U, N = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 30))
    indptr, indices = csr(data.draw, U, N, N - 1)  # every user keeps a non-positive item
    B, S = data.draw(st.integers(0, 8)), data.draw(st.integers(0, 12))
    users = torch.tensor(data.draw(st.lists(st.integers(0, U - 1), min_size=B, max_size=B)), dtype=torch.int64)
    seed, offset = data.draw(st.integers(0, 2**63 - 1)), data.draw(st.integers(0, 2**63 - 1))
    table = (None, None)
    if data.draw(st.booleans()):
        w = torch.tensor(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 7.0]), min_size=N, max_size=N)))
        if float(w.sum()) > 0:
            table = ops.build_alias_table(w)
    dev_table = tuple(x.to(dev) if x is not None else None for x in table)
    out = ops.sample_negatives(indptr.to(dev), indices.to(dev), users.to(dev), N, S, seed, offset, *dev_table)
    want = ref.sample_negatives(indptr, indices, users, N, S, seed, offset, *table)
    assert torch.equal(out.cpu(), want)
    if out.numel():
        assert int(out.min()) >= 0 and int(out.max()) < N
        rows = users.unsqueeze(1).expand_as(want)
        assert not bool(ref.is_positive(indptr, indices, N, rows, out.cpu()).any())


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_gdns_lookup_and_update(dev: str, data) -> None:
    U, S = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    state = (torch.full((U, S), -1, dtype=torch.int64), torch.ones(U, S, dtype=dtype), torch.ones(U, S, dtype=dtype))
    mine = tuple(t.to(dev) for t in state)
    for _ in range(data.draw(st.integers(1, 3))):
        B, M, P = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 4)), data.draw(st.integers(1, 3))
        users = torch.tensor(data.draw(st.lists(st.integers(0, U - 1), min_size=B, max_size=B)), dtype=torch.int64)
        items = torch.tensor(data.draw(st.lists(st.integers(0, 9), min_size=B * M, max_size=B * M)),
                             dtype=torch.int64).reshape(B, M)
        pos = values(data.draw, (B, P), dtype, special=False)
        neg = values(data.draw, (B, M), dtype, special=False)
        ops.gdns_update(*mine, users.to(dev), items.to(dev), pos.to(dev), neg.to(dev), 0.3, 1e-3)
        reference_gdns.gdns_update(*state, users, items, pos, neg, 0.3, 1e-3)
        assert torch.equal(mine[0].cpu(), state[0])
        tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
        torch.testing.assert_close(mine[1].cpu(), state[1], **tol)
        torch.testing.assert_close(mine[2].cpu(), state[2], **tol)
        got = ops.gdns_lookup(mine[0], mine[2], users.to(dev), items.to(dev))
        torch.testing.assert_close(got.cpu(), reference_gdns.gdns_lookup(state[0], state[2], users, items), **tol)
    ops.check_errors()


def matrix(draw, rows: int, cols: int, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A CSR matrix as the products take it: any column order, repeated columns, empty rows;
    small-integer values (sums exact in any order)."""
    lists = [draw(st.lists(st.integers(0, cols - 1), max_size=6)) if cols else [] for _ in range(rows)]
    indptr = torch.tensor([0] + [len(r) for r in lists], dtype=torch.int64).cumsum(0)
    indices = torch.tensor([c for r in lists for c in r], dtype=torch.int64)
    values = torch.tensor(draw(st.lists(st.sampled_from([-2.0, -1.0, 0.5, 1.0, 2.0]), min_size=len(indices),
                                        max_size=len(indices))), dtype=dtype)
    return indptr, indices, values


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_spmm(dev: str, data) -> None:
    R, C, d = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6)), data.draw(st.integers(0, 9))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    a = matrix(data.draw, R, C, dtype)
    x = values(data.draw, (C, d), dtype, special=data.draw(st.booleans()))
    out = ops.spmm(*(t.to(dev) for t in a), x.to(dev))
    assert out.shape == (R, d) and out.dtype == dtype
    assert same(out.cpu(), ref.spmm(*a, x))
    if dev != "cpu":
        assert torch.equal(out.cpu().isnan(), ops.spmm(*a, x).isnan())
        assert same(out.cpu(), ops.spmm(*a, x))  # bit for bit the CPU kernel's
    ops.check_errors()


@pytest.mark.parametrize("dev", DEVICES)
@SETTINGS
@given(data=st.data())
def test_graph_propagate(dev: str, data) -> None:
    N, d, K = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 9)), data.draw(st.integers(0, 3))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    a = matrix(data.draw, N, N, dtype)
    x = values(data.draw, (N, d), dtype, special=data.draw(st.booleans()))
    out = ops.graph_propagate(*(t.to(dev) for t in a), x.to(dev), K)
    assert out.shape == (N, d) and out.dtype == dtype
    assert same(out.cpu(), ref.graph_propagate(*a, x, K))
    ops.check_errors()


def test_every_operator_has_an_autograd_kernel():
    """Each schema of csrc/ops.cpp gets the Autograd key registered from the same table: the
    fall-through for the non-differentiable ops (their outputs never require grad) and the
    backward of the Python wrapper for spmm and graph_propagate."""
    import autosample_ext.ops.graph  # noqa: F401  (registers the backwards)

    names = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith("autosample::"))
    assert len(names) >= 13, names
    assert [n for n in names if not torch._C._dispatch_has_kernel_for_dispatch_key(n, "Autograd")] == []
    user = torch.randn(3, 4, requires_grad=True)
    item = torch.randn(5, 4, requires_grad=True)
    scores = torch.ops.autosample.score_candidates(user, item, torch.zeros(3, 2, dtype=torch.int64))
    assert not scores.requires_grad and scores.grad_fn is None
