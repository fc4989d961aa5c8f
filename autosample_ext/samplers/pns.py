"""PNS: popularity-based negative sampling, p(j) ∝ (popularity_j + smoothing)^beta."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler


@dataclass(frozen=True)
class PNSOptions:
    """beta: popularity exponent (0.75, word2vec's unigram^0.75). smoothing: added to every
    item's training count before the power.

    With the default ``smoothing = 0`` an item with no training interaction has weight 0 and is
    never drawn: it has no training signal, and pushing it down as a negative only hurts it when
    it shows up in the test split. (The op's fallback still returns a uniform non-positive item for
    a user whose positives hold all of the popularity mass.) ``smoothing > 0`` (e.g. 1, Laplace)
    makes every item drawable.
    """

    beta: float = 0.75
    smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ValueError(f"pns: beta must be >= 0, got {self.beta}")
        if not self.smoothing >= 0:
            raise ValueError(f"pns: smoothing must be >= 0, got {self.smoothing}")


class PNSSampler(Sampler):
    """Draws item j with probability ∝ w_j = (pop_j + smoothing)^beta, restricted to the row's
    user's non-positive items (rejection of positives inside ``ops.sample_negatives``, alias
    mode, so the conditional distribution is exactly w restricted to the non-positives).

    ``sample(ctx).items`` is ``[B, num_negatives]`` (stream 0 of ``ctx.step``).
    """

    name: ClassVar[str] = "pns"
    Options: ClassVar[type] = PNSOptions
    options: PNSOptions

    def setup(self) -> None:
        self.weights = self.item_weights()
        prob, alias = ops.build_alias_table(self.weights)
        self.alias_prob = prob.to(self.device)
        self.alias_idx = alias.to(self.device)

    def item_weights(self) -> torch.Tensor:
        """Unnormalised sampling weights ``[num_items]`` float64 (CPU)."""
        pop = self.data.item_popularity.to(torch.float64) + self.options.smoothing
        w = pop.pow(self.options.beta)
        # 0^0 = 1 in torch; an item with no count stays at weight 0 whatever beta is.
        return torch.where(pop > 0, w, torch.zeros_like(w))

    def sample(self, ctx: SampleContext) -> Negatives:
        seed, offset = self.stream(ctx.step, 0)
        items = ops.sample_negatives(self.train_indptr, self.train_indices, ctx.users,
                                     self.data.num_items, self.num_negatives, seed, offset,
                                     self.alias_prob, self.alias_idx, validate=False)
        return Negatives(items)
