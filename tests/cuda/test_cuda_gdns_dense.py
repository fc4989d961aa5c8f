"""CUDA kernels of the GDNS dense table (gdns_dense_lookup / gdns_dense_update) and of
gdns_contains against the CPU kernels and the oracles (ops/reference_gdns.py), the same bad-input
messages on both devices, opcheck on CUDA, and a full-row slot table's default gain and eviction
on CUDA. Skipped when no GPU is visible or the build has no CUDA kernels."""
from __future__ import annotations

import pytest
import torch
from cudakit import (
    DEV,
    DTYPES,
    _no_pending_device_error,  # noqa: F401 (autouse: no asynchronous error left behind)
    empty_table,
    raises_async,
    to_dev,
    tol,
)

from autosample_ext import ops
from autosample_ext.ops import reference_gdns


def dense(U: int, I: int, dtype: torch.dtype, device: str = "cpu"):
    return (torch.ones(U, I, dtype=dtype, device=device), torch.ones(U, I, dtype=dtype, device=device))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_update_sequence_matches(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(7)
    U, I = 6, 11
    dev, cpu, oracle = dense(U, I, dtype, DEV), dense(U, I, dtype), dense(U, I, dtype)
    for step in range(6):
        B, N, P = 40, 5, 3   # many rows per user, repeated pairs within and across rows
        users = torch.randint(0, U, (B,), generator=gen)
        items = torch.randint(0, I, (B, N), generator=gen)
        pos = torch.randn(B, P, generator=gen, dtype=dtype)
        neg = torch.randn(B, N, generator=gen, dtype=dtype)
        ops.gdns_dense_update(*dev, *to_dev(users, items, pos, neg), 0.2, 1e-8)
        ops.gdns_dense_update(*cpu, users, items, pos, neg, 0.2, 1e-8)
        reference_gdns.gdns_dense_update(*oracle, users, items, pos, neg, 0.2, 1e-8)
        for a, b, c in zip(dev, cpu, oracle):  # the same formula; exp may differ in the last bit
            torch.testing.assert_close(a.cpu(), b, **tol(dtype), msg=f"CPU vs CUDA at step {step}")
            torch.testing.assert_close(a.cpu(), c, **tol(dtype))
        q_users = torch.randint(0, U, (5,), generator=gen)
        query = torch.randint(0, I, (5, 7), generator=gen)
        got = ops.gdns_dense_lookup(dev[1], *to_dev(q_users, query))
        assert torch.equal(got.cpu(), reference_gdns.gdns_dense_lookup(cpu[1], q_users, query))


@pytest.mark.cuda
def test_contains_and_full_row_default_match_cpu() -> None:
    gen = torch.Generator().manual_seed(8)
    U, S, I = 5, 4, 30   # rows fill up: absent pairs read the mean, entries are evicted
    dev = tuple(t.to(DEV) for t in empty_table(U, S, torch.float64))
    cpu = empty_table(U, S, torch.float64)
    for _ in range(6):
        users = torch.randint(0, U, (8,), generator=gen)
        items = torch.randint(0, I, (8, 3), generator=gen)
        pos = torch.randn(8, 2, generator=gen, dtype=torch.float64)
        neg = torch.randn(8, 3, generator=gen, dtype=torch.float64)
        ops.gdns_update(*dev, *to_dev(users, items, pos, neg), 0.2, 1e-8)
        ops.gdns_update(*cpu, users, items, pos, neg, 0.2, 1e-8)
    assert torch.equal(dev[0].cpu(), cpu[0]) and (cpu[0] >= 0).all()
    every = torch.arange(I).repeat(U, 1)
    users = torch.arange(U)
    torch.testing.assert_close(ops.gdns_lookup(dev[0], dev[2], *to_dev(users, every)).cpu(),
                               ops.gdns_lookup(cpu[0], cpu[2], users, every), **tol(torch.float64))
    held = ops.gdns_contains(dev[0], *to_dev(users, every)).cpu()
    assert torch.equal(held, ops.gdns_contains(cpu[0], users, every))
    assert torch.equal(held, reference_gdns.gdns_contains(cpu[0], users, every))
    assert int(held.sum()) == U * S


@pytest.mark.cuda
@pytest.mark.parametrize("call, pattern", [
    (lambda d: ops.gdns_dense_update(*dense(3, 5, torch.float32, d), torch.tensor([0, 3], device=d),
                                     torch.tensor([[1, 2], [3, 4]], device=d),
                                     torch.zeros(2, 1, device=d), torch.zeros(2, 2, device=d), 0.5, 1e-3),
     "autosample::gdns_dense_update: argument 'users' holds user 3 at position 1, outside [0, 3)"),
    (lambda d: ops.gdns_dense_update(*dense(3, 5, torch.float32, d), torch.tensor([0, 1], device=d),
                                     torch.tensor([[1, 2], [3, 5]], device=d),
                                     torch.zeros(2, 1, device=d), torch.zeros(2, 2, device=d), 0.5, 1e-3),
     "autosample::gdns_dense_update: argument 'items' holds item id 5 at position (1, 1), outside "
     "[0, 5) (the columns of the gain table)"),
    (lambda d: ops.gdns_dense_lookup(torch.ones(3, 5, device=d), torch.tensor([1], device=d),
                                     torch.tensor([[-1]], device=d)),
     "autosample::gdns_dense_lookup: argument 'items' holds item id -1 at position (0, 0), outside "
     "[0, 5) (the columns of the gain table)"),
    (lambda d: ops.gdns_contains(torch.full((3, 4), -1, device=d), torch.tensor([0], device=d),
                                 torch.tensor([[-3]], device=d)),
     "autosample::gdns_contains: argument 'items' holds item id -3 at position (0, 0); item ids "
     "must be >= 0"),
])
def test_same_message_on_both_devices(call, pattern) -> None:
    with pytest.raises(RuntimeError) as cpu_error:
        call("cpu")
    assert pattern in str(cpu_error.value)
    with raises_async(pattern.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        call(DEV)


@pytest.mark.cuda
def test_refused_dense_update_leaves_the_table_untouched_and_opcheck() -> None:
    h, g = dense(3, 5, torch.float32, DEV)
    with raises_async(r"gdns_dense_update.*'items'.*7"):
        ops.gdns_dense_update(h, g, torch.tensor([0], device=DEV), torch.tensor([[1, 7]], device=DEV),
                              torch.zeros(1, 1, device=DEV), torch.ones(1, 2, device=DEV), 0.5, 1e-3)
    assert (h == 1).all() and (g == 1).all()
    users, items = torch.tensor([0, 2], device=DEV), torch.tensor([[1, 2], [3, 4]], device=DEV)
    pos, neg = torch.randn(2, 2, device=DEV), torch.randn(2, 2, device=DEV)
    torch.library.opcheck(torch.ops.autosample.gdns_dense_update, (h, g, users, items, pos, neg, 0.5, 1e-3))
    torch.library.opcheck(torch.ops.autosample.gdns_dense_lookup, (g, users, items))
    keys = torch.full((3, 4), -1, device=DEV)
    torch.library.opcheck(torch.ops.autosample.gdns_contains, (keys, users, items))
