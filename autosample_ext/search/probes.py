"""Look-ahead probes of the validation-driven AutoSample search (docs/readings.md): from the model
and optimiser state of the moment, each candidate sampler
trains a few steps on the same rows, the validation metric of a fixed set of validation users is
measured, and the state is put back. The gains, one per candidate, move alpha
(:mod:`autosample_ext.search.valid_alpha`).

The metric measured is a smooth recall@K (:func:`soft_recall`): a few steps rarely move a
validation item across the top-K boundary, so the plain recall of a probe is mostly ties; the
smooth one credits items near the boundary in proportion to how near they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData

#: at least this many training steps between two probes (data with few steps per epoch)
MIN_PROBE_GAP = 15
#: probe steps draw negatives from step numbers this far above the training steps', so that a
#: probe never repeats a training step's draws
PROBE_STEP_OFFSET = 1 << 40


@dataclass
class ProbeConfig:
    """Settings of the validation-driven search's probes and alpha update.

    every: training steps between two probes (the first before step 0); None: one per epoch,
        at least :data:`MIN_PROBE_GAP` steps apart (:func:`probe_interval`).
    steps: look-ahead steps per candidate per probe (``batch_size`` rows each).
    users: validation users measured (a fixed random subset of those with validation items).
    step_size: the step of alpha's logits per probe, in units of the normalised gain.
    drop_below: a candidate whose alpha falls below this is no longer drawn or probed.
    """

    every: int | None = None
    steps: int = 4
    users: int = 2048
    step_size: float = 0.2
    drop_below: float = 0.05

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise ValueError(f"probes: every must be None or >= 1, got {self.every}")
        if self.steps < 1:
            raise ValueError(f"probes: steps must be >= 1, got {self.steps}")
        if self.users < 1:
            raise ValueError(f"probes: users must be >= 1, got {self.users}")
        if not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ValueError(f"probes: step_size must be > 0, got {self.step_size}")
        if not 0 <= self.drop_below < 1:
            raise ValueError(f"probes: drop_below must be in [0, 1), got {self.drop_below}")


def probe_interval(config: ProbeConfig, steps_per_epoch: int) -> int:
    """Training steps between two probes: ``config.every``, else the smallest whole number of
    epochs that is at least :data:`MIN_PROBE_GAP` steps."""
    if config.every is not None:
        return config.every
    steps_per_epoch = max(int(steps_per_epoch), 1)
    return steps_per_epoch * -(-MIN_PROBE_GAP // steps_per_epoch)


def soft_recall_from_scores(top: torch.Tensor, scores: torch.Tensor, owner: torch.Tensor,
                            num_users: int, k: int) -> torch.Tensor:
    """Smooth recall@k per user, float64 ``[num_users]``, from each user's ``k + 1`` best scores
    ``top [U, k+1]`` (descending) and the scores of its validation items ``scores [V]`` (user
    ``owner [V]``); see :func:`soft_recall`."""
    boundary = (top[:, k - 1] + top[:, k]) / 2
    temperature = ((top[:, 0] - top[:, k]) / k).clamp_min(1e-6)
    credit = torch.sigmoid((scores - boundary[owner]) / temperature[owner]).to(torch.float64)
    sums = torch.zeros(num_users, dtype=torch.float64, device=top.device).index_add_(0, owner, credit)
    counts = torch.bincount(owner, minlength=num_users).to(torch.float64)
    return (sums / counts).cpu()


def _validation_scores(rows: torch.Tensor, item_table: torch.Tensor, data: InteractionData,
                       users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(items [V], owner [V], scores [V])`` of the validation items of ``users`` (CPU ids)."""
    device = rows.device
    target = data.valid.select_rows(users)
    owner = torch.repeat_interleave(torch.arange(users.numel()), target.degrees()).to(device)
    items = target.indices.to(device)
    return items, owner, (rows[owner] * item_table[items]).sum(-1)


def soft_recall(user_table: torch.Tensor, item_table: torch.Tensor, data: InteractionData,
                users: torch.Tensor, k: int) -> torch.Tensor:
    """Smooth recall@k of ``users`` on the validation split, float64 ``[len(users)]``.

    A user's ranking is the validation ranking (every item but the user's training items).
    With ``s_(1) >= s_(2) >= ...`` its best scores, the top-k boundary is
    ``t = (s_(k) + s_(k+1)) / 2`` and the temperature ``T = (s_(1) - s_(k+1)) / k`` (the mean gap
    between neighbours at the top); the value is the mean over the user's validation items ``v``
    of ``sigmoid((s_v - t) / T)``. Recall@k counts ``s_v > t``: the sigmoid gives an item near
    the boundary partial credit. Every user needs ``k + 1`` items outside its training items.
    """
    if users.numel() == 0:
        return torch.zeros(0, dtype=torch.float64)
    users = users.cpu()
    excl = data.train.select_rows(users)
    device = user_table.device
    rows = user_table[users.to(device)].contiguous()
    top, _ = ops.rank_topk(rows, item_table.contiguous(), excl.indptr.to(device),
                           excl.indices.to(device), k + 1, validate=False)
    _, owner, scores = _validation_scores(rows, item_table, data, users)
    return soft_recall_from_scores(top, scores, owner, users.numel(), k)


class ProbeSet:
    """The probes' validation users (a fixed random subset, seeded) and their training rows.

    ``train_users``: the trainer's training pairs' users (``Trainer.train_users``); a probe's
    steps train on rows of the probe users, so the steps move what the probe measures.
    """

    def __init__(self, data: InteractionData, train_users: torch.Tensor, config: ProbeConfig,
                 seed: int, k: int) -> None:
        valid = data.valid.degrees()
        room = data.num_items - data.train.degrees()
        eligible = torch.nonzero((valid > 0) & (room > k)).flatten()
        if eligible.numel() == 0:
            raise ValueError(f"validation-driven search: no user of {data.name!r} has validation "
                             f"items and more than {k} items outside its training items")
        gen = torch.Generator().manual_seed(int(seed))
        pick = eligible[torch.randperm(eligible.numel(), generator=gen)[:config.users]]
        self.users = torch.sort(pick).values                      # [P] int64, CPU
        self.rows = torch.nonzero(torch.isin(train_users.cpu(), self.users)).flatten()
        if self.rows.numel() == 0:
            raise ValueError(f"validation-driven search: the probe users of {data.name!r} have "
                             "no training pairs")
        self.seed = int(seed)

    def batch_size(self, batch_size: int) -> int:
        """Rows per probe step: the training batch size, or all the probe users' pairs when
        they are fewer."""
        return min(int(batch_size), int(self.rows.numel()))

    def batch_rows(self, probe: int, steps: int, batch_size: int) -> torch.Tensor:
        """``steps * self.batch_size(batch_size)`` rows for probe number ``probe``: the probe
        users' pairs in an order drawn from (seed, probe), repeated when the steps need more
        than one pass over them."""
        state = np.random.SeedSequence([self.seed, int(probe), 0x9B0BE]).generate_state(2)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        n = int(self.rows.numel())
        want = steps * self.batch_size(batch_size)
        order = torch.cat([self.rows[torch.randperm(n, generator=gen)]
                           for _ in range(-(-want // n))])
        return order[:want]
