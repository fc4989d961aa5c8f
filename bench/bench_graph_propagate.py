"""LightGCN propagation (spmm, graph_propagate) on the real graphs, CPU, one thread.

Graphs: the symmetric-normalised user-item adjacency of lastfm, beauty and ml-1m (train.txt),
d = 64, K = 3. Sides, timed interleaved in one run (bench/interleave.py), correctness checked
first (outputs and gradients against ours):

  * autosample:      ops.graph_propagate (fused mean of layers, backward by K products);
  * spmm_layers:     ops.spmm per layer + ops.mean_of_layers (the path MixGCF's layers take);
  * sparse_mm_coo:   torch.sparse.mm on the COO matrix + torch.stack(...).mean(0): the code of the
                     LightGCN / NGCF / MixGCF / DENS repositories (the issue's baseline);
  * sparse_mm_csr:   the same with a torch sparse CSR matrix;
  * compiled_gather: torch.compile (inductor) of the dense-index formulation (gather rows, scale,
                     index_add) -- torch.compile cannot trace sparse tensors (it graph-breaks and
                     runs the sparse path eagerly), so this is what it can do for free.

Forward + backward: out = propagate(x); (out * w).sum().backward(). A forward-only spmm table
adds scipy.sparse's CSR product (no autograd). Run:

    PYTHONPATH=. pytest bench/bench_graph_propagate.py --benchmark-json=bench/results/graph.json

Threads: AUTOSAMPLE_BENCH_THREADS (default 1). Data: $AUTOSAMPLE_DATA_DIR (../shared/data).
"""
from __future__ import annotations

import functools

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

from interleave import THREADS, Interleaved, bench_threads, need_dataset  # noqa: F401

DATASETS = ["lastfm", "beauty", "ml-1m"]
D, K = 64, 3
ROUNDS = {"lastfm": 30, "beauty": 15, "ml-1m": 5}
pytestmark = pytest.mark.usefixtures("bench_threads")


@functools.cache
def graph(name: str):
    from autosample_ext.data import load

    data = load(need_dataset(name), split="given")
    coo = data.norm_adj.to(torch.float32)
    csr = ops.csr_from_coo(coo)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(coo.shape[0], D, generator=gen) * 0.1
    w = torch.randn(coo.shape[0], D, generator=gen)
    return coo, csr, x, w


def gather_index_add(rows, indices, values, x, num_layers):
    """A = sum of entries as gather + scale + index_add (differentiable dense-index code)."""
    layers = [x]
    for _ in range(num_layers):
        prev = layers[-1]
        layers.append(torch.zeros_like(prev).index_add(0, rows, prev[indices] * values.unsqueeze(1)))
    return torch.stack(layers).mean(0)


_compiled_gather = torch.compile(gather_index_add, dynamic=False)


def propagation_sides(name: str) -> dict[str, object]:
    coo, csr, x0, w = graph(name)
    csr_t = coo.to_sparse_csr()
    rows = ops.csr_rows(csr[0], csr[1].shape[0])

    def spmm_layers(x):
        layers = [x]
        for _ in range(K):
            layers.append(ops.spmm(*csr, layers[-1], symmetric=True))
        return ops.mean_of_layers(layers)

    forwards = {
        "autosample": lambda x: ops.graph_propagate(*csr, x, K, symmetric=True),
        "spmm_layers": spmm_layers,
        "sparse_mm_coo": lambda x: ref.mean_of_layers(coo, x, K),
        "sparse_mm_csr": lambda x: ref.mean_of_layers(csr_t, x, K),
        "compiled_gather": lambda x: _compiled_gather(rows, csr[1], csr[2], x, K),
    }

    def fwd_bwd(forward):
        def run():
            x = x0.clone().requires_grad_(True)
            out = forward(x)
            (out * w).sum().backward()
            return out.detach(), x.grad

        return run

    return {n: fwd_bwd(f) for n, f in forwards.items()}


@pytest.mark.parametrize("name", DATASETS)
def test_propagation_forward_backward(benchmark, name):
    sides = propagation_sides(name)
    want_out, want_grad = sides["autosample"]()
    for side, run in sides.items():  # correctness first (also compiles the inductor side)
        out, grad = run()
        torch.testing.assert_close(out, want_out, rtol=1e-4, atol=1e-5, msg=side)
        torch.testing.assert_close(grad, want_grad, rtol=1e-4, atol=1e-5, msg=side)
    bench = Interleaved(sides)
    benchmark.group = f"propagation fwd+bwd {name} K={K} d={D} threads={THREADS}"
    benchmark.pedantic(bench.round, rounds=ROUNDS[name], iterations=1, warmup_rounds=1)
    info = bench.record(benchmark, nnz=int(graph(name)[1][1].shape[0]), nodes=int(graph(name)[2].shape[0]))
    print(f"\n{benchmark.group}: {info}")


@pytest.mark.parametrize("name", DATASETS)
def test_spmm_forward(benchmark, name):
    import numpy as np
    import scipy.sparse as sp

    coo, csr, x, _ = graph(name)
    csr_t = coo.to_sparse_csr()
    n = coo.shape[0]
    sci = sp.csr_matrix((csr[2].numpy(), csr[1].numpy(), csr[0].numpy()), shape=(n, n))
    xn = x.numpy()
    sides = {
        "autosample": lambda: ops.spmm(*csr, x, symmetric=True),
        "sparse_mm_coo": lambda: torch.sparse.mm(coo, x),
        "sparse_mm_csr": lambda: torch.sparse.mm(csr_t, x),
        "scipy_csr": lambda: torch.from_numpy(np.asarray(sci @ xn)),
    }
    want = ref.spmm(*csr, x)
    for side, fn in sides.items():
        torch.testing.assert_close(fn(), want, rtol=1e-4, atol=1e-5, msg=side)
    bench = Interleaved(sides)
    benchmark.group = f"spmm forward {name} d={D} threads={THREADS}"
    benchmark.pedantic(bench.round, rounds=3 * ROUNDS[name], iterations=1, warmup_rounds=1)
    info = bench.record(benchmark, nnz=int(csr[1].shape[0]))
    print(f"\n{benchmark.group}: {info}")
