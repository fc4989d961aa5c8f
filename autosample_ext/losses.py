"""Pairwise and group-wise ranking losses (docs/search.md).

All losses take raw scores (dot products) and return a scalar with ``reduction="mean"`` (the
default) or the unreduced per-pair / per-user tensor with ``reduction="none"``. L2
regularisation is separate (``Recommender.l2_regulariser``).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Reduction = Literal["mean", "sum", "none"]


def _pairwise_diff(pos_scores: torch.Tensor, neg_scores: torch.Tensor, name: str) -> torch.Tensor:
    """``neg - pos`` as ``[B, n]`` from ``pos [B]`` and ``neg [B]`` or ``[B, n]``."""
    if pos_scores.dim() != 1:
        raise ValueError(f"{name}: pos_scores must be [B], got shape {tuple(pos_scores.shape)}")
    if neg_scores.dim() == 1:
        neg_scores = neg_scores.unsqueeze(1)
    if neg_scores.dim() != 2 or neg_scores.shape[0] != pos_scores.shape[0]:
        raise ValueError(f"{name}: neg_scores must be [B] or [B, n] with B = {pos_scores.shape[0]}, "
                         f"got shape {tuple(neg_scores.shape)}")
    return neg_scores - pos_scores.unsqueeze(1)


def _reduce(values: torch.Tensor, reduction: Reduction, name: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean() if values.numel() else values.sum()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """BPR: ``-log sigmoid(r_ui - r_uj) = softplus(r_uj - r_ui)`` (stable for large gaps).

    ``pos_scores [B]``, ``neg_scores [B]`` or ``[B, n]``. ``"mean"`` averages over the B rows
    and n negatives; ``"none"`` returns ``[B, n]``. An empty batch gives 0.
    """
    return _reduce(F.softplus(_pairwise_diff(pos_scores, neg_scores, "bpr_loss")), reduction, "bpr_loss")


def hinge_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, margin: float = 1.0,
               reduction: Reduction = "mean") -> torch.Tensor:
    """Pairwise hinge: ``max(0, r_uj - r_ui + margin)``; shapes and reductions as :func:`bpr_loss`."""
    if margin < 0:
        raise ValueError(f"hinge_loss: margin must be >= 0, got {margin}")
    diff = _pairwise_diff(pos_scores, neg_scores, "hinge_loss")
    return _reduce(F.relu(diff + margin), reduction, "hinge_loss")


def group_hinge_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, margin: float = 1.0,
                     reduction: Reduction = "mean") -> torch.Tensor:
    """GDNS group-wise hinge: per user ``L_u = sum_i sum_j max(0, r_uj - r_ui + margin)``.

    ``pos_scores [U_b, P]`` (the user's positive group), ``neg_scores [U_b, N]`` (its negative
    group). Normalisation: the per-user value is the plain double SUM over the P x N pairs, as
    the paper's objective; ``"mean"`` averages it over the U_b users of the batch (so the scale
    grows with P * N: with the paper's N = P = 32 one user contributes up to 1024 pair terms;
    tune the learning rate accordingly). ``"none"`` returns ``[U_b]``.
    """
    if margin < 0:
        raise ValueError(f"group_hinge_loss: margin must be >= 0, got {margin}")
    if pos_scores.dim() != 2 or neg_scores.dim() != 2 or pos_scores.shape[0] != neg_scores.shape[0]:
        raise ValueError("group_hinge_loss: pos_scores [U, P] and neg_scores [U, N] must be 2-D with the "
                         f"same U, got {tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}")
    pairs = F.relu(neg_scores.unsqueeze(1) - pos_scores.unsqueeze(2) + margin)  # [U, P, N]
    return _reduce(pairs.sum(dim=(1, 2)), reduction, "group_hinge_loss")


__all__ = ["bpr_loss", "hinge_loss", "group_hinge_loss"]
