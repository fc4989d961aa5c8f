"""GPU benchmarks of spmm and graph_propagate against cuSPARSE (torch.sparse.mm on CSR) and the
COO path: groups for bench/gpu_check.sh, run by bench/gpu_groups.py (one JSON per group as it
finishes, a failing group recorded and skipped, fractions of the roofs measured by
bench_gpu.py's ``roofs`` group in the same results folder).

Graphs: symmetric-normalised bipartite user-item graphs with power-law item popularity, built
on the device from a seed (no data files): ML-1M's shape (6,040 + 3,706 nodes, 1.6 M entries),
an Amazon-like 200 k + 100 k graph with 8 M entries, and 1 M + 500 k with 40 M entries (x and
the CSR >> L2); d = 64, float32, K = 3. Cases, correctness checked before timing:

  * spmm forward: autosample vs torch.sparse.mm CSR (cuSPARSE) vs COO;
  * graph_propagate forward: autosample vs K CSR products + stack + mean;
  * graph_propagate forward + backward: the same with autograd (x requires grad).

Bytes: what a row product must move at least (x rows gathered per entry, indices and values,
the output); FLOPs: 2 per entry and column. Fractions of the measured D2D copy and FMA roofs.

    python -u bench/bench_gpu_graph.py --out-dir DIR [--groups ...] [--list]
    pytest bench/bench_gpu_graph.py --benchmark-json=out.json   # pytest-benchmark
    AUTOSAMPLE_BENCH_DEVICE=cpu AUTOSAMPLE_BENCH_SMALL=1 python -u bench/bench_gpu_graph.py \
        --out-dir /tmp/x      # dry run of the same groups on the CPU, small graphs (no GPU needed)

Skipped under pytest when no GPU is visible or the build has no CUDA kernels.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Callable

import torch

import autosample_ext
from autosample_ext import ops
from autosample_ext.ops import reference as ref

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_groups import Case, run_main  # noqa: E402

log = logging.getLogger("bench_gpu_graph")

HAVE_GPU = torch.cuda.is_available() and autosample_ext.cuda_compiled()
DEVICE = os.environ.get("AUTOSAMPLE_BENCH_DEVICE", "cuda")  # cpu: dry run of the groups
SMALL = os.environ.get("AUTOSAMPLE_BENCH_SMALL", "0") == "1"
D, K = 64, 3
GRAPHS = {  # name -> (users, items, entries per user on average)
    "ml1m": (6040, 3706, 132),
    "200kx100k": (200_000, 100_000, 20),
    "1Mx500k": (1_000_000, 500_000, 20),
}
SMALL_GRAPHS = {"ml1m": (604, 371, 13), "200kx100k": (2000, 1000, 5), "1Mx500k": (3000, 1500, 5)}



@functools.cache
def make_graph(name: str, device: str, small: bool):
    """(coo, csr triple, torch CSR, x): D^-1/2 A D^-1/2 of a random bipartite graph."""
    users, items, per_user = (SMALL_GRAPHS if small else GRAPHS)[name]
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


def product_flops(csr) -> float:
    return 2.0 * csr[1].shape[0] * D


def spmm_cases(name: str, device: str, small: bool) -> list[Case]:
    coo, csr, csr_t, x = make_graph(name, device, small)
    want = ops.spmm(*csr, x, symmetric=True)
    torch.testing.assert_close(torch.sparse.mm(csr_t, x), want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.sparse.mm(coo, x), want, rtol=1e-4, atol=1e-5)
    group = f"spmm-{name}"
    cost = {"bytes": moved_bytes(csr, x), "flops": product_flops(csr),
            "extra": {"nodes": x.shape[0], "nnz": int(csr[1].shape[0]), "d": D}}
    return [
        Case(group, "autosample", lambda: ops.spmm(*csr, x, symmetric=True), **cost),
        Case(group, "cusparse_csr", lambda: torch.sparse.mm(csr_t, x), **cost),
        Case(group, "sparse_mm_coo", lambda: torch.sparse.mm(coo, x), **cost),
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
    passes = K * (2 if backward else 1)
    cost = {"bytes": moved_bytes(csr, x0) * passes, "flops": product_flops(csr) * passes,
            "extra": {"nodes": x0.shape[0], "nnz": int(csr[1].shape[0]), "d": D, "K": K}}
    return [
        Case(group, "autosample", step(ours), **cost),
        Case(group, "cusparse_csr", step(cusparse), **cost),
    ]


def builders(device: str = DEVICE, small: bool = SMALL) -> dict[str, Callable[[], list[Case]]]:
    """Group name -> builder, in the order gpu_check.sh runs them (the most telling first: the
    budget may run out). ML-1M for all three; the HBM-sized graphs for spmm and the forward."""
    out: dict[str, Callable[[], list[Case]]] = {}
    for name in GRAPHS:
        out[f"spmm-{name}"] = functools.partial(spmm_cases, name, device, small)
    for name in GRAPHS:
        out[f"graph_propagate-{name}"] = functools.partial(propagate_cases, name, device, small, False)
    out["graph_propagate-fwd_bwd-ml1m"] = functools.partial(propagate_cases, "ml1m", device, small, True)
    out["graph_propagate-fwd_bwd-200kx100k"] = functools.partial(propagate_cases, "200kx100k", device, small,
                                                                 True)
    return out


GROUPS = builders()

try:
    import pytest

    PARAMS = [(g, n) for g in GROUPS
              for n in (["autosample", "cusparse_csr", "sparse_mm_coo"] if g.startswith("spmm")
                        else ["autosample", "cusparse_csr"])]

    @functools.cache
    def _cases(group: str) -> dict[str, Case]:
        return {c.name: c for c in GROUPS[group]()}

    @pytest.mark.skipif(not HAVE_GPU or DEVICE != "cuda", reason="needs a CUDA device and a CUDA build")
    @pytest.mark.parametrize(("group", "name"), PARAMS, ids=[f"{g}-{n}" for g, n in PARAMS])
    def test_gpu_graph(benchmark, group: str, name: str) -> None:
        case = _cases(group)[name]

        def synced():
            out = case.fn()
            torch.cuda.synchronize()
            return out

        benchmark.group = case.group
        benchmark.pedantic(synced, rounds=20, warmup_rounds=3, iterations=1)
        benchmark.extra_info.update(case.extra)
except ImportError:  # pragma: no cover - standalone use without pytest
    pass


if __name__ == "__main__":
    if DEVICE == "cuda" and not HAVE_GPU and "--list" not in sys.argv:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        log.error("bench_gpu_graph: needs a CUDA device and a CUDA build of autosample_ext "
                  "(AUTOSAMPLE_BENCH_DEVICE=cpu for a dry run)")
        raise SystemExit(2)
    raise SystemExit(run_main(GROUPS))
