"""score_candidates, score_topk and select_topk (CPU kernels) against the pure-PyTorch oracles.

Exact index equality needs exactly computed scores, so most cases use small-integer-valued
embeddings (every dot product is exact in float32 and float64, and ties are frequent, which
exercises the canonical tie order); float64 random embeddings cover the general case.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

DTYPES = [torch.float32, torch.float64]


def int_valued(shape, gen, dtype, lo=-3, hi=4):
    return torch.randint(lo, hi, shape, generator=gen).to(dtype)


def random_case(seed: int, dtype: torch.dtype, integer: bool = True):
    gen = torch.Generator().manual_seed(seed)
    B = int(torch.randint(0, 13, (1,), generator=gen))
    M = int(torch.randint(1, 70, (1,), generator=gen))
    d = int(torch.randint(1, 20, (1,), generator=gen))
    N = int(torch.randint(1, 90, (1,), generator=gen))
    if integer:
        user, item = int_valued((B, d), gen, dtype), int_valued((N, d), gen, dtype)
    else:
        user = torch.randn(B, d, generator=gen, dtype=dtype)
        item = torch.randn(N, d, generator=gen, dtype=dtype)
    cand = torch.randint(0, N, (B, M), generator=gen)
    return gen, user, item, cand


def k_values(M: int, gen) -> list[int]:
    return sorted({0, 1, min(8, M), int(torch.randint(0, M + 1, (1,), generator=gen)), M})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(25))
def test_scoring_matches_reference_integer_embeddings(seed, dtype):
    gen, user, item, cand = random_case(seed, dtype)
    out = ops.score_candidates(user, item, cand)
    assert out.dtype == dtype and out.shape == cand.shape
    assert torch.equal(out, ref.score_candidates(user, item, cand))
    for k in k_values(cand.shape[1], gen):
        scores, items = ops.score_topk(user, item, cand, k)
        want_scores, want_items = ref.score_topk(user, item, cand, k)
        assert torch.equal(items, want_items), k
        assert torch.equal(scores, want_scores), k


@pytest.mark.parametrize("seed", range(10))
def test_scoring_matches_reference_random_float64(seed):
    gen, user, item, cand = random_case(1000 + seed, torch.float64, integer=False)
    torch.testing.assert_close(ops.score_candidates(user, item, cand),
                               ref.score_candidates(user, item, cand))
    for k in k_values(cand.shape[1], gen):
        scores, items = ops.score_topk(user, item, cand, k)
        want_scores, want_items = ref.score_topk(user, item, cand, k)
        assert torch.equal(items, want_items)
        torch.testing.assert_close(scores, want_scores)


def test_scoring_random_float32_within_tolerance():
    gen = torch.Generator().manual_seed(7)
    user, item = torch.randn(50, 67, generator=gen), torch.randn(300, 67, generator=gen)
    cand = torch.randint(0, 300, (50, 128), generator=gen)
    torch.testing.assert_close(ops.score_candidates(user, item, cand),
                               ref.score_candidates(user, item, cand), rtol=1e-5, atol=1e-5)
    scores, items = ops.score_topk(user, item, cand, 10)
    exact = ref.score_candidates(user.double(), item.double(), cand)
    # the selected candidates carry their own scores, in non-increasing order
    torch.testing.assert_close(scores.double(), torch.gather(
        exact, 1, ref.canonical_topk(exact, 10)[1]), rtol=1e-5, atol=1e-5)
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())


def test_score_topk_large_k_uses_heap_path_with_ties():
    gen = torch.Generator().manual_seed(3)
    user = int_valued((20, 5), gen, torch.float32, -1, 2)
    item = int_valued((40, 5), gen, torch.float32, -1, 2)
    cand = torch.randint(0, 40, (20, 300), generator=gen)
    for k in (33, 100, 299, 300):
        got = ops.score_topk(user, item, cand, k)
        want = ref.score_topk(user, item, cand, k)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), k


def test_scoring_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(11)
    user = int_valued((9, 14), gen, torch.float64)[:, ::2]  # [9, 7], stride 2
    item = int_valued((7, 30), gen, torch.float64).t()  # [30, 7], transposed
    cand = torch.randint(0, 30, (25, 9), generator=gen).t()  # [9, 25], transposed
    assert not (user.is_contiguous() or item.is_contiguous() or cand.is_contiguous())
    assert torch.equal(ops.score_candidates(user, item, cand), ref.score_candidates(user, item, cand))
    for k in (0, 3, 25):
        got = ops.score_topk(user, item, cand, k)
        want = ref.score_topk(user, item, cand, k)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_scoring_empty_batch_and_no_candidates(dtype):
    user, item = torch.zeros(0, 4, dtype=dtype), torch.ones(5, 4, dtype=dtype)
    cand = torch.zeros(0, 6, dtype=torch.int64)
    assert ops.score_candidates(user, item, cand).shape == (0, 6)
    s, i = ops.score_topk(user, item, cand, 6)
    assert s.shape == (0, 6) and i.shape == (0, 6) and s.dtype == dtype and i.dtype == torch.int64
    user = torch.ones(3, 4, dtype=dtype)
    cand = torch.zeros(3, 0, dtype=torch.int64)
    assert ops.score_candidates(user, item, cand).shape == (3, 0)
    s, i = ops.score_topk(user, item, cand, 0)
    assert s.shape == (3, 0) and i.shape == (3, 0)


# ---------------------------------------------------------------------------------------------
# select_topk
# ---------------------------------------------------------------------------------------------


def assert_same_topk(got, want):
    assert torch.equal(got[1], want[1])
    torch.testing.assert_close(got[0], want[0], equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(20))
def test_select_topk_matches_reference_with_ties_nan_inf(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    B = int(torch.randint(0, 10, (1,), generator=gen))
    M = int(torch.randint(1, 120, (1,), generator=gen))
    keys = torch.randint(-2, 3, (B, M), generator=gen).to(dtype)
    special = torch.rand(B, M, generator=gen)
    keys[special < 0.1] = float("nan")
    keys[(special >= 0.1) & (special < 0.15)] = float("inf")
    keys[(special >= 0.15) & (special < 0.2)] = float("-inf")
    for k in sorted({0, 1, min(M, 5), min(M, 40), int(torch.randint(0, M + 1, (1,), generator=gen)), M}):
        assert_same_topk(ops.select_topk(keys, k), ref.select_topk(keys, k))


def test_select_topk_random_floats_and_all_nan_row():
    gen = torch.Generator().manual_seed(5)
    keys = torch.randn(30, 500, generator=gen)
    keys[3] = float("nan")
    keys[4, ::7] = float("nan")
    for k in (1, 8, 32, 33, 250, 500):
        assert_same_topk(ops.select_topk(keys, k), ref.select_topk(keys, k))


def test_select_topk_non_contiguous_and_empty():
    gen = torch.Generator().manual_seed(9)
    base = torch.randint(0, 4, (50, 12), generator=gen).to(torch.float64)
    for keys in (base.t(), base[::3, ::2], base.t()[:, 5:40]):
        assert not keys.is_contiguous()
        for k in (0, 2, keys.shape[1]):
            assert_same_topk(ops.select_topk(keys, k), ref.select_topk(keys, k))
    v, p = ops.select_topk(torch.zeros(0, 5), 3)
    assert v.shape == (0, 3) and p.shape == (0, 3) and p.dtype == torch.int64


# ---------------------------------------------------------------------------------------------
# opcheck, torch.compile, errors
# ---------------------------------------------------------------------------------------------


def small_inputs():
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(4, 6, generator=gen), torch.randn(10, 6, generator=gen),
            torch.randint(0, 10, (4, 7), generator=gen))


def test_opcheck():
    user, item, cand = small_inputs()
    torch.library.opcheck(torch.ops.autosample.score_candidates.default, (user, item, cand))
    torch.library.opcheck(torch.ops.autosample.score_topk.default, (user, item, cand, 3))
    torch.library.opcheck(torch.ops.autosample.select_topk.default, (torch.randn(5, 9), 4))
    torch.library.opcheck(torch.ops.autosample.select_topk.default, (torch.randn(0, 9).double(), 0))


def test_compile_fullgraph_aot_eager():
    user, item, cand = small_inputs()

    def fn(u, i, c):
        scores = ops.score_candidates(u, i, c)
        top = ops.score_topk(u, i, c, 3)
        sel = ops.select_topk(scores * 2.0, 2)
        return scores, top, sel

    got = torch.compile(fn, fullgraph=True, backend="aot_eager")(user, item, cand)
    want = fn(user, item, cand)
    torch.testing.assert_close(got, want)


def test_compile_fullgraph_inductor():
    user, item, cand = small_inputs()

    def fn(u, i, c):
        values, positions = ops.select_topk(ops.score_candidates(u, i, c) + 1.0, 4)
        scores, items = ops.score_topk(u, i, c, 2)
        return values - 1.0, positions, scores, items

    got = torch.compile(fn, fullgraph=True)(user, item, cand)
    want = (*ref.score_topk(user, item, cand, 4), *ref.score_topk(user, item, cand, 2))
    assert torch.equal(torch.gather(cand, 1, got[1]), want[1])
    torch.testing.assert_close(got[0], want[0])
    assert torch.equal(got[3], want[3])
    torch.testing.assert_close(got[2], want[2])


@pytest.mark.parametrize("op_name", ["score_candidates", "score_topk"])
def test_scoring_errors(op_name):
    user, item, cand = small_inputs()
    extra = (2,) if op_name == "score_topk" else ()
    fn = getattr(ops, op_name)
    cases = [
        ((user.int(), item, cand), r"user_emb.*float32 or float64.*Int"),
        ((user, item.double(), cand), r"item_emb.*dtype Double"),
        ((user, item, cand.int()), r"cand.*int64.*Int"),
        ((user[0], item, cand), r"user_emb.*2-D.*\[6\]"),
        ((user, item, cand[0]), r"cand.*2-D.*\[7\]"),
        ((user, item[:, :5], cand), r"item_emb.*= 6.*\[10, 5\]"),
        ((user[:3], item, cand), r"cand.*= 3.*\[4, 7\]"),
    ]
    bad = cand.clone()
    bad[2, 5] = 10
    cases.append(((user, item, bad), r"cand' holds item id 10 at position \(2, 5\), outside \[0, 10\)"))
    bad = cand.clone()
    bad[1, 0] = -1
    bad[3, 3] = 99
    cases.append(((user, item, bad), r"cand' holds item id -1 at position \(1, 0\)"))
    for args, pattern in cases:
        with pytest.raises(RuntimeError, match=rf"autosample::{op_name}: argument '?{pattern}"):
            fn(*args, *extra)


def test_topk_k_errors():
    user, item, cand = small_inputs()
    with pytest.raises(RuntimeError, match=r"autosample::score_topk: argument 'k'.*= 7\), got k = 8"):
        ops.score_topk(user, item, cand, 8)
    with pytest.raises(RuntimeError, match=r"autosample::score_topk: argument 'k'.*got k = -1"):
        ops.score_topk(user, item, cand, -1)
    with pytest.raises(RuntimeError, match=r"autosample::select_topk: argument 'k'.*got k = 10"):
        ops.select_topk(torch.randn(3, 9), 10)
    with pytest.raises(RuntimeError, match=r"autosample::select_topk: argument 'k'.*got k = -2"):
        ops.select_topk(torch.randn(3, 9), -2)
    with pytest.raises(RuntimeError, match=r"autosample::select_topk: argument 'keys'.*2-D"):
        ops.select_topk(torch.randn(9), 1)
    with pytest.raises(RuntimeError, match=r"autosample::select_topk: argument 'keys'.*Long"):
        ops.select_topk(torch.ones(3, 9, dtype=torch.int64), 1)
