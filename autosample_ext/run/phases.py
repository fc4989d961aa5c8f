"""The phases of a run, per seed, and what they share: one sampler (or schedule) alone, and a
single sampler continued to AutoSample's epochs; the context, models, samplers and checkpointed
trainers the search strategies' phases (:mod:`autosample_ext.search.strategies`) train with.

Each phase trains through :class:`~autosample_ext.training.Trainer` with its own checkpoint
``checkpoints/seed<S>-<phase>.pt``; on resume a finished phase returns its stored result and a
partial one continues from its checkpoint. Every random stream (model init, sampler draws) is
derived from the run seed and a stream id so that results do not depend on the order of phases.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from autosample_ext.data.interactions import InteractionData
from autosample_ext.data.splits import NotEnoughNegatives, has_valid_share
from autosample_ext.run.config import RunConfig
from autosample_ext.run.protocols import protocol_spec
from autosample_ext.run.rundir import RunDir
from autosample_ext.samplers.registry import build_sampler
from autosample_ext.search.records import (
    AUTOSAMPLE,
    BUDGET_SUFFIX,
    PhaseRecord,
    name_stream,
    seed_for,
)
from autosample_ext.training.checkpoint import load_for_rank
from autosample_ext.training.config import StopFlag, TrainConfig, TrainResult
from autosample_ext.distributed.context import DistContext
from autosample_ext.training.objectives import SamplerObjective
from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

#: validation share drawn from train when the split gives none (docs/cli.md, "Data options")
AUTO_VALID_FRACTION = 0.1


def load_data(cfg: RunConfig) -> InteractionData:
    """The dataset of ``cfg`` (embedded default data when ``cfg.data`` is None)."""
    from autosample_ext import data as D

    opts: dict[str, Any] = {"split": cfg.split, "seed": cfg.split_seed,
                            "split_rounding": cfg.split_rounding}
    if cfg.min_rating is not None:
        # The GDNS protocol's "ratings >= 4" applies where the data has ratings; an explicit
        # --min-rating on data without ratings is an error.
        opts["min_rating"] = cfg.min_rating
        opts["min_rating_optional"] = cfg.protocol == "gdns"
    if cfg.data is not None and not Path(cfg.data).exists():
        raise FileNotFoundError(f"--data: {cfg.data} does not exist")
    try:
        data = D.load(None if cfg.data is None else Path(cfg.data),
                      None if cfg.data is None else cfg.format, **opts, **data_options(cfg))
    except NotEnoughNegatives as exc:
        raise ValueError(f"{cfg.data or 'the embedded dataset'}: {exc}; {loo_advice(cfg)}") from None
    return with_validation(cfg, data)


def loo_advice(cfg: RunConfig) -> str:
    """What the command line can change when users have too few items for the leave-one-out
    split's fixed negatives."""
    if "split" in protocol_spec(cfg.protocol).fixed:
        return (f"--protocol {cfg.protocol} fixes --split loo with its 100 negatives: use data "
                f"in which every user has at least 100 items it never interacted with")
    return "use a ratio split with full ranking instead (e.g. --split 8:1:1)"


def data_options(cfg: RunConfig) -> dict[str, Any]:
    """The load options of the data flags given (--valid-fraction, --remap, --user-col, ...)."""
    return {key: getattr(cfg, key) for key in ("valid_fraction", "remap", "user_col", "item_col")
            if getattr(cfg, key) is not None}


def with_validation(cfg: RunConfig, data: InteractionData) -> InteractionData:
    """docs/cli.md, data options: validation drawn from train (:data:`AUTO_VALID_FRACTION`) when the split
    gives none and the protocol needs one (not with --valid-fraction: that drew already)."""
    from autosample_ext import data as D

    if (cfg.valid_fraction is None and not cfg.best_test and data.valid.nnz == 0
            and data.train.nnz and not has_valid_share(cfg.split)):
        data = D.with_valid_from_train(data, AUTO_VALID_FRACTION, cfg.split_seed)
        log.warning("%s: the split gives no validation pairs; drew %g of each user's training "
                    "items as validation (--valid-fraction to choose)", data.name,
                    AUTO_VALID_FRACTION)
    return data


def build_model(cfg: RunConfig, data: InteractionData, seed: int):
    from autosample_ext.models import build_model as _build

    kwargs: dict[str, Any] = {"dim": cfg.dim, "seed": seed, "device": cfg.device}
    if cfg.model in ("lightgcn", "ngcf"):
        kwargs["num_layers"] = cfg.layers
        kwargs["propagation"] = cfg.propagation
    if cfg.init is not None:
        kwargs["init"] = cfg.init
    return _build(cfg.model, data, **kwargs)


@dataclass
class RunContext:
    cfg: RunConfig
    data: InteractionData
    out: RunDir
    stop: StopFlag
    resume: bool
    on_step: Callable[[str, int], None] | None = None
    dist: DistContext = field(default_factory=DistContext)

    def read_checkpoint(self, seed: int, phase: str) -> dict[str, Any]:
        """A phase's checkpoint (in a distributed run: read by rank 0, each rank's part sent)."""
        path = self.out.checkpoint(seed, phase)
        state = load_for_rank(path, self.dist)
        if state is None:
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        return state

    # What the search strategies (autosample_ext.search) train with, through the context they
    # are handed, so that search/ never imports run/.
    def build_model(self, seed: int):
        """The run's model, initialised from stream ``seed``."""
        return build_model(self.cfg, self.data, seed)

    def make_trainer(self, seed: int, phase: str, model, objective, train_cfg: TrainConfig,
                     *, resume: bool | None = None) -> Trainer:
        return make_trainer(self, seed, phase, model, objective, train_cfg, resume=resume)

    def run_trainer(self, seed: int, phase: str, model, objective,
                    train_cfg: TrainConfig) -> TrainResult:
        return run_trainer(self, seed, phase, model, objective, train_cfg)

    def single_objective(self, seed: int, name: str) -> SamplerObjective:
        return single_objective(self, seed, name)

    def candidate_train_config(self, seed: int, name: str,
                               epochs: int | None = None) -> TrainConfig:
        return candidate_train_config(self.cfg, seed, name, epochs)

    def run_single(self, seed: int, name: str) -> PhaseRecord:
        return run_single(self, seed, name)


def make_trainer(ctx: RunContext, seed: int, phase: str, model, objective,
                 train_cfg: TrainConfig, *, resume: bool | None = None) -> Trainer:
    """The phase's trainer, restored from its checkpoint on resume (its log replayed)."""
    tag = f"seed{seed}/{phase}"
    trainer = Trainer(ctx.data, model, objective, train_cfg,
                      checkpoint_path=ctx.out.checkpoint(seed, phase), stop=ctx.stop,
                      on_epoch=ctx.out.append_log, tag=tag,
                      on_step=(lambda step: ctx.on_step(tag, step)) if ctx.on_step else None,
                      dist=ctx.dist)
    if (ctx.resume if resume is None else resume) and trainer.resume():
        for entry in trainer.log:
            ctx.out.append_log(entry)
    return trainer


def run_trainer(ctx: RunContext, seed: int, phase: str, model, objective,
                train_cfg: TrainConfig) -> TrainResult:
    return make_trainer(ctx, seed, phase, model, objective, train_cfg).fit()


def single_objective(ctx: RunContext, seed: int, name: str) -> SamplerObjective:
    """Candidate ``name`` alone. Its sampler's stream is keyed by (seed, sampler name): the same
    negatives in a single run, a grid, a successive-halving race or a budget run, whatever the
    candidate's options; a schedule's segments each draw from their sampler's stream, so its
    first segment trains exactly as that sampler alone."""
    from autosample_ext.search.space import parse_candidate

    cfg = ctx.cfg
    cand = parse_candidate(name)
    seeds = ([seed_for(seed, 100, name_stream(s)) for s in cand.samplers] if cand.is_schedule
             else None)
    sampler = build_sampler(cand, ctx.data, seed_for(seed, 100, name_stream(cand.samplers[0])),
                            cfg.device,
                            cfg.num_negatives, cfg.sampler_options, shard=ctx.dist.shard,
                            segment_seeds=seeds)
    return SamplerObjective(sampler, l2=cfg.l2)


def candidate_train_config(cfg: RunConfig, seed: int, name: str,
                           epochs: int | None = None) -> TrainConfig:
    """The training settings of candidate ``name``: the run's, with the candidate's own
    learning rate (``dns(lr=0.001)``) when it has one."""
    from autosample_ext.search.space import parse_candidate

    train_cfg = cfg.train_config(seed, epochs)
    lr = parse_candidate(name).lr
    return train_cfg if lr is None else dataclasses.replace(train_cfg, lr=lr)


def run_single(ctx: RunContext, seed: int, name: str) -> PhaseRecord:
    cfg = ctx.cfg
    model = build_model(cfg, ctx.data, seed)
    result = run_trainer(ctx, seed, name, model, single_objective(ctx, seed, name),
                         candidate_train_config(cfg, seed, name))
    return PhaseRecord(seed, name, name, result)


def run_budget_single(ctx: RunContext, seed: int, name: str, single: PhaseRecord,
                      budget: int) -> PhaseRecord:
    """Sampler ``name`` trained for ``budget`` epochs without early stopping (AutoSample's
    search + retrain epochs of this seed), test at its best validation epoch.

    The run is the single run of ``name`` continued (same init, data order, negatives): from
    the single run's final checkpoint when it stopped before ``budget`` epochs; the single
    run's result itself when its best epoch lies within the budget and it ran past it; from
    scratch otherwise.
    """
    cfg = ctx.cfg
    phase = f"{name}{BUDGET_SUFFIX}"
    train_cfg = dataclasses.replace(candidate_train_config(cfg, seed, name), epochs=budget,
                                    patience=0)
    extra = {"budget_epochs": budget, "base": name}
    ran = single.result.epochs_run
    if ran > budget and single.result.best_epoch <= budget:
        extra["same_as_single"] = True
        return PhaseRecord(seed, name + BUDGET_SUFFIX, name, single.result, extra)
    trainer = make_trainer(ctx, seed, phase, build_model(cfg, ctx.data, seed),
                           single_objective(ctx, seed, name), train_cfg)
    if trainer.epoch == 0 and trainer.batch == 0 and ran <= budget:
        trainer.continue_from(ctx.read_checkpoint(seed, name))
        extra["continued_from_epoch"] = ran
    return PhaseRecord(seed, name + BUDGET_SUFFIX, name, trainer.fit(), extra)


def budget_singles(ctx: RunContext, seed: int, records: list[PhaseRecord]) -> list[PhaseRecord]:
    """Every candidate's single run of this seed (in ``records``, from the grid) continued to
    AutoSample's epochs of this seed (search + retrain; :func:`run_budget_single`)."""
    auto = next(r for r in records if r.method == AUTOSAMPLE)
    budget = auto.extra["search_epochs"] + auto.extra["retrain_epochs"]
    singles = {r.method: r for r in records}
    return [run_budget_single(ctx, seed, name, singles[name], budget)
            for name in ctx.cfg.search_space]
