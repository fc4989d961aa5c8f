"""spmm and graph_propagate (CPU kernels) against the pure-PyTorch oracles.

Small-integer-valued inputs make every product and sum exact, so those cases compare exactly;
random float64 inputs cover the general case; the documented summation order (row entries in
storage order, multiply then add) is checked bit for bit in float32.
"""
from __future__ import annotations

import pytest
import torch

from autosample_ext import ops
from autosample_ext.ops import reference as ref

DTYPES = [torch.float32, torch.float64]


def random_csr(rows: int, cols: int, gen: torch.Generator, dtype=torch.float64, max_deg: int = 6,
               integer: bool = False):
    """Unsorted column ids with repeats and empty rows (both allowed by the contract)."""
    deg = torch.randint(0, max_deg + 1, (rows,), generator=gen)
    if rows:
        deg[0] = 0
    indptr = torch.zeros(rows + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(deg, 0)
    nnz = int(indptr[-1])
    indices = torch.randint(0, max(cols, 1), (nnz,), generator=gen)
    if integer:
        values = torch.randint(-2, 3, (nnz,), generator=gen).to(dtype)
    else:
        values = torch.randn(nnz, generator=gen, dtype=torch.float64).to(dtype)
    return indptr, indices, values


def symmetric_csr(n: int, gen: torch.Generator, dtype=torch.float64):
    """A symmetric matrix (entries and values mirrored), sorted rows."""
    dense = torch.randn(n, n, generator=gen, dtype=torch.float64) * (torch.rand(n, n, generator=gen) < 0.3)
    dense = (dense + dense.T).to(dtype)
    return ops.csr_from_coo(dense.to_sparse())


def dense_of(indptr, indices, values, cols):
    return ref.csr_to_coo(indptr, indices, values, cols).to_dense()


def rand_x(n: int, d: int, gen: torch.Generator, dtype, integer: bool = False):
    if integer:
        return torch.randint(-3, 4, (n, d), generator=gen).to(dtype)
    return torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_spmm_matches_reference_exactly_on_integers(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    R, C = int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(1, 30, (1,), generator=gen))
    d = [1, 3, 8, 64, 67][seed % 5]
    a = random_csr(R, C, gen, dtype, integer=True)
    x = rand_x(C, d, gen, dtype, integer=True)
    out = ops.spmm(*a, x)
    assert out.shape == (R, d) and out.dtype == dtype
    assert torch.equal(out, ref.spmm(*a, x))


@pytest.mark.parametrize("seed", range(6))
def test_spmm_random_float64(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    a = random_csr(50, 31, gen, max_deg=20)
    x = rand_x(31, 17, gen, torch.float64)
    torch.testing.assert_close(ops.spmm(*a, x), dense_of(*a, 31) @ x)


def test_spmm_summation_order_is_storage_order_bitwise():
    """float32: out[r] = (((0 + v0 x_j0) + v1 x_j1) + ...), each product and sum rounded."""
    gen = torch.Generator().manual_seed(3)
    indptr, indices, values = random_csr(30, 20, gen, torch.float32, max_deg=12)
    x = torch.randn(20, 33, generator=gen) * torch.logspace(-3, 3, 33)  # cancellation-prone
    want = torch.zeros(30, 33)
    for r in range(30):
        for e in range(int(indptr[r]), int(indptr[r + 1])):
            want[r] = want[r] + values[e] * x[indices[e]]
    assert torch.equal(ops.spmm(indptr, indices, values, x), want)


def test_spmm_non_contiguous_inputs_and_empty_shapes():
    gen = torch.Generator().manual_seed(4)
    a = random_csr(9, 7, gen)
    x = rand_x(12, 7, gen, torch.float64).T.contiguous().T[:7, :]  # column-major, sliced
    xt = torch.randn(5, 7, dtype=torch.float64, generator=gen).T  # [7, 5], non-contiguous
    torch.testing.assert_close(ops.spmm(*a, xt), dense_of(*a, 7) @ xt)
    torch.testing.assert_close(ops.spmm(*a, x), dense_of(*a, 7) @ x)
    no_rows = (torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64))
    assert ops.spmm(*no_rows, xt).shape == (0, 5)
    empty_rows = (torch.zeros(4, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0))
    assert torch.equal(ops.spmm(*empty_rows, torch.zeros(0, 3)), torch.zeros(3, 3))
    assert ops.spmm(*a, torch.zeros(7, 0, dtype=torch.float64)).shape == (9, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_layers", [0, 1, 2, 3, 4])
def test_graph_propagate_matches_reference_and_spmm_layers(num_layers, dtype):
    gen = torch.Generator().manual_seed(10 + num_layers)
    a = random_csr(40, 40, gen, dtype, max_deg=8, integer=True)
    x = rand_x(40, 12, gen, dtype, integer=True) / 4  # sums of quarters: exact
    out = ops.graph_propagate(*a, x, num_layers)
    assert out.shape == x.shape and out.dtype == dtype
    torch.testing.assert_close(out, ref.graph_propagate(*a, x, num_layers), rtol=0, atol=0)
    layers = [x]
    for _ in range(num_layers):
        layers.append(ops.spmm(*a, layers[-1]))
    assert torch.equal(out, ops.mean_of_layers(layers))  # the documented order, bit for bit


def test_graph_propagate_random_float32_bitwise_equals_spmm_layers():
    gen = torch.Generator().manual_seed(5)
    a = symmetric_csr(60, gen, torch.float32)
    x = torch.randn(60, 64, generator=gen)
    layers = [x]
    for _ in range(3):
        layers.append(ops.spmm(*a, layers[-1], symmetric=True))
    out = ops.graph_propagate(*a, x, 3, symmetric=True)
    assert torch.equal(out, ops.mean_of_layers(layers))
    torch.testing.assert_close(out, ref.graph_propagate(*a, x, 3), rtol=1e-4, atol=1e-4)


def test_results_do_not_depend_on_the_thread_count():
    gen = torch.Generator().manual_seed(6)
    a = random_csr(3000, 3000, gen, torch.float32, max_deg=30)
    x = torch.randn(3000, 64, generator=gen)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.spmm(*a, x), ops.graph_propagate(*a, x, 3)
        torch.set_num_threads(2)
        two = ops.spmm(*a, x), ops.graph_propagate(*a, x, 3)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])


# ---------------------------------------------------------------------------------------------
# Autograd
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
def test_spmm_gradcheck(symmetric):
    gen = torch.Generator().manual_seed(7)
    if symmetric:
        indptr, indices, values = symmetric_csr(9, gen)
        cols = 9
    else:
        indptr, indices, values = random_csr(11, 8, gen)
        cols = 8
    values = values.clone().requires_grad_(True)
    x = rand_x(cols, 5, gen, torch.float64).requires_grad_(True)
    fn = lambda v, x_: ops.spmm(indptr, indices, v, x_, symmetric=symmetric)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (values, x))
    assert torch.autograd.gradgradcheck(fn, (values, x))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_graph_propagate_gradcheck(num_layers, symmetric):
    gen = torch.Generator().manual_seed(8 + num_layers)
    if symmetric:
        indptr, indices, values = symmetric_csr(10, gen)
    else:
        indptr, indices, values = random_csr(10, 10, gen, max_deg=4)
    values = (values * 0.5).requires_grad_(True)
    x = rand_x(10, 4, gen, torch.float64).requires_grad_(True)
    fn = lambda v, x_: ops.graph_propagate(indptr, indices, v, x_, num_layers, symmetric=symmetric)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (values, x))
    if num_layers == 3:
        assert torch.autograd.gradgradcheck(fn, (values, x))


def test_graph_propagate_gradients_equal_the_reference():
    gen = torch.Generator().manual_seed(9)
    a = random_csr(50, 50, gen, max_deg=7)
    x = rand_x(50, 8, gen, torch.float64)
    w = torch.randn(50, 8, generator=gen, dtype=torch.float64)
    grads = []
    for fn in (ops.graph_propagate, ref.graph_propagate):
        v = a[2].clone().requires_grad_(True)
        xx = x.clone().requires_grad_(True)
        (fn(a[0], a[1], v, xx, 3) * w).sum().backward()
        grads.append((v.grad, xx.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_graph_propagate_saves_no_layer_tables_for_backward():
    """Autograd keeps only the matrix: nothing of the size of x, let alone [K+1, N, d]."""
    gen = torch.Generator().manual_seed(11)
    a = symmetric_csr(200, gen, torch.float32)
    x = torch.randn(200, 64, generator=gen, requires_grad=True)
    saved: list[torch.Size] = []

    def pack(t):
        saved.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = ops.graph_propagate(*a, x, 3, symmetric=True)
    assert out.requires_grad
    assert saved and all(len(s) == 1 for s in saved), saved  # indptr, indices, values only
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ref.graph_propagate(*a, x, 3)
    assert any(s.numel() >= 200 * 64 for s in saved)  # the reference keeps its layers


def test_opcheck():
    gen = torch.Generator().manual_seed(12)
    rect = random_csr(13, 9, gen)
    sym = symmetric_csr(9, gen)
    x = rand_x(9, 6, gen, torch.float64)
    x32 = x.float()
    cases = [
        (torch.ops.autosample.spmm.default, (*rect, x.clone().requires_grad_(True), False)),
        (torch.ops.autosample.spmm.default, (*sym, x.clone().requires_grad_(True), True)),
        (torch.ops.autosample.spmm.default,
         (rect[0], rect[1], rect[2].float().requires_grad_(True), x32, False)),
        (torch.ops.autosample.graph_propagate.default, (*sym, x.clone().requires_grad_(True), 3, True)),
        (torch.ops.autosample.graph_propagate.default,
         (sym[0], sym[1], sym[2].clone().requires_grad_(True), x, 2, False)),
        (torch.ops.autosample.graph_propagate.default, (sym[0], sym[1], sym[2].float(), x32, 0, True)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def test_torch_compile_fullgraph_forward_and_backward():
    gen = torch.Generator().manual_seed(13)
    a = symmetric_csr(30, gen, torch.float32)
    x = torch.randn(30, 8, generator=gen)

    def f(x_):
        return (ops.graph_propagate(*a, x_, 3, symmetric=True) ** 2).sum() + ops.spmm(*a, x_).sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    f(x1).backward()
    compiled(x2).backward()
    torch.testing.assert_close(x1.grad, x2.grad)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _csr():
    indptr = torch.tensor([0, 2, 3, 5])
    indices = torch.tensor([0, 2, 1, 0, 2])
    values = torch.ones(5)
    return indptr, indices, values


@pytest.mark.parametrize("op_name", ["spmm", "graph_propagate"])
def test_value_errors_name_op_argument_and_value(op_name):
    x = torch.ones(3, 4)

    def call(indptr, indices, values):
        if op_name == "spmm":
            return ops.spmm(indptr, indices, values, x)
        return ops.graph_propagate(indptr, indices, values, x, 2)

    indptr, indices, values = _csr()
    bad = indices.clone()
    bad[3] = 3
    with pytest.raises(RuntimeError, match=rf"autosample::{op_name}: argument 'indices' holds column id 3 in "
                       r"row 2 \(at indices\[3\]\), outside \[0, 3\) \(the rows of 'x'\)"):
        call(indptr, bad, values)
    bad[3] = -1
    with pytest.raises(RuntimeError, match=r"column id -1 in row 2 \(at indices\[3\]\)"):
        call(indptr, bad, values)
    with pytest.raises(RuntimeError, match=r"argument 'indptr' must start at 0, got indptr\[0\] = 1"):
        call(torch.tensor([1, 2, 3, 5]), indices, values)
    with pytest.raises(RuntimeError, match=r"argument 'indptr' must end at len\(indices\) = 5, got "
                       r"indptr\[3\] = 4"):
        call(torch.tensor([0, 2, 3, 4]), indices, values)
    with pytest.raises(RuntimeError, match=r"argument 'indptr' gives row 1 the span \[4, 3\), which is "
                       r"not a range within \[0, len\(indices\) = 5\]"):
        call(torch.tensor([0, 4, 3, 5]), indices, values)
    # The smallest bad row is named, its extent before its columns.
    two = indices.clone()
    two[4] = 7
    two[1] = 9
    with pytest.raises(RuntimeError, match=r"column id 9 in row 0"):
        call(indptr, two, values)


def test_argument_errors():
    indptr, indices, values = _csr()
    x = torch.ones(3, 4)
    with pytest.raises(RuntimeError, match="spmm: argument 'values' has dtype Double but expected Float"):
        ops.spmm(indptr, indices, values.double(), x)
    with pytest.raises(RuntimeError, match="spmm: argument 'indices' must be int64"):
        ops.spmm(indptr, indices.int(), values, x)
    with pytest.raises(RuntimeError, match="spmm: argument 'values' must have nnz"):
        ops.spmm(indptr, indices, values[:4], x)
    with pytest.raises(RuntimeError, match="spmm: argument 'x' must be 2-D"):
        ops.spmm(indptr, indices, values, x[0])
    with pytest.raises(RuntimeError, match=r"spmm: the matrix must be square with as many rows as 'x' \(5\), got 3"):
        ops.spmm(indptr, indices, values, torch.ones(5, 2), symmetric=True)
    with pytest.raises(RuntimeError, match="graph_propagate: the matrix must be square"):
        ops.graph_propagate(indptr, indices, values, torch.ones(4, 2), 1)
    with pytest.raises(RuntimeError, match="graph_propagate: argument 'num_layers' must be >= 0, got -1"):
        ops.graph_propagate(indptr, indices, values, x, -1)
    with pytest.raises(RuntimeError, match="no rows .* cannot hold entries"):
        ops.spmm(torch.zeros(1, dtype=torch.int64), indices, values, x)


def test_csr_helpers():
    gen = torch.Generator().manual_seed(14)
    a = random_csr(12, 7, gen)
    t = ops.csr_transpose(*a, 7)
    torch.testing.assert_close(dense_of(*t, 12), dense_of(*a, 7).T)
    sym = symmetric_csr(10, gen)
    assert ops.csr_is_symmetric(*sym)
    assert not ops.csr_is_symmetric(*random_csr(10, 10, torch.Generator().manual_seed(1), max_deg=5))
    coo = torch.randn(6, 5, generator=gen).to_sparse()
    torch.testing.assert_close(dense_of(*ops.csr_from_coo(coo), 5), coo.to_dense())
    with pytest.raises(ValueError, match="2-D sparse COO"):
        ops.csr_from_coo(torch.ones(3, 3))
