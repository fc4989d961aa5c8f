"""CUDA kernels of spmm and graph_propagate against the CPU kernels and the oracles.

The two devices share spmm.h's summation order (row entries in storage order, multiply then add,
no FMA), so CUDA results must equal the CPU kernel's bit for bit, in float32 too; the oracle
(torch.sparse.mm) is compared within float tolerance. Skipped when no GPU is visible or the
build has no CUDA kernels.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

pytestmark = pytest.mark.cuda
DEV = "cuda"
DTYPES = [torch.float32, torch.float64]


def random_csr(rows: int, cols: int, gen: torch.Generator, dtype, max_deg: int = 9):
    """Unsorted column ids with repeats, empty rows, a heavy row (warp-wide entry loads)."""
    deg = torch.randint(0, max_deg + 1, (rows,), generator=gen)
    deg[0] = 0
    if rows > 2:
        deg[2] = 200
    indptr = torch.zeros(rows + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(deg, 0)
    nnz = int(indptr[-1])
    indices = torch.randint(0, cols, (nnz,), generator=gen)
    values = torch.randn(nnz, generator=gen, dtype=torch.float64).to(dtype)
    return indptr, indices, values


def to_dev(*ts):
    return tuple(t.to(DEV) for t in ts)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 3, 8, 16, 33, 64, 100, 128, 256])
def test_spmm_bit_identical_to_cpu(d, dtype):
    gen = torch.Generator().manual_seed(d)
    a = random_csr(300, 170, gen, dtype)
    x = torch.randn(170, d, generator=gen, dtype=torch.float64).to(dtype)
    cpu = ops.spmm(*a, x)
    gpu = ops.spmm(*to_dev(*a, x))
    assert gpu.device.type == "cuda" and gpu.dtype == dtype and gpu.shape == (300, d)
    assert torch.equal(gpu.cpu(), cpu)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(gpu.cpu(), ref.spmm(*a, x), **tol)


def test_spmm_unaligned_rows_take_the_scalar_path():
    gen = torch.Generator().manual_seed(1)
    a = random_csr(50, 40, gen, torch.float32)
    x = torch.randn(40 * 64 + 1, generator=gen)[1:].view(40, 64)  # 4-byte offset: no float4
    assert torch.equal(ops.spmm(*to_dev(*a, x)).cpu(), ops.spmm(*a, x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_layers", [0, 1, 2, 3, 5])
def test_graph_propagate_bit_identical_to_cpu(num_layers, dtype):
    gen = torch.Generator().manual_seed(40 + num_layers)
    a = random_csr(257, 257, gen, dtype)
    x = torch.randn(257, 64, generator=gen, dtype=torch.float64).to(dtype)
    cpu = ops.graph_propagate(*a, x, num_layers)
    gpu = ops.graph_propagate(*to_dev(*a, x), num_layers)
    assert torch.equal(gpu.cpu(), cpu)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(gpu.cpu(), ref.graph_propagate(*a, x, num_layers), **tol)


@pytest.mark.parametrize("symmetric", [False, True])
def test_gradients_match_cpu(symmetric):
    gen = torch.Generator().manual_seed(7)
    dense = torch.randn(60, 60, generator=gen, dtype=torch.float64) * (torch.rand(60, 60, generator=gen) < 0.2)
    if symmetric:
        dense = dense + dense.T
    a = ops.csr_from_coo(dense.to_sparse())
    x = torch.randn(60, 16, generator=gen, dtype=torch.float64)
    w = torch.randn(60, 16, generator=gen, dtype=torch.float64)
    grads = {}
    for dev in ("cpu", DEV):
        v = a[2].to(dev).requires_grad_(True)
        xx = x.to(dev).requires_grad_(True)
        out = ops.graph_propagate(a[0].to(dev), a[1].to(dev), v, xx, 3, symmetric=symmetric)
        out = out + ops.spmm(a[0].to(dev), a[1].to(dev), v, xx, symmetric=symmetric)
        (out * w.to(dev)).sum().backward()
        grads[dev] = (v.grad.cpu(), xx.grad.cpu())
    torch.testing.assert_close(grads[DEV][0], grads["cpu"][0])
    torch.testing.assert_close(grads[DEV][1], grads["cpu"][1])


def test_gradcheck_on_cuda():
    gen = torch.Generator().manual_seed(8)
    a = random_csr(12, 12, gen, torch.float64, max_deg=4)
    a = (a[0], a[1], a[2])
    ip, ix, v = to_dev(*a)
    v = v.requires_grad_(True)
    x = torch.randn(12, 3, dtype=torch.float64, device=DEV, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v_, x_: ops.spmm(ip, ix, v_, x_), (v, x))
    assert torch.autograd.gradcheck(lambda v_, x_: ops.graph_propagate(ip, ix, v_, x_, 2), (v, x))


def test_opcheck_cuda():
    gen = torch.Generator().manual_seed(9)
    a = to_dev(*random_csr(20, 20, gen, torch.float32))
    x = torch.randn(20, 8, device=DEV, requires_grad=True)
    torch.library.opcheck(torch.ops.autosample.spmm.default, (*a, x, False))
    torch.library.opcheck(torch.ops.autosample.graph_propagate.default, (*a, x, 3, False))


@pytest.fixture
def clean_errors():
    yield
    torch.cuda.set_sync_debug_mode("default")
    ops.check_errors()


@pytest.mark.parametrize("op_name", ["spmm", "graph_propagate"])
def test_value_errors_are_asynchronous_with_the_cpu_message(op_name, clean_errors):
    """Not raised by the call (no sync) but by ops.check_errors(), with the CPU's message."""
    indices = torch.tensor([0, 2, 1, 3, 2])
    good = torch.tensor([0, 2, 1, 0, 2])
    values, x = torch.ones(5), torch.ones(3, 4)

    def call(ip, ix, device):
        args = (ip.to(device), ix.to(device), values.to(device), x.to(device))
        if op_name == "spmm":
            return ops.spmm(*args)
        return ops.graph_propagate(*args, 2)

    for indptr, ix in ((torch.tensor([0, 2, 3, 5]), indices), (torch.tensor([0, 4, 3, 5]), good),
                       (torch.tensor([1, 2, 3, 5]), good), (torch.tensor([0, 2, 3, 4]), good)):
        with pytest.raises(RuntimeError) as cpu_error:
            call(indptr, ix, "cpu")
        message = str(cpu_error.value).splitlines()[0]
        args = [t.to(DEV) for t in (indptr, ix)]
        torch.cuda.set_sync_debug_mode("error")
        out = call(*args, DEV)  # no host sync, no error yet
        torch.cuda.set_sync_debug_mode("default")
        assert out.shape == (3, 4)
        with pytest.raises(RuntimeError) as gpu_error:
            ops.check_errors()
        assert message in str(gpu_error.value)
    call(torch.tensor([0, 2, 3, 5]), good, DEV)
    ops.check_errors()  # clean


def test_no_host_sync_and_cuda_graph_capture(clean_errors):
    gen = torch.Generator().manual_seed(12)
    a = to_dev(*random_csr(100, 100, gen, torch.float32))
    x = torch.randn(100, 64, device=DEV)
    eager = ops.graph_propagate(*a, x, 3), ops.spmm(*a, x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    ops.graph_propagate(*a, x, 3)
    ops.spmm(*a, x)
    torch.cuda.set_sync_debug_mode("default")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = ops.graph_propagate(*a, x, 3), ops.spmm(*a, x)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(captured[0], eager[0]) and torch.equal(captured[1], eager[1])


def test_lightgcn_model_on_cuda_matches_cpu():
    from autosample_ext.data.interactions import CSR, InteractionData
    from autosample_ext.models import LightGCN

    gen = torch.Generator().manual_seed(10)
    mask = torch.rand(30, 40, generator=gen) < 0.2
    u, i = mask.nonzero(as_tuple=True)
    data = InteractionData("toy", 30, 40, CSR.from_pairs(u.numpy(), i.numpy(), 30),
                           CSR.empty(30), CSR.empty(30))
    cpu = LightGCN(data, dim=64, seed=1)
    gpu = LightGCN(data, dim=64, seed=1, device=DEV)
    for a, b in zip(cpu.propagate(), gpu.propagate()):
        assert torch.equal(a.detach(), b.detach().cpu())
