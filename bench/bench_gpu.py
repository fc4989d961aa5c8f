"""GPU benchmarks of the CUDA kernels (docs/performance.md) against eager PyTorch and torch.compile.

Groups (gpu_groups.py runs them, one JSON each; ``python -u bench/bench_gpu.py --list``):
  roofs            the device's own ceilings, measured in the same run: a 1 GiB device-to-device
                   copy (bytes read + written per second) and an FP32 FMA-bound Triton kernel;
  score_topk-*     fused gather + dot + top-k, B=4096, M=256, d=64, k in {1, 8}: an item table
                   that fits in L2 (N = 65,536: 16 MiB) and HBM-sized ones (N = 2^20: 256 MiB,
                   N = 2^22: 1 GiB, both >> the 50-60 MB L2 of an H100 / H200);
  score_candidates, select_topk, sample_negatives, gdns, rank_topk-ml1m, rank_topk-100kx100k.
Every case reports the fraction of both roofs it reaches (bytes the op must move at least /
time / copy rate; FLOPs / time / FMA rate), from CUDA-event times and from kernel-only
profiler times. Correctness is checked before any timing.

Also collected by pytest (pytest-benchmark), skipped without a GPU and a CUDA build.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_groups import Case, run_main  # noqa: E402


def _gen(seed: int) -> torch.Generator:
    return torch.Generator(device="cuda").manual_seed(seed)


def _ext():
    """The extension, imported only by the groups that use it (roofs run without a build)."""
    from autosample_ext import ops
    from autosample_ext.ops import reference as ref

    return ops, ref


# ---------------------------------------------------------------------------------------------
# roofs
# ---------------------------------------------------------------------------------------------


def _fma_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def fma(x_ptr, out_ptr, iters, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        a = tl.load(x_ptr + offs)
        b, c, d = a + 1.0, a - 1.0, a * 0.5
        for _ in range(iters):  # four independent FMA chains per element
            a = a * 0.9999 + 0.0001
            b = b * 0.9999 + 0.0001
            c = c * 0.9999 + 0.0001
            d = d * 0.9999 + 0.0001
        tl.store(out_ptr + offs, a + b + c + d)

    return fma


def roofs() -> list[Case]:
    n = 1 << 28  # 1 GiB of float32 each way
    src = torch.rand(n, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    assert torch.equal(dst[:1000], src[:1000])
    cases = [Case("roofs", "d2d_copy", lambda: dst.copy_(src), bytes=2.0 * n * 4)]
    try:
        kernel = _fma_kernel()
    except ImportError as exc:  # no Triton: the FMA roof is missing, the fractions say so
        print(f"roofs: no Triton ({exc}); FP32 FMA roof not measured")
        return cases
    elems, iters, block = 1 << 22, 4096, 1024
    x, out = torch.rand(elems, device="cuda"), torch.empty(elems, device="cuda")
    launch = lambda: kernel[(elems // block,)](x, out, iters, BLOCK=block, num_warps=4)  # noqa: E731
    launch()
    assert bool(torch.isfinite(out).all())
    cases.append(Case("roofs", "fp32_fma", launch, flops=2.0 * 4 * iters * elems))
    return cases


# ---------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------


def eager_score_topk(user, items, cand, k):
    """What a user would write: gather + bmm + torch.topk."""
    scores = torch.bmm(items[cand], user.unsqueeze(2)).squeeze(2)
    vals, pos = torch.topk(scores, k, dim=1)
    return vals, torch.gather(cand, 1, pos)


@functools.cache
def _compiled_score_topk():
    return torch.compile(eager_score_topk, dynamic=False)


def score_topk(num_items: int, k: int, compiled: bool) -> list[Case]:
    ops, ref = _ext()
    B, M, d = 4096, 256, 64
    g = _gen(num_items + k)
    user = torch.randn(B, d, device="cuda", generator=g)
    items = torch.randn(num_items, d, device="cuda", generator=g)
    cand = torch.randint(0, num_items, (B, M), device="cuda", generator=g)
    vals, ids = ops.score_topk(user, items, cand, k)
    want_v, want_i = ref.score_topk(user, items, cand, k)
    torch.testing.assert_close(vals, want_v, rtol=1e-4, atol=1e-4)
    assert float((ids == want_i).float().mean()) > 0.999
    torch.testing.assert_close(vals, ops.score_candidates(user, items, ids), rtol=0, atol=0)
    group = f"score_topk-N{num_items}-k{k}"
    cost = {"bytes": float(B * M * (d * 4 + 8) + B * d * 4 + B * k * 12), "flops": 2.0 * B * M * d,
            "extra": {"B": B, "M": M, "d": d, "N": num_items, "k": k,
                      "table_MiB": num_items * d * 4 / 2**20}}
    cases = [Case(group, "autosample", lambda: ops.score_topk(user, items, cand, k), **cost),
             Case(group, "eager", lambda: eager_score_topk(user, items, cand, k), **cost)]
    if compiled:
        fn = _compiled_score_topk()
        torch.testing.assert_close(fn(user, items, cand, k)[0], want_v, rtol=1e-4, atol=1e-4)
        cases.append(Case(group, "compiled", lambda: fn(user, items, cand, k), **cost))
    return cases


def score_candidates() -> list[Case]:
    ops, ref = _ext()
    B, M, d, N = 4096, 256, 64, 1 << 20
    g = _gen(5)
    user, items = torch.randn(B, d, device="cuda", generator=g), torch.randn(N, d, device="cuda", generator=g)
    cand = torch.randint(0, N, (B, M), device="cuda", generator=g)
    torch.testing.assert_close(ops.score_candidates(user, items, cand), ref.score_candidates(user, items, cand),
                               rtol=1e-4, atol=1e-4)
    cost = {"bytes": float(B * M * (d * 4 + 8 + 4) + B * d * 4), "flops": 2.0 * B * M * d,
            "extra": {"B": B, "M": M, "d": d, "N": N}}
    return [Case("score_candidates", "autosample", lambda: ops.score_candidates(user, items, cand), **cost),
            Case("score_candidates", "eager", lambda: ref.score_candidates(user, items, cand), **cost)]


def select_topk() -> list[Case]:
    ops, ref = _ext()
    B, M, k = 4096, 256, 8
    keys = torch.randn(B, M, device="cuda", generator=_gen(11))
    v, p = ops.select_topk(keys, k)
    rv, rp = ref.select_topk(keys, k)
    assert torch.equal(p, rp) and torch.equal(v, rv)
    cost = {"bytes": float(B * M * 4 + B * k * 12), "extra": {"B": B, "M": M, "k": k}}
    return [Case("select_topk", "autosample", lambda: ops.select_topk(keys, k), **cost),
            Case("select_topk", "torch_topk", lambda: torch.topk(keys, k, dim=1), **cost)]


# ---------------------------------------------------------------------------------------------
# sampling, GDNS, ranking
# ---------------------------------------------------------------------------------------------


def random_exclusions(B: int, N: int, mean_deg: int, g: torch.Generator):
    """Sorted, unique CSR rows of mean_deg/2 .. 3*mean_deg/2 ids (no host loop)."""
    deg = torch.randint(mean_deg // 2, mean_deg * 3 // 2 + 1, (B,), device="cuda", generator=g)
    indptr = torch.zeros(B + 1, dtype=torch.int64, device="cuda")
    indptr[1:] = deg.cumsum(0)
    rows = torch.repeat_interleave(torch.arange(B, device="cuda"), deg)
    raw = torch.randint(0, N - int(deg.max()), (int(indptr[-1]),), device="cuda", generator=g)
    keys = torch.sort(rows * N + raw).values - rows * N
    within = torch.arange(keys.numel(), device="cuda") - indptr[rows]
    return indptr, keys + within


def sample_negatives() -> list[Case]:
    ops, ref = _ext()
    U, N, S, B = 6040, 3706, 16, 65536
    g = _gen(7)
    indptr, indices = random_exclusions(U, N, 165, g)
    users = torch.randint(0, U, (B,), device="cuda", generator=g)
    out = ops.sample_negatives(indptr, indices, users, N, S, 1, 2)
    assert torch.equal(out, ref.sample_negatives(indptr, indices, users, N, S, 1, 2))
    deg = float((indptr[1:] - indptr[:-1]).float().mean())
    extra = {"draws": B * S, "U": U, "N": N, "mean_degree": round(deg, 1)}
    checked = {"bytes": float(B * S * 8 + B * 8 + B * deg * 8), "extra": {**extra, "validate": True}}
    trusted = {"bytes": float(B * S * 8 + B * 8), "extra": {**extra, "validate": False}}
    owner = torch.repeat_interleave(torch.arange(U, device="cuda"), indptr[1:] - indptr[:-1]) * N + indices

    def rejection_loop():
        """Searchsorted rejection sampling in PyTorch (what a user would write)."""
        gen = _gen(3)
        row_users = users.unsqueeze(1).expand(-1, S)
        draw = torch.randint(0, N, row_users.shape, device="cuda", generator=gen)
        for _ in range(64):
            q = (row_users * N + draw).reshape(-1)
            pos = torch.searchsorted(owner, q).clamp_max(owner.numel() - 1)
            bad = (owner[pos] == q).reshape(draw.shape)
            if not bool(bad.any()):
                break
            draw = torch.where(bad, torch.randint(0, N, draw.shape, device="cuda", generator=gen), draw)
        return draw

    group = "sample_negatives-1M"
    return [Case(group, "autosample", lambda: ops.sample_negatives(indptr, indices, users, N, S, 1, 2), **checked),
            Case(group, "autosample_validate_off",
                 lambda: ops.sample_negatives(indptr, indices, users, N, S, 1, 2, validate=False), **trusted),
            Case(group, "searchsorted_rejection", rejection_loop, **trusted)]


def gdns() -> list[Case]:
    ops, _ = _ext()
    from autosample_ext.ops import reference_gdns as ref
    U, N, S, B, M = 6040, 3706, 64, 4096, 256
    g = _gen(13)
    keys = torch.full((U, S), -1, dtype=torch.int64, device="cuda")
    h, gt = torch.ones(U, S, device="cuda"), torch.ones(U, S, device="cuda")
    dense_h, dense_g = torch.ones(U, N, device="cuda"), torch.ones(U, N, device="cuda")
    users = torch.randperm(U, device="cuda", generator=g)[:B]  # distinct: the dense scatter is exact
    sel = torch.randint(0, N, (B, 1), device="cuda", generator=g)
    pos, neg = torch.randn(B, 4, device="cuda", generator=g), torch.randn(B, 1, device="cuda", generator=g)
    cand = torch.randint(0, N, (B, M), device="cuda", generator=g)

    def dense_update():
        h_new = ref.gdns_h_new(pos, neg)
        r, c = users.unsqueeze(1), sel
        dense_g[r, c] = ref.gdns_next_gain(dense_g[r, c], dense_h[r, c], h_new, 0.9, 1e-6)
        dense_h[r, c] = h_new

    for _ in range(3):
        ops.gdns_update(keys, h, gt, users, sel, pos, neg, 0.9, 1e-6)
        dense_update()
    torch.testing.assert_close(ops.gdns_lookup(keys, gt, users, cand), dense_g[users.unsqueeze(1), cand],
                               rtol=1e-5, atol=1e-6)
    look = {"bytes": float(B * M * 8 * 3), "extra": {"U": U, "S": S, "B": B, "M": M}}
    upd = {"bytes": float(B * (8 * 2 + 4 * 5) + B * S * 8), "extra": {"U": U, "S": S, "B": B}}
    return [Case("gdns_lookup", "autosample", lambda: ops.gdns_lookup(keys, gt, users, cand), **look),
            Case("gdns_lookup", "dense_gather", lambda: dense_g[users.unsqueeze(1), cand], **look),
            Case("gdns_update", "autosample", lambda: ops.gdns_update(keys, h, gt, users, sel, pos, neg, 0.9, 1e-6),
                 **upd),
            Case("gdns_update", "dense_scatter", dense_update, **upd)]


def batched_baseline(user, items, indptr, excl, k, batch: int):
    ops, ref = _ext()
    vals, ids = [], []
    ptr_host = indptr.cpu()
    for r0 in range(0, user.shape[0], batch):
        r1 = min(user.shape[0], r0 + batch)
        lo, hi = int(ptr_host[r0]), int(ptr_host[r1])
        v, i = ref.rank_topk_fast(user[r0:r1], items, indptr[r0:r1 + 1] - lo, excl[lo:hi], k)
        vals.append(v)
        ids.append(i)
    return torch.cat(vals), torch.cat(ids)


def rank_topk(B: int, N: int, label: str, batch: int) -> list[Case]:
    ops, ref = _ext()
    d, k = 64, 20
    g = _gen(B + N)
    user, items = torch.randn(B, d, device="cuda", generator=g), torch.randn(N, d, device="cuda", generator=g)
    indptr, excl = random_exclusions(B, N, 165, g)
    vals, ids = ops.rank_topk(user, items, indptr, excl, k)
    bv, bi = batched_baseline(user, items, indptr, excl, k, batch)
    torch.testing.assert_close(vals, bv, rtol=1e-4, atol=1e-4)
    agree = float((ids == bi).float().mean())
    assert agree > 0.99, f"rank_topk ids agree with matmul+topk on only {agree:.4f} of entries"
    rows = torch.arange(B, device="cuda").unsqueeze(1).expand_as(ids)
    assert not bool(ref.is_positive(indptr, excl, N, rows, ids).any()), "rank_topk returned an excluded item"
    group = f"rank_topk-{label}"
    cost = {"bytes": float((B + N) * d * 4 + excl.numel() * 8 + B * k * 12), "flops": 2.0 * B * N * d,
            "extra": {"B": B, "N": N, "d": d, "k": k, "baseline_batch": batch, "id_agreement": agree}}
    return [Case(group, "autosample", lambda: ops.rank_topk(user, items, indptr, excl, k), **cost),
            Case(group, "autosample_validate_off",
                 lambda: ops.rank_topk(user, items, indptr, excl, k, validate=False), **cost),
            Case(group, "matmul_mask_topk", lambda: batched_baseline(user, items, indptr, excl, k, batch), **cost)]


GROUPS = {
    "roofs": roofs,
    "score_topk-N65536-k1": lambda: score_topk(1 << 16, 1, compiled=False),
    "score_topk-N65536-k8": lambda: score_topk(1 << 16, 8, compiled=False),
    "score_topk-N1048576-k1": lambda: score_topk(1 << 20, 1, compiled=True),
    "score_topk-N1048576-k8": lambda: score_topk(1 << 20, 8, compiled=True),
    "score_topk-N4194304-k8": lambda: score_topk(1 << 22, 8, compiled=False),
    "score_candidates": score_candidates,
    "rank_topk-ml1m": lambda: rank_topk(6040, 3706, "ml1m", 6040),
    "rank_topk-100kx100k": lambda: rank_topk(100_000, 100_000, "100kx100k", 10_000),
    "sample_negatives-1M": sample_negatives,
    "select_topk": select_topk,
    "gdns": gdns,
}


# ---------------------------------------------------------------------------------------------
# pytest-benchmark entry point (skipped without a GPU and a CUDA build)
# ---------------------------------------------------------------------------------------------

try:
    import pytest

    def _have_gpu() -> bool:
        try:
            import autosample_ext
        except ImportError:
            return False
        return torch.cuda.is_available() and autosample_ext.cuda_compiled()

    @functools.cache
    def _cases(group: str) -> dict[str, Case]:
        return {c.name: c for c in GROUPS[group]()}

    @pytest.mark.skipif(not _have_gpu(), reason="needs a CUDA device and a CUDA build")
    @pytest.mark.parametrize("group", [g for g in GROUPS if g != "roofs"])
    def test_gpu(benchmark, group: str) -> None:
        case = _cases(group)["autosample"]

        def synced():
            out = case.fn()
            torch.cuda.synchronize()
            return out

        benchmark.group = case.group
        benchmark.pedantic(synced, rounds=20, warmup_rounds=3, iterations=1)
except ImportError:  # pragma: no cover - standalone use without pytest
    pass


if __name__ == "__main__":
    raise SystemExit(run_main(GROUPS))
