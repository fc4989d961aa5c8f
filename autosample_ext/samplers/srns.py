"""SRNS: simplified and robust negative sampling (Ding et al., NeurIPS 2020).

Reading of the paper, in the terms of this module (all state in tensors, per user u):

* memory ``M_u`` of ``S1 = memory_size`` candidate items (``memory [U, S1]``), initialised with
  uniform non-positive items; in a distributed run every per-user table holds only the rows
  of this process's users (``shard.count(U)`` rows, indexed by ``shard.rows(users)``);
* score history: the raw scores ``r_uk`` of the memory items, one entry per *period* of
  ``history_period`` training steps in which u was in a batch, the last ``T = history_length``
  periods (``history [U, S1, T]``, oldest first; ``history_len [U, S1]`` valid entries). Within
  one period the latest entry is overwritten, so ``history_period = steps per epoch`` gives the
  paper's per-epoch snapshots and ``1`` (default) a snapshot every time u is sampled;
* selection (paper eq. "score + alpha * std"): for a row (u, i),
  ``key_k = P_k + alpha_t * std_T(P_k)`` over k in M_u, with
  ``P_k = sigmoid(r_uk - r_ui)`` the model's probability that k ranks above the positive i
  (scores of this step) and ``std_T`` the population std of ``sigmoid(h_uk - r_ui)`` over the
  valid history entries h (which include this step's score). The positive's own score history
  is not kept (it would need a [nnz, T] table): past P values use this step's ``r_ui``.
  ``alpha_t = alpha * min(1, step / warmup_steps)`` (no warm-up when warmup_steps = 0). The
  negatives are the ``num_negatives`` best keys (canonical order), argmax for one negative;
* memory update (after the selection, once per distinct user of the batch): ``S2 = num_fresh``
  uniform non-positive items join the S1 memory items, and S1 of the S1 + S2 are kept by
  sampling without replacement with probabilities ∝ ``softmax(r_uk / temperature)``
  (Gumbel-top-k over ``ops.select_topk``). Kept memory items keep their history; new ones
  start with this step's score. Memory items are draws with replacement and may repeat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler


@dataclass(frozen=True)
class SRNSOptions:
    memory_size: int = 20
    num_fresh: int = 20
    history_length: int = 5
    history_period: int = 1
    alpha: float = 1.0
    warmup_steps: int = 0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for name in ("memory_size", "num_fresh", "history_length", "history_period"):
            if getattr(self, name) < 1:
                raise ValueError(f"srns: {name} must be >= 1, got {getattr(self, name)}")
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise ValueError(f"srns: alpha must be finite and >= 0, got {self.alpha}")
        if self.warmup_steps < 0:
            raise ValueError(f"srns: warmup_steps must be >= 0, got {self.warmup_steps}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"srns: temperature must be finite and > 0, got {self.temperature}")


class SRNSSampler(Sampler):
    """See the module docstring. Streams: 0 fresh candidates, 1 Gumbel noise, 15 (step 0)
    memory initialisation."""

    name: ClassVar[str] = "srns"
    Options: ClassVar[type] = SRNSOptions
    options: SRNSOptions
    negatives_bound: ClassVar[str | None] = "memory_size"

    def setup(self) -> None:
        opt, data = self.options, self.data
        # One row per user of this process's shard (all users in one process; docs/distributed.md).
        shard = self.shard
        num_users, s1, t = shard.count(data.num_users), opt.memory_size, opt.history_length
        self.memory = torch.full((num_users, s1), -1, dtype=torch.int64, device=self.device)
        has_negative = (self.train_indptr[1:] - self.train_indptr[:-1]) < data.num_items
        init_users = has_negative.nonzero().squeeze(1)
        init_users = init_users[shard.owns(init_users)]
        seed, offset = self.stream(0, 15)
        self.memory[shard.rows(init_users)] = ops.sample_negatives(
            self.train_indptr, self.train_indices, init_users, data.num_items, s1, seed, offset,
            validate=False)
        self.history = torch.zeros(num_users, s1, t, dtype=torch.float32, device=self.device)
        self.history_len = torch.zeros(num_users, s1, dtype=torch.int64, device=self.device)
        self.last_period = torch.full((num_users,), -1, dtype=torch.int64, device=self.device)

    def alpha_at(self, step: int) -> float:
        opt = self.options
        if opt.warmup_steps == 0:
            return opt.alpha
        return opt.alpha * min(1.0, step / opt.warmup_steps)

    def selection_keys(self, scores: torch.Tensor, history: torch.Tensor, history_len: torch.Tensor,
                       pos_scores: torch.Tensor, alpha: float) -> torch.Tensor:
        """``key [B, S1] = P + alpha * std(P_hist)`` for memory scores ``[B, S1]``, history
        ``[B, S1, T]`` (valid = the last ``history_len`` entries) and positive scores ``[B]``."""
        t = history.shape[2]
        p_now = torch.sigmoid(scores - pos_scores.unsqueeze(1))
        p_hist = torch.sigmoid(history - pos_scores.view(-1, 1, 1))
        valid = torch.arange(t, device=history.device) >= (t - history_len).unsqueeze(2)
        count = history_len.clamp_min(1).to(p_hist.dtype)
        mean = torch.where(valid, p_hist, 0).sum(2) / count
        var = torch.where(valid, (p_hist - mean.unsqueeze(2)) ** 2, 0).sum(2) / count
        return p_now + alpha * var.sqrt()

    def sample(self, ctx: SampleContext) -> Negatives:
        users = ctx.users
        item_table = ctx.item_table.contiguous()
        uniq, inverse = torch.unique(users, return_inverse=True)
        self.shard.check(uniq, "srns")
        rows = self.shard.rows(uniq)
        if bool((self.memory[rows, 0] < 0).any()):
            bad = int(uniq[(self.memory[rows, 0] < 0).nonzero()[0, 0]])
            raise ValueError(f"srns: user {bad} has no non-positive item")
        user_emb = ctx.user_table[uniq]
        memory = self.memory[rows]
        scores = ops.score_candidates(user_emb, item_table, memory).float()  # [Bu, S1]
        history, history_len = self._record(uniq, scores, ctx.step)

        pos_scores = ops.score_candidates(ctx.user_table[users], item_table, ctx.pos_items.unsqueeze(1)).squeeze(1).float()
        keys = self.selection_keys(scores[inverse], history[inverse], history_len[inverse], pos_scores,
                                   self.alpha_at(ctx.step))
        _, chosen = ops.select_topk(keys, self.num_negatives)
        items = memory[inverse].gather(1, chosen)

        self._update_memory(uniq, user_emb, item_table, memory, scores, history, history_len, ctx.step)
        return Negatives(items)

    def _record(self, uniq: torch.Tensor, scores: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's scores appended to (new period) or overwriting the last entry of
        (same period) the users' history; returns the new ``(history, history_len)`` rows."""
        t = self.options.history_length
        period = step // self.options.history_period
        rows = self.shard.rows(uniq)
        history = self.history[rows]
        history_len = self.history_len[rows]
        new_period = (self.last_period[rows] < period).view(-1, 1, 1)
        shifted = torch.cat([history[:, :, 1:], scores.unsqueeze(2)], dim=2)
        overwritten = torch.cat([history[:, :, :-1], scores.unsqueeze(2)], dim=2)
        history = torch.where(new_period, shifted, overwritten)
        history_len = torch.where(new_period.view(-1, 1), (history_len + 1).clamp_max(t), history_len.clamp_min(1))
        self.last_period[rows] = period
        return history, history_len

    def _update_memory(self, uniq, user_emb, item_table, memory, scores, history, history_len, step) -> None:
        opt = self.options
        seed, offset = self.stream(step, 0)
        fresh = ops.sample_negatives(self.train_indptr, self.train_indices, uniq, self.data.num_items,
                                     opt.num_fresh, seed, offset, validate=False)
        fresh_scores = ops.score_candidates(user_emb, item_table, fresh).float()
        pool = torch.cat([memory, fresh], dim=1)
        pool_scores = torch.cat([scores, fresh_scores], dim=1)
        u = self.rand(self.generator(step, 1), *pool.shape).clamp_(min=1e-12)
        gumbel = -torch.log(-torch.log(u))
        _, keep = ops.select_topk(pool_scores / opt.temperature + gumbel, opt.memory_size)

        fresh_history = torch.zeros(fresh.shape[0], opt.num_fresh, opt.history_length,
                                    dtype=history.dtype, device=self.device)
        fresh_history[:, :, -1] = fresh_scores
        pool_history = torch.cat([history, fresh_history], dim=1)
        pool_len = torch.cat([history_len, torch.ones_like(fresh)], dim=1)
        rows = self.shard.rows(uniq)
        self.memory[rows] = pool.gather(1, keep)
        self.history[rows] = pool_history.gather(1, keep.unsqueeze(2).expand(-1, -1, opt.history_length))
        self.history_len[rows] = pool_len.gather(1, keep)

    def state_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.clone(), "history": self.history.clone(),
                "history_len": self.history_len.clone(), "last_period": self.last_period.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._copy_state(state, ("memory", "history", "history_len", "last_period"))
