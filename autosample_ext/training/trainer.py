"""The training loop shared by single-sampler training, the AutoSample search and retraining.

One epoch = the training pairs ``data.train`` in an order drawn from ``(seed, epoch)``, cut into
batches of ``batch_size`` (user, positive) rows. Each step:

    user_table, item_table = model.propagate()          # once per step, shared by candidates
    loss = objective.step_loss(ctx, user_table, item_table)   # sampler(s) -> negatives -> loss
    loss.backward(); model Adam step; objective's own optimiser step (alpha, for the search)

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

In a distributed run (``dist``, :mod:`autosample_ext.training.distributed`) each rank trains
its users' rows of every global batch, the gradients are reduced over the ranks before the
optimiser steps, evaluation is sharded by users, and rank 0 writes the checkpoints with every
rank's own state in them.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.models.base import Recommender
from autosample_ext.samplers.base import SampleContext
from autosample_ext.training.checkpoint import (CheckpointError, check_shapes, cpu_state, load_checkpoint,
                                                 save_checkpoint)
from autosample_ext.training.config import StopFlag, TrainConfig, TrainingInterrupted, TrainResult
from autosample_ext.training.distributed import DistContext, check_world_size
from autosample_ext.training.evaluate import evaluate_model
from autosample_ext.training.guard import TrainingDiverged, check_divergence
from autosample_ext.training.objectives import Objective, StepOutput
from autosample_ext.training.reducer import GradientReducer

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


def make_adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam (PyTorch defaults) with the fused kernel on devices that have it (CPU, CUDA)."""
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def make_optimizer(name: str, params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The model's optimiser: ``"adam"`` (:func:`make_adam`) or ``"adagrad"`` (PyTorch
    defaults: initial accumulator 0, eps 1e-10; the GDNS paper's optimiser)."""
    if name == "adam":
        return make_adam(params, lr, device)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    raise ValueError(f"train: unknown optimizer {name!r}")


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the ``n`` training pairs in ``epoch``: a function of (seed, epoch) only."""
    state = np.random.SeedSequence([int(seed), int(epoch), 0x0DA7A]).generate_state(2)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=gen)


def _rng_state(current_device_only: bool = False) -> dict[str, Any]:
    """The global RNG states; ``current_device_only`` (a distributed run: one GPU per process)
    keeps the CUDA state of the process's own GPU and never touches (initialises) the others."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        if current_device_only:
            state["cuda_current"] = torch.cuda.get_rng_state()
        else:
            state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "cuda_current" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_current"])


class Trainer:
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
        dist: this process's place in a distributed run (:mod:`~autosample_ext.training.distributed`):
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
        self.optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, self.device)
        self.dist = dist or DistContext()
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

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "tag": self.tag,
            "config": asdict(self.config),
            # A finished run holds its best weights; the checkpoint keeps the last epoch's so
            # that the run can be continued (``continue_from``).
            "model": self._last_model if self._last_model is not None
            else cpu_state(self.model.state_dict()),
            "optimizer": cpu_state(self.optimizer.state_dict()),
            "objective": cpu_state(self.objective.state_dict()),
            "rng": cpu_state(_rng_state(self.dist.distributed)),
            "epoch": self.epoch,
            "batch": self.batch,
            "loss_sum": self.loss_sum.detach().cpu().clone(),
            "epoch_seconds": self.epoch_seconds,
            "log": list(self.log),
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_metrics": dict(self.best_metrics),
            "best_model": self.best_model,
            "best_extra": self.best_extra,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "epoch_cpu_seconds": self.epoch_cpu_seconds,
            "done": self.done,
            "result": self.result.to_plain() if self.result is not None else None,
            "first_loss": self.first_loss,
            "world_size": self.dist.world_size,
        }

    def _rank_state(self) -> dict[str, Any]:
        """What differs between the ranks of a distributed run (their sampler shards, RNG,
        CPU time); rank 0's is in the checkpoint's top level, the others' in ``rank_states``."""
        return {"objective": cpu_state(self.objective.state_dict()),
                "rng": cpu_state(_rng_state(current_device_only=True)),
                "epoch_cpu_seconds": self.epoch_cpu_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        where = f"checkpoint {self.checkpoint_path or self.tag!s}"
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{where} has version {state.get('version')}, this tool writes "
                                  f"{CHECKPOINT_VERSION}: not a checkpoint of this version; it was "
                                  f"not loaded")
        saved = dict(state["config"])
        mine = asdict(self.config)
        for key in ("batch_size", "seed", "eval_split", "metric"):
            if saved.get(key) != mine.get(key):
                raise CheckpointError(f"{where} was written with {key}={saved.get(key)!r}, "
                                 f"this run has {key}={mine.get(key)!r}; resume needs the same setting")
        try:
            check_world_size(int(state.get("world_size", 1)), self.dist.world_size, where,
                             self.dist.launch_command() if self.dist.distributed else "")
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        check_shapes(state["model"], self.model.state_dict(), "model", self.checkpoint_path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        _set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])
        self.loss_sum = state["loss_sum"].to(self.device)
        self.first_loss = state.get("first_loss")
        self.epoch_seconds = float(state["epoch_seconds"])
        self.log = list(state["log"])
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.best_metrics = dict(state["best_metrics"])
        self.best_model = state["best_model"]
        self.best_extra = dict(state["best_extra"])
        self.bad_evals = int(state["bad_evals"])
        self.stopped_early = bool(state["stopped_early"])
        self.seconds = float(state["seconds"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))
        self.epoch_cpu_seconds = float(state.get("epoch_cpu_seconds", 0.0))
        self.done = bool(state["done"])
        self._last_model = state["model"] if self.done else None
        if state["result"] is not None:
            r = dict(state["result"])
            r["best_fields"] = dict(self.best_extra)
            self.result = TrainResult(**r)

    def save(self) -> None:
        """Write the checkpoint (distributed: rank 0 writes it with every rank's own state)."""
        if self.checkpoint_path is None:
            return
        if not self.dist.distributed:
            save_checkpoint(self.state_dict(), self.checkpoint_path)
            return
        parts = self.dist.gather_object(None if self.dist.is_main else self._rank_state(),
                                        "gathering the ranks' states for the checkpoint")
        path = self.checkpoint_path
        self.dist.on_main(lambda: save_checkpoint({**self.state_dict(), "rank_states": parts[1:]},
                                                  path), f"writing {path.name}")

    def resume(self) -> bool:
        """Load ``checkpoint_path`` if it exists; True when something was restored."""
        if self.checkpoint_path is None:
            return False
        if self.dist.distributed:
            state = self.dist.load_checkpoint(self.checkpoint_path)
            if state is None:
                return False
        elif not self.checkpoint_path.is_file():
            return False
        else:
            state = load_checkpoint(self.checkpoint_path)
        self.load_state_dict(state)
        log.info("%s: resumed at epoch %d, batch %d%s", self.tag or "run", self.epoch + 1,
                 self.batch, " (finished)" if self.done else "")
        return True

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

    def _train_step(self, users: torch.Tensor, pos: torch.Tensor, step: int) -> bool:
        """One optimiser step on the rows ``users, pos`` (this rank's share of the global batch
        in a distributed run); returns whether to stop at this step boundary (agreed by every
        rank in a distributed run)."""
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

    def _step_loss(self, users: torch.Tensor, pos: torch.Tensor, step: int) -> StepOutput | None:
        """Propagation, the objective's negatives and loss; None for an empty batch (a rank that
        owns no user of a global batch), after :meth:`Objective.skip_step`."""
        layers = None
        if self.needs_layers:
            # One propagation serves the samplers (MixGCF's per-layer tables) and the loss.
            layers = self.model.layer_embeddings()
            user_table, item_table = self.model.pool(layers[0]), self.model.pool(layers[1])
        else:
            user_table, item_table = self.model.propagate()
        ctx = SampleContext(users=users, pos_items=pos, model=self.model,
                            user_table=user_table.detach(), item_table=item_table.detach(),
                            step=step, layers=layers, epoch=step // self.num_batches)
        if users.shape[0] == 0:
            self.objective.skip_step(ctx)
            return None
        return self.objective.step_loss(ctx, user_table, item_table)

    def train_batches(self, epoch: int) -> None:
        """The steps of ``epoch`` from ``self.batch`` on (no evaluation, no checkpoint unless a
        stop is requested: then checkpoint and raise :class:`TrainingInterrupted`)."""
        cfg = self.config
        perm = epoch_permutation(cfg.seed, epoch, self.train_users.shape[0]).to(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        shard = self.dist.shard
        for b in range(self.batch, self.num_batches):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            step = epoch * self.num_batches + b
            users, pos = self.train_users[idx], self.train_items[idx]
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
                   disable=not cfg.progress, leave=False)
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
                                  cpu_seconds=self.cpu_seconds)
        self.done = True
        self.save()
        return self.result
