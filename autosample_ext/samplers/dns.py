"""DNS: dynamic negative sampling (Zhang et al., SIGIR 2013) with the rank-based variant of
AutoSample Table 2."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler


def exp_rank_cdf(k: int, rank_lambda: float | None, device: torch.device) -> torch.Tensor:
    """Cumulative weights ``[k]`` float64 of ranks ``0..k-1`` with ``w_r = exp(-r / rank_lambda)``
    (unnormalised; ``None`` = uniform, ``0`` = all mass on rank 0)."""
    r = torch.arange(k, dtype=torch.float64, device=device)
    if rank_lambda is None:
        w = torch.ones_like(r)
    elif rank_lambda == 0:
        w = (r == 0).to(torch.float64)
    else:
        w = torch.exp(-r / rank_lambda)
    return torch.cumsum(w, 0)


def draw_from_cdf(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Ranks (int64, shape of ``u``) for uniforms ``u`` in [0, 1) against an unnormalised cdf."""
    target = u.to(torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, target.contiguous(), right=True).clamp_max(cdf.shape[0] - 1)


@dataclass(frozen=True)
class DNSOptions:
    """num_candidates: M uniform non-positive candidates per negative.
    top_k: the negative is drawn among the k best-scored candidates (k = 1: classic DNS, the
        argmax). rank_lambda: weight of the candidate at local rank r (0 = best) among those k,
        ``exp(-r / rank_lambda)``; None = uniform over the top k. AutoSample Table 2's DNS
        (``p(j) ∝ exp(-local_rank / lambda)`` over all candidates) is ``top_k = M`` with
        ``rank_lambda = lambda``.
    """

    num_candidates: int = 32
    top_k: int = 1
    rank_lambda: float | None = None

    def __post_init__(self) -> None:
        if self.num_candidates < 1:
            raise ValueError(f"dns: num_candidates must be >= 1, got {self.num_candidates}")
        if not 1 <= self.top_k <= self.num_candidates:
            raise ValueError(f"dns: top_k must be in [1, num_candidates={self.num_candidates}], got {self.top_k}")
        if self.rank_lambda is not None and not (self.rank_lambda >= 0 and math.isfinite(self.rank_lambda)):
            raise ValueError(f"dns: rank_lambda must be None or finite and >= 0, got {self.rank_lambda}")


class DNSSampler(Sampler):
    """Each of a row's ``n = num_negatives`` negatives has its own pool of M uniform
    non-positive candidates (stream 0 of the step: ``candidates()`` ``[B, n*M]``, pool j =
    columns ``j*M:(j+1)*M``). The pool is scored with the detached tables (``ops.score_topk``,
    canonical order: ties to the earlier candidate) and the negative is the best candidate
    (``top_k = 1``), else a draw among the ``top_k`` best with weights ``exp(-r/rank_lambda)``
    (uniforms from stream 1). A candidate may repeat within a pool (draws with replacement).
    """

    name: ClassVar[str] = "dns"
    Options: ClassVar[type] = DNSOptions
    options: DNSOptions

    def setup(self) -> None:
        self._cdf = exp_rank_cdf(self.options.top_k, self.options.rank_lambda, self.device)

    def candidates(self, users: torch.Tensor, step: int) -> torch.Tensor:
        """``[B, num_negatives * num_candidates]`` candidate ids of step ``step``."""
        seed, offset = self.stream(step, 0)
        return ops.sample_negatives(self.train_indptr, self.train_indices, users, self.data.num_items,
                                    self.num_negatives * self.options.num_candidates, seed, offset,
                                    validate=False)

    def sample(self, ctx: SampleContext) -> Negatives:
        n, m, k = self.num_negatives, self.options.num_candidates, self.options.top_k
        batch = ctx.users.shape[0]
        cand = self.candidates(ctx.users, ctx.step).view(batch * n, m)
        user_emb = ctx.user_table[ctx.users]
        if n > 1:
            user_emb = user_emb.repeat_interleave(n, dim=0)
        _, top = ops.score_topk(user_emb, ctx.item_table.contiguous(), cand, k)  # [B*n, k]
        if k > 1:
            u = self.rand(self.generator(ctx.step, 1), batch * n, 1, dtype=torch.float64)
            top = top.gather(1, draw_from_cdf(self._cdf, u))
        return Negatives(top.reshape(batch, n))
