"""The interface every model implements (MF, LightGCN, NGCF)."""
from __future__ import annotations

import torch
from torch import nn


class Recommender(nn.Module):
    """A model scoring (user, item) pairs by a dot product of final embeddings.

    ``user_embedding`` ``[U, d]`` and ``item_embedding`` ``[N, d]`` are the ego (layer-0)
    parameters. ``propagate()`` returns the final tables used for scoring at this step (for MF
    the ego tables themselves, for graph models the pooled propagated tables), with autograd.
    """

    num_users: int
    num_items: int
    dim: int
    user_embedding: nn.Embedding
    item_embedding: nn.Embedding

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(users [U, d], items [N, d])`` embedding tables for the current step."""
        raise NotImplementedError

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as :meth:`propagate` (so DistributedDataParallel sees a forward call)."""
        return self.propagate()

    @property
    def final_dim(self) -> int:
        """Width ``d'`` of the tables :meth:`propagate` returns (and of :meth:`pool`'s output).

        Equal to ``dim`` except for models that concatenate layers (NGCF: ``dim * (L + 1)``).
        """
        return self.dim

    def layer_embeddings(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-layer tables ``([U, d] x (L+1), [N, d] x (L+1))``, layer 0 first (MixGCF).

        MF has a single layer (its ego tables).
        """
        raise NotImplementedError

    def pool(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """How per-layer embeddings are combined into the final one (mean for LightGCN).

        ``layers``: L+1 tensors of the same shape ``[..., d]``. MixGCF applies this to its
        synthesised per-layer negatives.
        """
        raise NotImplementedError

    @property
    def is_graph_model(self) -> bool:
        return False

    def l2_regulariser(self, users: torch.Tensor, *item_groups: torch.Tensor) -> torch.Tensor:
        """Sum of squared ego embeddings used in the batch, divided by the batch size.

        ``users [B]`` and any number of item id tensors (``[B]`` or ``[B, n]``).
        """
        reg = self.user_embedding(users).pow(2).sum()
        if item_groups:
            # One gather for every group: one gradient table instead of one per group.
            items = torch.cat([i.reshape(-1) for i in item_groups]) if len(item_groups) > 1 \
                else item_groups[0]
            reg = reg + self.item_embedding(items).pow(2).sum()
        return reg / max(int(users.shape[0]), 1)
