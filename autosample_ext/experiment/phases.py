"""The phases of a run, per seed: one sampler alone, or the AutoSample search then retraining.

Each phase trains through :class:`~autosample_ext.training.Trainer` with its own checkpoint
``checkpoints/seed<S>-<phase>.pt``; on resume a finished phase returns its stored result and a
partial one continues from its checkpoint. Every random stream (model init, sampler draws) is
derived from the run seed and a stream id so that results do not depend on the order of phases.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.experiment.config import RunConfig
from autosample_ext.experiment.rundir import RunDir
from autosample_ext.search.autosample import AutoSampleObjective
from autosample_ext.search.retrain import chosen_sampler, init_retrain_model
from autosample_ext.training.checkpoint import load_checkpoint
from autosample_ext.training.config import StopFlag, TrainConfig, TrainResult
from autosample_ext.training.objectives import SamplerObjective
from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

AUTOSAMPLE = "autosample"


@dataclass
class PhaseRecord:
    """One finished phase of one seed."""

    seed: int
    method: str                    # "autosample", "search", or a sampler name
    sampler: str                   # the sampler trained (the chosen one for autosample)
    result: TrainResult
    extra: dict[str, Any] = field(default_factory=dict)


def seed_for(seed: int, *stream: int) -> int:
    """A 63-bit seed derived from the run seed and a stream id (phase, candidate)."""
    return int(np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def load_data(cfg: RunConfig) -> InteractionData:
    """The dataset of ``cfg`` (embedded default data when ``cfg.data`` is None)."""
    from autosample_ext import data as D

    opts: dict[str, Any] = {"split": cfg.split, "seed": cfg.split_seed}
    if cfg.data is None:
        return D.load(None, **opts)
    path = Path(cfg.data)
    if not path.exists():
        raise FileNotFoundError(f"--data: {path} does not exist")
    return D.load(path, cfg.format, **opts)


def build_model(cfg: RunConfig, data: InteractionData, seed: int):
    from autosample_ext.models import build_model as _build

    kwargs: dict[str, Any] = {"dim": cfg.dim, "seed": seed, "device": cfg.device}
    if cfg.model in ("lightgcn", "ngcf"):
        kwargs["num_layers"] = cfg.layers
        kwargs["propagation"] = cfg.propagation
    if cfg.init is not None:
        kwargs["init"] = cfg.init
    return _build(cfg.model, data, **kwargs)


def build_sampler(name: str, data: InteractionData, seed: int, device: str):
    from autosample_ext.samplers import build_sampler as _build

    return _build(name, data, seed=seed, device=device)


@dataclass
class RunContext:
    cfg: RunConfig
    data: InteractionData
    out: RunDir
    stop: StopFlag
    resume: bool
    on_step: Callable[[str, int], None] | None = None


def _run_trainer(ctx: RunContext, seed: int, phase: str, model, objective,
                 train_cfg: TrainConfig) -> TrainResult:
    tag = f"seed{seed}/{phase}"
    trainer = Trainer(ctx.data, model, objective, train_cfg,
                      checkpoint_path=ctx.out.checkpoint(seed, phase), stop=ctx.stop,
                      on_epoch=ctx.out.append_log, tag=tag,
                      on_step=(lambda step: ctx.on_step(tag, step)) if ctx.on_step else None)
    if ctx.resume and trainer.resume():
        for entry in trainer.log:
            ctx.out.append_log(entry)
    return trainer.fit()


def name_stream(name: str) -> int:
    """A stream id of a sampler name, so a sampler draws the same negatives whatever its place
    in ``--sampler`` / ``--search-space``."""
    return zlib.crc32(name.encode())


def run_single(ctx: RunContext, seed: int, name: str) -> PhaseRecord:
    cfg = ctx.cfg
    model = build_model(cfg, ctx.data, seed)
    sampler = build_sampler(name, ctx.data, seed_for(seed, 100, name_stream(name)), cfg.device)
    result = _run_trainer(ctx, seed, name, model, SamplerObjective(sampler, l2=cfg.l2),
                          cfg.train_config(seed))
    return PhaseRecord(seed, name, name, result)


def run_autosample(ctx: RunContext, seed: int) -> list[PhaseRecord]:
    """Search (Algorithm 1) then retrain (Algorithm 2) for one seed."""
    cfg = ctx.cfg
    model = build_model(cfg, ctx.data, seed)
    samplers = [build_sampler(name, ctx.data, seed_for(seed, 1000, name_stream(name)), cfg.device)
                for name in cfg.search_space]
    objective = AutoSampleObjective(samplers, cfg.search_space, tau=cfg.tau,
                                    alpha_lr=cfg.alpha_lr, l2=cfg.l2, seed=seed,
                                    device=cfg.device)
    search = _run_trainer(ctx, seed, "search", model, objective, cfg.train_config(seed))
    alpha_logits = search.best_fields["alpha_logits"]
    chosen = chosen_sampler(alpha_logits, cfg.search_space)
    alpha_star = torch.softmax(torch.as_tensor(alpha_logits, dtype=torch.float64), 0).tolist()
    log.info("seed %d: search picked %s (alpha* %s)", seed, chosen,
             ", ".join(f"{n}={a:.3f}" for n, a in zip(cfg.search_space, alpha_star)))
    searched_state = load_checkpoint(ctx.out.checkpoint(seed, "search"))["best_model"]
    retrain_model = init_retrain_model(build_model(cfg, ctx.data, seed_for(seed, 2000)),
                                       searched_state, cfg.retrain_init)
    sampler = build_sampler(chosen, ctx.data, seed_for(seed, 3000), cfg.device)
    retrain = _run_trainer(ctx, seed, "retrain", retrain_model,
                           SamplerObjective(sampler, l2=cfg.l2),
                           cfg.train_config(seed, cfg.retrain_epochs or cfg.epochs))
    extra = {"alpha_star": dict(zip(cfg.search_space, alpha_star)),
             "search_seconds": search.seconds, "retrain_seconds": retrain.seconds,
             "search_best_epoch": search.best_epoch, "search_valid": search.valid,
             "retrain_init": cfg.retrain_init}
    return [PhaseRecord(seed, "search", chosen, search),
            PhaseRecord(seed, AUTOSAMPLE, chosen, retrain, extra)]
