"""The training loop shared by single-sampler training, the AutoSample search and retraining.

One epoch = the training pairs ``data.train`` in an order drawn from ``(seed, epoch)``, cut into
batches of ``batch_size`` (user, positive) rows; for an objective whose ``batch_unit`` is
``"users"`` (GDNS's group loop), every user with a training positive once, in batches of
``batch_size`` users (rows ``(u, -1)``). Each step:

    user_table, item_table = model.propagate()          # once per step, shared by candidates
    loss = objective.step_loss(ctx, user_table, item_table)   # sampler(s) -> negatives -> loss
    loss.backward(); model Adam step; objective's own optimiser step (alpha, for the search)

(the autograd engine's step: training/autograd_engine.py) or, with the fused engine
(``TrainConfig.engine``, training/fused.py: MF / GMF with RNS, PNS, DNS or AOBPR), the same steps
by the ``mf_bpr_train`` operator, several per call.

Validation every ``eval_every`` epochs on ``eval_split``; the best-validation state (model
weights and the objective's best fields, e.g. alpha) is kept; early stopping after ``patience``
evaluations without improvement. At the end the best weights are loaded back and, unless the
protocol evaluates on test directly (DENS), the test metrics are computed with them.

Checkpoints (atomic, tensors and plain types only) are written at the end of every epoch that
evaluates (``TrainConfig.checkpoint_every`` sets another cadence), at the end of the run, and at
the next step boundary when a stop is requested (SIGINT / SIGTERM through :class:`StopFlag`). They
hold everything a resumed run needs to continue exactly: model, optimiser, objective (sampler
states, alpha logits and optimiser, Gumbel generator), the global RNG states, the epoch / step
counters, the running loss of a partial epoch, the best-so-far state and the log so far. Since
the data order depends only on (seed, epoch) and samplers draw by (seed, step), a resumed run
ends with exactly the metrics of an uninterrupted one.

In a distributed run (``dist``, :mod:`autosample_ext.distributed.context`) each rank trains
its users' rows of every global batch, the gradients are reduced over the ranks before the
optimiser steps, evaluation is sharded by users, and rank 0 writes the checkpoints with every
rank's own state in them.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.distributed.context import DistContext
from autosample_ext.distributed.reducer import GradientReducer
from autosample_ext.models.base import Recommender
from autosample_ext.training.autograd_engine import AutogradSteps
from autosample_ext.training.checkpoint import cpu_state
from autosample_ext.training.config import StopFlag, TrainConfig, TrainingInterrupted, TrainResult
from autosample_ext.training.evaluate import evaluate_model
from autosample_ext.training.fused import FusedEngine, fused_unsupported
from autosample_ext.training.guard import TrainingDiverged, check_divergence
from autosample_ext.training.objectives import Objective
from autosample_ext.training.optim import make_optimizer
from autosample_ext.training.trainer_state import TrainerCheckpoints

log = logging.getLogger(__name__)


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the ``n`` training pairs in ``epoch``: a function of (seed, epoch) only."""
    state = np.random.SeedSequence([int(seed), int(epoch), 0x0DA7A]).generate_state(2)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=gen)


class Trainer(AutogradSteps, TrainerCheckpoints):
    """Trains ``model`` with ``objective`` under ``config``; see the module docstring.

    Args:
        data: the split dataset.
        model: the model (already on its device).
        objective: :class:`SamplerObjective` or the search's objective.
        config: :class:`TrainConfig`.
        checkpoint_path: where epoch-end checkpoints go (None: no checkpoints).
        stop: a :class:`StopFlag` set by signal handlers.
        on_epoch: called with each new log line (the run directory appends it to log.jsonl).
        on_step: called with the global step after each optimiser step (tests inject faults).
        tag: the run's name in log lines ("seed0/search").
        dist: this process's place in a distributed run (:mod:`~autosample_ext.distributed.context`):
            the rank trains its users' rows of each global batch, gradients are reduced over the
            ranks, evaluation is sharded, rank 0 writes the checkpoints. Default: one process.
    """

    def __init__(self, data: InteractionData, model: Recommender, objective: Objective,
                 config: TrainConfig, *, checkpoint_path: str | Path | None = None, stop: StopFlag | None = None,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None,
                 on_step: Callable[[int], None] | None = None, tag: str = "",
                 dist: DistContext | None = None) -> None:
        if data.train.nnz == 0:
            raise ValueError(f"train: dataset {data.name!r} has no training pairs")
        if config.eval_split == "valid" and data.valid.nnz == 0:
            raise ValueError(f"train: dataset {data.name!r} has no validation split; "
                             "use a split with validation or the DENS protocol (eval on test)")
        self.data = data
        self.model = model
        self.objective = objective
        self.config = config
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.stop = stop or StopFlag()
        self.on_epoch = on_epoch
        self.on_step = on_step
        self.first_loss: float | None = None  # loss of step 0, the divergence guard's scale
        self.tag = tag
        self.device = next(model.parameters()).device
        self.dist = dist or DistContext()
        # The fused engine (training/fused.py) where it applies; else autograd (with the reason).
        self.fused: FusedEngine | None = None
        self.autograd_reason = ("--engine autograd" if config.engine == "autograd" else
                                fused_unsupported(model, objective, self.dist.distributed))
        if self.autograd_reason is None:
            self.fused = FusedEngine(model, objective, config.optimizer, config.lr)
            self.optimizer = self.fused.optimizer
        else:
            if config.optimizer == "lazy_adam":
                raise ValueError(f"train: optimizer 'lazy_adam' needs the fused engine, which does "
                                 f"not train {self.autograd_reason}; use 'adam'")
            if config.engine == "fused":
                log.debug("%s: trains with the autograd engine: the fused engine does not train %s",
                          tag or "run", self.autograd_reason)
            self.optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr,
                                            self.device)
        self.reducer: GradientReducer | None = None
        if self.dist.distributed:
            rows = [] if model.is_graph_model else [model.user_embedding.weight,
                                                     model.item_embedding.weight]
            self.reducer = GradientReducer(self.dist, [*model.parameters(), *objective.parameters()],
                                           rows)
        for sampler in objective.samplers:
            sampler.check_model(model)
        self.needs_layers = any(s.needs_graph_model for s in objective.samplers)
        users, items = data.train.pairs()
        if objective.batch_unit == "users":
            # GDNS's loop: an epoch visits every user with a training positive once, batches of
            # users (rows (u, -1): the objective draws each user's positive group itself).
            users = torch.nonzero(data.train.degrees() > 0).flatten()
            items = torch.full_like(users, -1)
        self.train_users = users.to(self.device)
        self.train_items = items.to(self.device)
        if config.drop_last:
            self.num_batches = users.shape[0] // config.batch_size
            if self.num_batches == 0:
                raise ValueError(f"train: dataset {data.name!r} has {users.shape[0]} training pairs, "
                                 f"fewer than one batch of {config.batch_size}; with drop_last "
                                 "(the DENS protocol) no step would be taken")
        else:
            self.num_batches = math.ceil(users.shape[0] / config.batch_size)
        # progress
        self.epoch = 0            # next epoch to run
        self.batch = 0            # next batch within self.epoch
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.epoch_seconds = 0.0
        self.epoch_cpu_seconds = 0.0
        self.log: list[dict[str, Any]] = []
        self.best_value = -math.inf
        self.best_epoch = 0
        self.best_metrics: dict[str, float] = {}
        self.best_model: dict[str, torch.Tensor] | None = None
        self.best_extra: dict[str, Any] = {}
        self.bad_evals = 0
        self.stopped_early = False
        self.seconds = 0.0
        self.cpu_seconds = 0.0      # process CPU time (time.process_time) of the epochs run
        self.done = False
        self.result: TrainResult | None = None
        self._last_model: dict[str, torch.Tensor] | None = None

    @property
    def engine(self) -> str:
        """The engine that trains this run: ``"fused"`` or ``"autograd"``."""
        return "fused" if self.fused is not None else "autograd"

    def _guard_divergence(self, epoch: int) -> None:
        """After the steps of ``epoch`` (0-based): a non-finite or exploded mean loss logs the
        epoch with ``"diverged": true`` and raises TrainingDiverged (training/guard.py)."""
        loss = float(self.loss_sum) / self.num_batches
        try:
            check_divergence(loss, self.first_loss, factor=self.config.divergence_factor,
                             tag=self.tag, epoch=epoch + 1, lr=self.config.lr)
        except TrainingDiverged:
            entry = {"run": self.tag, "epoch": epoch + 1, "loss": loss, "diverged": True}
            self.log.append(entry)
            if self.on_epoch is not None:
                self.on_epoch(entry)
            raise

    # -- training ------------------------------------------------------------------------------

    def train_batches(self, epoch: int) -> None:
        """The steps of ``epoch`` from ``self.batch`` on (no evaluation, no checkpoint unless a
        stop is requested: then checkpoint and raise :class:`TrainingInterrupted`)."""
        cfg = self.config
        perm = epoch_permutation(cfg.seed, epoch, self.train_users.shape[0]).to(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        shard = self.dist.shard
        while self.batch < self.num_batches:
            b = self.batch
            if self.fused is not None:  # one or more steps in one operator call
                self.batch = self.fused.train_steps(self, epoch, perm, b)  # never distributed
            else:
                idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                step = epoch * self.num_batches + b
                users, pos = self.training_rows(idx)
                if shard.sharded:  # this rank's rows of the global batch, in its order
                    mine = shard.owns(users)
                    users, pos = users[mine], pos[mine]
                stop = self._train_step(users, pos, step)
                self.batch = b + 1
                if self.on_step is not None:
                    self.on_step(step)
            if not self.dist.distributed:
                stop = self.stop.requested
            if stop and self.batch < self.num_batches:
                self.epoch_seconds += time.perf_counter() - t0
                self.epoch_cpu_seconds += time.process_time() - c0
                self.save()
                raise TrainingInterrupted(f"{self.tag or 'run'}: {self.stop.reason}; "
                                          f"checkpoint at epoch {epoch + 1}, step {self.batch}")
        # A value error a CUDA op reported asynchronously during the epoch is raised here, where
        # the epoch synchronises anyway (the loss is read next); no-op on the CPU.
        ops.check_errors()
        self._guard_divergence(epoch)

    def training_rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training pairs at positions ``idx`` (1-D int64): users, positive items.
        ``index_select`` rather than ``tensor[idx]``: the same values, ~6x faster for the random
        permutation's positions on the CPU (advanced indexing takes TensorIterator's general
        path), which was ~15% of a fused MF epoch on ml-1m (bench/bench_fused.py)."""
        return self.train_users.index_select(0, idx), self.train_items.index_select(0, idx)

    def _evaluate(self, split: str) -> dict[str, float]:
        return evaluate_model(self.model, self.data, split, self.config.ks,
                              batch_size=self.config.eval_batch_size, progress=self.config.progress,
                              protocol=self.config.eval_protocol, dist=self.dist)

    def evaluates_after(self, epoch: int) -> bool:
        """Whether the schedule evaluates after (1-based) ``epoch`` (``TrainConfig.eval_start``)."""
        cfg = self.config
        if cfg.eval_start is None:
            return epoch % cfg.eval_every == 0 or epoch == cfg.epochs
        return epoch >= cfg.eval_start and (epoch - cfg.eval_start) % cfg.eval_every == 0

    def _end_epoch(self, epoch: int) -> None:
        """Log line, evaluation, best state, early stopping; adds its time to the epoch's."""
        t0, c0 = time.perf_counter(), time.process_time()
        cfg = self.config
        entry: dict[str, Any] = {"run": self.tag, "epoch": epoch + 1,
                                 "loss": float(self.loss_sum) / self.num_batches,
                                 "steps": self.num_batches}
        entry.update(self.objective.epoch_fields())
        sums = self.objective.epoch_sums()
        if sums:  # diagnostics summed over the ranks (every rank has the same keys)
            sums = dict(zip(sums, self.dist.sum_floats(list(sums.values()), "epoch diagnostics")))
            entry.update(self.objective.epoch_fields_from_sums(sums))
        if self.evaluates_after(epoch + 1):
            metrics = self._evaluate(cfg.eval_split)
            entry[cfg.eval_split] = metrics
            value = metrics[cfg.metric]
            if value > self.best_value or (cfg.ties_improve and value == self.best_value):
                self.best_value = value
                self.best_epoch = epoch + 1
                self.best_metrics = dict(metrics)
                self.best_model = cpu_state(self.model.state_dict())
                self.best_extra = cpu_state(self.objective.best_fields())
                self.bad_evals = 0
            else:
                self.bad_evals += 1
                if cfg.patience and self.bad_evals >= cfg.patience:
                    self.stopped_early = True
        if self.objective.finished():   # the search has decided: its retrain trains on
            self.stopped_early = True
        self.epoch_seconds += time.perf_counter() - t0
        self.epoch_cpu_seconds += time.process_time() - c0
        entry["seconds"] = round(self.epoch_seconds, 4)
        self.log.append(entry)
        if self.on_epoch is not None:
            self.on_epoch(entry)
        log.info("%s epoch %d: loss %.4f%s", self.tag or "run", epoch + 1, entry["loss"],
                 f", {cfg.eval_split} {cfg.metric} {entry[cfg.eval_split][cfg.metric]:.4f}"
                 if cfg.eval_split in entry else "")

    def _checkpoint_due(self, epoch: int, limit: int) -> bool:
        """Whether the end of ``epoch`` (0-based) writes a checkpoint: TrainConfig's cadence,
        and always the last epoch of a :meth:`train_until` call (a search pauses there)."""
        cfg = self.config
        if epoch + 1 >= limit:
            return True
        if cfg.checkpoint_every is None:
            return self.evaluates_after(epoch + 1)
        return cfg.checkpoint_every > 0 and (epoch + 1) % cfg.checkpoint_every == 0

    @property
    def finished_training(self) -> bool:
        """True when no epoch is left: the epoch limit is reached or early stopping fired."""
        return self.done or self.stopped_early or self.epoch >= self.config.epochs

    def train_until(self, epochs: int) -> bool:
        """Run whole epochs until ``epochs`` epochs are done in total (capped by
        ``config.epochs``), early stopping fires, or the run is finished; checkpoint at the
        epoch ends :meth:`_checkpoint_due` names (always the last one of the call). Returns
        :attr:`finished_training`. Searches that advance several trainers in turn (successive halving) call this; :meth:`fit` is ``train_until(epochs)`` and
        the final test evaluation."""
        cfg = self.config
        limit = min(int(epochs), cfg.epochs)
        if self.done or self.epoch >= limit or self.stopped_early:
            return self.finished_training
        bar = tqdm(total=limit, initial=self.epoch, desc=self.tag or "train", unit="epoch",
                   disable=None if cfg.progress else True, leave=False)  # None: off unless a tty
        try:
            while self.epoch < limit and not self.stopped_early:
                epoch = self.epoch
                t0, c0 = time.perf_counter(), time.process_time()
                self.train_batches(epoch)
                self.epoch_seconds += time.perf_counter() - t0
                self.epoch_cpu_seconds += time.process_time() - c0
                self._end_epoch(epoch)
                stop = None
                if self.dist.distributed:  # CPU time of all ranks; a stop request of any rank
                    self.epoch_cpu_seconds, stops = self.dist.sum_floats(
                        [self.epoch_cpu_seconds, float(self.stop.requested)], "epoch end")
                    stop = stops > 0
                    if stop and not self.stop.requested:
                        self.stop.request("another process of the run received a stop request")
                self.seconds += self.epoch_seconds
                self.cpu_seconds += self.epoch_cpu_seconds
                self.epoch = epoch + 1
                self.batch = 0
                self.loss_sum.zero_()
                self.epoch_seconds = 0.0
                self.epoch_cpu_seconds = 0.0
                bar.update(1)
                stopping = self.stop.requested if stop is None else stop  # agreed by all ranks
                if stopping or self._checkpoint_due(epoch, limit):
                    self.save()
                if stopping:
                    raise TrainingInterrupted(f"{self.tag or 'run'}: {self.stop.reason}; "
                                              f"checkpoint after epoch {epoch + 1}")
        finally:
            bar.close()
        return self.finished_training

    def fit(self) -> TrainResult:
        """Train to the end (or early stop) and return the result; resumes from the state held."""
        if self.done and self.result is not None:
            if self.best_model is not None:
                self.model.load_state_dict(self.best_model)
            return self.result
        self.train_until(self.config.epochs)
        return self._finish()

    def continue_from(self, state: dict[str, Any]) -> None:
        """Load a checkpoint of a FINISHED run (its last epoch's weights, optimiser and sampler
        states, best-so-far state) to train it further under this trainer's config (e.g. more
        epochs, later or no early stopping). Epoch ``e`` of the continuation is exactly epoch
        ``e`` of an uninterrupted run under this config whenever this config trains at least the
        epochs the finished run did (same seed, batch size, learning rate, objective)."""
        self.load_state_dict(state)
        self.done = False
        self.result = None
        self._last_model = None
        self.stopped_early = False   # bad_evals is kept: it does not depend on the patience
        if self.config.patience and self.bad_evals >= self.config.patience:
            self.stopped_early = True

    def _finish(self) -> TrainResult:
        cfg = self.config
        if self.best_model is None:
            raise RuntimeError(f"{self.tag or 'run'}: no evaluation happened")
        if self.dist.is_main:  # only rank 0 writes checkpoints
            self._last_model = cpu_state(self.model.state_dict())
        self.model.load_state_dict(self.best_model)
        test: dict[str, float] = {}
        if cfg.eval_split == "valid" and self.data.test.nnz:
            test = self._evaluate("test")
        epochs_run = self.log[-1]["epoch"] if self.log else 0
        self.result = TrainResult(best_epoch=self.best_epoch, valid=dict(self.best_metrics),
                                  test=test, epochs_run=epochs_run,
                                  stopped_early=self.stopped_early, seconds=self.seconds,
                                  log=list(self.log), best_fields=dict(self.best_extra),
                                  cpu_seconds=self.cpu_seconds, engine=self.engine)
        self.done = True
        self.save()
        return self.result
