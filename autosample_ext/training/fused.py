"""The fused training engine: MF / GMF with RNS, PNS, DNS or AOBPR trained by the
``mf_bpr_train`` operator instead of autograd.

Per step the operator does what the autograd path does (same batches in the same order, the same
negatives: the samplers' Philox streams, DNS's scores and selection, AOBPR's ranking; the same
BPR + L2 loss) but computes the gradient of the batch's rows directly, without autograd and
without dense gradient tables. With ``optimizer="sgd"``, ``"adagrad"`` or ``"adam"`` (dense Adam:
the batch's rows with their gradient, every other row with a zero gradient, as torch.optim.Adam)
the parameters equal the autograd path's to float rounding (tested); ``"lazy_adam"`` (lazy /
sparse Adam, this engine only) updates the batch's rows only: rows not in a batch keep their
moments and do not move (docs/performance.md, "Fused training engine"). The engine's optimiser state
(:class:`FusedOptimizer`) goes into the trainer's checkpoints like a torch optimiser's.

RNS, PNS and DNS run whole chunks of consecutive steps in one operator call (:data:`STEPS_PER_CALL`;
one step per call when the trainer has a per-step hook); AOBPR ranks with the current tables
in Python (``rank_topk``) and hands its negatives to the operator step by step.

What the engine does not train (LightGCN, NGCF, GDNS, SRNS, MixGCF, the AutoSample mixture
search, distributed runs) stays on the autograd path: :func:`fused_unsupported` says why.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from autosample_ext import ops
from autosample_ext.models.mf import GMF, MF
from autosample_ext.ops.fused import new_state, state_names
from autosample_ext.samplers.aobpr import AOBPRSampler
from autosample_ext.samplers.base import STREAMS_PER_STEP, SampleContext, Sampler
from autosample_ext.samplers.dns import DNSSampler
from autosample_ext.samplers.pns import PNSSampler
from autosample_ext.samplers.rns import RNSSampler

if TYPE_CHECKING:
    from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("fused", "autograd")
#: the samplers the fused engine draws for (AOBPR through its own ranking, step by step)
FUSED_SAMPLERS: tuple[type[Sampler], ...] = (RNSSampler, PNSSampler, DNSSampler, AOBPRSampler)
#: consecutive steps per operator call (one Python round trip each); see bench/bench_fused.py
STEPS_PER_CALL = 32
#: torch's defaults, which the autograd path's optimisers use
ADAM_BETAS, ADAM_EPS, ADAGRAD_EPS = (0.9, 0.999), 1e-8, 1e-10


def _parts(sampler: Sampler) -> list[Sampler]:
    return list(getattr(sampler, "parts", [sampler]))


def fused_unsupported(model: Any, objective: Any, distributed: bool = False) -> str | None:
    """None when the fused engine can train ``model`` with ``objective``; else why not (one
    line, for the notice that the run trains with autograd)."""
    from autosample_ext.training.objectives import SamplerObjective

    if type(model) not in (MF, GMF):
        return f"the {type(model).__name__} model (the fused engine trains MF and GMF)"
    per_step = getattr(objective, "fused_per_step", False)  # one sampler drawn per step
    if not isinstance(objective, SamplerObjective) and not per_step:
        return ("the AutoSample mixture search (alpha's gradient needs every candidate's loss "
                "each step)")
    if not per_step and objective.loss_name != "bpr":
        return f"the {objective.loss_name} loss"
    bad = [p.name for s in objective.samplers for p in _parts(s) if type(p) not in FUSED_SAMPLERS]
    if bad:
        return f"the {', '.join(bad)} sampler (the fused engine draws RNS, PNS, DNS and AOBPR)"
    if distributed:
        return "a distributed run (torchrun)"
    if model.user_embedding.weight.dtype not in (torch.float32, torch.float64):
        return f"{model.user_embedding.weight.dtype} weights"
    return None


class FusedOptimizer:
    """The optimiser state of the fused engine, in the shape of a torch optimiser for the
    trainer and its checkpoints: ``state_dict`` holds the state tensors of the operator (in
    :func:`~autosample_ext.ops.fused.state_names` order) and the number of steps taken."""

    def __init__(self, name: str, tables: list[torch.Tensor], lr: float) -> None:
        if name not in ("sgd", "adagrad", "adam", "lazy_adam"):
            raise ValueError(f"fused engine: unknown optimizer {name!r}")
        self.name = name
        self.lr = float(lr)
        self.state = new_state(name, *tables)
        self.names = state_names(name, len(tables) == 3)
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to clear: the operator keeps no gradients."""

    def step(self) -> None:
        raise RuntimeError("fused engine: the operator updates the parameters")

    def state_dict(self) -> dict[str, Any]:
        # lr: for the record (a resume takes the run's configured rate)
        return {"engine": "fused", "optimizer": self.name, "steps": self.steps, "lr": self.lr,
                "state": dict(zip(self.names, self.state))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("engine") != "fused" or state.get("optimizer") != self.name:
            raise ValueError(f"fused engine: the optimiser state is {state.get('optimizer')!r} of "
                             f"the {state.get('engine', 'autograd')} engine, expected {self.name!r} "
                             f"of the fused engine")
        saved = state["state"]
        if sorted(saved) != sorted(self.names):
            raise ValueError(f"fused engine: optimiser state {sorted(saved)} != {sorted(self.names)}")
        for name, tensor in zip(self.names, self.state):
            tensor.copy_(saved[name])
        self.steps = int(state["steps"])


class FusedEngine:
    """Trains the steps of a :class:`~autosample_ext.training.trainer.Trainer` whose model and
    objective :func:`fused_unsupported` accepts (module docstring)."""

    def __init__(self, model: MF, objective: Any, optimizer: str, lr: float) -> None:
        self.model = model
        self.objective = objective
        self.l2 = float(objective.l2)  # the objective's L2 weight, as its loss uses
        self.gmf = isinstance(model, GMF)
        # the validation-driven AutoSample search: a sampler drawn per step, probes before steps
        self.per_step = bool(getattr(objective, "fused_per_step", False))
        self.optimizer = FusedOptimizer(optimizer, self.tables(), lr)

    def tables(self) -> list[torch.Tensor]:
        """The parameters the operator updates in place (views of the model's)."""
        model = self.model
        out = [model.user_embedding.weight.detach(), model.item_embedding.weight.detach()]
        if self.gmf:
            out.append(model.weight.detach())
        return out

    def _active(self, trainer: Trainer, users: torch.Tensor, pos: torch.Tensor,
                step: int) -> Sampler:
        """The sampler of this step (a schedule's segment), as the objective would name it."""
        ctx = SampleContext(users=users, pos_items=pos, model=self.model,
                            user_table=users.new_empty(0), item_table=users.new_empty(0),
                            step=step, epoch=step // trainer.num_batches)
        if self.per_step:  # the search's probes (before the step), then its draw
            self.objective.before_step(trainer, step)
            return self.objective.draw_sampler().active(ctx)
        sampler = self.objective.sampler.active(ctx)
        if sampler is not self.objective.sampler:
            self.objective._active_name = sampler.name
        return sampler

    def train_steps(self, trainer: Trainer, epoch: int, perm: torch.Tensor, first: int) -> int:
        """Steps ``first ..`` of ``epoch`` (one call of the operator): returns the next batch
        index. Calls the trainer's per-step hook after each step."""
        cfg = trainer.config
        steps = 1 if trainer.on_step is not None or self.per_step else STEPS_PER_CALL
        last = min(trainer.num_batches, first + steps)
        step0 = epoch * trainer.num_batches + first
        idx = perm[first * cfg.batch_size:last * cfg.batch_size]
        users, pos = trainer.training_rows(idx)
        sampler = self._active(trainer, users[:cfg.batch_size], pos[:cfg.batch_size], step0)
        if isinstance(sampler, AOBPRSampler) and last > first + 1:
            last = first + 1  # AOBPR ranks with the tables of each step: one step per call
            users, pos = users[:cfg.batch_size], pos[:cfg.batch_size]
        losses = self._call(sampler, users, pos, step0, cfg.batch_size, last - first)
        # step by step, as the autograd path adds them (a resumed run sums the same way)
        trainer.loss_sum.copy_(torch.cat([trainer.loss_sum.view(1), losses]).cumsum(0)[-1])
        if step0 == 0:
            trainer.first_loss = float(losses[0])
        if trainer.on_step is not None:
            for s in range(last - first):
                trainer.on_step(step0 + s)
        return last

    def trial_steps(self, sampler: Sampler, users: torch.Tensor, pos: torch.Tensor, step0: int,
                    batch_size: int, epoch: int) -> None:
        """Steps of ``sampler`` alone (a schedule's segment of ``epoch``) on the rows ``users,
        pos`` (whole batches of ``batch_size``), step numbers from ``step0``: the look-ahead
        steps of the validation-driven search (training/lookahead.py); the trainer's loss sums
        are untouched."""
        steps = users.shape[0] // batch_size
        ctx = SampleContext(users=users[:batch_size], pos_items=pos[:batch_size], model=self.model,
                            user_table=users.new_empty(0), item_table=users.new_empty(0),
                            step=step0, epoch=epoch)
        sampler = sampler.active(ctx)
        chunk = 1 if isinstance(sampler, AOBPRSampler) else STEPS_PER_CALL
        for first in range(0, steps, chunk):
            n = min(chunk, steps - first)
            rows = slice(first * batch_size, (first + n) * batch_size)
            self._call(sampler, users[rows], pos[rows], step0 + first, batch_size, n)

    def _call(self, sampler: Sampler, users: torch.Tensor, pos: torch.Tensor, step0: int,
              batch_size: int, steps: int) -> torch.Tensor:
        opt = self.optimizer
        tables = self.tables()
        kw: dict[str, Any] = {"num_negatives": sampler.num_negatives}
        if isinstance(sampler, AOBPRSampler):
            user_table, item_table = (t.detach() for t in self.model.propagate())
            ctx = SampleContext(users=users, pos_items=pos, model=self.model, user_table=user_table,
                                item_table=item_table, step=step0)
            kw.update(sampler="given", negatives=sampler.sample(ctx).items)
        elif isinstance(sampler, DNSSampler):
            o = sampler.options
            kw.update(sampler="dns", num_candidates=o.num_candidates, top_k=o.top_k)
            if o.top_k > 1:  # the DNS sampler's uniforms (stream 1 of each step), row-major
                kw["cdf"] = sampler._cdf
                kw["uniforms"] = torch.cat([
                    sampler.rand(sampler.generator(step0 + s, 1),
                                 users[s * batch_size:(s + 1) * batch_size].shape[0]
                                 * sampler.num_negatives, 1, dtype=torch.float64)
                    for s in range(steps)]).view(-1, sampler.num_negatives)
        elif isinstance(sampler, PNSSampler):
            kw.update(sampler="pns", alias_prob=sampler.alias_prob, alias_idx=sampler.alias_idx)
        else:
            kw["sampler"] = "rns"
        if opt.name in ("adam", "lazy_adam"):
            kw.update(beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], eps=ADAM_EPS)
        elif opt.name == "adagrad":
            kw["eps"] = ADAGRAD_EPS
        seed, offset = sampler.stream(step0, 0)
        losses = ops.mf_bpr_train(
            tables[0], tables[1], opt.state, sampler.train_indptr, sampler.train_indices, users,
            pos, weight=tables[2] if self.gmf else None, batch_size=batch_size, seed=seed,
            offset=offset, offset_stride=STREAMS_PER_STEP, lr=opt.lr, l2=self.l2,
            optimizer=opt.name, opt_step=opt.steps, validate=False, **kw)
        opt.steps += steps
        return losses
