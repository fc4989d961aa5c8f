"""GPU benchmarks of spmm and graph_propagate against cuSPARSE (torch.sparse.mm on CSR) and the
COO path, in bench/bench_gpu.py's harness style (a group for bench/gpu_check.sh).

Graphs: symmetric-normalised bipartite user-item graphs with power-law item popularity, built
on the device from a seed (no data files): ML-1M's shape (6,040 + 3,706 nodes, 1.6 M entries),
an Amazon-like 200 k + 100 k graph with 8 M entries, and 1 M + 500 k with 40 M entries; d = 64,
float32, K = 3. Cases, correctness checked before timing:

  * spmm forward: autosample vs torch.sparse.mm CSR (cuSPARSE) vs COO;
  * graph_propagate forward: autosample vs K CSR products + stack + mean;
  * graph_propagate forward + backward: the same with autograd (x requires grad).

Achieved bandwidth: the bytes a row product must move (x rows gathered per entry, indices and
values, the output), B / time, and its fraction of the H100 SXM HBM peak (3.35 TB/s).

    python bench/bench_gpu_graph.py --out out.json            # CUDA events
    pytest bench/bench_gpu_graph.py --benchmark-json=out.json   # pytest-benchmark
    python bench/bench_gpu_graph.py --device cpu --small --out /tmp/x.json   # dry run, no GPU

Skipped when no GPU is visible or the build has no CUDA kernels.
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

log = logging.getLogger("bench_gpu_graph")

H100_SXM_PEAK_GBPS = 3350.0
HAVE_GPU = torch.cuda.is_available() and autosample_ext.cuda_compiled()
D, K = 64, 3
GRAPHS = {  # name -> (users, items, entries per user on average)
    "ml1m": (6040, 3706, 132),
    "200kx100k": (200_000, 100_000, 20),
    "1Mx500k": (1_000_000, 500_000, 20),
}
SMALL = {"ml1m": (604, 371, 13), "200kx100k": (2000, 1000, 5), "1Mx500k": (3000, 1500, 5)}


@dataclass
class Case:
    group: str
    name: str
    fn: Callable[[], object]
    moved_bytes: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


@functools.cache
def make_graph(name: str, device: str, small: bool):
    """(coo, csr triple, torch CSR, x): D^-1/2 A D^-1/2 of a random bipartite graph."""
    users, items, per_user = (SMALL if small else GRAPHS)[name]
    g = torch.Generator(device=device).manual_seed(len(name))
    pairs = users * per_user
    u = torch.randint(0, users, (pairs,), device=device, generator=g)
    # power-law item popularity: item = floor(items * r^3)
    r = torch.rand(pairs, device=device, generator=g)
    i = (items * r.pow(3)).long().clamp_max(items - 1)
    key = torch.unique(u * items + i)
    u, i = key // items, key % items
    n = users + items
    rows = torch.cat([u, i + users])
    cols = torch.cat([i + users, u])
    deg = torch.zeros(n, device=device).index_add_(0, rows, torch.ones_like(rows, dtype=torch.float32))
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), inv[rows] * inv[cols], (n, n)).coalesce()
    csr = ops.csr_from_coo(coo)
    x = torch.randn(n, D, device=device, generator=g) * 0.1
    return coo, csr, coo.to_sparse_csr(), x


def moved_bytes(csr, x) -> float:
    nnz, n = csr[1].shape[0], x.shape[0]
    return float(nnz * (D * 4 + 8 + 4) + n * D * 4 + (n + 1) * 8)


def spmm_cases(name: str, device: str, small: bool) -> list[Case]:
    coo, csr, csr_t, x = make_graph(name, device, small)
    want = ops.spmm(*csr, x, symmetric=True)
    torch.testing.assert_close(torch.sparse.mm(csr_t, x), want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.sparse.mm(coo, x), want, rtol=1e-4, atol=1e-5)
    group = f"spmm-{name}"
    extra = {"nodes": x.shape[0], "nnz": int(csr[1].shape[0]), "d": D}
    nbytes = moved_bytes(csr, x)
    return [
        Case(group, "autosample", lambda: ops.spmm(*csr, x, symmetric=True), nbytes, dict(extra)),
        Case(group, "cusparse_csr", lambda: torch.sparse.mm(csr_t, x), nbytes, dict(extra)),
        Case(group, "sparse_mm_coo", lambda: torch.sparse.mm(coo, x), nbytes, dict(extra)),
    ]


def propagate_cases(name: str, device: str, small: bool, backward: bool) -> list[Case]:
    coo, csr, csr_t, x0 = make_graph(name, device, small)
    w = torch.randn_like(x0)

    def ours(x):
        return ops.graph_propagate(*csr, x, K, symmetric=True)

    def cusparse(x):
        return ref.mean_of_layers(csr_t, x, K)

    def step(fn):
        if not backward:
            return lambda: fn(x0)

        def run():
            x = x0.detach().requires_grad_(True)
            (fn(x) * w).sum().backward()
            return x.grad

        return run

    want = step(ours)()
    torch.testing.assert_close(step(cusparse)(), want, rtol=1e-4, atol=1e-5)
    group = f"graph_propagate{'-fwd_bwd' if backward else ''}-{name}"
    extra = {"nodes": x0.shape[0], "nnz": int(csr[1].shape[0]), "d": D, "K": K}
    nbytes = moved_bytes(csr, x0) * K * (2 if backward else 1)
    return [
        Case(group, "autosample", step(ours), nbytes, dict(extra)),
        Case(group, "cusparse_csr", step(cusparse), nbytes, dict(extra)),
    ]


def builders(device: str = "cuda", small: bool = False) -> dict[str, Callable[[], list[Case]]]:
    out: dict[str, Callable[[], list[Case]]] = {}
    for name in GRAPHS:
        out[f"spmm-{name}"] = functools.partial(spmm_cases, name, device, small)
        out[f"graph_propagate-{name}"] = functools.partial(propagate_cases, name, device, small, False)
        out[f"graph_propagate-fwd_bwd-{name}"] = functools.partial(propagate_cases, name, device, small, True)
    return out


BUILDERS = builders()


@functools.cache
def build(group: str) -> dict[str, Case]:
    return {c.name: c for c in BUILDERS[group]()}


def annotate(case: Case, seconds: float) -> dict[str, object]:
    info = dict(case.extra)
    if case.moved_bytes is not None:
        gbps = case.moved_bytes / seconds / 1e9
        info["moved_GBps"] = round(gbps, 1)
        info["fraction_of_h100_sxm_peak"] = round(gbps / H100_SXM_PEAK_GBPS, 4)
    return info


try:
    import pytest

    PARAMS = [(g, n) for g in BUILDERS
              for n in (["autosample", "cusparse_csr", "sparse_mm_coo"] if g.startswith("spmm")
                        else ["autosample", "cusparse_csr"])]

    @pytest.mark.skipif(not HAVE_GPU, reason="needs a CUDA device and a CUDA build")
    @pytest.mark.parametrize(("group", "name"), PARAMS, ids=[f"{g}-{n}" for g, n in PARAMS])
    def test_gpu_graph(benchmark, group: str, name: str) -> None:
        case = build(group)[name]

        def synced():
            out = case.fn()
            torch.cuda.synchronize()
            return out

        benchmark.group = case.group
        benchmark.pedantic(synced, rounds=20, warmup_rounds=3, iterations=1)
        benchmark.extra_info.update(annotate(case, benchmark.stats.stats.median))
except ImportError:  # pragma: no cover - standalone use without pytest
    pass


def time_device(fn: Callable[[], object], device: str, warmup: int = 3, reps: int = 20) -> list[float]:
    """CUDA events on a GPU (perf_counter for the CPU dry run)."""
    for _ in range(warmup):
        fn()
    times = []
    if device != "cuda":
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return times
    torch.cuda.synchronize()
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
    parser.add_argument("--groups", nargs="*", default=list(BUILDERS), help="subset of the groups")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the script")
    parser.add_argument("--small", action="store_true", help="small graphs (dry run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.device == "cuda" and not HAVE_GPU:
        raise SystemExit("bench_gpu_graph: needs a CUDA device and a CUDA build of autosample_ext")
    table = builders(args.device, args.small)
    results = []
    for group in args.groups:
        t0 = time.perf_counter()
        for case in table[group]():
            times = time_device(case.fn, args.device)
            med = statistics.median(times)
            row = {"group": case.group, "name": case.name, "median_s": med, "min_s": min(times),
                   "mean_s": statistics.fmean(times), "rounds": len(times), **annotate(case, med)}
            results.append(row)
            log.info("%-34s %-14s %10.1f us %s", case.group, case.name, med * 1e6,
                     {k: v for k, v in row.items() if k.startswith(("moved", "fraction"))})
        log.info("  (%s built, checked and timed in %.1f s)", group, time.perf_counter() - t0)
    by_group: dict[str, dict[str, float]] = {}
    for r in results:
        by_group.setdefault(r["group"], {})[r["name"]] = r["median_s"]
    speedups = {g: {n: round(t / v["autosample"], 2) for n, t in v.items() if n != "autosample"}
                for g, v in by_group.items() if "autosample" in v}
    doc = {
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "build": autosample_ext.build_info(),
        "timer": "cuda events, median of 20 after 3 warm-ups" if args.device == "cuda" else "perf_counter (dry run)",
        "results": results, "speedup_of_autosample_over": speedups,
    }
    if args.device == "cuda":
        doc["sm_count"] = torch.cuda.get_device_properties(0).multi_processor_count
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=2)
    log.info("speedups (baseline time / autosample time): %s", json.dumps(speedups, indent=1))


if __name__ == "__main__":
    main()
