"""The autograd engine's step, the other half of :class:`~autosample_ext.training.trainer.Trainer`
beside the fused engine (training/fused.py): propagation, the objective's negatives and loss,
the backward pass, in a distributed run the gradient reduction over the ranks
(:class:`~autosample_ext.distributed.reducer.GradientReducer`), and the optimisers' steps. The
look-ahead steps of the validation-driven search (training/lookahead.py) reuse its loss. The
attributes it reads and sets are the ones ``Trainer.__init__`` defines."""
from __future__ import annotations

from typing import Any

import torch

from autosample_ext.samplers.base import SampleContext
from autosample_ext.training.objectives import Objective, StepOutput


class AutogradSteps:
    """One optimiser step by autograd (:meth:`_train_step`) and its loss (:meth:`_step_loss`)."""

    objective: Objective
    optimizer: Any
    reducer: Any
    stop: Any
    model: Any
    loss_sum: torch.Tensor
    first_loss: float | None
    needs_layers: bool
    num_batches: int

    def _train_step(self, users: torch.Tensor, pos: torch.Tensor, step: int) -> bool:
        """One optimiser step on the rows ``users, pos`` (this rank's share of the global batch
        in a distributed run); returns whether to stop at this step boundary (agreed by every
        rank in a distributed run)."""
        self.objective.before_step(self, step)   # the validation-driven search's probes
        self.optimizer.zero_grad(set_to_none=True)
        self.objective.zero_grad()
        out = self._step_loss(users, pos, step)
        if self.reducer is None:
            out.loss.backward()
            loss = out.loss.detach()
            stop = self.stop.requested
        else:
            units = (out.units if out.units is not None else int(users.shape[0])) if out else 0
            loss, stop = self.reducer.step(out.loss if out else None, units, int(users.shape[0]),
                                           self.stop.requested)
            if stop and not self.stop.requested:
                self.stop.request("another process of the run received a stop request")
        self.optimizer.step()
        self.objective.optimizer_step()
        self.loss_sum += loss.to(torch.float64)
        if step == 0:
            self.first_loss = float(loss)
        return stop

    def _step_loss(self, users: torch.Tensor, pos: torch.Tensor, step: int,
                   objective: Objective | None = None, epoch: int | None = None
                   ) -> StepOutput | None:
        """Propagation, the objective's negatives and loss; None for an empty batch (a rank that
        owns no user of a global batch), after :meth:`Objective.skip_step`. ``objective`` /
        ``epoch``: another objective and the epoch its samplers see (look-ahead steps,
        :mod:`autosample_ext.training.lookahead`); default the trainer's, ``step``'s epoch."""
        objective = objective or self.objective
        layers = None
        if self.needs_layers:
            # One propagation serves the samplers (MixGCF's per-layer tables) and the loss.
            layers = self.model.layer_embeddings()
            user_table, item_table = self.model.pool(layers[0]), self.model.pool(layers[1])
        else:
            user_table, item_table = self.model.propagate()
        ctx = SampleContext(users=users, pos_items=pos, model=self.model,
                            user_table=user_table.detach(), item_table=item_table.detach(),
                            step=step, layers=layers,
                            epoch=step // self.num_batches if epoch is None else epoch)
        if users.shape[0] == 0:
            objective.skip_step(ctx)
            return None
        return objective.step_loss(ctx, user_table, item_table)
