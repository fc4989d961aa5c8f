"""CUDA kernels of the seven operators: sampling, scoring and select_topk here, with
opcheck / torch.compile / dispatch for all of them; GDNS and rank_topk in test_cuda_ops_gdns_rank.py.

Each op runs on identical inputs on CUDA, through the CPU kernel and through the oracle in
``autosample_ext.ops.reference``: item ids and positions must agree exactly, floats within
float tolerance, ``sample_negatives`` bit for bit. Inputs with small integer values make every
dot product exact in any summation order, so ties (and their canonical order) are compared
exactly across devices too. Skipped when no GPU is visible or the build has no CUDA kernels.
"""
from __future__ import annotations

import pytest
import torch

import autosample_ext
from autosample_ext import ops
from autosample_ext.ops import reference as ref

from cudakit import _no_pending_device_error  # noqa: F401 (autouse: no asynchronous error left behind)
from cudakit import (DEV, DTYPES, empty_table, int_valued, raises_async, random_csr, to_dev,
                     tol)


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
