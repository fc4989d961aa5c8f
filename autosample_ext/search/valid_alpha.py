"""The validation-driven AutoSample search (``--alpha-objective valid``, the default).

The paper's structure is kept: learnable logits ``theta [T]`` over the candidate samplers,
``alpha = softmax(theta)``; every training step a straight-through Gumbel-softmax sample
``z = ST-Gumbel((log alpha + g) / tau)`` picks the candidate whose negatives train the model;
model and alpha are learned in one run; the best-validation ``(W', alpha*)`` is kept and
argmax(alpha*) is retrained from W' (:mod:`autosample_ext.search.retrain`).

What moves alpha is not the training loss (which always prefers the easiest sampler, README
"The paper's bias") but the validation metric. Every ``P`` steps (a *probe*,
:mod:`autosample_ext.search.probes`) each active candidate ``k`` trains ``W`` look-ahead steps
from the current model and optimiser state on the same rows, the smooth validation recall@K
``r_k`` of a fixed set of validation users is measured, and the state is put back. Then, with
``b = sum_k alpha_k r_k`` (the gain the current mixture expects) and ``s`` a running scale of
the gains (the largest recent root-mean-square of ``r_k - b``, decaying by 0.9 per probe):

    theta_k += step_size * (r_k - b) / s            (exponentiated gradient, Hedge)

A candidate whose alpha falls below ``drop_below`` is no longer drawn or probed. Only the
selected candidate draws negatives on a training step; the other candidates draw only in
probes. The Gumbel noise comes from the objective's seeded generator and every probe's rows
and negatives from (seed, step): a seed fixes the run, and a resumed run continues exactly.
"""
from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.samplers.base import SampleContext, Sampler
from autosample_ext.search.autosample import AutoSampleObjective, gumbel_softmax_st
from autosample_ext.search.probes import (PROBE_STEP_OFFSET, ProbeConfig, ProbeSet,
                                          probe_interval, soft_recall)
from autosample_ext.training.lookahead import restore, snapshot, trial_steps
from autosample_ext.training.objectives import Objective, StepOutput, score_and_loss

if TYPE_CHECKING:
    from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

#: per probe, the running scale of the gains keeps this share of its last value
SCALE_DECAY = 0.9


def candidate_step(sampler: Sampler, ctx: SampleContext, user_table: torch.Tensor,
                   item_table: torch.Tensor, l2: float) -> tuple[torch.Tensor, Any]:
    """One candidate's training loss on the step's batch, as the search trains it: BPR on its
    negatives plus the L2 term; the sampler observes the scores (SRNS, GDNS state)."""
    negatives = sampler.sample(ctx)
    value, pos_s, neg_s = score_and_loss(ctx, user_table, item_table, negatives, l2)
    sampler.observe(ctx, negatives, pos_s, neg_s)
    return value, negatives


class _CandidateObjective(Objective):
    """One candidate trained as the search trains its selected candidate (probe steps)."""

    def __init__(self, sampler: Sampler, l2: float) -> None:
        self.sampler = sampler
        self.samplers = [sampler]
        self.l2 = l2

    def step_loss(self, ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor
                  ) -> StepOutput:
        return StepOutput(loss=candidate_step(self.sampler, ctx, user_table, item_table,
                                              self.l2)[0])


def exponentiated_step(logits: torch.Tensor, active: torch.Tensor, gains: torch.Tensor,
                       scale2: float | None, step_size: float) -> tuple[torch.Tensor, float]:
    """The alpha update of one probe (module docstring): returns the new logits and the new
    squared scale. ``gains`` float64 ``[T]`` (inactive entries ignored)."""
    theta = logits.detach().to(torch.float64).cpu()
    alpha = torch.softmax(theta.masked_fill(~active, float("-inf")), 0)
    base = float((alpha[active] * gains[active]).sum())
    adv = torch.where(active, gains - base, torch.zeros_like(gains))
    var = float((adv[active] ** 2).mean())
    scale2 = var if scale2 is None else max(var, SCALE_DECAY * scale2)
    if scale2 > 0:
        theta = theta + step_size * adv / scale2 ** 0.5
    return theta.to(logits.dtype), scale2


class ValidAlphaObjective(AutoSampleObjective):
    """The search-stage objective of ``--alpha-objective valid``; see the module docstring.

    Args:
        samplers, names: the candidates (alpha's order) and their names.
        data: the dataset (the probes' validation users and metric).
        tau: Gumbel-softmax temperature. l2: L2 weight. seed: Gumbel noise, probe users, rows.
        k: the cut-off of the smooth recall the probes measure (the run's metric's).
        probes: :class:`ProbeConfig`.
    """

    def __init__(self, samplers: Sequence[Sampler], names: Sequence[str], data: InteractionData,
                 *, tau: float, l2: float, seed: int, k: int = 20,
                 probes: ProbeConfig | None = None, device: torch.device | str = "cpu") -> None:
        super().__init__(samplers, names, tau=tau, alpha_lr=1.0, l2=l2, seed=seed, device=device)
        if k < 1:
            raise ValueError(f"validation-driven search: k must be >= 1, got {k}")
        self.data = data
        self.k = int(k)
        self.probes = probes or ProbeConfig()
        self.seed = int(seed)
        self.active = torch.ones(len(self.samplers), dtype=torch.bool)
        self.scale2: float | None = None
        self.num_probes = 0
        self.last_gains: dict[str, float] = {}
        self._probe_set: ProbeSet | None = None

    # -- alpha over the active candidates ------------------------------------------------------

    def masked_logits(self) -> torch.Tensor:
        return self.logits.masked_fill(~self.active.to(self.logits.device), float("-inf"))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.softmax(self.masked_logits().detach(), dim=0).cpu()

    def parameters(self) -> list[torch.Tensor]:
        return []   # alpha moves in probes, identically on every rank; no gradient to reduce

    def best_fields(self) -> dict[str, Any]:
        return {"alpha_logits": self.masked_logits().detach().cpu().clone()}

    # -- training steps --------------------------------------------------------------------------

    def _draw(self) -> int:
        _, _, index = gumbel_softmax_st(self.masked_logits().detach(), self.tau, self.generator)
        self.selected_counts[index] += 1
        return index

    def skip_step(self, ctx: SampleContext) -> None:
        self._draw()

    def step_loss(self, ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor
                  ) -> StepOutput:
        index = self._draw()
        value, _ = candidate_step(self.samplers[index], ctx, user_table, item_table, self.l2)
        return StepOutput(loss=value, selected=index)

    def optimizer_step(self) -> None:
        """Nothing: alpha moves in the probes (:meth:`before_step`)."""

    # -- probes ----------------------------------------------------------------------------------

    def before_step(self, trainer: "Trainer", step: int) -> None:
        if int(self.active.sum()) < 2 or step % probe_interval(self.probes, trainer.num_batches):
            return
        gains = self.measure(trainer, step)
        names = [n for n, a in zip(self.names, self.active.tolist()) if a]
        theta, self.scale2 = exponentiated_step(self.logits, self.active, gains, self.scale2,
                                                self.probes.step_size)
        with torch.no_grad():
            self.logits.copy_(theta.to(self.logits.device))
        alpha = self.alpha
        for i in range(len(self.names)):
            if self.active[i] and alpha[i] < self.probes.drop_below and int(self.active.sum()) > 1:
                self.active[i] = False
                log.info("validation-driven search: %s dropped at step %d (alpha %.4f)",
                         self.names[i], step, float(alpha[i]))
        self.num_probes += 1
        self.last_gains = {n: float(gains[self.names.index(n)]) for n in names}

    def _probe_users(self, trainer: "Trainer") -> ProbeSet:
        if self._probe_set is None:
            seed = int(np.random.SeedSequence([self.seed, 0x9B0BE]).generate_state(1)[0])
            self._probe_set = ProbeSet(self.data, trainer.train_users, self.probes, seed, self.k)
        return self._probe_set

    def measure(self, trainer: "Trainer", step: int) -> torch.Tensor:
        """Gains ``[T]`` float64 of probe at ``step``: each active candidate's smooth validation
        recall after its look-ahead steps (NaN for inactive candidates); state put back."""
        from autosample_ext.training.evaluate import model_tables

        probe_set = self._probe_users(trainer)
        rows = probe_set.batch_rows(step, self.probes.steps, trainer.config.batch_size)
        size = probe_set.batch_size(trainer.config.batch_size)
        shard = trainer.dist.shard
        users = probe_set.users[shard.owns(probe_set.users)]
        snap = snapshot(trainer)
        sums = torch.zeros(len(self.samplers), 2, dtype=torch.float64)
        for i, sampler in enumerate(self.samplers):
            if not self.active[i]:
                continue
            state = copy.deepcopy(sampler.state_dict())
            trial_steps(trainer, _CandidateObjective(sampler, self.l2), rows,
                        PROBE_STEP_OFFSET + step, step // trainer.num_batches, size)
            user_table, item_table = model_tables(trainer.model)
            values = soft_recall(user_table, item_table, self.data, users, self.k)
            sums[i, 0], sums[i, 1] = float(values.sum()), float(values.numel())
            restore(trainer, snap)
            sampler.load_state_dict(state)
        if trainer.dist.distributed:
            sums = trainer.dist.all_reduce_(sums.to(trainer.device), "the probe's gains").cpu()
        gains = sums[:, 0] / sums[:, 1].clamp_min(1)
        return torch.where(self.active, gains, torch.full_like(gains, float("nan")))

    # -- logs and checkpoints --------------------------------------------------------------------

    def epoch_fields(self) -> dict[str, Any]:
        out = super().epoch_fields()
        out["probes"] = self.num_probes
        if self.last_gains:
            out["gains"] = dict(self.last_gains)
        return out

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update({"active": self.active.clone(), "scale2": self.scale2,
                    "num_probes": self.num_probes, "last_gains": dict(self.last_gains)})
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.active = state["active"].clone().to(torch.bool)
        self.scale2 = state["scale2"]
        self.num_probes = int(state["num_probes"])
        self.last_gains = dict(state["last_gains"])
