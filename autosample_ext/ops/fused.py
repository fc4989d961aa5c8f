"""The fused MF / GMF BPR training step: ``mf_bpr_train``, whole training steps in one operator.

One call runs ``ceil(T / batch_size)`` consecutive steps over ``users`` / ``pos_items`` (``[T]``,
already in training order): per step it draws the negatives with ``sample_negatives``' Philox
streams (RNS, PNS through the alias table, DNS's candidate pools scored and selected in the
operator, or takes them from ``negatives``), computes the BPR loss with the L2 term and its
gradient, and updates the touched rows of the tables with SGD, AdaGrad or lazy (sparse) Adam, or
every row with dense Adam (torch.optim.Adam: the untouched rows with a zero gradient). The
pure-PyTorch oracle is :func:`autosample_ext.ops.reference_mf.mf_bpr_train`; the trainer's
fused engine (:mod:`autosample_ext.training.fused`) drives it.
"""
from __future__ import annotations

import torch

from autosample_ext import _C  # noqa: F401  (loads the operator library)
from autosample_ext.ops.reference_mf import OPTIMIZERS, SAMPLERS, state_names

_ops = torch.ops.autosample


def mf_bpr_train(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    state: list[torch.Tensor],
    indptr: torch.Tensor,
    indices: torch.Tensor,
    users: torch.Tensor,
    pos_items: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    batch_size: int,
    num_negatives: int = 1,
    sampler: str = "rns",
    negatives: torch.Tensor | None = None,
    num_candidates: int = 1,
    top_k: int = 1,
    alias_prob: torch.Tensor | None = None,
    alias_idx: torch.Tensor | None = None,
    cdf: torch.Tensor | None = None,
    uniforms: torch.Tensor | None = None,
    seed: int = 0,
    offset: int = 0,
    offset_stride: int = 0,
    lr: float,
    l2: float = 0.0,
    optimizer: str = "adam",
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    opt_step: int = 0,
    validate: bool = True,
) -> torch.Tensor:
    """Train ``ceil(T / batch_size)`` BPR steps of MF (or GMF with ``weight``) in place.

    Args:
        user_emb, item_emb: ``[U, d]`` / ``[N, d]`` float32 or float64, contiguous; updated in
            place. ``weight``: GMF's ``[d]`` vector (scores ``<P_u * w, Q_i>``), updated too.
        state: the optimiser state, updated in place, in :func:`state_names` order: none for
            ``"sgd"``; per table (users, items[, weight]) the AdaGrad sums, or Adam's first and
            second moments; each of its table's shape and dtype.
        indptr, indices: the training CSR (``[U+1]``, sorted unique rows): draws exclude a
            user's positives.
        users, pos_items: ``[T]`` the training rows in order; step s trains rows
            ``[s*B, min((s+1)*B, T))`` with Philox offset ``offset + s * offset_stride`` (row =
            position in the step's batch: the draws of ``sample_negatives(..., seed, offset)``
            on the step's users).
        sampler: ``"rns"``, ``"pns"`` (``alias_prob`` / ``alias_idx``), ``"dns"`` (pools of
            ``num_candidates`` per negative; ``top_k > 1`` draws the rank with ``uniforms [T, n]``
            against ``cdf [top_k]``, both float64) or ``"given"`` (``negatives [T, n]``).
        lr, l2: learning rate; weight of the L2 term ``(sum |P_u|^2 + |Q_pos|^2 + sum |Q_neg|^2) / B``.
        optimizer: ``"sgd"``, ``"adagrad"`` (eps), ``"adam"`` (torch.optim.Adam: every row of the
            tables at every step, a zero gradient for the rows not in the batch) or
            ``"lazy_adam"`` (the batch's rows only); beta1, beta2, eps, bias corrections with the
            global step ``opt_step + s + 1``.
        validate: scan the CSR rows of the call's users and the alias table (see
            ``sample_negatives``); the O(1) id checks always run.

    Returns:
        ``[steps]`` float64: each step's loss (BPR mean + ``l2 *`` the L2 term), as the
        autograd path computes it. Deterministic: the same on any number of threads.
    """
    return _ops.mf_bpr_train(
        user_emb, item_emb, weight, list(state), indptr, indices, users, pos_items, negatives,
        int(batch_size), int(num_negatives), str(sampler), int(num_candidates), int(top_k),
        alias_prob, alias_idx, cdf, uniforms, int(seed), int(offset), int(offset_stride),
        float(lr), float(l2), str(optimizer), float(beta1), float(beta2), float(eps),
        int(opt_step), bool(validate),
    )


def new_state(optimizer: str, user_emb: torch.Tensor, item_emb: torch.Tensor,
              weight: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Zero optimiser state for :func:`mf_bpr_train` (:func:`state_names` order)."""
    per = len(state_names(optimizer, False)) // 2
    tables = [user_emb, item_emb] + ([weight] if weight is not None else [])
    return [torch.zeros_like(t, memory_format=torch.contiguous_format) for t in tables
            for _ in range(per)]


def _check(cond: bool, msg: str) -> None:
    torch._check(cond, lambda: f"autosample::mf_bpr_train: {msg}")


@torch.library.register_fake("autosample::mf_bpr_train")
def _(user_emb, item_emb, weight, state, indptr, indices, users, pos_items, negatives, batch_size,
      num_negatives, sampler, num_candidates, top_k, alias_prob, alias_idx, cdf, uniforms, seed,
      offset, offset_stride, lr, l2, optimizer, beta1, beta2, eps, opt_step, validate=True):
    floats = (torch.float32, torch.float64)
    _check(user_emb.dim() == 2 and user_emb.dtype in floats,
           f"argument 'user_emb' must be a 2-D float32 or float64 tensor, got {user_emb.dtype}")
    _check(sampler in SAMPLERS, f"argument 'sampler' must be one of {', '.join(SAMPLERS)}, got '{sampler}'")
    _check(optimizer in OPTIMIZERS,
           f"argument 'optimizer' must be one of {', '.join(OPTIMIZERS)}, got '{optimizer}'")
    tables = [item_emb] + ([weight] if weight is not None else []) + list(state)
    for t in tables:
        _check(t.dtype == user_emb.dtype, f"tables and state must have dtype {user_emb.dtype}, got {t.dtype}")
    for t in [*tables, indptr, indices, users, pos_items, negatives, alias_prob, alias_idx, cdf, uniforms]:
        if t is not None:
            _check(t.device == user_emb.device,
                   f"an argument is on {t.device} but the other arguments are on {user_emb.device}")
    for name, t in (("indptr", indptr), ("indices", indices), ("users", users), ("pos_items", pos_items)):
        _check(t.dim() == 1 and t.dtype == torch.int64, f"argument '{name}' must be a 1-D int64 tensor")
    _check(batch_size >= 1, f"argument 'batch_size' must be >= 1, got {batch_size}")
    steps = -(-users.shape[0] // batch_size)
    return users.new_empty((steps,), dtype=torch.float64)


__all__ = ["mf_bpr_train", "new_state", "state_names"]
