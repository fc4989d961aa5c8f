"""GPU benchmarks of the CUDA kernels against eager PyTorch and torch.compile (DESIGN.md §7).

Two ways to run, same cases, correctness checked before any timing:
  * pytest-benchmark:  pytest bench/bench_gpu.py --benchmark-json=out.json
    (each round ends with torch.cuda.synchronize, see bench/conftest.py)
  * CUDA events, no pytest-benchmark needed:  python bench/bench_gpu.py --out out.json

score_topk reports the achieved bandwidth of the gathered item rows, B*M*d*bytes / time, and its
fraction of the H100 SXM peak (3.35 TB/s). Skipped when no GPU is visible or the build has no
CUDA kernels.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

import autosample_ext
from autosample_ext import ops
from autosample_ext.ops import reference as ref

log = logging.getLogger("bench_gpu")

H100_SXM_PEAK_GBPS = 3350.0
HAVE_GPU = torch.cuda.is_available() and autosample_ext.cuda_compiled()


@dataclass
class Case:
    group: str
    name: str
    fn: Callable[[], object]
    gathered_bytes: float | None = None  # bytes of gathered rows, for GB/s
    extra: dict[str, object] = field(default_factory=dict)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator(device="cuda").manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# score_topk: B=4096, M=256, d=64, k in {1, 8}, item tables of 65,536 and 1,048,576 rows
# ---------------------------------------------------------------------------------------------


def eager_score_topk(user, items, cand, k):
    """What a user would write: gather + bmm + torch.topk."""
    scores = torch.bmm(items[cand], user.unsqueeze(2)).squeeze(2)
    vals, pos = torch.topk(scores, k, dim=1)
    return vals, torch.gather(cand, 1, pos)


@functools.cache
def _compiled_score_topk():
    return torch.compile(eager_score_topk, dynamic=False)


def score_topk_cases(num_items: int, k: int) -> list[Case]:
    B, M, d = 4096, 256, 64
    g = _gen(num_items + k)
    user = torch.randn(B, d, device="cuda", generator=g)
    items = torch.randn(num_items, d, device="cuda", generator=g)
    cand = torch.randint(0, num_items, (B, M), device="cuda", generator=g)
    vals, ids = ops.score_topk(user, items, cand, k)
    want_v, _ = ref.score_topk(user, items, cand, k)
    torch.testing.assert_close(vals, want_v, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(vals, ops.score_candidates(user, items, ids), rtol=1e-5, atol=1e-5)
    ev, _ = eager_score_topk(user, items, cand, k)
    torch.testing.assert_close(ev, want_v, rtol=1e-4, atol=1e-4)
    compiled = _compiled_score_topk()
    cv, _ = compiled(user, items, cand, k)
    torch.testing.assert_close(cv, want_v, rtol=1e-4, atol=1e-4)
    nbytes = float(B * M * d * items.element_size())
    group = f"score_topk-N{num_items}-k{k}"
    extra = {"B": B, "M": M, "d": d, "N": num_items, "k": k}
    return [
        Case(group, "autosample", lambda: ops.score_topk(user, items, cand, k), nbytes, dict(extra)),
        Case(group, "eager", lambda: eager_score_topk(user, items, cand, k), nbytes, dict(extra)),
        Case(group, "compiled", lambda: compiled(user, items, cand, k), nbytes, dict(extra)),
    ]


# ---------------------------------------------------------------------------------------------
# rank_topk: ML-1M shape and 100k users x 100k items (baseline batched by users)
# ---------------------------------------------------------------------------------------------


def random_exclusions(B: int, N: int, mean_deg: int, g: torch.Generator):
    deg = torch.randint(mean_deg // 2, mean_deg * 3 // 2 + 1, (B,), device="cuda", generator=g)
    indptr = torch.zeros(B + 1, dtype=torch.int64, device="cuda")
    indptr[1:] = deg.cumsum(0)
    rows = torch.repeat_interleave(torch.arange(B, device="cuda"), deg)
    # Distinct sorted ids per row: sorted random keys, offsets made unique by a per-row shift.
    raw = torch.randint(0, N - int(deg.max()), (int(indptr[-1]),), device="cuda", generator=g)
    keys = torch.sort(rows * N + raw).values - rows * N
    within = torch.arange(keys.numel(), device="cuda") - indptr[rows]
    return indptr, keys + within  # non-decreasing + strictly increasing offset -> unique, < N


def batched_baseline(user, items, indptr, excl, k, batch: int):
    vals, ids = [], []
    for r0 in range(0, user.shape[0], batch):
        r1 = min(user.shape[0], r0 + batch)
        ptr = indptr[r0:r1 + 1]
        lo, hi = int(ptr[0]), int(ptr[-1])
        v, i = ref.rank_topk_fast(user[r0:r1], items, ptr - lo, excl[lo:hi], k)
        vals.append(v)
        ids.append(i)
    return torch.cat(vals), torch.cat(ids)


def rank_topk_cases(B: int, N: int, label: str, batch: int) -> list[Case]:
    d, k = 64, 20
    g = _gen(B + N)
    user = torch.randn(B, d, device="cuda", generator=g)
    items = torch.randn(N, d, device="cuda", generator=g)
    indptr, excl = random_exclusions(B, N, 165, g)
    vals, ids = ops.rank_topk(user, items, indptr, excl, k)
    bv, bi = batched_baseline(user, items, indptr, excl, k, batch)
    torch.testing.assert_close(vals, bv, rtol=1e-4, atol=1e-4)
    agree = float((ids == bi).float().mean())
    assert agree > 0.99, f"rank_topk ids agree with matmul+topk on only {agree:.4f} of entries"
    excluded = ref.is_positive(indptr, excl, N, torch.arange(B, device="cuda").unsqueeze(1).expand_as(ids), ids)
    assert not bool(excluded.any()), "rank_topk returned an excluded item"
    group = f"rank_topk-{label}"
    extra = {"B": B, "N": N, "d": d, "k": k, "baseline_batch": batch, "id_agreement": agree}
    return [
        Case(group, "autosample", lambda: ops.rank_topk(user, items, indptr, excl, k), None, dict(extra)),
        Case(group, "matmul_mask_topk", lambda: batched_baseline(user, items, indptr, excl, k, batch), None,
             dict(extra)),
    ]


# ---------------------------------------------------------------------------------------------
# sample_negatives, select_topk, gdns
# ---------------------------------------------------------------------------------------------


def sample_negatives_cases() -> list[Case]:
    U, N, S = 6040, 3706, 16
    g = _gen(7)
    indptr, indices = random_exclusions(U, N, 165, g)
    users = torch.randint(0, U, (65536,), device="cuda", generator=g)
    out = ops.sample_negatives(indptr, indices, users, N, S, 1, 2)
    assert torch.equal(out, ref.sample_negatives(indptr, indices, users, N, S, 1, 2))
    extra = {"draws": users.numel() * S, "U": U, "N": N}

    def rejection_loop():
        """Searchsorted rejection sampling in PyTorch (what a user would write)."""
        gen = _gen(3)
        owner_keys = torch.repeat_interleave(torch.arange(U, device="cuda"), indptr[1:] - indptr[:-1]) * N + indices
        row_users = users.unsqueeze(1).expand(-1, S)
        draw = torch.randint(0, N, row_users.shape, device="cuda", generator=gen)
        for _ in range(64):
            q = (row_users * N + draw).reshape(-1)
            pos = torch.searchsorted(owner_keys, q).clamp_max(owner_keys.numel() - 1)
            bad = (owner_keys[pos] == q).reshape(draw.shape)
            if not bool(bad.any()):
                break
            draw = torch.where(bad, torch.randint(0, N, draw.shape, device="cuda", generator=gen), draw)
        return draw

    return [
        Case("sample_negatives-1M", "autosample", lambda: ops.sample_negatives(indptr, indices, users, N, S, 1, 2),
             None, extra),
        Case("sample_negatives-1M", "searchsorted_rejection", rejection_loop, None, dict(extra)),
    ]


def select_topk_cases() -> list[Case]:
    keys = torch.randn(4096, 256, device="cuda", generator=_gen(11))
    v, p = ops.select_topk(keys, 8)
    rv, rp = ref.select_topk(keys, 8)
    assert torch.equal(p, rp) and torch.equal(v, rv)
    extra = {"B": 4096, "M": 256, "k": 8}
    return [
        Case("select_topk", "autosample", lambda: ops.select_topk(keys, 8), None, extra),
        Case("select_topk", "torch_topk", lambda: torch.topk(keys, 8, dim=1), None, dict(extra)),
    ]


def gdns_cases() -> list[Case]:
    U, N, S, B, M = 6040, 3706, 64, 4096, 256
    g = _gen(13)
    keys = torch.full((U, S), -1, dtype=torch.int64, device="cuda")
    h = torch.ones(U, S, device="cuda")
    gt = torch.ones(U, S, device="cuda")
    dense_h = torch.ones(U, N, device="cuda")
    dense_g = torch.ones(U, N, device="cuda")
    users = torch.randperm(U, device="cuda", generator=g)[:B]  # distinct users: dense scatter is exact
    sel = torch.randint(0, N, (B, 1), device="cuda", generator=g)
    pos = torch.randn(B, 4, device="cuda", generator=g)
    neg = torch.randn(B, 1, device="cuda", generator=g)
    cand = torch.randint(0, N, (B, M), device="cuda", generator=g)

    def dense_update():
        h_new = ref.gdns_h_new(pos, neg)
        r, c = users.unsqueeze(1), sel
        dense_g[r, c] = ref.gdns_next_gain(dense_g[r, c], dense_h[r, c], h_new, 0.9, 1e-6)
        dense_h[r, c] = h_new

    for _ in range(3):
        ops.gdns_update(keys, h, gt, users, sel, pos, neg, 0.9, 1e-6)
        dense_update()
    got = ops.gdns_lookup(keys, gt, users, cand)
    torch.testing.assert_close(got, dense_g[users.unsqueeze(1), cand], rtol=1e-5, atol=1e-6)
    extra = {"U": U, "S": S, "B": B, "M": M}
    return [
        Case("gdns_lookup", "autosample", lambda: ops.gdns_lookup(keys, gt, users, cand), None, extra),
        Case("gdns_lookup", "dense_gather", lambda: dense_g[users.unsqueeze(1), cand], None, dict(extra)),
        Case("gdns_update", "autosample",
             lambda: ops.gdns_update(keys, h, gt, users, sel, pos, neg, 0.9, 1e-6), None, dict(extra)),
        Case("gdns_update", "dense_scatter", dense_update, None, dict(extra)),
    ]


BUILDERS: dict[str, Callable[[], list[Case]]] = {
    "score_topk-N65536-k1": lambda: score_topk_cases(65536, 1),
    "score_topk-N65536-k8": lambda: score_topk_cases(65536, 8),
    "score_topk-N1048576-k1": lambda: score_topk_cases(1 << 20, 1),
    "score_topk-N1048576-k8": lambda: score_topk_cases(1 << 20, 8),
    "rank_topk-ml1m": lambda: rank_topk_cases(6040, 3706, "ml1m", 6040),
    "rank_topk-100kx100k": lambda: rank_topk_cases(100_000, 100_000, "100kx100k", 10_000),
    "sample_negatives-1M": sample_negatives_cases,
    "select_topk": select_topk_cases,
    "gdns": gdns_cases,
}


@functools.cache
def build(group: str) -> dict[str, Case]:
    return {c.name: c for c in BUILDERS[group]()}


def annotate(case: Case, seconds: float) -> dict[str, object]:
    info = dict(case.extra)
    if case.gathered_bytes is not None:
        gbps = case.gathered_bytes / seconds / 1e9
        info["gathered_GBps"] = round(gbps, 1)
        info["fraction_of_h100_sxm_peak"] = round(gbps / H100_SXM_PEAK_GBPS, 4)
    return info


# ---------------------------------------------------------------------------------------------
# pytest-benchmark entry points
# ---------------------------------------------------------------------------------------------

PARAMS = [(group, name) for group in BUILDERS for name in (
    ["autosample", "eager", "compiled"] if group.startswith("score_topk") else
    ["autosample", "matmul_mask_topk"] if group.startswith("rank_topk") else
    ["autosample", "searchsorted_rejection"] if group.startswith("sample") else
    ["autosample", "torch_topk"] if group == "select_topk" else
    ["lookup:autosample", "lookup:dense_gather", "update:autosample", "update:dense_scatter"])]


@functools.cache
def _gdns_index() -> dict[str, Case]:
    return {f"{c.group.split('_')[1]}:{c.name}": c for c in gdns_cases()}


try:
    import pytest

    @pytest.mark.skipif(not HAVE_GPU, reason="needs a CUDA device and a CUDA build")
    @pytest.mark.parametrize(("group", "name"), PARAMS, ids=[f"{g}-{n}" for g, n in PARAMS])
    def test_gpu(benchmark, group: str, name: str) -> None:
        case = _gdns_index()[name] if group == "gdns" else build(group)[name]

        def synced():  # as bench/conftest.py's cuda_sync_timer: time completed GPU work
            out = case.fn()
            torch.cuda.synchronize()
            return out

        benchmark.group = case.group
        benchmark.pedantic(synced, rounds=20, warmup_rounds=3, iterations=1)
        benchmark.extra_info.update(annotate(case, benchmark.stats.stats.median))
except ImportError:  # pragma: no cover - standalone use without pytest
    pass


# ---------------------------------------------------------------------------------------------
# Standalone CUDA-events harness
# ---------------------------------------------------------------------------------------------


def time_cuda(fn: Callable[[], object], warmup: int = 3, reps: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON results file")
    parser.add_argument("--groups", nargs="*", default=list(BUILDERS), help="subset of the benchmark groups")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not HAVE_GPU:
        raise SystemExit("bench_gpu: needs a CUDA device and a CUDA build of autosample_ext")
    props = torch.cuda.get_device_properties(0)
    results = []
    for group in args.groups:
        t0 = time.perf_counter()
        cases = list(build(group).values()) if group != "gdns" else list(_gdns_index().values())
        for case in cases:
            times = time_cuda(case.fn)
            med = statistics.median(times)
            row = {"group": case.group, "name": case.name, "median_s": med, "min_s": min(times),
                   "mean_s": statistics.fmean(times), "rounds": len(times), **annotate(case, med)}
            results.append(row)
            log.info("%-28s %-24s %10.1f us %s", case.group, case.name, med * 1e6,
                     {k: v for k, v in row.items() if k.startswith(("gathered", "fraction"))})
        log.info("  (%s built, checked and timed in %.1f s)", group, time.perf_counter() - t0)
    by_group: dict[str, dict[str, float]] = {}
    for r in results:
        by_group.setdefault(r["group"], {})[r["name"]] = r["median_s"]
    speedups = {g: {n: round(t / v["autosample"], 2) for n, t in v.items() if n != "autosample"}
                for g, v in by_group.items() if "autosample" in v}
    doc = {
        "gpu": props.name, "sm_count": props.multi_processor_count,
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "build": autosample_ext.build_info(), "timer": "cuda events, median of 20 after 3 warm-ups",
        "results": results, "speedup_of_autosample_over": speedups,
    }
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=2)
    log.info("speedups (baseline time / autosample time): %s", json.dumps(speedups, indent=1))


if __name__ == "__main__":
    main()
