"""Sparse graph products: ``spmm`` and the fused LightGCN propagation ``graph_propagate``.

A sparse matrix ``A [R, C]`` is given in CSR form as three tensors on one device:
``indptr [R+1]`` int64 (``indptr[0] = 0``, non-decreasing, ``indptr[R] = nnz``), ``indices [nnz]``
int64 column ids in ``[0, C)`` (any order within a row; duplicates add) and ``values [nnz]`` of
the dense operand's dtype (float32 or float64). ``C`` is the number of rows of the dense operand.

Both operators are differentiable in ``x`` and ``values`` (``register_autograd``). The gradient
in ``x`` is the product with ``A^T``; for a matrix flagged ``symmetric=True`` (a promise that
``A^T = A`` with the same entries, e.g. the normalised adjacency ``D^-1/2 A D^-1/2`` of an
undirected graph; not checked, see :func:`csr_is_symmetric`) it is the same product with the
same CSR, otherwise the transpose is built in the backward (a stable sort of the entries).
"""
from __future__ import annotations

import torch

from autosample_ext import _C  # noqa: F401  (loads the operator library)

_ops = torch.ops.autosample


def spmm(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, x: torch.Tensor,
         symmetric: bool = False) -> torch.Tensor:
    """``A @ x`` for the CSR matrix ``A [R, C]`` and ``x [C, d]`` -> ``[R, d]`` of x's dtype.

    Every output element sums its row's entries in storage order, multiply then add (no FMA):
    the CPU and CUDA kernels give the same bits. ``symmetric=True`` needs a square matrix.
    """
    return _ops.spmm(indptr, indices, values, x, bool(symmetric))


def graph_propagate(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
                    x: torch.Tensor, num_layers: int, symmetric: bool = False) -> torch.Tensor:
    """LightGCN propagation: ``mean(X_0, ..., X_K)`` with ``X_0 = x``, ``X_k = A X_{k-1}``.

    ``A [N, N]`` square CSR, ``x [N, d]``, ``K = num_layers >= 0`` -> ``[N, d]``. The layers are
    summed left to right and divided once by ``K + 1``; equal, bit for bit, to averaging the
    layers of :func:`spmm` in that order (:func:`mean_of_layers`). Nothing of size
    ``[K+1, N, d]`` is materialised: the forward keeps the running sum and two layer buffers,
    autograd saves only the matrix, and the backward in ``x`` is the same propagation of the
    incoming gradient over ``A^T`` (K products).
    """
    return _ops.graph_propagate(indptr, indices, values, x, int(num_layers), bool(symmetric))


def mean_of_layers(layers: list[torch.Tensor]) -> torch.Tensor:
    """``(((L_0 + L_1) + L_2) + ...) / len(layers)``: graph_propagate's pooling, without a stack."""
    acc = layers[0]
    for layer in layers[1:]:
        acc = acc + layer
    return acc / len(layers)


def csr_rows(indptr: torch.Tensor, nnz: int) -> torch.Tensor:
    """Row id of every stored entry, ``[nnz]`` int64."""
    counts = indptr[1:] - indptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.shape[0], device=indptr.device), counts,
                                   output_size=nnz)


def csr_transpose(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
                  num_cols: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR of ``A^T [num_cols, R]``: entries grouped by column, row order kept within a column."""
    rows = csr_rows(indptr, indices.shape[0])
    order = torch.argsort(indices, stable=True)
    counts = torch.zeros(num_cols, dtype=torch.int64, device=indices.device)
    counts.index_add_(0, indices, torch.ones_like(indices))
    t_indptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return t_indptr, rows[order], values[order]


def csr_from_coo(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(indptr, indices, values)`` of a 2-D sparse COO tensor (coalesced first: row-major)."""
    if matrix.layout != torch.sparse_coo or matrix.dim() != 2:
        raise ValueError(f"csr_from_coo: expects a 2-D sparse COO tensor, got {matrix.layout} "
                         f"of shape {tuple(matrix.shape)}")
    matrix = matrix.coalesce()
    rows, cols = matrix.indices()
    counts = torch.zeros(matrix.shape[0], dtype=torch.int64, device=rows.device)
    counts.index_add_(0, rows, torch.ones_like(rows))
    indptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    # copies: views into a sparse tensor cannot be traced (fake tensors) and would pin it
    return indptr, cols.clone(), matrix.values().clone()


def csr_is_symmetric(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor) -> bool:
    """True when the square CSR matrix equals its transpose (same entries, same values)."""
    n = indptr.shape[0] - 1
    rows = csr_rows(indptr, indices.shape[0])
    a = torch.sparse_coo_tensor(torch.stack([rows, indices]), values, (n, n)).coalesce()
    at = torch.sparse_coo_tensor(torch.stack([indices, rows]), values, (n, n)).coalesce()
    return bool(torch.equal(a.indices(), at.indices()) and torch.equal(a.values(), at.values()))


# ---------------------------------------------------------------------------------------------
# Fake kernels and autograd
# ---------------------------------------------------------------------------------------------


def _check_product_args(op: str, indptr, indices, values, x, square: bool) -> None:
    """spmm_checks.h's host checks, for the fake kernels: a meta tensor among CPU ones dispatches
    here, and must be refused as the real kernel refuses it (not answered with uninitialised
    memory)."""
    def check(cond, msg):
        torch._check(cond, lambda: f"autosample::{op}: {msg}")

    for name, t in (("indptr", indptr), ("indices", indices)):
        check(t.dim() == 1, f"argument '{name}' must be 1-D, got shape {tuple(t.shape)}")
        check(t.dtype == torch.int64, f"argument '{name}' must be int64, got {t.dtype}")
    check(x.dim() == 2, f"argument 'x' must be 2-D, got shape {tuple(x.shape)}")
    check(x.dtype in (torch.float32, torch.float64), f"argument 'x' must be float32 or float64, got {x.dtype}")
    check(values.dim() == 1, f"argument 'values' must be 1-D, got shape {tuple(values.shape)}")
    check(values.dtype == x.dtype, f"argument 'values' has dtype {values.dtype} but expected {x.dtype}")
    for name, t in (("indptr", indptr), ("indices", indices), ("values", values)):
        check(t.device == x.device, f"argument '{name}' is on {t.device} but the other arguments are on {x.device}")
    check(indptr.shape[0] >= 1, "argument 'indptr' must have at least one element (rows + 1)")
    check(values.shape[0] == indices.shape[0], "argument 'values' must have nnz, the length of 'indices'")
    if square:
        check(indptr.shape[0] - 1 == x.shape[0], "the matrix must be square with as many rows as 'x'")


@torch.library.register_fake("autosample::spmm")
def _(indptr, indices, values, x, symmetric=False):
    _check_product_args("spmm", indptr, indices, values, x, symmetric)
    return x.new_empty((indptr.shape[0] - 1, x.shape[1]))


@torch.library.register_fake("autosample::graph_propagate")
def _(indptr, indices, values, x, num_layers, symmetric=False):
    _check_product_args("graph_propagate", indptr, indices, values, x, True)
    torch._check(num_layers >= 0, lambda: f"autosample::graph_propagate: argument 'num_layers' must be >= 0, "
                                          f"got {num_layers}")
    return x.new_empty(x.shape)


def _setup(ctx, inputs, output) -> None:
    indptr, indices, values, x = inputs[:4]
    ctx.symmetric = bool(inputs[-1])
    ctx.num_layers = int(inputs[4]) if len(inputs) == 6 else None
    ctx.num_cols = x.shape[0]
    # x is needed only for the gradient in values.
    ctx.save_for_backward(indptr, indices, values, x if values.requires_grad else None)


def _transposed(ctx, indptr, indices, values):
    """The CSR whose product gives the backward: A itself when symmetric, else A^T."""
    if ctx.symmetric:
        return indptr, indices, values
    return csr_transpose(indptr, indices, values, ctx.num_cols)


def _spmm_backward(ctx, grad):
    indptr, indices, values, x = ctx.saved_tensors
    grad_values = grad_x = None
    if ctx.needs_input_grad[3]:
        grad_x = _ops.spmm(*_transposed(ctx, indptr, indices, values), grad, ctx.symmetric)
    if ctx.needs_input_grad[2]:
        # d out[r] / d values[e] = x[indices[e]] for the entry's row r.
        rows = csr_rows(indptr, indices.shape[0])
        grad_values = (grad[rows] * x[indices]).sum(-1)
    return None, None, grad_values, grad_x, None


def _graph_propagate_backward(ctx, grad):
    indptr, indices, values, x = ctx.saved_tensors
    k_layers = ctx.num_layers
    grad_values = grad_x = None
    at = _transposed(ctx, indptr, indices, values) if any(ctx.needs_input_grad[2:4]) else None
    if ctx.needs_input_grad[3]:
        # d mean / d x = mean_k (A^T)^k: the same propagation of the gradient over A^T.
        grad_x = _ops.graph_propagate(*at, grad, k_layers, ctx.symmetric)
    if ctx.needs_input_grad[2]:
        # Rarely needed (a learned graph): X_k = A X_{k-1} feeds layer k with weight
        # Lam_k = G/(K+1) + A^T Lam_{k+1}; d/d values[e] = sum_k <Lam_k[row_e], X_{k-1}[col_e]>.
        # Keeps X_0..X_{K-1}: only this path stores per-layer tables.
        rows = csr_rows(indptr, indices.shape[0])
        layers = [x]
        for _ in range(1, k_layers):
            layers.append(_ops.spmm(indptr, indices, values, layers[-1], ctx.symmetric))
        scaled = grad / (k_layers + 1)
        lam = scaled
        grad_values = torch.zeros_like(values)
        for k in range(k_layers, 0, -1):
            grad_values = grad_values + (lam[rows] * layers[k - 1][indices]).sum(-1)
            if k > 1:
                lam = scaled + _ops.spmm(*at, lam, ctx.symmetric)
    return None, None, grad_values, grad_x, None, None


torch.library.register_autograd("autosample::spmm", _spmm_backward, setup_context=_setup)
torch.library.register_autograd("autosample::graph_propagate", _graph_propagate_backward,
                                setup_context=_setup)


__all__ = ["spmm", "graph_propagate", "mean_of_layers", "csr_rows", "csr_transpose",
           "csr_from_coo", "csr_is_symmetric"]
