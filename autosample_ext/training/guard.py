"""Divergence guard: stop a run whose training loss is non-finite or has exploded.

Contract: after every epoch the trainer calls :func:`check_divergence` with the epoch's mean
training loss and the loss of the run's very first step (before any update). The run has
diverged when the mean is NaN / inf, or larger than ``factor * max(first, 1)``. The floor of 1
keeps the test meaningful for a first loss near 0 (a model retrained from searched weights).
BPR starts near ln 2 = 0.69, so the default factor 1000 stops a BPR run at a mean loss of 1000,
a margin of about -1000 between positive and negative scores; no run that is learning gets
there. GDNS's group hinge sums N x N terms and starts near N^2; the bound scales with it.
"""
from __future__ import annotations

import math

DIVERGENCE_FACTOR = 1e3


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite or exploded; the message says where and what to do."""

    def __init__(self, message: str, *, tag: str, epoch: int, loss: float) -> None:
        super().__init__(message)
        self.tag = tag
        self.epoch = epoch
        self.loss = loss


def check_divergence(loss: float, first: float | None, *, factor: float, tag: str, epoch: int,
                     lr: float) -> None:
    """Raise :class:`TrainingDiverged` when ``loss`` (the mean of epoch ``epoch``, 1-based) is
    non-finite or above ``factor * max(first, 1)``; ``factor <= 0`` disables the bound test
    (never the non-finite one)."""
    where = f"{tag or 'run'}: training diverged at epoch {epoch}"
    hint = f"lower the learning rate (lr = {lr:g})"
    if not math.isfinite(loss):
        raise TrainingDiverged(f"{where}: the mean training loss is {loss}; {hint}",
                               tag=tag, epoch=epoch, loss=loss)
    if factor > 0 and first is not None and math.isfinite(first):
        bound = factor * max(abs(first), 1.0)
        if loss > bound:
            raise TrainingDiverged(
                f"{where}: the mean training loss {loss:.4g} is more than {factor:g}x the first "
                f"step's {first:.4g}; {hint}", tag=tag, epoch=epoch, loss=loss)
