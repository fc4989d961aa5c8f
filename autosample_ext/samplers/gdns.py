"""GDNS: gain-tuning dynamic negative sampler (Zhu et al., WWW 2022; DESIGN.md §1, §9).

State per (user, item) pair in a per-user open-addressing slot table (``slot_keys [U, S]``,
``slot_h``, ``slot_g`` ``[U, S]``; in a distributed run only the rows of this process's users,
``[shard.count(U), S]`` indexed by ``shard.rows(users)``; ``ops.gdns_lookup`` / ``ops.gdns_update``): ``H_uj`` = mean over
the positive group of ``sigmoid(r_uj - r_ui)`` (replaced at each update) and the gain
``G_uj <- alpha * G_uj + (1 - alpha) * sigmoid((H_old - H_new) / (H_new + eps))``, with
``H = G = 1`` for a pair never selected. With ``num_slots`` at least the number of distinct items
a user ever had selected this equals the dense formulation; a full user row evicts its entry
with the largest G (which then reads 1.0 again, like a pair never seen).

Two modes:

* **group mode (the paper)**: :meth:`GDNSSampler.sample_groups` draws, for each given user, a
  positive group of N training positives (without replacement when the user has at least N,
  else all of them once plus N - |P_u| drawn with replacement; stream 1) and a negative group:
  M uniform non-positive candidates (stream 0) of which the N with the highest G are kept
  (canonical order: ties, e.g. among never-seen pairs at G = 1, to the earlier candidate).
  Train with ``losses.group_hinge_loss(pos_scores [U_b, N], neg_scores [U_b, N], margin)`` and
  call :meth:`observe_groups` with the detached scores.
* **per-row mode (AutoSample's search, BPR)**: :meth:`sample` returns, for each (user, pos) row,
  the ``num_negatives`` highest-G of its M candidates; :meth:`observe` updates H and G of those
  pairs with the row's single positive as the positive group (``H_new = sigmoid(r_uj - r_ui)``).

Selection by G is the paper's equation (5) / Algorithm 1 line 10 (keep the highest G, §9).

Group-mode step, as a trainer drives it::

    users = torch.unique(batch_users)
    groups = sampler.sample_groups(users, step)
    user_t, item_t = model.propagate()
    e_u = user_t[users].unsqueeze(1)                                      # [U_b, 1, d]
    pos = (e_u * item_t[groups.positives]).sum(-1)                        # [U_b, N], autograd
    neg = (e_u * item_t[groups.negatives]).sum(-1)
    loss = group_hinge_loss(pos, neg, sampler.options.margin) \
        + l2 * model.l2_regulariser(users, groups.positives, groups.negatives)
    loss.backward(); optimiser.step()
    sampler.observe_groups(groups, pos.detach(), neg.detach())
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler, UserShard


@dataclass(frozen=True)
class GDNSOptions:
    """group_size: N, positives and negatives per user in group mode (paper: 32).
    num_candidates: M random non-positive candidates per row / user (>= N and >= num_negatives).
    alpha: smoothing of G (paper: 0.2). margin: gamma of the group-wise hinge loss (paper: 1),
    read by the trainer. eps: guard of the gain's denominator. num_slots: S, table slots per
    user (memory 16 * U * S bytes)."""

    group_size: int = 32
    num_candidates: int = 64
    alpha: float = 0.2
    margin: float = 1.0
    eps: float = 1e-8
    num_slots: int = 128

    def __post_init__(self) -> None:
        if self.group_size < 1:
            raise ValueError(f"gdns: group_size must be >= 1, got {self.group_size}")
        if self.num_candidates < self.group_size:
            raise ValueError(f"gdns: num_candidates ({self.num_candidates}) must be >= group_size ({self.group_size})")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"gdns: alpha must be in [0, 1], got {self.alpha}")
        if not (self.margin >= 0 and math.isfinite(self.margin)):
            raise ValueError(f"gdns: margin must be finite and >= 0, got {self.margin}")
        if not self.eps > 0:
            raise ValueError(f"gdns: eps must be > 0, got {self.eps}")
        if self.num_slots < 1:
            raise ValueError(f"gdns: num_slots must be >= 1, got {self.num_slots}")


@dataclass
class GDNSGroups:
    """One group-mode draw: ``users [U_b]``, ``positives [U_b, N]``, ``negatives [U_b, N]``."""

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor


class GDNSSampler(Sampler):
    """See the module docstring."""

    name: ClassVar[str] = "gdns"
    Options: ClassVar[type] = GDNSOptions

    def __init__(self, data: InteractionData, *, seed: int = 0, num_negatives: int = 1,
                 device: torch.device | str = "cpu", options: GDNSOptions | None = None,
                 shard: UserShard | None = None) -> None:
        super().__init__(data, seed=seed, num_negatives=num_negatives, device=device, shard=shard)
        self.options = opt = options or GDNSOptions()
        if num_negatives > opt.num_candidates:
            raise ValueError(f"gdns: num_negatives ({num_negatives}) must not exceed num_candidates ({opt.num_candidates})")
        # One row per user of this process's shard (all users in one process; DESIGN.md §8).
        shape = (self.shard.count(data.num_users), opt.num_slots)
        self.slot_keys = torch.full(shape, -1, dtype=torch.int64, device=self.device)
        self.slot_h = torch.ones(shape, dtype=torch.float32, device=self.device)
        self.slot_g = torch.ones(shape, dtype=torch.float32, device=self.device)

    # -- negatives ---------------------------------------------------------------------------

    def candidates(self, users: torch.Tensor, step: int) -> torch.Tensor:
        """``[B, M]`` uniform non-positive candidates of step ``step`` (stream 0)."""
        seed, offset = self.stream(step, 0)
        return ops.sample_negatives(self.train_indptr, self.train_indices, users, self.data.num_items,
                                    self.options.num_candidates, seed, offset, validate=False)

    def select(self, users: torch.Tensor, step: int, count: int) -> torch.Tensor:
        """``[B, count]``: the ``count`` highest-G of each row's candidates."""
        cand = self.candidates(users, step)
        self.shard.check(users, "gdns")
        gain = ops.gdns_lookup(self.slot_keys, self.slot_g, self.shard.rows(users), cand)
        _, positions = ops.select_topk(gain, count)
        return cand.gather(1, positions)

    def sample(self, ctx: SampleContext) -> Negatives:
        return Negatives(self.select(ctx.users, ctx.step, self.num_negatives))

    def observe(self, ctx: SampleContext, negatives: Negatives, pos_scores: torch.Tensor,
                neg_scores: torch.Tensor) -> None:
        """Per-row mode: ``pos_scores [B]``, ``neg_scores [B, n]`` of ``negatives.items``."""
        self._update(ctx.users, negatives.items, pos_scores.detach().reshape(-1, 1), neg_scores.detach())

    # -- group mode --------------------------------------------------------------------------

    def positive_group(self, users: torch.Tensor, step: int) -> torch.Tensor:
        """``[U_b, N]`` training positives per user (stream 1): a uniformly random N-subset when
        the user has at least N positives, else all of them (random order) followed by
        N - |P_u| uniform draws with replacement."""
        size = self.options.group_size
        ptr, idx = self.train_rows(users)
        degree = ptr[1:] - ptr[:-1]
        if users.numel() and int(degree.min()) < 1:
            bad = int(users[int(torch.argmin(degree))])
            raise ValueError(f"gdns: user {bad} has no training positive")
        gen = self.generator(step, 1)
        owner = torch.repeat_interleave(torch.arange(users.shape[0], device=self.device), degree)
        keys = owner.to(torch.float64) + self.rand(gen, idx.shape[0], dtype=torch.float64)
        shuffled = idx[torch.argsort(keys)]  # each row's positives in random order
        column = torch.arange(size, device=self.device).expand(users.shape[0], size)
        extra = (self.rand(gen, users.shape[0], size, dtype=torch.float64) * degree.unsqueeze(1)).long().clamp_max(degree.unsqueeze(1) - 1)
        column = torch.where(column < degree.unsqueeze(1), column, extra)
        return shuffled[ptr[:-1].unsqueeze(1) + column]

    def sample_groups(self, users: torch.Tensor, step: int) -> GDNSGroups:
        """Positive and negative groups of ``users [U_b]`` (normally the batch's distinct users)."""
        return GDNSGroups(users, self.positive_group(users, step),
                          self.select(users, step, self.options.group_size))

    def observe_groups(self, groups: GDNSGroups, pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> None:
        """Update H and G of the negative groups: ``pos_scores, neg_scores [U_b, N]``."""
        self._update(groups.users, groups.negatives, pos_scores.detach(), neg_scores.detach())

    def _update(self, users, items, pos_scores, neg_scores) -> None:
        ops.gdns_update(self.slot_keys, self.slot_h, self.slot_g, self.shard.rows(users), items,
                        pos_scores.to(self.slot_h.dtype).contiguous(),
                        neg_scores.to(self.slot_h.dtype).contiguous(),
                        self.options.alpha, self.options.eps)

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"slot_keys": self.slot_keys.clone(), "slot_h": self.slot_h.clone(),
                "slot_g": self.slot_g.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._copy_state(state, ("slot_keys", "slot_h", "slot_g"))
