"""The CUDA cases a line-by-line review of csrc/cuda asked for.

rank_topk: a tile with fewer than k usable items, a fully excluded tile, exclusions straddling
the tile / split boundaries, d = 33 and 100, the 64-split cap, float64 NaN / inf on the
multi-split path, an indptr not starting at 0, the k > 128 path with TF32 enabled. Score ops:
float d of 12, 20, 36, 68 and double d of 2, 6, 10, M of 31, 33, 1000, B >= 8192, inputs that
require grad. gdns_update with 5,000 rows over 50 users, S = 1, P = 1. Every op on a side stream
behind a slow kernel (fails if a kernel ran on another stream), outputs over poisoned memory
(fails if an element is left unwritten), sample_negatives past the grid-stride cap. CUDA results
equal the CPU kernel's (ids exactly, scores bit for bit where the kernels share dot.h's order)
and the oracle's. Skipped when no GPU is visible or the build has no CUDA kernels.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref
from cudakit import _no_pending_device_error  # noqa: F401 (autouse: no asynchronous error left behind)

DEV = "cuda"
pytestmark = pytest.mark.cuda


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ints(shape, seed: int, dtype=torch.float32, lo: int = -2, hi: int = 3) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=_g(seed)).to(dtype)


def csr_from_rows(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    indptr = torch.tensor([0] + [len(r) for r in rows], dtype=torch.int64).cumsum(0)
    return indptr, torch.tensor([i for r in rows for i in r], dtype=torch.int64)


def rank_all_devices(user, items, indptr, excl, k):
    """CUDA result, checked against the CPU kernel and the oracle (ids and values)."""
    got = ops.rank_topk(*(t.to(DEV) for t in (user, items, indptr, excl)), k)
    cpu = ops.rank_topk(user, items, indptr, excl, k)
    want = ref.rank_topk(user, items, indptr, excl, k)
    assert torch.equal(got[1].cpu(), want[1]) and torch.equal(got[1].cpu(), cpu[1])
    torch.testing.assert_close(got[0].cpu(), want[0], rtol=0, atol=0, equal_nan=True)
    return got


# --- rank_topk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [33, 100])
def test_rank_topk_sparse_tiles_and_boundaries(d: int) -> None:
    N, k = 3000, 50
    user, items = ints((40, d), d), ints((N, d), d + 1)
    rows = []
    for b in range(40):
        if b % 4 == 0:  # keeps 60 items, all in the last tiles: early tiles have < k usable items
            rows.append(list(range(N - 60)))
        elif b % 4 == 1:  # whole 128-item tiles excluded
            rows.append([i for i in range(N) if (i // 128) % 3 == 1])
        elif b % 4 == 2:  # runs across every tile (and hence split) boundary
            rows.append([i for i in range(N) if i % 128 in (124, 125, 126, 127, 0, 1, 2, 3)])
        else:
            rows.append(sorted(torch.randperm(N, generator=_g(b))[:200].tolist()))
    rank_all_devices(user, items, *csr_from_rows(rows), k)


def test_rank_topk_split_cap_and_float64_specials() -> None:
    # B <= 32 (one user tile) and N > 64 * 512: the split count hits its cap of 64.
    B, N, d = 5, 40_000, 16
    user = ints((B, d), 1, torch.float64)
    items = ints((N, d), 2, torch.float64)
    items[[7, 20_011, 39_999]] = float("nan")
    items[[100, 33_000]] = float("inf")
    items[[5_000]] = float("-inf")
    rows = [[7, 100], [], [20_011, 33_000, 39_998], list(range(0, N, 3)), [5_000]]
    for k in (1, 30, 128):
        rank_all_devices(user, items, *csr_from_rows(rows), k)


def test_rank_topk_indptr_not_starting_at_zero() -> None:
    user, items = ints((6, 8), 3), ints((500, 8), 4)
    indptr, excl = csr_from_rows([[1, 2], [5], [], [7, 9, 11], [0], [499]])
    shifted = torch.cat([torch.tensor([3, 4, 8]), excl])  # three leading entries of other rows
    got = ops.rank_topk(*(t.to(DEV) for t in (user, items, indptr + 3, shifted)), 20)
    want = rank_all_devices(user, items, indptr, excl, 20)
    assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])


def test_rank_topk_sort_path_ignores_tf32() -> None:
    g = _g(5)
    user, items = torch.randn(20, 48, generator=g), torch.randn(3000, 48, generator=g)
    indptr, excl = csr_from_rows([sorted(torch.randperm(3000, generator=_g(b))[:100].tolist()) for b in range(20)])
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        v, i = ops.rank_topk(*(t.to(DEV) for t in (user, items, indptr, excl)), 150)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    exact = ref.rank_topk(user.double(), items.double(), indptr, excl, 150)
    assert float((i.cpu() == exact[1]).float().mean()) > 0.995  # TF32 would reorder far more
    torch.testing.assert_close(v.cpu().double(), exact[0], rtol=1e-6, atol=1e-6)


# --- score ops ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "d"), [(torch.float32, 12), (torch.float32, 20), (torch.float32, 36),
                                          (torch.float32, 68), (torch.float64, 2), (torch.float64, 6),
                                          (torch.float64, 10)])
@pytest.mark.parametrize("M", [31, 33, 1000])
def test_score_ops_odd_widths(dtype: torch.dtype, d: int, M: int) -> None:
    g = _g(d * M)
    user, items = torch.randn(9, d, generator=g, dtype=dtype), torch.randn(777, d, generator=g, dtype=dtype)
    cand = torch.randint(0, 777, (9, M), generator=g)
    dev = [t.to(DEV) for t in (user, items, cand)]
    assert torch.equal(ops.score_candidates(*dev).cpu(), ops.score_candidates(user, items, cand))
    for k in (1, 8, 31):
        v, i = ops.score_topk(*dev, k)
        cv, ci = ops.score_topk(user, items, cand, k)
        assert torch.equal(v.cpu(), cv) and torch.equal(i.cpu(), ci)


def test_score_ops_large_batch_and_grad_inputs() -> None:
    B, M, N, d = 8192 + 37, 40, 5000, 32
    g = _g(6)
    user = torch.randn(B, d, generator=g).requires_grad_()
    items = torch.randn(N, d, generator=g).requires_grad_()
    cand = torch.randint(0, N, (B, M), generator=g)
    du, di, dc = user.detach().to(DEV).requires_grad_(), items.detach().to(DEV).requires_grad_(), cand.to(DEV)
    s = ops.score_candidates(du, di, dc)
    assert not s.requires_grad  # not differentiable: no silent zero gradient
    assert torch.equal(s.cpu(), ops.score_candidates(user, items, cand))
    v, i = ops.score_topk(du, di, dc, 5)
    cv, ci = ops.score_topk(user, items, cand, 5)
    assert torch.equal(v.cpu(), cv) and torch.equal(i.cpu(), ci) and not v.requires_grad
    rv, ri = ops.rank_topk(du[:300], di, torch.zeros(301, dtype=torch.int64, device=DEV),
                           torch.zeros(0, dtype=torch.int64, device=DEV), 10)
    assert not rv.requires_grad and ri.shape == (300, 10)


# --- gdns ---------------------------------------------------------------------------------------


def test_gdns_update_many_rows_few_users() -> None:
    U, S, B = 50, 1, 5000
    g = _g(7)
    users = torch.randint(0, U, (B,), generator=g)
    items = torch.randint(0, 30, (B, 3), generator=g)
    pos, neg = torch.randn(B, 1, generator=g), torch.randn(B, 3, generator=g)
    cpu = (torch.full((U, S), -1, dtype=torch.int64), torch.ones(U, S), torch.ones(U, S))
    gpu = tuple(t.to(DEV) for t in cpu)
    ops.gdns_update(*gpu, users.to(DEV), items.to(DEV), pos.to(DEV), neg.to(DEV), 0.3, 1e-3)
    ops.gdns_update(*cpu, users, items, pos, neg, 0.3, 1e-3)
    assert torch.equal(gpu[0].cpu(), cpu[0])
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gpu[2].cpu(), cpu[2], rtol=1e-6, atol=1e-6)


# --- streams, poisoned outputs, grid-stride cap -------------------------------------------------


def _calls():
    g = _g(8)
    user, items = ints((64, 16), 9), ints((300, 16), 10)
    cand = torch.randint(0, 300, (64, 50), generator=g)
    indptr, indices = csr_from_rows([sorted(torch.randperm(300, generator=_g(b))[:30].tolist()) for b in range(64)])
    users = torch.arange(64)
    keys = torch.full((64, 8), -1, dtype=torch.int64)
    sq_ptr, sq_idx = csr_from_rows([torch.randint(0, 300, (b % 40,), generator=_g(100 + b)).tolist()
                                    for b in range(300)])  # square, unsorted, repeats, empty row
    return {
        "score_candidates": (ops.score_candidates, (user, items, cand)),
        "score_topk": (ops.score_topk, (user, items, cand, 7)),
        "select_topk": (ops.select_topk, (user @ items[:50].T, 9)),
        "rank_topk": (ops.rank_topk, (user, items, indptr, indices, 12)),
        "sample_negatives": (ops.sample_negatives, (indptr, indices, users, 300, 9, 3, 4)),
        "gdns_lookup": (ops.gdns_lookup, (keys, torch.ones(64, 8), users, cand)),
        "spmm": (ops.spmm, (indptr, indices, ints((len(indices),), 11), items)),
        "graph_propagate": (ops.graph_propagate, (sq_ptr, sq_idx, ints((len(sq_idx),), 12), items, 2)),
    }


@pytest.mark.parametrize("name", list(_calls()))
def test_runs_on_the_current_stream(name: str) -> None:
    fn, args = _calls()[name]
    want = fn(*args)
    staged = [a.to(DEV) if isinstance(a, torch.Tensor) else a for a in args]
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        dev = [torch.zeros_like(a) if isinstance(a, torch.Tensor) else a for a in staged]
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time on this stream, then the real inputs
        for d, a in zip(dev, staged):
            if isinstance(a, torch.Tensor):
                d.copy_(a)  # device to device: queued on `side` behind the sleep
        got = fn(*dev)  # wrong unless it runs on `side`, after the copies
    side.synchronize()
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert torch.equal(a.cpu(), b), name


@pytest.mark.parametrize("name", list(_calls()))
def test_every_output_element_is_written(name: str) -> None:
    fn, args = _calls()[name]
    want = fn(*args)
    dev = [a.to(DEV) if isinstance(a, torch.Tensor) else a for a in args]
    for _ in range(3):  # fill the allocator's free blocks with a poison the op cannot produce
        for w in (want if isinstance(want, tuple) else (want,)):
            junk = torch.full(w.shape, 12345.5 if w.is_floating_point() else -777, dtype=w.dtype, device=DEV)
            del junk
        got = fn(*dev)
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert torch.equal(a.cpu(), b), name


def test_sample_negatives_past_the_grid_stride_cap() -> None:
    # grid_for caps a launch at 65535 * 32 blocks of 256 threads: 536,862,720 draws.
    B, S, N = 1 << 20, 520, 3000
    if torch.cuda.get_device_properties(0).total_memory < 16 * 2**30:
        pytest.skip("needs ~6 GB of device memory")
    indptr, indices = csr_from_rows([sorted(torch.randperm(N, generator=_g(b))[:40].tolist()) for b in range(16)])
    users = torch.arange(B) % 16
    out = ops.sample_negatives(indptr.to(DEV), indices.to(DEV), users.to(DEV), N, S, 11, 12)
    rows = torch.tensor([0, 1, B // 2, B - 2, B - 1])  # the last rows lie past the first grid pass
    assert (rows[-1] * S) > 65535 * 32 * 256
    draws = torch.arange(S)
    w = ref.draw_words(11, 12, rows.unsqueeze(1), draws.unsqueeze(0), 0)
    row_users = users[rows].unsqueeze(1).expand(-1, S)
    degree = (indptr[1:] - indptr[:-1])[row_users]
    ranks = ref.uniform_below(w[0], w[1], N - degree)
    want = ref.rank_to_non_member(indptr, indices, N, row_users, ranks)
    assert torch.equal(out[rows].cpu(), want)
    del out
