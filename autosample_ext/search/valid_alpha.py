"""The validation-driven AutoSample search (``--alpha-objective valid``, the default).

The paper's structure is kept: learnable logits ``theta [T]`` over the candidate samplers,
``alpha = softmax(theta)``; every training step a straight-through Gumbel-softmax sample
``z = ST-Gumbel((log alpha + g) / tau)`` picks the candidate whose negatives train the model;
model and alpha are learned in one run; the best-validation ``(W', alpha*)`` is kept and
argmax(alpha*) is retrained from W' (:mod:`autosample_ext.search.retrain`).

What moves alpha is not the training loss (which always prefers the easiest sampler, docs/search.md
"The paper's bias") but the validation metric. Every ``P`` steps (a *probe*,
:mod:`autosample_ext.search.probes`) each active candidate ``k`` trains ``W`` look-ahead steps
from the current model and optimiser state on the same rows, the smooth validation recall@K
``v_ku`` of each of a fixed set of validation users ``u`` is measured, and the state is put back.
With ``d_ku = v_ku - sum_j alpha_j v_ju`` (the candidate's gain over what the current mixture
expects, per user) and ``t_k`` its paired t-statistic over the users:

    theta_k += step_size * clip(t_k, -5, 5)

so a logit moves by the evidence: a clear gain moves alpha fast, a tie (noise) barely. A
candidate whose alpha falls below ``drop_below`` is no longer drawn or probed; when one is left
the search ends at that epoch's end and the retrain trains it on from the best-validation
weights. Only the selected candidate draws negatives on a training step; the others draw only
in probes. The Gumbel noise comes from the objective's seeded generator and every probe's rows
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

#: one probe moves a logit by at most this many steps (|t| clipped)
T_CLIP = 5.0


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


def gain_evidence(values: torch.Tensor, alpha: torch.Tensor, active: torch.Tensor
                  ) -> torch.Tensor:
    """Per candidate, the sums ``[T, 3]`` (``sum d``, ``sum d^2``, ``n``) of its per-user
    advantage ``d_u = v_ku - sum_j alpha_j v_ju`` over the users of ``values [T, U]`` (each
    active candidate's smooth recall per probe user); rows of inactive candidates are 0. Sums, so
    that the ranks of a distributed run add theirs."""
    out = torch.zeros(values.shape[0], 3, dtype=torch.float64)
    if values.shape[1] == 0:
        return out
    v = values[active]
    base = (alpha[active].unsqueeze(1) * v).sum(0)
    d = v - base
    out[active] = torch.stack([d.sum(1), (d * d).sum(1),
                               torch.full((v.shape[0],), float(v.shape[1]), dtype=torch.float64)], 1)
    return out


def evidence_step(logits: torch.Tensor, active: torch.Tensor, sums: torch.Tensor,
                  step_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The alpha update of one probe: ``theta_k += step_size * clip(t_k, -T_CLIP, T_CLIP)`` for
    every active candidate, ``t_k`` the paired t-statistic of its advantage over the mixture
    (:func:`gain_evidence`'s sums, over every rank's users). Returns the new logits and ``t``."""
    n = sums[:, 2].clamp_min(2)
    mean = sums[:, 0] / n
    var = (sums[:, 1] / n - mean * mean).clamp_min(0) * n / (n - 1)
    t = mean / (var / n).sqrt().clamp_min(1e-12)
    t = torch.where(active & (sums[:, 2] > 1), t.clamp(-T_CLIP, T_CLIP), torch.zeros_like(t))
    theta = logits.detach().to(torch.float64).cpu() + step_size * t
    return theta.to(logits.dtype), t


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
        self.num_probes = 0
        self.last_gains: dict[str, float] = {}
        self.last_evidence: dict[str, float] = {}
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

    #: the fused MF engine (training/fused.py) may train this search: one sampler per step
    fused_per_step = True

    def _draw(self) -> int:
        _, _, index = gumbel_softmax_st(self.masked_logits().detach(), self.tau, self.generator)
        self.selected_counts[index] += 1
        return index

    def draw_sampler(self) -> Sampler:
        """The step's Gumbel draw: the candidate that trains this step (the fused engine's
        entry; :meth:`step_loss` is the autograd one)."""
        return self.samplers[self._draw()]

    def skip_step(self, ctx: SampleContext) -> None:
        self._draw()

    def step_loss(self, ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor
                  ) -> StepOutput:
        index = self._draw()
        value, _ = candidate_step(self.samplers[index], ctx, user_table, item_table, self.l2)
        return StepOutput(loss=value, selected=index)

    def optimizer_step(self) -> None:
        """Nothing: alpha moves in the probes (:meth:`before_step`)."""

    def finished(self) -> bool:
        """One candidate left: training on is that sampler alone, which the retrain does from
        the best-validation weights; the search ends at this epoch's end."""
        return int(self.active.sum()) < 2

    # -- probes ----------------------------------------------------------------------------------

    def before_step(self, trainer: "Trainer", step: int) -> None:
        if int(self.active.sum()) < 2 or step % probe_interval(self.probes, trainer.num_batches):
            return
        values = self.measure(trainer, step)
        names = [n for n, a in zip(self.names, self.active.tolist()) if a]
        sums = gain_evidence(values, self.alpha.to(torch.float64), self.active)
        gains = torch.tensor([[float(values[i].sum()), float(values.shape[1])]
                              for i in range(len(self.samplers))], dtype=torch.float64)
        if trainer.dist.distributed:
            both = trainer.dist.all_reduce_(torch.cat([sums, gains], 1).to(trainer.device),
                                            "the probe's gains").cpu()
            sums, gains = both[:, :3], both[:, 3:]
        theta, t = evidence_step(self.logits, self.active, sums, self.probes.step_size)
        with torch.no_grad():
            self.logits.copy_(theta.to(self.logits.device))
        alpha = self.alpha
        for i in range(len(self.names)):
            if self.active[i] and alpha[i] < self.probes.drop_below and int(self.active.sum()) > 1:
                self.active[i] = False
                log.info("validation-driven search: %s dropped at step %d (alpha %.4f)",
                         self.names[i], step, float(alpha[i]))
        self.num_probes += 1
        mean = gains[:, 0] / gains[:, 1].clamp_min(1)
        self.last_gains = {n: float(mean[self.names.index(n)]) for n in names}
        self.last_evidence = {n: float(t[self.names.index(n)]) for n in names}

    def _probe_users(self, trainer: "Trainer") -> ProbeSet:
        if self._probe_set is None:
            seed = int(np.random.SeedSequence([self.seed, 0x9B0BE]).generate_state(1)[0])
            self._probe_set = ProbeSet(self.data, trainer.train_users, self.probes, seed, self.k)
        return self._probe_set

    def measure(self, trainer: "Trainer", step: int) -> torch.Tensor:
        """The probe at ``step``: ``[T, U]`` float64, each active candidate's smooth validation
        recall per probe user of this rank after its look-ahead steps (rows of inactive
        candidates are 0); the state is put back."""
        from autosample_ext.training.evaluate import model_tables

        probe_set = self._probe_users(trainer)
        rows = probe_set.batch_rows(step, self.probes.steps, trainer.config.batch_size)
        size = probe_set.batch_size(trainer.config.batch_size)
        shard = trainer.dist.shard
        users = probe_set.users[shard.owns(probe_set.users)]
        snap = snapshot(trainer)
        values = torch.zeros(len(self.samplers), users.numel(), dtype=torch.float64)
        for i, sampler in enumerate(self.samplers):
            if not self.active[i]:
                continue
            state = copy.deepcopy(sampler.state_dict())
            trial_steps(trainer, _CandidateObjective(sampler, self.l2), rows,
                        PROBE_STEP_OFFSET + step, step // trainer.num_batches, size)
            values[i] = soft_recall(*model_tables(trainer.model), self.data, users, self.k)
            restore(trainer, snap)
            sampler.load_state_dict(state)
        return values

    # -- logs and checkpoints --------------------------------------------------------------------

    def epoch_fields(self) -> dict[str, Any]:
        out = super().epoch_fields()
        out["probes"] = self.num_probes
        out["active"] = [n for n, a in zip(self.names, self.active.tolist()) if a]
        if self.last_gains:
            out["gains"] = dict(self.last_gains)
            out["evidence"] = dict(self.last_evidence)
        return out

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update({"active": self.active.clone(), "num_probes": self.num_probes,
                    "last_gains": dict(self.last_gains),
                    "last_evidence": dict(self.last_evidence)})
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.active = state["active"].clone().to(torch.bool)
        self.num_probes = int(state["num_probes"])
        self.last_gains = dict(state["last_gains"])
        self.last_evidence = dict(state["last_evidence"])
