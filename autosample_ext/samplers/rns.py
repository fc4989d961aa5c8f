"""RNS: uniform negative sampling over each user's non-positive items."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler


@dataclass(frozen=True)
class RNSOptions:
    """RNS has no options."""


class RNSSampler(Sampler):
    """Uniform over the non-positive items of the row's user (exact, no rejection).

    ``sample(ctx).items`` is ``[B, num_negatives]``: ``ops.sample_negatives`` with stream 0 of
    ``ctx.step``.
    """

    name: ClassVar[str] = "rns"
    Options: ClassVar[type] = RNSOptions
    options: RNSOptions

    def sample(self, ctx: SampleContext) -> Negatives:
        seed, offset = self.stream(ctx.step, 0)
        items = ops.sample_negatives(self.train_indptr, self.train_indices, ctx.users,
                                     self.data.num_items, self.num_negatives, seed, offset, validate=False)
        return Negatives(items)
