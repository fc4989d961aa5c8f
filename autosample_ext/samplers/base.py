"""The interface every negative sampler implements (DESIGN.md §1)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.models.base import Recommender


@dataclass
class SampleContext:
    """What a sampler sees at one training step.

    users, pos_items: ``[B]`` int64 (one training positive per row), on the training device.
    model: the model being trained (MixGCF reads its per-layer embeddings, with autograd).
    user_table, item_table: the model's final embeddings for this step, DETACHED (``[U, d]``,
        ``[N, d]``), for scoring candidates without building a graph.
    step: global training step; samplers use it as the RNG offset so every step draws anew and a
        resumed run draws exactly what an uninterrupted one would.
    """

    users: torch.Tensor
    pos_items: torch.Tensor
    model: Recommender
    user_table: torch.Tensor
    item_table: torch.Tensor
    step: int


@dataclass
class Negatives:
    """A sampler's answer for a batch.

    items: ``[B, n]`` int64 negative item ids, never a training positive of the row's user.
    embeddings: for samplers that synthesise negatives (MixGCF), ``[B, n, d]`` final negative
        embeddings WITH autograd, used for scoring instead of the item table; else None.
    """

    items: torch.Tensor
    embeddings: torch.Tensor | None = None


class Sampler:
    """Base class: draws negatives for (user, positive) rows, deterministically by seed and step.

    Subclasses set ``name`` and implement :meth:`sample`. Stateful samplers (SRNS, GDNS) also
    implement :meth:`observe` (called after the model scored the batch) and keep all state in
    tensors returned by :meth:`state_dict`, so checkpoints restore it exactly.
    """

    name: ClassVar[str] = ""
    needs_graph_model: ClassVar[bool] = False

    def __init__(self, data: InteractionData, *, seed: int = 0, num_negatives: int = 1,
                 device: torch.device | str = "cpu") -> None:
        if num_negatives < 1:
            raise ValueError(f"{type(self).__name__}: num_negatives must be >= 1, got {num_negatives}")
        self.data = data
        self.seed = int(seed)
        self.num_negatives = int(num_negatives)
        self.device = torch.device(device)
        self.train_indptr = data.train.indptr.to(self.device)
        self.train_indices = data.train.indices.to(self.device)

    def sample(self, ctx: SampleContext) -> Negatives:
        raise NotImplementedError

    def observe(self, ctx: SampleContext, negatives: Negatives, pos_scores: torch.Tensor,
                neg_scores: torch.Tensor) -> None:
        """Feedback after scoring: ``pos_scores [B]``, ``neg_scores [B, n]`` (detached)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state but got keys {sorted(state)}")
