"""The phases of a run, per seed: one sampler (or schedule) alone, the AutoSample search then
retraining, the successive-halving race, and a single sampler continued to AutoSample's epochs.

Each phase trains through :class:`~autosample_ext.training.Trainer` with its own checkpoint
``checkpoints/seed<S>-<phase>.pt``; on resume a finished phase returns its stored result and a
partial one continues from its checkpoint. Every random stream (model init, sampler draws) is
derived from the run seed and a stream id so that results do not depend on the order of phases.
"""
from __future__ import annotations

import dataclasses
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.data.splits import NotEnoughNegatives
from autosample_ext.experiment.config import RunConfig
from autosample_ext.experiment.protocols import protocol_spec
from autosample_ext.experiment.rundir import RunDir
from autosample_ext.search.autosample import AutoSampleObjective
from autosample_ext.search.halving import SuccessiveHalving
from autosample_ext.search.retrain import chosen_sampler, init_retrain_model
from autosample_ext.search.schedule import build_candidate
from autosample_ext.search.valid_alpha import ValidAlphaObjective
from autosample_ext.training.checkpoint import load_for_rank
from autosample_ext.training.config import StopFlag, TrainConfig, TrainResult
from autosample_ext.distributed.context import DistContext
from autosample_ext.training.objectives import SamplerObjective
from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

AUTOSAMPLE = "autosample"
#: the search stage's record (its metrics are the search model's, not reported as a method)
SEARCH = "search"
SH = "sh"
GRID = "grid"
#: suffix of the method name of a single sampler trained for AutoSample's total epochs
BUDGET_SUFFIX = ":budget"


def autosample_method(cfg: RunConfig, objective: str) -> str:
    """The method name of AutoSample with alpha ``objective``: ``"autosample"`` for the run's
    ``--alpha-objective``, ``"autosample-<objective>"`` for the other one (``--compare`` runs
    both)."""
    return AUTOSAMPLE if objective == cfg.alpha_objective else f"{AUTOSAMPLE}-{objective}"


def is_autosample(method: str) -> bool:
    """AutoSample's result (search + retrain), whichever alpha objective."""
    return method == AUTOSAMPLE or method.startswith(AUTOSAMPLE + "-")


def is_search_stage(method: str) -> bool:
    """The record of an AutoSample search stage (``"search"``, ``"search-train"``)."""
    return method == SEARCH or method.startswith(SEARCH + "-")


@dataclass
class PhaseRecord:
    """One finished phase of one seed."""

    seed: int
    method: str                    # "autosample", "search", "sh", "grid", a sampler name, or
                                   # "<sampler>:budget"
    sampler: str                   # the sampler trained (the chosen one for autosample)
    result: TrainResult
    extra: dict[str, Any] = field(default_factory=dict)


def seed_for(seed: int, *stream: int) -> int:
    """A 63-bit seed derived from the run seed and a stream id (phase, candidate)."""
    return int(np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


#: validation share drawn from train when the split gives none (README "Data")
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
    """README "Data": validation drawn from train (:data:`AUTO_VALID_FRACTION`) when the split
    gives none and the protocol needs one (not with --valid-fraction: that drew already)."""
    from autosample_ext import data as D

    if (cfg.valid_fraction is None and not cfg.best_test and data.valid.nnz == 0
            and data.train.nnz and not has_valid_share(cfg.split)):
        data = D.with_valid_from_train(data, AUTO_VALID_FRACTION, cfg.split_seed)
        log.warning("%s: the split gives no validation pairs; drew %g of each user's training "
                    "items as validation (--valid-fraction to choose)", data.name,
                    AUTO_VALID_FRACTION)
    return data


def has_valid_share(split: str | None) -> bool:
    """A ratio split that assigns validation pairs itself (3:1:1 does, 8:2 and given do not)."""
    from autosample_ext.data.splits import parse_ratio

    return split not in (None, "given", "loo") and parse_ratio(split)[1] > 0


def build_model(cfg: RunConfig, data: InteractionData, seed: int):
    from autosample_ext.models import build_model as _build

    kwargs: dict[str, Any] = {"dim": cfg.dim, "seed": seed, "device": cfg.device}
    if cfg.model in ("lightgcn", "ngcf"):
        kwargs["num_layers"] = cfg.layers
        kwargs["propagation"] = cfg.propagation
    if cfg.init is not None:
        kwargs["init"] = cfg.init
    return _build(cfg.model, data, **kwargs)


def build_sampler(name: str, data: InteractionData, seed: int, device: str,
                  num_negatives: int = 1, options: dict[str, dict[str, Any]] | None = None,
                  shard=None, segment_seeds: list[int] | None = None):
    """A sampler, a schedule (``aobpr@5+dns``) or a configured candidate
    (``dns(num_candidates=8)``) by name; ``options``: per sampler name, its options
    (``RunConfig.sampler_options``), applied to the sampler or to the schedule's parts, under
    the candidate's own; ``shard``: this process's users in a distributed run;
    ``segment_seeds``: a schedule's per-segment seeds (default: mixed from ``seed``)."""
    from autosample_ext.search.space import parse_candidate

    options = options or {}
    cand = parse_candidate(name)
    if cand.is_schedule:
        return build_candidate(name, data, seed=seed, device=device, num_negatives=num_negatives,
                               shard=shard, options=options, segment_seeds=segment_seeds)
    return build_candidate(name, data, seed=seed, device=device, num_negatives=num_negatives,
                           shard=shard, **options.get(cand.samplers[0], {}))


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


def _make_trainer(ctx: RunContext, seed: int, phase: str, model, objective,
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


def _run_trainer(ctx: RunContext, seed: int, phase: str, model, objective,
                 train_cfg: TrainConfig) -> TrainResult:
    return _make_trainer(ctx, seed, phase, model, objective, train_cfg).fit()


def name_stream(name: str) -> int:
    """A stream id of a sampler name, so a sampler draws the same negatives whatever its place
    in ``--sampler`` / ``--search-space``."""
    return zlib.crc32(name.encode())


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
    sampler = build_sampler(name, ctx.data, seed_for(seed, 100, name_stream(cand.samplers[0])),
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
    result = _run_trainer(ctx, seed, name, model, single_objective(ctx, seed, name),
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
    trainer = _make_trainer(ctx, seed, phase, build_model(cfg, ctx.data, seed),
                            single_objective(ctx, seed, name), train_cfg)
    if trainer.epoch == 0 and trainer.batch == 0 and ran <= budget:
        trainer.continue_from(ctx.read_checkpoint(seed, name))
        extra["continued_from_epoch"] = ran
    return PhaseRecord(seed, name + BUDGET_SUFFIX, name, trainer.fit(), extra)


def race_space(cfg: RunConfig, data: InteractionData) -> tuple[str, ...]:
    """The candidates a race starts with: ``cfg.search_space`` with ``auto`` replaced by the
    static part of the automatic space (:func:`autosample_ext.search.auto_space.auto_space`)."""
    from autosample_ext.search.auto_space import auto_space
    from autosample_ext.search.space import AUTO

    names: list[str] = []
    for name in cfg.search_space:
        names += list(auto_space(data, cfg.sampler_options)) if name == AUTO else [name]
    return tuple(dict.fromkeys(names))


def run_sh(ctx: RunContext, seed: int) -> PhaseRecord:
    """Successive halving over the candidates (every candidate from the model init and data
    order of seed ``seed``, its sampler stream as in a single run); the winner's result. With
    ``auto`` in the space the race adds the first rung's schedules; with ``sh_curriculum`` the
    winner's best state then trains on with a harder candidate
    (:mod:`autosample_ext.experiment.curriculum`)."""
    from autosample_ext.search.auto_space import first_rung_schedules
    from autosample_ext.search.space import AUTO

    cfg = ctx.cfg

    def make_trainer(name: str) -> Trainer:
        # Within a race a candidate may be rebuilt from its checkpoint on resume only.
        return _make_trainer(ctx, seed, f"{SH}-{name}", build_model(cfg, ctx.data, seed),
                             single_objective(ctx, seed, name),
                             candidate_train_config(cfg, seed, name))

    space = race_space(cfg, ctx.data)
    race = SuccessiveHalving(space, make_trainer, data=ctx.data,
                             config=cfg.halving_config(),
                             seed=seed_for(seed, 4000),
                             state_path=ctx.out.checkpoint(seed, SH), dist=ctx.dist,
                             expand=first_rung_schedules if AUTO in cfg.search_space else None)

    def fresh() -> None:
        if not ctx.resume and race.state_path is not None and race.state_path.exists():
            raise FileExistsError(f"{race.state_path} exists; use --resume")

    ctx.dist.on_main(fresh, "checking the race state")
    outcome = race.run()
    log.info("seed %d: successive halving picked %s (%.1f CPU s)", seed, outcome.chosen,
             outcome.cpu_seconds)
    extra = {"runs": outcome.runs, "rungs": outcome.rungs,
             "decisions": [dataclasses.asdict(d) for d in outcome.decisions],
             "cpu_seconds": outcome.cpu_seconds, "wall_seconds": outcome.wall_seconds,
             "space": list(space), "added": outcome.added,
             "bracket_rungs": outcome.bracket_rungs}
    result, chosen = outcome.result, outcome.chosen
    if cfg.sh_curriculum != "off":
        from autosample_ext.experiment.curriculum import run_curriculum

        result, chosen, stage = run_curriculum(ctx, seed, race, outcome)
        extra["curriculum"] = stage
        extra["cpu_seconds"] += stage["cpu_seconds"]
        extra["wall_seconds"] += stage["seconds"]
    return PhaseRecord(seed, SH, chosen, result, extra)


def search_objective(ctx: RunContext, seed: int, objective: str):
    """The search stage's objective: alpha moved by the validation probes (``"valid"``,
    :class:`~autosample_ext.search.valid_alpha.ValidAlphaObjective`) or by the training loss
    (``"train"``, the paper's Algorithm 1). Both draw the same model init and sampler streams."""
    cfg = ctx.cfg
    samplers = [build_sampler(name, ctx.data, seed_for(seed, 1000, name_stream(name)), cfg.device,
                              options=cfg.sampler_options, shard=ctx.dist.shard)
                for name in cfg.search_space]
    if objective == "train":
        return AutoSampleObjective(samplers, cfg.search_space, tau=cfg.tau,
                                   alpha_lr=cfg.alpha_lr, l2=cfg.l2, seed=seed,
                                   device=cfg.device)
    return ValidAlphaObjective(samplers, cfg.search_space, ctx.data, tau=cfg.tau, l2=cfg.l2,
                               seed=seed, k=int(cfg.metric.partition("@")[2]),
                               probes=cfg.probe_config(), device=cfg.device)


def run_autosample(ctx: RunContext, seed: int, objective: str | None = None) -> list[PhaseRecord]:
    """Search (Algorithm 1, alpha moved by ``objective``, default the run's) then retrain
    (Algorithm 2) for one seed. The run's objective writes the phases ``search`` / ``retrain``
    and the method ``autosample``; the other one (``--compare``) ``search-<objective>`` /
    ``retrain-<objective>`` and ``autosample-<objective>``."""
    cfg = ctx.cfg
    objective = objective or cfg.alpha_objective
    method = autosample_method(cfg, objective)
    suffix = method[len(AUTOSAMPLE):]
    search_phase, retrain_phase = SEARCH + suffix, "retrain" + suffix
    model = build_model(cfg, ctx.data, seed)
    search = _run_trainer(ctx, seed, search_phase, model, search_objective(ctx, seed, objective),
                          cfg.train_config(seed))
    alpha_logits = search.best_fields["alpha_logits"]
    chosen = chosen_sampler(alpha_logits, cfg.search_space)
    alpha_star = torch.softmax(torch.as_tensor(alpha_logits, dtype=torch.float64), 0).tolist()
    log.info("seed %d: search (alpha objective %s) picked %s (alpha* %s)", seed, objective,
             chosen, ", ".join(f"{n}={a:.3f}" for n, a in zip(cfg.search_space, alpha_star)))
    searched_state = ctx.read_checkpoint(seed, search_phase)["best_model"]
    retrain_model = init_retrain_model(build_model(cfg, ctx.data, seed_for(seed, 2000)),
                                       searched_state, cfg.retrain_init)
    sampler = build_sampler(chosen, ctx.data, seed_for(seed, 3000), cfg.device,
                            options=cfg.sampler_options, shard=ctx.dist.shard)
    retrain = _run_trainer(ctx, seed, retrain_phase, retrain_model,
                           SamplerObjective(sampler, l2=cfg.l2),
                           cfg.train_config(seed, cfg.retrain_epochs or cfg.epochs))
    extra = {"alpha_star": dict(zip(cfg.search_space, alpha_star)),
             "alpha_objective": objective,
             "search_seconds": search.seconds, "retrain_seconds": retrain.seconds,
             "search_cpu_seconds": search.cpu_seconds, "retrain_cpu_seconds": retrain.cpu_seconds,
             "search_epochs": search.epochs_run, "retrain_epochs": retrain.epochs_run,
             "search_best_epoch": search.best_epoch, "search_valid": search.valid,
             "retrain_init": cfg.retrain_init}
    if objective == "valid":
        last = search.log[-1] if search.log else {}
        extra["probes"] = int(last.get("probes", 0))
    return [PhaseRecord(seed, search_phase, chosen, search),
            PhaseRecord(seed, method, chosen, retrain, extra)]
