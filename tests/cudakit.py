"""Helpers shared by the CUDA operator tests (test_cuda_ops*.py): the device, tolerances, exact
integer-valued inputs, random sorted CSR rows, and the asynchronous error checks."""
from __future__ import annotations

import contextlib

import pytest
import torch

import autosample_ext
from autosample_ext import ops


DEV = "cuda"
DTYPES = [torch.float32, torch.float64]


@contextlib.contextmanager
def raises_async(match: str):
    """A value error of a CUDA call: kernels report asynchronously, so the error comes from the
    call itself (host-side checks) or from the next check_errors()."""
    with pytest.raises(RuntimeError, match=match):
        yield
        ops.check_errors()


@pytest.fixture(autouse=True)
def _no_pending_device_error():
    """Every test leaves no asynchronous error behind (one would surface in the next test)."""
    yield
    if torch.cuda.is_available() and autosample_ext.cuda_compiled():
        ops.check_errors()


def tol(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}


def int_valued(shape, gen: torch.Generator, dtype: torch.dtype, lo: int = -3, hi: int = 4) -> torch.Tensor:
    """Small integers as floats: dot products are exact whatever the summation order."""
    return torch.randint(lo, hi, shape, generator=gen).to(dtype)


def random_csr(num_rows: int, num_items: int, gen: torch.Generator, max_deg: int,
               full_rows: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted, unique CSR rows; rows in full_rows get num_items - 1 entries."""
    rows = []
    for r in range(num_rows):
        deg = num_items - 1 if r in full_rows else int(torch.randint(0, max_deg + 1, (1,), generator=gen))
        rows.append(torch.sort(torch.randperm(num_items, generator=gen)[:deg]).values)
    indptr = torch.tensor([0] + [len(r) for r in rows], dtype=torch.int64).cumsum(0)
    indices = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
    return indptr, indices.to(torch.int64)


def to_dev(*ts):
    return tuple(t.to(DEV) if isinstance(t, torch.Tensor) else t for t in ts)

def empty_table(U: int, S: int, dtype: torch.dtype):
    return (torch.full((U, S), -1, dtype=torch.int64), torch.ones(U, S, dtype=dtype),
            torch.ones(U, S, dtype=dtype))
