"""What the trainer optimises besides the model: a step's negatives and its loss.

:class:`Objective` is the interface; :class:`SamplerObjective` trains one sampler (single-sampler
runs, retraining); the search's objective lives in :mod:`autosample_ext.search.autosample`.
``score_and_loss`` / ``candidate_losses`` compute BPR + L2 for one or several candidates'
negatives with one gather of the item rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from autosample_ext.losses import bpr_loss, group_hinge_loss
from autosample_ext.models.base import Recommender
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler


# Rows of fewer than BMM_MIN_WIDTH scores use an elementwise product and a sum, wider ones bmm:
# for the [B, 1 + n, d] x [B, d] scores of a step, bmm's many tiny matrix products are slower at
# small widths (B = 2048, d = 64, forward + backward, 1 thread, best of 60: 1.04 vs 0.54 ms at
# width 2, 18.3 vs 6.3 ms at 9, 22.4 vs 16.6 ms at 17; with the gather and the table gradient
# included, bmm was ahead at width 33).
BMM_MIN_WIDTH = 17


def row_scores(rows: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``[B, m]`` dot products of ``rows [B, m, d]`` with ``u [B, d]`` (with autograd)."""
    if rows.shape[1] < BMM_MIN_WIDTH:
        return (rows * u.unsqueeze(1)).sum(-1)
    return torch.bmm(rows, u.unsqueeze(2)).squeeze(2)


@dataclass
class StepOutput:
    loss: torch.Tensor          # scalar with autograd
    selected: int | None = None  # AutoSample: the candidate chosen by the Gumbel sample
    # What ``loss`` averages over when not the batch's rows (GDNS's group loss: the distinct
    # users); a distributed run weights each rank's loss by it (distributed/context.py).
    units: int | None = None


def negative_embeddings(item_table: torch.Tensor, negatives: Negatives) -> torch.Tensor:
    """``[B, n, d]``: synthesised embeddings when the sampler gives them (MixGCF), else rows."""
    if negatives.embeddings is not None:
        return negatives.embeddings
    return F.embedding(negatives.items, item_table)


def tables_are_ego(model: Recommender, user_table: torch.Tensor, item_table: torch.Tensor) -> bool:
    """True when the final tables ARE the ego parameters and the L2 term is the base class's
    (MF): the gathered rows then serve both the scores and the L2 term."""
    return (user_table is model.user_embedding.weight and item_table is model.item_embedding.weight
            and type(model).l2_regulariser is Recommender.l2_regulariser)


def score_and_loss(ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor,
                   negatives: Negatives, l2: float, loss: str = "bpr"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BPR loss of one candidate's negatives plus ``l2 *`` the batch L2 term.

    Returns ``(loss scalar, pos_scores [B] detached, neg_scores [B, n] detached)``.
    """
    if loss != "bpr":
        raise ValueError(f"score_and_loss: unknown loss {loss!r}")
    u = F.embedding(ctx.users, user_table)                                      # [B, d]
    if negatives.embeddings is None:
        # One gather for the positive and the negatives: [B, 1 + n, d].
        items = torch.cat([ctx.pos_items.unsqueeze(1), negatives.items], 1)
        rows = F.embedding(items, item_table)
        scores = row_scores(rows, u)                                             # [B, 1 + n]
        pos, neg = scores[:, 0], scores[:, 1:]
    else:
        rows = None
        pos = (u * F.embedding(ctx.pos_items, item_table)).sum(-1)
        neg = row_scores(negatives.embeddings, u)
    value = bpr_loss(pos, neg)
    if l2:
        if rows is not None and tables_are_ego(ctx.model, user_table, item_table):
            reg = (u.pow(2).sum() + rows.pow(2).sum()) / max(int(ctx.users.shape[0]), 1)
        elif negatives.reg_embeddings is not None:
            reg = ctx.model.l2_regulariser(ctx.users, ctx.pos_items) \
                + negatives.reg_embeddings.pow(2).sum() / max(int(ctx.users.shape[0]), 1)
        else:
            reg = ctx.model.l2_regulariser(ctx.users, ctx.pos_items, negatives.items)
        value = value + l2 * reg
    return value, pos.detach(), neg.detach()


def candidate_losses(ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor,
                     candidates: list[Negatives], l2: float
                     ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Every candidate's loss ``L_t`` (BPR + ``l2 *`` L2 term) for the same batch, ``[T]``.

    Item-id negatives of equal width share one gather of ``[pos, neg_1, ..., neg_T]``;
    otherwise (MixGCF embeddings, mixed widths) each candidate is scored on its own. Also returns
    the detached positive scores ``[B]`` and each candidate's negative scores ``[B, n_t]``.
    """
    widths = {c.items.shape[1] for c in candidates}
    if any(c.embeddings is not None for c in candidates) or len(widths) != 1:
        out = [score_and_loss(ctx, user_table, item_table, c, l2) for c in candidates]
        return torch.stack([o[0] for o in out]), out[0][1], [o[2] for o in out]
    n = widths.pop()
    batch = int(ctx.users.shape[0])
    u = F.embedding(ctx.users, user_table)                                       # [B, d]
    items = torch.cat([ctx.pos_items.unsqueeze(1)] + [c.items for c in candidates], 1)
    rows = F.embedding(items, item_table)                                         # [B, 1+T*n, d]
    scores = row_scores(rows, u)                                                  # [B, 1+T*n]
    pos = scores[:, 0]
    negs = [scores[:, 1 + t * n:1 + (t + 1) * n] for t in range(len(candidates))]
    losses = torch.stack([bpr_loss(pos, neg) for neg in negs])
    if l2:
        if tables_are_ego(ctx.model, user_table, item_table):
            sq = rows.pow(2).sum(-1)                                              # [B, 1+T*n]
            shared = u.pow(2).sum() + sq[:, 0].sum()
            per = torch.stack([sq[:, 1 + t * n:1 + (t + 1) * n].sum()
                               for t in range(len(candidates))])
            reg = (shared + per) / max(batch, 1)
        else:
            reg = torch.stack([ctx.model.l2_regulariser(ctx.users, ctx.pos_items, c.items)
                               for c in candidates])
        losses = losses + l2 * reg
    return losses, pos.detach(), [neg.detach() for neg in negs]


class Objective:
    """What the trainer optimises besides the model: negatives + loss for a step."""

    samplers: list[Sampler]

    def step_loss(self, ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor
                  ) -> StepOutput:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Clear the objective's own gradients (alpha)."""

    def before_step(self, trainer: Any, step: int) -> None:
        """Called by the trainer before training step ``step`` (global), on every rank, before
        the step's propagation: the validation-driven search runs its look-ahead probes here
        (:mod:`autosample_ext.search.valid_alpha`). ``trainer``: the
        :class:`~autosample_ext.training.Trainer`."""

    def parameters(self) -> list[torch.Tensor]:
        """The objective's own trainable tensors (alpha logits); a distributed run reduces
        their gradients with the model's."""
        return []

    def skip_step(self, ctx: SampleContext) -> None:
        """A step whose batch holds none of this process's rows (a distributed run's rank that
        owns no user of a global batch): advance what every rank must advance in step (the
        search's Gumbel draw). ``ctx.users`` is empty."""

    def optimizer_step(self) -> None:
        """Step the objective's own optimiser, after the backward pass (alpha)."""

    def finished(self) -> bool:
        """True when training should stop at this epoch's end whatever the validation (the
        validation-driven search once a single candidate is left)."""
        return False

    def epoch_fields(self) -> dict[str, Any]:
        """Extra plain fields of the epoch's log line (alpha, selections)."""
        return {}

    @property
    def batch_unit(self) -> str:
        """What a batch holds: ``"pairs"`` (user, positive) rows, or ``"users"`` (an epoch
        visits each user once: GDNS's group loop)."""
        return "pairs"

    def epoch_sums(self) -> dict[str, float]:
        """This process's sums for the epoch's log line (reset by the call); the trainer sums
        them over the ranks and passes them to :meth:`epoch_fields_from_sums`."""
        return {}

    def epoch_fields_from_sums(self, sums: dict[str, float]) -> dict[str, Any]:
        return {}

    def best_fields(self) -> dict[str, Any]:
        """State kept with the best-validation model (alpha logits for the search)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class SamplerObjective(Objective):
    """One sampler and BPR on its negatives (single-sampler training and retraining).

    A sampler with a group mode (GDNS: ``sample_groups`` / ``observe_groups``) is trained the
    paper's way: the batch's distinct users (ascending) each get a positive group and a negative
    group of N items, the loss is the group-wise hinge with the sampler's margin, and the L2 term
    covers the users and both groups. With the sampler's ``batches="users"`` the batches are
    batches of users (:attr:`batch_unit`), each user once per epoch: the paper's epoch.
    """

    def __init__(self, sampler: Sampler, *, l2: float, loss: str = "bpr") -> None:
        self.sampler = sampler
        self.samplers = [sampler]
        self.l2 = float(l2)
        self.loss_name = loss
        self.group_mode = callable(getattr(sampler, "sample_groups", None))
        self._active_name: str | None = None

    def step_loss(self, ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor
                  ) -> StepOutput:
        # A schedule hands the step to its current segment; GDNS segments train in group mode.
        sampler = self.sampler.active(ctx)
        if sampler is not self.sampler:
            self._active_name = sampler.name
        if callable(getattr(sampler, "sample_groups", None)):
            return self._group_step(sampler, ctx, user_table, item_table)
        negatives = self.sampler.sample(ctx)
        value, pos_s, neg_s = score_and_loss(ctx, user_table, item_table, negatives,
                                             self.l2, self.loss_name)
        self.sampler.observe(ctx, negatives, pos_s, neg_s)
        return StepOutput(loss=value)

    def skip_step(self, ctx: SampleContext) -> None:
        sampler = self.sampler.active(ctx)
        if sampler is not self.sampler:
            self._active_name = sampler.name

    def epoch_fields(self) -> dict[str, Any]:
        """A schedule's log lines name the segment that trained the epoch (its last step)."""
        return {"active": self._active_name} if self._active_name is not None else {}

    @property
    def batch_unit(self) -> str:
        """``"users"`` for a group-mode sampler whose option ``batches`` says so (GDNS)."""
        options = getattr(self.sampler, "options", None)
        if self.group_mode and getattr(options, "batches", "pairs") == "users":
            return "users"
        return "pairs"

    def epoch_sums(self) -> dict[str, float]:
        sums = getattr(self.sampler, "epoch_sums", None)
        return sums() if callable(sums) else {}

    def epoch_fields_from_sums(self, sums: dict[str, float]) -> dict[str, Any]:
        return self.sampler.epoch_fields_from_sums(sums)

    def _group_step(self, sampler: Sampler, ctx: SampleContext, user_table: torch.Tensor,
                    item_table: torch.Tensor) -> StepOutput:
        users = torch.unique(ctx.users)                                     # [U_b], ascending
        groups = sampler.sample_groups(users, ctx.step)
        u = user_table[users]                                               # [U_b, d]
        pos = row_scores(item_table[groups.positives], u)                   # [U_b, N]
        neg = row_scores(item_table[groups.negatives], u)                   # [U_b, N]
        value = group_hinge_loss(pos, neg, margin=sampler.options.margin)
        if self.l2:
            value = value + self.l2 * ctx.model.l2_regulariser(users, groups.positives,
                                                               groups.negatives)
        sampler.observe_groups(groups, pos.detach(), neg.detach())
        return StepOutput(loss=value, units=int(users.shape[0]))

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
