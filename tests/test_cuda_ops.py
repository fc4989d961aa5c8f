"""CUDA kernels of the seven operators (issue 3).

Each op runs on identical inputs on CUDA, through the CPU kernel and through the oracle in
``autosample_ext.ops.reference``: item ids and positions must agree exactly, floats within
float tolerance, ``sample_negatives`` bit for bit. Inputs with small integer values make every
dot product exact in any summation order, so ties (and their canonical order) are compared
exactly across devices too. Skipped when no GPU is visible or the build has no CUDA kernels.
"""
from __future__ import annotations

import contextlib

import pytest
import torch

import autosample_ext
from autosample_ext import ops
from autosample_ext.ops import reference as ref

DEV = "cuda"
DTYPES = [torch.float32, torch.float64]


@contextlib.contextmanager
def raises_async(match: str):
    """A value error of a CUDA call: kernels report asynchronously, so the error comes from the
    call itself (host-side checks) or from the next check_errors()."""
    with pytest.raises(RuntimeError, match=match):
        yield
        ops.check_errors()


@pytest.fixture(autouse=True)
def _no_pending_device_error():
    """Every test leaves no asynchronous error behind (one would surface in the next test)."""
    yield
    if torch.cuda.is_available() and autosample_ext.cuda_compiled():
        ops.check_errors()


def tol(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}


def int_valued(shape, gen: torch.Generator, dtype: torch.dtype, lo: int = -3, hi: int = 4) -> torch.Tensor:
    """Small integers as floats: dot products are exact whatever the summation order."""
    return torch.randint(lo, hi, shape, generator=gen).to(dtype)


def random_csr(num_rows: int, num_items: int, gen: torch.Generator, max_deg: int,
               full_rows: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted, unique CSR rows; rows in full_rows get num_items - 1 entries."""
    rows = []
    for r in range(num_rows):
        deg = num_items - 1 if r in full_rows else int(torch.randint(0, max_deg + 1, (1,), generator=gen))
        rows.append(torch.sort(torch.randperm(num_items, generator=gen)[:deg]).values)
    indptr = torch.tensor([0] + [len(r) for r in rows], dtype=torch.int64).cumsum(0)
    indices = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
    return indptr, indices.to(torch.int64)


def to_dev(*ts):
    return tuple(t.to(DEV) if isinstance(t, torch.Tensor) else t for t in ts)


# ---------------------------------------------------------------------------------------------
# sample_negatives
# ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("alias", [False, True])
@pytest.mark.parametrize("num_items", [7, 300])
def test_sample_negatives_bit_identical(alias: bool, num_items: int) -> None:
    gen = torch.Generator().manual_seed(10 + num_items)
    indptr, indices = random_csr(40, num_items, gen, max_deg=num_items // 2, full_rows=(3,))
    users = torch.randint(0, 40, (64,), generator=gen)
    users[0] = 3  # a user with a single non-positive item
    table = (None, None)
    if alias:
        weights = torch.rand(num_items, generator=gen) ** 2
        weights[: num_items // 3] = 0.0
        table = ops.build_alias_table(weights)
    args = (indptr, indices, users, num_items, 33, 1234567, 99)
    cpu = ops.sample_negatives(*args, *table)
    cuda = ops.sample_negatives(*to_dev(*args, *table))
    oracle = ref.sample_negatives(*args, *table)
    assert cuda.device.type == "cuda" and cuda.dtype == torch.int64 and cuda.shape == (64, 33)
    assert torch.equal(cuda.cpu(), cpu)
    assert torch.equal(cuda.cpu(), oracle)
    assert not ref.is_positive(indptr, indices, num_items, users.unsqueeze(1).expand_as(cpu), cuda.cpu()).any()
    single = int(torch.tensor(sorted(set(range(num_items)) - set(indices[indptr[3]:indptr[4]].tolist()))[0]))
    assert (cuda[0] == single).all()


@pytest.mark.cuda
def test_sample_negatives_offsets_and_seeds_differ() -> None:
    gen = torch.Generator().manual_seed(1)
    indptr, indices = to_dev(*random_csr(20, 1000, gen, max_deg=50))
    users = torch.arange(20, device=DEV)
    a = ops.sample_negatives(indptr, indices, users, 1000, 16, 5, 0)
    assert torch.equal(a, ops.sample_negatives(indptr, indices, users, 1000, 16, 5, 0))
    assert not torch.equal(a, ops.sample_negatives(indptr, indices, users, 1000, 16, 5, 1))
    assert not torch.equal(a, ops.sample_negatives(indptr, indices, users, 1000, 16, 6, 0))
    # 64-bit seeds and offsets (hi words enter the key).
    big = ops.sample_negatives(indptr, indices, users, 1000, 16, 2**40 + 5, 2**35)
    assert torch.equal(big.cpu(), ref.sample_negatives(indptr.cpu(), indices.cpu(), users.cpu(), 1000, 16,
                                                       2**40 + 5, 2**35))


@pytest.mark.cuda
def test_sample_negatives_uniform_chi_square() -> None:
    gen = torch.Generator().manual_seed(3)
    n = 50
    indptr = torch.tensor([0, 10], dtype=torch.int64)
    indices = torch.sort(torch.randperm(n, generator=gen)[:10]).values
    draws = ops.sample_negatives(*to_dev(indptr, indices), torch.zeros(4000, dtype=torch.int64, device=DEV),
                                 n, 10, 7, 0).cpu().reshape(-1)
    counts = torch.bincount(draws, minlength=n).double()
    allowed = torch.ones(n, dtype=torch.bool)
    allowed[indices] = False
    assert counts[~allowed].sum() == 0
    expected = draws.numel() / allowed.sum()
    chi2 = float(((counts[allowed] - expected) ** 2 / expected).sum())
    # 39 degrees of freedom: P(chi2 > 80) < 1e-4.
    assert chi2 < 80.0


@pytest.mark.cuda
def test_sample_negatives_empty_and_errors() -> None:
    gen = torch.Generator().manual_seed(4)
    indptr, indices = to_dev(*random_csr(5, 10, gen, max_deg=3))
    empty = ops.sample_negatives(indptr, indices, torch.zeros(0, dtype=torch.int64, device=DEV), 10, 4, 0, 0)
    assert empty.shape == (0, 4) and empty.device.type == "cuda"
    assert ops.sample_negatives(indptr, indices, torch.arange(5, device=DEV), 10, 0, 0, 0).shape == (5, 0)
    with raises_async(r"sample_negatives.*'users'.*7"):
        ops.sample_negatives(indptr, indices, torch.tensor([0, 7], device=DEV), 10, 4, 0, 0)
    full_ptr = torch.tensor([0, 3, 3], device=DEV)
    full_idx = torch.tensor([0, 1, 2], device=DEV)
    with raises_async(r"sample_negatives.*user 0.*no non-positive"):
        ops.sample_negatives(full_ptr, full_idx, torch.tensor([1, 0], device=DEV), 3, 2, 0, 0)


# ---------------------------------------------------------------------------------------------
# score_candidates / score_topk
# ---------------------------------------------------------------------------------------------


def scoring_inputs(B: int, M: int, N: int, d: int, dtype: torch.dtype, seed: int, exact: bool):
    gen = torch.Generator().manual_seed(seed)
    if exact:
        user, items = int_valued((B, d), gen, dtype), int_valued((N, d), gen, dtype)
    else:
        user, items = torch.randn(B, d, generator=gen, dtype=dtype), torch.randn(N, d, generator=gen, dtype=dtype)
    cand = torch.randint(0, N, (B, M), generator=gen)
    return user, items, cand


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 3, 4, 8, 32, 64, 130])
def test_score_candidates_matches(dtype: torch.dtype, d: int) -> None:
    user, items, cand = scoring_inputs(37, 45, 101, d, dtype, seed=d, exact=False)
    out = ops.score_candidates(*to_dev(user, items, cand))
    assert out.dtype == dtype and out.shape == (37, 45)
    torch.testing.assert_close(out.cpu(), ref.score_candidates(user, items, cand), **tol(dtype))
    assert torch.equal(out.cpu(), ops.score_candidates(user, items, cand))  # dot.h's order: same bits


@pytest.mark.cuda
def test_score_candidates_misaligned_and_noncontiguous() -> None:
    gen = torch.Generator().manual_seed(5)
    N, d = 50, 8
    flat = torch.randn(N * d + 1, generator=gen, device="cpu").to(DEV)
    items = flat[1:].view(N, d)  # contiguous, data pointer 4 bytes past a 16-byte boundary
    assert items.data_ptr() % 16 != 0
    user = torch.randn(6, 2 * d, generator=gen).to(DEV)[:, ::2]  # non-contiguous
    cand = torch.randint(0, N, (20, 6), generator=gen).to(DEV).T  # non-contiguous [6, 20]
    out = ops.score_candidates(user, items, cand)
    torch.testing.assert_close(out, ref.score_candidates(user, items, cand), rtol=1e-5, atol=1e-5)
    assert torch.equal(out.cpu(), ops.score_candidates(user.cpu(), items.cpu(), cand.cpu()))
    vals, ids = ops.score_topk(user, items, cand, 5)
    cv, ci = ops.score_topk(user.cpu(), items.cpu(), cand.cpu(), 5)
    assert torch.equal(vals.cpu(), cv) and torch.equal(ids.cpu(), ci)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("M", "k"), [(1, 1), (50, 1), (50, 8), (50, 50), (300, 33), (300, 100),
                                      (300, 128), (300, 129), (300, 300)])
@pytest.mark.parametrize("d", [5, 64])
def test_score_topk_exact_ties(dtype: torch.dtype, M: int, k: int, d: int) -> None:
    # Few distinct small-integer item rows: many exactly tied scores, all computed exactly.
    user, items, cand = scoring_inputs(19, M, 7, d, dtype, seed=M * 1000 + k, exact=True)
    vals, ids = ops.score_topk(*to_dev(user, items, cand), k)
    rv, ri = ref.score_topk(user, items, cand, k)
    cv, ci = ops.score_topk(user, items, cand, k)
    assert vals.shape == (19, k) and ids.dtype == torch.int64
    assert torch.equal(vals.cpu(), rv) and torch.equal(ids.cpu(), ri)
    assert torch.equal(vals.cpu(), cv) and torch.equal(ids.cpu(), ci)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 8, 64])
def test_score_topk_random_floats(dtype: torch.dtype, k: int) -> None:
    user, items, cand = scoring_inputs(64, 256, 5000, 64, dtype, seed=k, exact=False)
    vals, ids = ops.score_topk(*to_dev(user, items, cand), k)
    rv, ri = ref.score_topk(user, items, cand, k)
    torch.testing.assert_close(vals.cpu(), rv, **tol(dtype))
    assert torch.equal(ids.cpu(), ri)  # random continuous scores: no near-ties at this size
    cv, ci = ops.score_topk(user, items, cand, k)
    assert torch.equal(vals.cpu(), cv) and torch.equal(ids.cpu(), ci)  # bit-identical to the CPU
    # Scores really are the dot products of the returned items.
    torch.testing.assert_close(vals, ops.score_candidates(*to_dev(user, items), ids), **tol(dtype))


@pytest.mark.cuda
def test_score_topk_nan_first_and_empty() -> None:
    user = torch.ones(3, 4, device=DEV)
    items = torch.arange(20, dtype=torch.float32, device=DEV).unsqueeze(1).repeat(1, 4)
    items[7] = float("nan")
    cand = torch.tensor([[1, 7, 19, 7], [2, 3, 4, 5], [19, 19, 0, 7]], device=DEV)
    vals, ids = ops.score_topk(user, items, cand, 3)
    assert ids.tolist() == [[7, 7, 19], [5, 4, 3], [7, 19, 19]]
    assert torch.isnan(vals[0, :2]).all() and vals[0, 2] == 76.0
    v0, i0 = ops.score_topk(user, items, cand, 0)
    assert v0.shape == (3, 0) and i0.shape == (3, 0)
    empty = ops.score_topk(torch.zeros(0, 4, device=DEV), items, torch.zeros(0, 5, dtype=torch.int64, device=DEV), 2)
    assert empty[0].shape == (0, 2) and empty[1].shape == (0, 2)


@pytest.mark.cuda
def test_scoring_errors() -> None:
    user, items, cand = to_dev(*scoring_inputs(4, 6, 10, 8, torch.float32, seed=0, exact=False))
    bad = cand.clone()
    bad[2, 3] = 10
    with raises_async(r"score_candidates.*'cand'.*10"):
        ops.score_candidates(user, items, bad)
    bad[2, 3] = -1
    with raises_async(r"score_topk.*'cand'.*-1"):
        ops.score_topk(user, items, bad, 2)
    with pytest.raises(RuntimeError, match=r"score_topk.*'k'"):
        ops.score_topk(user, items, cand, 7)
    with pytest.raises(RuntimeError, match=r"score_candidates.*'item_emb'"):
        ops.score_candidates(user, items.double(), cand)
    with pytest.raises(RuntimeError, match=r"score_candidates.*'cand'.*(cpu|device)"):
        ops.score_candidates(user, items, cand.cpu())


# ---------------------------------------------------------------------------------------------
# select_topk
# ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("M", "k"), [(1, 1), (31, 0), (33, 5), (100, 32), (100, 33), (100, 64),
                                      (200, 65), (200, 128), (200, 129), (200, 200)])
def test_select_topk_matches(dtype: torch.dtype, M: int, k: int) -> None:
    gen = torch.Generator().manual_seed(M + k)
    keys = int_valued((23, M), gen, dtype, -4, 5)  # many ties
    keys[0, ::3] = float("nan")
    keys[1, :] = float("-inf")
    keys[2, 1::2] = float("inf")
    vals, pos = ops.select_topk(keys.to(DEV), k)
    rv, rp = ref.select_topk(keys, k)
    cv, cp = ops.select_topk(keys, k)
    assert pos.dtype == torch.int64 and vals.shape == (23, k)
    assert torch.equal(pos.cpu(), rp) and torch.equal(pos.cpu(), cp)
    torch.testing.assert_close(vals.cpu(), rv, equal_nan=True, rtol=0, atol=0)


@pytest.mark.cuda
def test_select_topk_noncontiguous_and_errors() -> None:
    gen = torch.Generator().manual_seed(8)
    base = torch.randn(40, 30, generator=gen).to(DEV)
    keys = base.T  # [30, 40] with stride (1, 30)
    vals, pos = ops.select_topk(keys, 7)
    rv, rp = ref.select_topk(keys.cpu(), 7)
    assert torch.equal(pos.cpu(), rp) and torch.equal(vals.cpu(), rv)
    assert ops.select_topk(keys[:0], 3)[0].shape == (0, 3)
    with pytest.raises(RuntimeError, match=r"select_topk.*'k'.*41"):
        ops.select_topk(keys, 41)
    with pytest.raises(RuntimeError, match=r"select_topk.*'keys'"):
        ops.select_topk(keys.long(), 1)


# ---------------------------------------------------------------------------------------------
# GDNS
# ---------------------------------------------------------------------------------------------


def empty_table(U: int, S: int, dtype: torch.dtype):
    return (torch.full((U, S), -1, dtype=torch.int64), torch.ones(U, S, dtype=dtype),
            torch.ones(U, S, dtype=dtype))


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
        ref.gdns_update(*ref_state, users, items, pos, neg, 0.7, 1e-3)
        assert torch.equal(dev_state[0].cpu(), ref_state[0]), f"keys differ at step {step}"
        assert torch.equal(dev_state[0].cpu(), cpu_state[0])
        for a, b, c in zip(dev_state[1:], ref_state[1:], cpu_state[1:]):
            torch.testing.assert_close(a.cpu(), b, **tol(dtype))
            torch.testing.assert_close(a.cpu(), c, **tol(dtype))
        query_users = torch.randint(0, U, (5,), generator=gen)
        query = torch.randint(0, num_items + 3, (5, 7), generator=gen)
        got = ops.gdns_lookup(dev_state[0], dev_state[2], *to_dev(query_users, query))
        torch.testing.assert_close(got.cpu(), ref.gdns_lookup(ref_state[0], ref_state[2], query_users, query),
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
        ref.gdns_update_dense(dense_h, dense_g, users, items, pos, neg, 0.5, 1e-6)
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


# ---------------------------------------------------------------------------------------------
# opcheck, torch.compile, dispatch
# ---------------------------------------------------------------------------------------------


def opcheck_cases():
    gen = torch.Generator().manual_seed(0)
    user, items, cand = to_dev(*scoring_inputs(5, 9, 20, 8, torch.float32, seed=1, exact=False))
    indptr, indices = to_dev(*random_csr(5, 20, gen, max_deg=4))
    prob, alias = to_dev(*ops.build_alias_table(torch.rand(20, generator=gen)))
    users = torch.arange(5, device=DEV)
    keys, h, g = (t.to(DEV) for t in empty_table(5, 4, torch.float32))
    return [
        ("sample_negatives", (indptr, indices, users, 20, 3, 1, 2, None, None)),
        ("sample_negatives", (indptr, indices, users, 20, 3, 1, 2, prob, alias)),
        ("score_candidates", (user, items, cand)),
        ("score_topk", (user, items, cand, 4)),
        ("select_topk", (torch.randn(5, 9, device=DEV), 4)),
        ("gdns_lookup", (keys, g, users, cand)),
        ("gdns_update", (keys, h, g, users, cand[:, :3], torch.randn(5, 2, device=DEV),
                         torch.randn(5, 3, device=DEV), 0.5, 1e-3)),
        ("rank_topk", (user, items, indptr, indices, 3)),
    ]


@pytest.mark.cuda
@pytest.mark.parametrize("case", range(8))
def test_opcheck_cuda(case: int) -> None:
    name, args = opcheck_cases()[case]
    torch.library.opcheck(getattr(torch.ops.autosample, name).default, args)


@pytest.mark.cuda
def test_torch_compile_fullgraph_cuda() -> None:
    user, items, cand = to_dev(*scoring_inputs(16, 40, 100, 8, torch.float32, seed=2, exact=True))

    def step(user, items, cand):
        vals, ids = ops.score_topk(user, items, cand, 4)
        scores = ops.score_candidates(user, items, cand)
        top_v, top_p = ops.select_topk(scores * 2.0, 3)
        return vals + 1.0, ids, top_v, top_p

    compiled = torch.compile(step, fullgraph=True)
    for got, want in zip(compiled(user, items, cand), step(user, items, cand)):
        assert torch.equal(got, want)


@pytest.mark.cuda
def test_runs_on_current_stream() -> None:
    user, items, cand = to_dev(*scoring_inputs(8, 16, 30, 8, torch.float32, seed=3, exact=True))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        vals, ids = ops.score_topk(user, items, cand, 2)
    stream.synchronize()
    rv, ri = ref.score_topk(user, items, cand, 2)
    assert torch.equal(ids, ri) and torch.equal(vals, rv)


@pytest.mark.cuda
def test_build_info_reports_cuda() -> None:
    info = autosample_ext.build_info()
    assert info["cuda_compiled"] is True
    assert info["cuda_arch_list"]


@pytest.mark.skipif(not torch.cuda.is_available() or autosample_ext.cuda_compiled(),
                    reason="needs a GPU and a CPU-only build of the extension")
def test_cuda_tensor_on_cpu_only_build_raises() -> None:
    x = torch.randn(3, 5, device="cuda")
    with pytest.raises((RuntimeError, NotImplementedError), match="CUDA"):
        ops.select_topk(x, 2)
