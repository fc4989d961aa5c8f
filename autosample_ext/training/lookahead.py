"""Look-ahead steps: train a few steps from the current state with another objective, then put
the state back, as if the steps never happened.

The validation-driven AutoSample search (:mod:`autosample_ext.search.valid_alpha`) measures
what a few steps of each candidate sampler would do to the validation metric; it calls
:func:`snapshot`, :func:`trial_steps` and :func:`restore` between two training steps (from
:meth:`~autosample_ext.training.objectives.Objective.before_step`). The steps are real optimiser
steps of the trainer's model and optimiser (Adam's moments included), sharded and reduced over
the ranks of a distributed run exactly as training steps are; :func:`restore` puts back the
model, the optimiser and the global RNG states, so the training run continues bit for bit as
it would have.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from autosample_ext.training.objectives import Objective
from autosample_ext.training.trainer_state import rng_state, set_rng_state

if TYPE_CHECKING:
    from autosample_ext.training.trainer import Trainer


@dataclass
class Snapshot:
    """What :func:`restore` puts back: model tensors, optimiser state, global RNG states."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any]


def snapshot(trainer: "Trainer") -> Snapshot:
    """A copy of the trainer's model and optimiser states and of the global RNG states."""
    model = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return Snapshot(model, copy.deepcopy(trainer.optimizer.state_dict()),
                    rng_state(trainer.dist.distributed))


def restore(trainer: "Trainer", snap: Snapshot) -> None:
    """Put the state of :func:`snapshot` back (in place: the model's parameters stay the same
    tensors, so the optimiser keeps pointing at them). ``snap`` stays usable."""
    with torch.no_grad():
        for name, value in trainer.model.state_dict().items():
            value.copy_(snap.model[name])
    trainer.optimizer.load_state_dict(copy.deepcopy(snap.optimizer))
    set_rng_state(snap.rng)


def trial_steps(trainer: "Trainer", objective: Objective, rows: torch.Tensor, first_step: int,
                epoch: int, batch_size: int | None = None) -> None:
    """Optimiser steps of ``objective`` on the training pairs ``rows`` (indices into the
    trainer's training pairs, the same on every rank), ``batch_size`` rows per step (default
    the training batch size), step
    numbers ``first_step, first_step + 1, ...`` (the samplers' random streams), the samplers
    seeing epoch ``epoch`` (a schedule's segment). Each rank trains its users' rows and the
    gradients are reduced as in training. The trainer's loss sums and counters are untouched."""
    size = int(batch_size or trainer.config.batch_size)
    if trainer.fused is not None:  # MF with the fused engine: the operator takes the steps
        rows = rows[:rows.numel() // size * size].to(trainer.train_users.device)
        trainer.fused.trial_steps(objective.samplers[0], *trainer.training_rows(rows), first_step,
                                  size, epoch)
        return
    shard = trainer.dist.shard
    for i, start in enumerate(range(0, int(rows.numel()), size)):
        idx = rows[start:start + size].to(trainer.train_users.device)
        users, pos = trainer.training_rows(idx)
        if shard.sharded:
            mine = shard.owns(users)
            users, pos = users[mine], pos[mine]
        trainer.optimizer.zero_grad(set_to_none=True)
        out = trainer._step_loss(users, pos, first_step + i, objective, epoch)
        if trainer.reducer is None:
            if out is not None:
                out.loss.backward()
        else:
            units = (out.units if out.units is not None else int(users.shape[0])) if out else 0
            trainer.reducer.step(out.loss if out else None, units, int(users.shape[0]), False)
        trainer.optimizer.step()
