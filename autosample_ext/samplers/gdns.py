"""GDNS: gain-tuning dynamic negative sampler (Zhu et al., WWW 2022; docs/search.md).

State per (user, item) pair (:mod:`autosample_ext.samplers.gdns_state`): ``H_uj`` = mean over
the positive group of ``sigmoid(r_uj - r_ui)`` (replaced at each update) and the gain
``G_uj <- alpha * G_uj + (1 - alpha) * sigmoid((H_old - H_new) / (H_new + eps))``, with
``H = G = 1`` for a pair never selected. ``table="dense"`` holds both for every (user, item)
pair: the paper's exact gain; ``"slots"`` is the named approximation for data too large for
that; ``"auto"`` (default) takes the dense table whenever it fits ``max_table_bytes``. In a
distributed run only this process's users have rows (``shard.rows(users)``).

Two modes:

* **group mode (the paper)**: :meth:`GDNSSampler.sample_groups` draws, for each given user, a
  positive group of N training positives and a negative group: M uniform non-positive
  candidates (stream 0) of which the N with the highest G are kept (canonical order: ties, e.g.
  among never-selected pairs at G = 1, to the earlier candidate, i.e. uniformly).
  A user with fewer than N training positives gets all of them once (random order) and
  N - |P_u| more drawn uniformly from them with replacement (stream 1): every user's group loss
  has N x N terms, as the paper's fixed group size implies (a user of 20 positives is not
  weighted less than one of 200). Train with
  ``losses.group_hinge_loss(pos_scores [U_b, N], neg_scores [U_b, N], margin)`` and call
  :meth:`observe_groups` with the detached scores. ``batches="users"`` (default): the paper's
  loop, every user once per epoch in batches of users (``Trainer``); ``"pairs"``: the distinct
  users of each batch of (user, positive) pairs (a schedule segment trains this way).
  ``selection="uniform"`` is the control: the first N of the M uniform candidates, no H / G.
* **per-row mode (AutoSample's search, BPR)**: :meth:`sample` returns, for each (user, pos) row,
  the ``num_negatives`` highest-G of its M candidates; :meth:`observe` updates H and G of those
  pairs with the row's single positive as the positive group (``H_new = sigmoid(r_uj - r_ui)``).

Selection by G is the paper's equation (5) / Algorithm 1 line 10 (keep the highest G;
docs/readings.md).

Group-mode step, as a trainer drives it::

    groups = sampler.sample_groups(users, step)                          # users: distinct
    user_t, item_t = model.propagate()
    e_u = user_t[users].unsqueeze(1)                                      # [U_b, 1, d]
    pos = (e_u * item_t[groups.positives]).sum(-1)                        # [U_b, N], autograd
    neg = (e_u * item_t[groups.negatives]).sum(-1)
    loss = group_hinge_loss(pos, neg, sampler.options.margin) \\
        + l2 * model.l2_regulariser(users, groups.positives, groups.negatives)
    loss.backward(); optimiser.step()
    sampler.observe_groups(groups, pos.detach(), neg.detach())
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler
from autosample_ext.samplers.gdns_state import GainTable, TablePlan, plan_table


@dataclass(frozen=True)
class GDNSOptions:
    """group_size: N, positives and negatives per user in group mode (paper: 32).
    num_candidates: M, random non-positive candidates per row / user of which the N (or
    ``num_negatives``) highest-G are kept (>= N; the paper leaves M open, 64 here).
    alpha: smoothing of G (paper: 0.2). margin: gamma of the group-wise hinge loss (paper: 1),
    read by the trainer. eps: guard of the gain's denominator.
    table: ``"auto"`` (dense when it fits ``max_table_bytes``, else slots, with a log line),
    ``"dense"`` (the exact gain; an error when over the budget) or ``"slots"`` (approximation).
    max_table_bytes: the memory budget of the state per process (dense: 8 bytes per
    (user, item) pair; slots: 16 bytes per slot). num_slots: S, slots per user of the slot
    table (None: as many as the budget allows, at most the number of items).
    selection: ``"gain"`` (GDNS) or ``"uniform"`` (the control: the group-wise loss with the
    first N of the M uniform candidates; no state). batches: the group-mode epoch, ``"users"``
    (the paper's: each user once per epoch, ``--batch-size`` users per step) or ``"pairs"``
    (the distinct users of each batch of training pairs)."""

    group_size: int = 32
    num_candidates: int = 64
    alpha: float = 0.2
    margin: float = 1.0
    eps: float = 1e-8
    table: Literal["auto", "dense", "slots"] = "auto"
    max_table_bytes: int = 1 << 30
    num_slots: int | None = None
    selection: Literal["gain", "uniform"] = "gain"
    batches: Literal["users", "pairs"] = "users"

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
        if self.num_slots is not None and self.num_slots < 1:
            raise ValueError(f"gdns: num_slots must be >= 1 (or none: from the budget), got {self.num_slots}")
        if self.max_table_bytes < 1:
            raise ValueError(f"gdns: max_table_bytes must be >= 1, got {self.max_table_bytes}")
        for name, allowed in (("table", ("auto", "dense", "slots")), ("selection", ("gain", "uniform")),
                              ("batches", ("users", "pairs"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"gdns: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")


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
    options: GDNSOptions
    negatives_bound: ClassVar[str | None] = "num_candidates"

    def setup(self) -> None:
        opt, data = self.options, self.data
        # One row per user of this process's shard (all users in one process; docs/distributed.md);
        # the size is checked against the budget before anything is allocated.
        self.table: GainTable | None = None
        if opt.selection == "gain":
            plan = self.plan(opt, self.shard.count(data.num_users), data.num_items)
            self.table = GainTable(plan, self.shard.count(data.num_users), data.num_items, self.device)

    @staticmethod
    def plan(options: GDNSOptions, num_users: int, num_items: int, *, quiet: bool = False) -> TablePlan:
        """The gain table's layout for ``num_users`` users (this process's) and ``num_items``."""
        return plan_table(options.table, options.max_table_bytes, options.num_slots, num_users,
                          num_items, quiet=quiet)

    @classmethod
    def check_data(cls, options: GDNSOptions, num_users: int, num_items: int) -> None:
        """Raise SamplerOptionError when the options cannot serve data of this size (before a
        run starts: the command line then exits with status 2 and writes nothing)."""
        if options.selection == "gain":
            cls.plan(options, num_users, num_items, quiet=True)

    # -- negatives ---------------------------------------------------------------------------

    def candidates(self, users: torch.Tensor, step: int) -> torch.Tensor:
        """``[B, M]`` uniform non-positive candidates of step ``step`` (stream 0)."""
        seed, offset = self.stream(step, 0)
        return ops.sample_negatives(self.train_indptr, self.train_indices, users, self.data.num_items,
                                    self.options.num_candidates, seed, offset, validate=False)

    def gain(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``[B, M]`` G of the pairs (users[b], items[b, m]) as the selection reads it (users of
        this process)."""
        if self.table is None:
            raise ValueError("gdns: selection=uniform keeps no gain")
        self.shard.check(users, "gdns")
        return self.table.gain(self.shard.rows(users), items)

    def select(self, users: torch.Tensor, step: int, count: int) -> torch.Tensor:
        """``[B, count]``: the ``count`` highest-G of each row's candidates (the first ``count``
        with ``selection="uniform"``)."""
        cand = self.candidates(users, step)
        if self.table is None:
            return cand[:, :count]
        gain = self.gain(users, cand)
        values, positions = ops.select_topk(gain, count)
        chosen = cand.gather(1, positions)
        self.table.count_selected(self.shard.rows(users), chosen, values)
        return chosen

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
        """Positive and negative groups of ``users [U_b]`` (distinct users)."""
        return GDNSGroups(users, self.positive_group(users, step),
                          self.select(users, step, self.options.group_size))

    def observe_groups(self, groups: GDNSGroups, pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> None:
        """Update H and G of the negative groups: ``pos_scores, neg_scores [U_b, N]``."""
        self._update(groups.users, groups.negatives, pos_scores.detach(), neg_scores.detach())

    def _update(self, users, items, pos_scores, neg_scores) -> None:
        if self.table is not None:
            self.table.update(self.shard.rows(users), items, pos_scores, neg_scores,
                              self.options.alpha, self.options.eps)

    # -- diagnostics ---------------------------------------------------------------------------

    def epoch_sums(self) -> dict[str, float]:
        """This process's sums of the epoch's gain diagnostics (reset here); the trainer sums
        them over the ranks and :meth:`epoch_fields_from_sums` makes the log fields."""
        return self.table.epoch_sums() if self.table is not None else {}

    @staticmethod
    def epoch_fields_from_sums(sums: dict[str, float]) -> dict[str, Any]:
        """``gdns_live_fraction``: the share of the epoch's selected negatives whose G was
        measured (G < 1; for the slot table: held in it), ``gdns_mean_g_selected`` their mean
        G, ``gdns_mean_g_seen`` the mean G of every pair selected so far (held in the table) and
        ``gdns_pairs_seen`` their number."""
        if not sums or not sums.get("selected"):
            return {}
        return {"gdns_live_fraction": sums["live"] / sums["selected"],
                "gdns_mean_g_selected": sums["sum_g_selected"] / sums["selected"],
                "gdns_mean_g_seen": sums["sum_g_seen"] / sums["seen"] if sums["seen"] else None,
                "gdns_pairs_seen": int(sums["seen"])}

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"table": self.table.state_dict()} if self.table is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.table is None:
            if state:
                raise ValueError(f"gdns: selection=uniform keeps no state but got keys {sorted(state)}")
            return
        if set(state) != {"table"}:
            raise ValueError(f"gdns: state keys {sorted(state)} != ['table']")
        self.table.load_state_dict(state["table"])
