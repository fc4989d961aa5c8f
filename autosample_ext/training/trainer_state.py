"""The checkpoint half of :class:`~autosample_ext.training.trainer.Trainer`: what a checkpoint
holds (model, optimiser, objective, RNG states, progress counters, best-so-far state, log), how it
is checked against the run loading it (version, batch size, seed, split, metric, world size,
tensor shapes) and how a distributed run writes it (rank 0, with every other rank's own state in
``rank_states``). The attributes it reads and sets are the ones ``Trainer.__init__`` defines."""
from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import torch

from autosample_ext.distributed.launch import check_world_size
from autosample_ext.training.checkpoint import (CheckpointError, check_shapes, cpu_state, load_checkpoint,
                                                 load_for_rank, save_checkpoint)
from autosample_ext.training.config import TrainResult

log = logging.getLogger("autosample_ext.training.trainer")

CHECKPOINT_VERSION = 1


def rng_state(current_device_only: bool = False) -> dict[str, Any]:
    """The global RNG states; ``current_device_only`` (a distributed run: one GPU per process)
    keeps the CUDA state of the process's own GPU and never touches (initialises) the others."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        if current_device_only:
            state["cuda_current"] = torch.cuda.get_rng_state()
        else:
            state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "cuda_current" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_current"])


class TrainerCheckpoints:
    """Mixin of :class:`Trainer`: ``state_dict`` / ``load_state_dict``, ``save`` and ``resume``."""

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
            "rng": cpu_state(rng_state(self.dist.distributed)),
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
            "engine": self.engine,
        }

    def _rank_state(self) -> dict[str, Any]:
        """What differs between the ranks of a distributed run (their sampler shards, RNG,
        CPU time); rank 0's is in the checkpoint's top level, the others' in ``rank_states``."""
        return {"objective": cpu_state(self.objective.state_dict()),
                "rng": cpu_state(rng_state(current_device_only=True)),
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
        engine = state.get("engine", "autograd")  # checkpoints from before the fused engine
        if engine != self.engine:
            raise CheckpointError(f"{where} was trained by the {engine} engine, this run uses the "
                                  f"{self.engine} engine (the optimiser states differ); resume "
                                  f"with --engine {engine}")
        check_shapes(state["model"], self.model.state_dict(), "model", self.checkpoint_path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
        set_rng_state(state["rng"])
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

    def branch_from(self, parent: "TrainerCheckpoints") -> None:
        """Take over ``parent``'s run at its current epoch end as the first segment of this
        trainer's schedule: this trainer trains a schedule ``A@e+...`` and ``parent`` trained A
        alone (same initial weights, data order, seed and A's draws) for exactly ``e`` epochs,
        so its state (model, optimiser, A's sampler state, RNG, best-so-far, log) IS this
        schedule's after ``e`` epochs; the later segments start fresh. The log lines are
        relabelled with this trainer's tag (and written through ``on_epoch``) and the
        checkpoint is saved. Raises ValueError when the two do not fit (a parent that is not a
        plain sampler, finished or stopped early, or not at the end of the first segment)."""
        sampler = getattr(self.objective, "sampler", None)
        parts = getattr(sampler, "parts", None)
        source = getattr(parent.objective, "sampler", None)
        where = f"branch {self.tag or 'run'} from {parent.tag or 'run'}"
        if parts is None or source is None or getattr(source, "parts", None) is not None:
            raise ValueError(f"{where}: needs a schedule continuing a single sampler's run")
        if parent.done or parent.stopped_early or parent.batch != 0:
            raise ValueError(f"{where}: the parent run is finished or mid-epoch")
        if parent.epoch != sampler.schedule.ends[0] or type(parts[0]) is not type(source):
            raise ValueError(f"{where}: the schedule {sampler.name!r} does not start with "
                             f"{parent.epoch} epochs of {source.name!r}")
        state = parent.state_dict()
        state["objective"] = {"sampler": {"schedule": sampler.name, "parts": [
            cpu_state(source.state_dict())] + [cpu_state(p.state_dict()) for p in parts[1:]]}}
        state["log"] = [{**e, "run": self.tag, "active": source.name} for e in parent.log]
        state["tag"] = self.tag
        self.load_state_dict(state)
        if self.on_epoch is not None:
            for entry in self.log:
                self.on_epoch(entry)
        self.save()

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
            state = load_for_rank(self.checkpoint_path, self.dist)
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
