"""AOBPR: adaptive oversampling by global rank (Rendle & Freudenthaler, WSDM 2014), in the form of
AutoSample Table 2: ``p(j) ∝ exp(-rank_u(j) / lambda)`` over the user's full ranking of its
non-positive items."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler
from autosample_ext.samplers.dns import exp_rank_cdf


@dataclass(frozen=True)
class AOBPROptions:
    """rank_lambda: lambda, in ranks (rank 0 = the best-scored non-positive item); 0 = always
        the argmax (AutoSample appendix B.3).
    top_ranks: R, how many ranks are computed exactly per step with ``ops.rank_topk``;
        None = ``max(1, ceil(5 * rank_lambda))`` (the geometric tail beyond 5 lambda holds
        ``exp(-5)`` ≈ 0.67% of the mass).
    tail: what happens to the mass of ranks >= R (only for users with more than R non-positive
        items):
        ``"uniform"`` (default): ranks < R get exactly ``exp(-r/lambda) / Z`` with Z the sum over
        ALL the user's non-positive ranks; the remaining (tail) mass
        ``sum_{r=R}^{F_u-1} exp(-r/lambda) / Z`` (F_u = the user's number of non-positive items)
        goes to one item uniform over the non-positive items outside the top R.
        ``"renormalise"``: ranks >= R get nothing; ``p(r) = exp(-r/lambda) / sum_{s<R} exp(-s/lambda)``.
    """

    rank_lambda: float = 10.0
    top_ranks: int | None = None
    tail: Literal["uniform", "renormalise"] = "uniform"

    def __post_init__(self) -> None:
        if not (self.rank_lambda >= 0 and math.isfinite(self.rank_lambda)):
            raise ValueError(f"aobpr: rank_lambda must be finite and >= 0, got {self.rank_lambda}")
        if self.top_ranks is not None and self.top_ranks < 1:
            raise ValueError(f"aobpr: top_ranks must be >= 1, got {self.top_ranks}")
        if self.tail not in ("uniform", "renormalise"):
            raise ValueError(f"aobpr: tail must be 'uniform' or 'renormalise', got {self.tail!r}")

    @property
    def resolved_top_ranks(self) -> int:
        if self.top_ranks is not None:
            return self.top_ranks
        return max(1, math.ceil(5 * self.rank_lambda))


class AOBPRSampler(Sampler):
    """Per row and negative: a rank r drawn as in :class:`AOBPROptions` (uniforms from stream 1),
    the item at rank r of the user's ranking by the detached tables (``ops.rank_topk``,
    training positives excluded, ties to the smaller item id).

    R is capped per batch at the smallest number of non-positive items of the batch's users
    (``rank_topk`` needs that many); a user whose non-positive items all fit in the computed
    top has no tail and its distribution is exact. Tail items come from
    ``ops.sample_negatives`` (stream 2) with the user's positives and its top R excluded.
    """

    name: ClassVar[str] = "aobpr"
    Options: ClassVar[type] = AOBPROptions
    options: AOBPROptions

    def setup(self) -> None:
        self._free = self.data.num_items - (self.train_indptr[1:] - self.train_indptr[:-1])

    def sample(self, ctx: SampleContext) -> Negatives:
        users, n, lam = ctx.users, self.num_negatives, self.options.rank_lambda
        batch = users.shape[0]
        free = self._free[users]
        if batch and int(free.min()) < 1:
            bad = int(users[int(torch.argmin(free))])
            raise ValueError(f"aobpr: user {bad} has no non-positive item")
        k = min(self.options.resolved_top_ranks, int(free.min()) if batch else 1)
        # one ranking per distinct user of the batch (rows of one user share it)
        uniq, inverse = torch.unique(users, return_inverse=True)
        excl_ptr, excl_idx = self.train_rows(uniq)
        _, head = ops.rank_topk(ctx.user_table[uniq], ctx.item_table.contiguous(), excl_ptr, excl_idx, k,
                                validate=False)  # rows of the CSR checked in __init__
        head = head[inverse]  # [B, k]

        cdf = exp_rank_cdf(k, lam, self.device)  # [k], unnormalised head weights
        head_mass = cdf[-1]
        if self.options.tail == "uniform" and lam > 0:
            beyond = (free - k).to(torch.float64)
            tail_mass = math.exp(-k / lam) * (-torch.expm1(-beyond / lam)) / (-math.expm1(-1.0 / lam))
        else:
            tail_mass = torch.zeros(batch, dtype=torch.float64, device=self.device)
        u = self.rand(self.generator(ctx.step, 1), batch, n, dtype=torch.float64)
        target = u * (head_mass + tail_mass).unsqueeze(1)
        rank = torch.searchsorted(cdf, target, right=True)  # == k: the draw fell in the tail
        items = head.gather(1, rank.clamp_max(k - 1))
        in_tail = rank >= k
        if bool(in_tail.any()):
            rows = in_tail.any(dim=1).nonzero().squeeze(1)
            items[rows] = torch.where(in_tail[rows], self._tail_draws(users[rows], head[rows], ctx.step),
                                      items[rows])
        return Negatives(items)

    def _tail_draws(self, users: torch.Tensor, head: torch.Tensor, step: int) -> torch.Tensor:
        """``[b, n]`` uniform draws over each user's items that are neither positive nor in ``head``."""
        num_items = self.data.num_items
        pos_ptr, pos_idx = self.train_rows(users)
        rows = torch.arange(users.shape[0], device=self.device)
        pos_rows = torch.repeat_interleave(rows, pos_ptr[1:] - pos_ptr[:-1])
        keys = torch.cat([pos_rows * num_items + pos_idx, (rows.unsqueeze(1) * num_items + head).reshape(-1)])
        keys = torch.sort(keys).values
        counts = torch.bincount(keys // num_items, minlength=users.shape[0])
        indptr = torch.zeros(users.shape[0] + 1, dtype=torch.int64, device=self.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        seed, offset = self.stream(step, 2)
        return ops.sample_negatives(indptr, keys % num_items, rows, num_items, self.num_negatives,
                                    seed, offset, validate=False)  # sorted unique keys: valid rows
