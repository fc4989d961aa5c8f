"""Typed wrappers over the ``torch.ops.autosample`` operators (docs/design.md).

This package is the only one that touches ``torch.ops.autosample`` (the sparse graph products
live in :mod:`autosample_ext.ops.graph`, the fused training step in :mod:`autosample_ext.ops.fused`). Every operator dispatches by
device to the C++ (CPU) or CUDA kernel; a CUDA tensor given to a build without CUDA kernels
raises. The pure-PyTorch oracles live in :mod:`autosample_ext.ops.reference` and are never used
as a silent fallback.

Canonical top-k order everywhere: larger key first, ties broken by the smaller position (or
item id for :func:`rank_topk`); NaN ranks above every number.
"""
from __future__ import annotations

import numpy as np
import torch

from autosample_ext import _C  # loads the operator library; holds check_errors / set_sync_errors
from autosample_ext.ops._fake_checks import (
    _check_devices,
    _check_float,
    _check_index,
    _check_same_dtype,
)
from autosample_ext.ops.fused import mf_bpr_train
from autosample_ext.ops.gdns import (
    gdns_contains,
    gdns_dense_lookup,
    gdns_dense_update,
    gdns_lookup,
    gdns_update,
)
from autosample_ext.ops.graph import (
    csr_from_coo,
    csr_is_symmetric,
    csr_rows,
    csr_transpose,
    graph_propagate,
    mean_of_layers,
    spmm,
)

_ops = torch.ops.autosample


def sample_negatives(
    indptr: torch.Tensor,
    indices: torch.Tensor,
    users: torch.Tensor,
    num_items: int,
    num_samples: int,
    seed: int,
    offset: int,
    alias_prob: torch.Tensor | None = None,
    alias_idx: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> torch.Tensor:
    """Draw ``num_samples`` negative item ids for each user of ``users``.

    Args:
        indptr: ``[U+1]`` int64 CSR row pointers of the training positives.
        indices: ``[nnz]`` int64 item ids, sorted ascending and unique within each row.
        users: ``[B]`` int64 user ids in ``[0, U)``.
        num_items: number of items ``N``; draws lie in ``[0, N)``.
        num_samples: draws per user ``S``.
        seed, offset: the random stream; the same (seed, offset) gives the same output on CPU and
            CUDA, a different offset (e.g. the training step) gives independent draws.
        alias_prob, alias_idx: optional ``[N]`` float32 / int64 alias table (see
            :func:`build_alias_table`); without it draws are uniform over the non-positives.
        validate: check, in every call, the CSR rows of the batch's users (sorted ascending,
            no duplicates, ids in ``[0, N)``: the binary searches assume it, and a bad row gives
            positives or biased draws) and the alias table (``prob`` in ``[0, 1]``, no NaN;
            ``alias`` in ``[0, N)``). Costs O(sum of the batch rows' degrees + N) per call; pass
            ``False`` only for data checked once already (e.g. :func:`check_csr`). User ids,
            row spans and "at least one non-positive item" are checked either way.

    Returns:
        ``[B, S]`` int64 item ids, never a positive of the row's user. Draws are independent
        (with replacement). Uniform draws map a uniform rank to the r-th non-positive item
        (exact, no rejection). Alias draws reject positives; after 1024 rejected attempts for
        one draw (only when the user's positives hold nearly all of the alias mass) that draw
        falls back to a uniform non-positive item.
    """
    return _ops.sample_negatives(
        indptr, indices, users, int(num_items), int(num_samples), int(seed), int(offset),
        alias_prob, alias_idx, bool(validate),
    )


def score_candidates(user_emb: torch.Tensor, item_emb: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """``out[b, m] = <user_emb[b], item_emb[cand[b, m]]>``.

    Shapes: ``user_emb [B, d]``, ``item_emb [N, d]`` (same float dtype), ``cand [B, M]`` int64
    in ``[0, N)`` -> ``[B, M]`` of the embedding dtype.
    """
    return _ops.score_candidates(user_emb, item_emb, cand)


def score_topk(
    user_emb: torch.Tensor, item_emb: torch.Tensor, cand: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused scoring and top-k over each row's candidates, without writing ``[B, M]`` scores.

    Returns ``(scores [B, k], items [B, k])``: the k best candidates of each row in the
    canonical order (ties to the smaller candidate position); ``items`` are item ids taken from
    ``cand``. ``0 <= k <= M``.
    """
    return _ops.score_topk(user_emb, item_emb, cand, int(k))


def select_topk(keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per row of ``keys [B, M]`` (float) -> ``(values [B, k], positions [B, k] int64)``."""
    return _ops.select_topk(keys, int(k))


def rank_topk(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    excl_indptr: torch.Tensor,
    excl_indices: torch.Tensor,
    k: int,
    *,
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full ranking: the k best items of all ``N`` for each row, excluding a CSR list per row.

    ``user_emb [B, d]``, ``item_emb [N, d]``, ``excl_indptr [B+1]`` int64 (need not start at
    0: a slice of a larger CSR works), ``excl_indices`` int64 sorted and unique within each row.
    Returns ``(scores [B, k], items [B, k])`` in the canonical order (ties to the smaller item
    id). ``k`` must not exceed the number of non-excluded items of any row. ``validate=False``
    skips the per-call O(nnz) check that the rows are sorted, unique and in ``[0, N)`` (row spans
    and ``k`` are checked either way).
    """
    return _ops.rank_topk(user_emb, item_emb, excl_indptr, excl_indices, int(k), bool(validate))


def check_csr(indptr: torch.Tensor, indices: torch.Tensor, num_items: int, what: str = "CSR") -> None:
    """Raise ``ValueError`` unless every row of the CSR is sorted, unique and in ``[0, num_items)``.

    The one-time check that lets a caller pass ``validate=False`` to :func:`sample_negatives` and
    :func:`rank_topk` afterwards (the rule of csrc/include/autosample/validate.h). O(nnz), numpy.
    """
    ptr = np.asarray(indptr.detach().cpu(), dtype=np.int64)
    idx = np.asarray(indices.detach().cpu(), dtype=np.int64)
    if ptr.ndim != 1 or ptr.size == 0 or idx.ndim != 1:
        raise ValueError(f"{what}: indptr must be 1-D and non-empty, indices 1-D")
    if ptr[0] < 0 or ptr[-1] > idx.size or np.any(np.diff(ptr) < 0):
        raise ValueError(f"{what}: indptr must be non-decreasing within [0, len(indices) = {idx.size}]")
    used = idx[ptr[0]:ptr[-1]]
    bad = np.flatnonzero((used < 0) | (used >= num_items))
    if bad.size:
        raise ValueError(f"{what}: indices[{ptr[0] + bad[0]}] = {used[bad[0]]} is outside [0, {num_items})")
    rising = np.diff(used) > 0
    starts = ptr[1:-1][(ptr[1:-1] > ptr[0]) & (ptr[1:-1] < ptr[-1])] - ptr[0]  # row boundaries
    rising[starts - 1] = True
    bad = np.flatnonzero(~rising)
    if bad.size:
        p = ptr[0] + bad[0] + 1
        raise ValueError(f"{what}: rows must be sorted ascending without duplicates; indices[{p - 1}] = "
                         f"{idx[p - 1]} is followed by {idx[p]}")


def check_errors() -> None:
    """Raise a value error that a CUDA kernel reported asynchronously, if any.

    On CUDA the operators never wait for the device: a bad value found by a kernel (an id out
    of range, an unsorted CSR row, ...) is recorded on the device and raised, with the same
    message the CPU kernel gives, by the next autosample call on that device once the kernel
    has finished, or by this function, which synchronises every device the operators used.
    Call it where the program synchronises anyway (after an epoch, after evaluation). On the
    CPU the kernels raise in the call and this is a no-op. A plain function, not a torch
    operator (it takes no tensor and synchronises: under ``torch.compile`` it runs eagerly at a
    graph break instead of being traced as a pure op and dropped).
    """
    _C.check_errors()


def set_sync_errors(enabled: bool) -> bool:
    """Debug switch: every CUDA call synchronises and raises its own value errors.

    Off by default (``AUTOSAMPLE_SYNC_ERRORS=1`` in the environment turns it on). Sync mode costs
    a host synchronisation per call and breaks CUDA graph capture; use it to find the call that
    received a bad value. Returns the previous setting.
    """
    return bool(_C.set_sync_errors(bool(enabled)))


def build_alias_table(weights: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker/Vose alias table for sampling index i with probability ``weights[i] / sum``.

    Returns ``(prob float32 [N], alias int64 [N])`` for :func:`sample_negatives`: a draw picks a
    column j uniformly, keeps j when ``u < prob[j]`` and takes ``alias[j]`` otherwise.
    """
    w = np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights,
                   dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"build_alias_table: weights must be a non-empty 1-D array, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("build_alias_table: weights must be finite and non-negative")
    total = w.sum()
    if total <= 0:
        raise ValueError("build_alias_table: weights must not all be zero")
    n = w.size
    scaled = w * (n / total)
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = list(np.flatnonzero(scaled < 1.0)[::-1])
    large = list(np.flatnonzero(scaled >= 1.0)[::-1])
    while small and large:
        s = small.pop()
        l_ = large.pop()
        prob[s] = scaled[s]
        alias[s] = l_
        scaled[l_] -= 1.0 - scaled[s]
        (small if scaled[l_] < 1.0 else large).append(l_)
    # Leftovers are 1 up to rounding.
    return torch.from_numpy(prob.astype(np.float32)), torch.from_numpy(alias)


# ---------------------------------------------------------------------------------------------
# Fake (meta) kernels: shapes and dtypes only, for torch.compile and opcheck.
# ---------------------------------------------------------------------------------------------


def _check_scoring(op: str, user_emb, item_emb, cand) -> None:
    _check_float(op, "user_emb", user_emb, 2)
    _check_float(op, "item_emb", item_emb, 2)
    _check_index(op, "cand", cand, 2)
    _check_same_dtype(op, user_emb, "item_emb", item_emb)
    _check_devices(op, "user_emb", user_emb, item_emb=item_emb, cand=cand)
    torch._check(item_emb.shape[1] == user_emb.shape[1],
                 lambda: f"autosample::{op}: argument 'item_emb' must have d = {user_emb.shape[1]} columns")
    torch._check(cand.shape[0] == user_emb.shape[0],
                 lambda: f"autosample::{op}: argument 'cand' must have B = {user_emb.shape[0]} rows")


@torch.library.register_fake("autosample::sample_negatives")
def _(indptr, indices, users, num_items, num_samples, seed, offset, alias_prob=None, alias_idx=None,
      validate=True):
    op = "sample_negatives"
    for name, t in (("indptr", indptr), ("indices", indices), ("users", users)):
        _check_index(op, name, t, 1)
    _check_devices(op, "indptr", indptr, indices=indices, users=users, alias_prob=alias_prob,
                   alias_idx=alias_idx)
    torch._check(num_samples >= 0, lambda: f"autosample::{op}: argument 'num_samples' must be non-negative")
    if alias_prob is not None:
        torch._check(alias_prob.dtype == torch.float32,
                     lambda: f"autosample::{op}: argument 'alias_prob' must be float32, got {alias_prob.dtype}")
    return users.new_empty((users.shape[0], num_samples), dtype=torch.int64)


@torch.library.register_fake("autosample::score_candidates")
def _(user_emb, item_emb, cand):
    _check_scoring("score_candidates", user_emb, item_emb, cand)
    return user_emb.new_empty(cand.shape)


@torch.library.register_fake("autosample::score_topk")
def _(user_emb, item_emb, cand, k):
    _check_scoring("score_topk", user_emb, item_emb, cand)
    torch._check(0 <= k, lambda: f"autosample::score_topk: argument 'k' must be >= 0, got {k}")
    torch._check(k <= cand.shape[1], lambda: "autosample::score_topk: argument 'k' must be <= M")
    shape = (cand.shape[0], k)
    return user_emb.new_empty(shape), cand.new_empty(shape)


@torch.library.register_fake("autosample::select_topk")
def _(keys, k):
    _check_float("select_topk", "keys", keys, 2)
    torch._check(0 <= k, lambda: f"autosample::select_topk: argument 'k' must be >= 0, got {k}")
    torch._check(k <= keys.shape[1], lambda: "autosample::select_topk: argument 'k' must be <= M")
    shape = (keys.shape[0], k)
    return keys.new_empty(shape), keys.new_empty(shape, dtype=torch.int64)


@torch.library.register_fake("autosample::rank_topk")
def _(user_emb, item_emb, excl_indptr, excl_indices, k, validate=True):
    op = "rank_topk"
    _check_float(op, "user_emb", user_emb, 2)
    _check_float(op, "item_emb", item_emb, 2)
    _check_index(op, "excl_indptr", excl_indptr, 1)
    _check_index(op, "excl_indices", excl_indices, 1)
    _check_same_dtype(op, user_emb, "item_emb", item_emb)
    _check_devices(op, "user_emb", user_emb, item_emb=item_emb, excl_indptr=excl_indptr,
                   excl_indices=excl_indices)
    torch._check(0 <= k, lambda: f"autosample::rank_topk: argument 'k' must be >= 0, got {k}")
    torch._check(k <= item_emb.shape[0], lambda: "autosample::rank_topk: argument 'k' must be <= N")
    shape = (user_emb.shape[0], k)
    return user_emb.new_empty(shape), user_emb.new_empty(shape, dtype=torch.int64)


__all__ = [
    "sample_negatives",
    "score_candidates",
    "score_topk",
    "select_topk",
    "gdns_lookup",
    "gdns_update",
    "gdns_contains",
    "gdns_dense_lookup",
    "gdns_dense_update",
    "rank_topk",
    "build_alias_table",
    "check_csr",
    "spmm",
    "graph_propagate",
    "mf_bpr_train",
    "mean_of_layers",
    "csr_rows",
    "csr_transpose",
    "csr_from_coo",
    "csr_is_symmetric",
    "check_errors",
    "set_sync_errors",
]
