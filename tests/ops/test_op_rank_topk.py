"""rank_topk (CPU kernel) against the pure-PyTorch oracle reference.rank_topk.

Shapes cross the kernel's tile edges (256 users x 256 items) and offer_span's 16-key chunks. Integer-valued embeddings make
every score exact, so item ids must agree exactly, ties included (smaller item id first).
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

DTYPES = [torch.float32, torch.float64]


def random_exclusions(B: int, N: int, max_excl: int, gen: torch.Generator):
    counts = torch.randint(0, max_excl + 1, (B,), generator=gen)
    rows = [torch.randperm(N, generator=gen)[:c].sort().values for c in counts.tolist()]
    indices = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    return indptr, indices, counts


def assert_matches(user, item, indptr, indices, k, exact=True):
    scores, items = ops.rank_topk(user, item, indptr, indices, k)
    want_scores, want_items = ref.rank_topk(user, item, indptr, indices, k)
    assert scores.dtype == user.dtype and items.dtype == torch.int64
    assert scores.shape == items.shape == (user.shape[0], k)
    assert torch.equal(items, want_items), k
    if exact:
        assert torch.equal(scores, want_scores), k
    else:
        torch.testing.assert_close(scores, want_scores)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_rank_topk_matches_reference_integer_embeddings(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    B = int(torch.randint(0, 600, (1,), generator=gen))
    N = int(torch.randint(1, 2300, (1,), generator=gen))
    d = int(torch.randint(1, 11, (1,), generator=gen))
    user = torch.randint(-2, 3, (B, d), generator=gen).to(dtype)
    item = torch.randint(-2, 3, (N, d), generator=gen).to(dtype)
    indptr, indices, counts = random_exclusions(B, N, min(N - 1, 300), gen)
    kmax = N - int(counts.max()) if B else N
    for k in sorted({0, 1, min(20, kmax), min(33, kmax), kmax}):
        assert_matches(user, item, indptr, indices, k)


@pytest.mark.parametrize("seed", range(4))
def test_rank_topk_matches_reference_random_float64(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    B, N, d = 70, 1500, 19
    user = torch.randn(B, d, generator=gen, dtype=torch.float64)
    item = torch.randn(N, d, generator=gen, dtype=torch.float64)
    indptr, indices, counts = random_exclusions(B, N, 400, gen)
    for k in (1, 20, 100, N - int(counts.max())):
        assert_matches(user, item, indptr, indices, k, exact=False)


def test_rank_topk_excluding_all_but_k_items():
    gen = torch.Generator().manual_seed(1)
    N, k = 1100, 3
    user = torch.randn(5, 4, generator=gen)
    item = torch.randn(N, 4, generator=gen)
    keep = torch.stack([torch.randperm(N, generator=gen)[:k].sort().values for _ in range(5)])
    rows = [torch.tensor(sorted(set(range(N)) - set(r.tolist()))) for r in keep]
    indptr = torch.tensor([0] + [len(r) for r in rows]).cumsum(0)
    indices = torch.cat(rows)
    _, items = ops.rank_topk(user, item, indptr, indices, k)
    assert torch.equal(items.sort(1).values, keep)
    assert_matches(user, item, indptr, indices, k, exact=False)


def test_rank_topk_all_ties_and_nan_scores():
    user = torch.zeros(3, 4)
    item = torch.ones(50, 4)
    indptr = torch.tensor([0, 2, 2, 3])
    indices = torch.tensor([0, 5, 1])
    _, items = ops.rank_topk(user, item, indptr, indices, 4)
    assert items.tolist() == [[1, 2, 3, 4], [0, 1, 2, 3], [0, 2, 3, 4]]
    item[[7, 9, 30]] = float("nan")
    indptr = torch.tensor([0, 1, 1, 1])
    indices = torch.tensor([9])
    scores, items = ops.rank_topk(user, item, indptr, indices, 3)
    assert items.tolist() == [[7, 30, 0], [7, 9, 30], [7, 9, 30]]
    assert bool(scores[:, :2].isnan().all()) and bool(scores[1:].isnan().all())


def test_rank_topk_non_contiguous_and_empty():
    gen = torch.Generator().manual_seed(2)
    user = torch.randint(-2, 3, (80, 18), generator=gen).double()[:, ::3]  # [80, 6]
    item = torch.randint(-2, 3, (6, 1300), generator=gen).double().t()  # [1300, 6]
    indptr, indices, _ = random_exclusions(80, 1300, 50, gen)
    assert not (user.is_contiguous() or item.is_contiguous())
    assert_matches(user, item, indptr, indices, 25)
    # exclusion CSR given as views of larger tensors
    assert_matches(user, item, torch.cat([indptr, indptr])[: 81],
                   torch.cat([indices, indices])[: indices.numel()], 5)
    empty_scores, empty_items = ops.rank_topk(torch.zeros(0, 6), torch.ones(9, 6),
                                              torch.zeros(1, dtype=torch.int64),
                                              torch.zeros(0, dtype=torch.int64), 9)
    assert empty_scores.shape == empty_items.shape == (0, 9)
    s, i = ops.rank_topk(torch.ones(2, 6), torch.ones(9, 6), torch.tensor([0, 1, 2]),
                         torch.tensor([3, 4]), 0)
    assert s.shape == i.shape == (2, 0)


def test_rank_topk_inputs_requiring_grad():
    gen = torch.Generator().manual_seed(4)
    user = torch.randn(6, 3, generator=gen, requires_grad=True)
    item = torch.randn(1500, 3, generator=gen, requires_grad=True)
    indptr, indices, _ = random_exclusions(6, 1500, 10, gen)
    with torch.no_grad():
        want = ref.rank_topk(user, item, indptr, indices, 5)
    got = ops.rank_topk(user, item, indptr, indices, 5)
    assert torch.equal(got[1], want[1])
    torch.testing.assert_close(got[0].detach(), want[0])


def small_inputs():
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(3, 5, generator=gen), torch.randn(12, 5, generator=gen),
            torch.tensor([0, 2, 2, 5]), torch.tensor([1, 7, 0, 3, 11]))


def test_opcheck():
    torch.library.opcheck(torch.ops.autosample.rank_topk.default, (*small_inputs(), 4))
    user, item, indptr, indices = small_inputs()
    torch.library.opcheck(torch.ops.autosample.rank_topk.default,
                          (user.double(), item.double(), indptr, indices, 9))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph(backend):
    args = small_inputs()

    def fn(user, item, indptr, indices):
        scores, items = ops.rank_topk(user * 2.0, item, indptr, indices, 4)
        return scores + 1.0, items

    got = torch.compile(fn, fullgraph=True, backend=backend)(*args)
    want_scores, want_items = ref.rank_topk(args[0] * 2.0, *args[1:], 4)
    assert torch.equal(got[1], want_items)
    torch.testing.assert_close(got[0], want_scores + 1.0)


def test_rank_topk_errors():
    user, item, indptr, indices = small_inputs()

    def raises(pattern, *args):
        with pytest.raises(RuntimeError, match=rf"autosample::rank_topk: argument {pattern}"):
            ops.rank_topk(*args)

    raises(r"'k' = 10 exceeds the 9 non-excluded items of row 2", user, item, indptr, indices, 10)
    raises(r"'k' must satisfy 0 <= k <= N.*= 12\), got k = 13", user, item, indptr, indices, 13)
    raises(r"'k'.*got k = -1", user, item, indptr, indices, -1)
    raises(r"'excl_indptr' gives row 0 the span \[-1, 2\), which is not a range within \[0, "
           r"len\(excl_indices\) = 5\]", user, item, torch.tensor([-1, 2, 2, 5]), indices, 1)
    raises(r"'excl_indptr' gives row 1 the span \[2, 1\)", user, item, torch.tensor([0, 2, 1, 5]), indices, 1)
    raises(r"'excl_indptr' gives row 2 the span \[2, 6\)", user, item, torch.tensor([0, 2, 2, 6]), indices, 1)
    raises(r"'excl_indptr' must have B \+ 1 = 4.*\[3\]", user, item, indptr[:3], indices, 1)
    raises(r"'excl_indices' holds item id 12 in row 2 \(at excl_indices\[4\]\), outside \[0, 12\)",
           user, item, indptr, torch.tensor([1, 7, 0, 3, 12]), 1)
    raises(r"'excl_indices' holds item id -1 in row 0 \(at excl_indices\[0\]\)", user, item, indptr,
           torch.tensor([-1, 7, 0, 3, 11]), 1)
    raises(r"'excl_indices': row 0 must be sorted ascending without duplicates, got 7 then 1 at "
           r"excl_indices\[1\]", user, item, indptr, torch.tensor([7, 1, 0, 3, 11]), 1)
    raises(r"'excl_indices': row 2 must be sorted.*got 3 then 3",
           user, item, indptr, torch.tensor([1, 7, 0, 3, 3]), 1)
    # A slice of a larger CSR (indptr not starting at 0, ending before the end) is accepted.
    sliced = ops.rank_topk(user, item, torch.tensor([1, 2, 2, 5]), indices, 2)
    rebased = ops.rank_topk(user, item, torch.tensor([0, 1, 1, 4]), indices[1:], 2)
    assert torch.equal(sliced[1], rebased[1])
    raises(r"'user_emb' must be float32 or float64, got Long", user.long(), item, indptr, indices, 1)
    raises(r"'item_emb' has dtype Double but expected Float", user, item.double(), indptr, indices, 1)
    raises(r"'excl_indptr' must be int64, got Int", user, item, indptr.int(), indices, 1)
    raises(r"'item_emb' must have the embedding size d of user_emb = 5.*\[12, 4\]", user,
           item[:, :4], indptr, indices, 1)
    raises(r"'user_emb' must be 2-D, got shape \[5\]", user[0], item, indptr, indices, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [5, 40, 100])
def test_rank_topk_nans_and_ties_in_long_rows(k, dtype):
    """NaN scores and many ties spread over several 16-key chunks and 256-item tiles, for a
    sorted list of k > 32 as well (the CPU kernel's chunk mask and sorted insertion)."""
    gen = torch.Generator().manual_seed(k)
    B, N, d = 300, 700, 3
    user = torch.randint(-1, 2, (B, d), generator=gen).to(dtype)
    item = torch.randint(-1, 2, (N, d), generator=gen).to(dtype)
    item[torch.randperm(N, generator=gen)[:k // 2 + 3]] = float("nan")
    indptr, indices, _ = random_exclusions(B, N, 50, gen)
    scores, items = ops.rank_topk(user, item, indptr, indices, k)
    want_scores, want_items = ref.rank_topk(user, item, indptr, indices, k)
    assert torch.equal(items, want_items)
    assert torch.equal(scores.isnan(), want_scores.isnan())
    assert torch.equal(scores.nan_to_num(), want_scores.nan_to_num())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 40])
def test_rank_topk_dense_exclusions_and_infinite_scores(k, dtype):
    """Rows with many exclusions (scanned whole, their excluded scores set to -inf first) give
    the walk's result, also where -inf scores reach a row's k best: fewer than k items above
    -inf, and ties at -inf between kept and excluded items (ranked again with the walk)."""
    gen = torch.Generator().manual_seed(k)
    B, N, d = 40, 600, 4
    user = torch.randint(-2, 3, (B, d), generator=gen).to(dtype)
    user[:, 0] = 1
    item = torch.randint(-2, 3, (N, d), generator=gen).to(dtype)
    item[torch.randperm(N, generator=gen)[:N // 3], 0] = -float("inf")  # scores -inf (or NaN)
    indptr, indices, counts = random_exclusions(B, N, N - k, gen)
    # rows 0-3 keep k + 1 items, most with -inf scores (-inf in their k best, ties at -inf)
    rows = [indices[indptr[b]:indptr[b + 1]] for b in range(B)]
    minus_inf = torch.nonzero(item[:, 0] == -float("inf")).flatten()
    for b in range(4):
        keep = torch.cat([minus_inf[torch.randperm(minus_inf.numel(), generator=gen)[:k]],
                          torch.tensor([int(torch.randint(0, N, (1,), generator=gen))])])
        rows[b] = torch.tensor(sorted(set(range(N)) - set(keep.tolist())), dtype=torch.int64)
    counts = torch.tensor([r.numel() for r in rows])
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    indices = torch.cat(rows)
    scores, items = ops.rank_topk(user, item, indptr, indices, k)
    want_scores, want_items = ref.rank_topk(user, item, indptr, indices, k)
    assert torch.equal(items, want_items)
    assert torch.equal(scores.isnan(), want_scores.isnan())
    assert torch.equal(scores.nan_to_num(posinf=1e30, neginf=-1e30),
                       want_scores.nan_to_num(posinf=1e30, neginf=-1e30))
    assert int(counts.max()) * 256 >= 4 * N  # some rows are dense enough to be scanned whole
    finite_rows = (scores > -float("inf")).all(1) | scores.isnan().any(1)
    assert not bool(finite_rows.all())  # and -inf reaches some rows' k best
