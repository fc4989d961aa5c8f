"""AutoSample search (Algorithm 1 of Lyu et al., arXiv 2311.03526; docs/search.md).

T candidate samplers, learnable logits ``theta [T]`` with ``alpha = softmax(theta)`` (uniform at
start). Every training step:

1. every candidate draws its own negatives for the batch ("T times the negatives", §9: the
   forward value uses only the selected candidate, but the gradient for alpha needs every
   candidate's loss ``L_t``);
2. ``z = straight-through Gumbel-softmax((log alpha + g) / tau)``: the forward value is the
   one-hot of the argmax, the backward pass uses the soft sample, so every logit gets a gradient;
3. ``loss = sum_t z_t * L_t``; the model optimiser and the alpha optimiser (separate learning
   rates) both step on this loss for the same batch (Algorithm 1, lines 5-6, as written: §9).

The Gumbel noise comes from a CPU ``torch.Generator`` owned by the objective (saved in
checkpoints), so a seed fixes every draw.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from autosample_ext.samplers.base import SampleContext, Sampler
from autosample_ext.training.objectives import Objective, StepOutput, candidate_losses
from autosample_ext.training.optim import make_adam


def gumbel_softmax_st(logits: torch.Tensor, tau: float, generator: torch.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Straight-through Gumbel-softmax sample of a categorical with ``softmax(logits)``.

    Args:
        logits: ``[T]`` float (any device), the unnormalised log-probabilities.
        tau: temperature > 0.
        generator: CPU generator for the Gumbel noise ``g = -log(-log U)``.

    Returns:
        ``(z, y_soft, index)``: ``z [T]`` whose value is the one-hot of ``index`` and whose
        gradient is that of ``y_soft = softmax((log_softmax(logits) + g) / tau)``.
    """
    if tau <= 0:
        raise ValueError(f"gumbel_softmax_st: tau must be > 0, got {tau}")
    tiny = torch.finfo(torch.float32).tiny
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    g = -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))
    g = g.to(device=logits.device, dtype=logits.dtype)
    y_soft = torch.softmax((torch.log_softmax(logits, dim=-1) + g) / tau, dim=-1)
    index = int(torch.argmax(y_soft.detach()))
    y_hard = F.one_hot(torch.tensor(index, device=logits.device), logits.shape[-1]).to(logits.dtype)
    z = y_hard - y_soft.detach() + y_soft
    return z, y_soft, index


@dataclass
class SearchConfig:
    """Search-stage settings (the model's settings are :class:`TrainConfig`).

    candidates: sampler names of the search space, in order (alpha's order).
    alpha_lr: Adam learning rate of the logits.
    tau: Gumbel-softmax temperature.
    """

    candidates: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")
    alpha_lr: float = 0.01
    tau: float = 1.0

    def __post_init__(self) -> None:
        self.candidates = tuple(self.candidates)
        if len(self.candidates) < 2:
            raise ValueError(f"search: the search space needs at least 2 samplers, got {list(self.candidates)}")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"search: the search space repeats a sampler: {list(self.candidates)}")
        if self.tau <= 0:
            raise ValueError(f"search: tau must be > 0, got {self.tau}")
        if self.alpha_lr <= 0:
            raise ValueError(f"search: alpha_lr must be > 0, got {self.alpha_lr}")


class AutoSampleObjective(Objective):
    """The search-stage training objective: Gumbel-weighted sum of the candidates' losses."""

    def __init__(self, samplers: Sequence[Sampler], names: Sequence[str], *, tau: float,
                 alpha_lr: float, l2: float, seed: int, device: torch.device | str = "cpu") -> None:
        if len(samplers) != len(names) or len(samplers) < 2:
            raise ValueError("AutoSampleObjective: needs >= 2 samplers and one name each")
        self.samplers = list(samplers)
        self.names = [str(n) for n in names]
        self.tau = float(tau)
        self.l2 = float(l2)
        self.logits = torch.zeros(len(samplers), device=device, requires_grad=True)
        self.alpha_optimizer = make_adam([self.logits], alpha_lr, self.logits.device)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(np.random.SeedSequence([int(seed), 0x6A5]).generate_state(1)[0]))
        self.selected_counts = np.zeros(len(samplers), dtype=np.int64)

    @property
    def alpha(self) -> torch.Tensor:
        """``softmax(logits)``, detached, ``[T]`` on the CPU."""
        return torch.softmax(self.logits.detach(), dim=0).cpu()

    def alpha_dict(self) -> dict[str, float]:
        return {n: float(a) for n, a in zip(self.names, self.alpha.tolist())}

    def zero_grad(self) -> None:
        self.alpha_optimizer.zero_grad(set_to_none=True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.logits]

    def skip_step(self, ctx: SampleContext) -> None:
        """No rows here this step: the Gumbel draw still advances (one draw per global step,
        the same on every rank of a distributed run)."""
        _, _, index = gumbel_softmax_st(self.logits, self.tau, self.generator)
        self.selected_counts[index] += 1

    def step_loss(self, ctx: SampleContext, user_table: torch.Tensor, item_table: torch.Tensor
                  ) -> StepOutput:
        candidates = [sampler.sample(ctx) for sampler in self.samplers]
        losses, pos_s, neg_s = candidate_losses(ctx, user_table, item_table, candidates, self.l2)
        z, _, index = gumbel_softmax_st(self.logits, self.tau, self.generator)
        loss = (z * losses).sum()
        for sampler, negatives, neg in zip(self.samplers, candidates, neg_s):
            sampler.observe(ctx, negatives, pos_s, neg)
        self.selected_counts[index] += 1
        return StepOutput(loss=loss, selected=index)

    def optimizer_step(self) -> None:
        self.alpha_optimizer.step()

    def epoch_fields(self) -> dict[str, Any]:
        counts = self.selected_counts.copy()
        self.selected_counts[:] = 0
        return {"alpha": self.alpha_dict(),
                "selected": {n: int(c) for n, c in zip(self.names, counts)}}

    def best_fields(self) -> dict[str, Any]:
        return {"alpha_logits": self.logits.detach().cpu().clone()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "logits": self.logits.detach().cpu().clone(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "selected_counts": torch.from_numpy(self.selected_counts.copy()),
            "samplers": [s.state_dict() for s in self.samplers],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.logits.copy_(state["logits"].to(self.logits.device))
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.generator.set_state(state["generator"])
        self.selected_counts[:] = state["selected_counts"].numpy()
        for sampler, s in zip(self.samplers, state["samplers"]):
            sampler.load_state_dict(s)
