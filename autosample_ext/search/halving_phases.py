"""Successive halving as a run's phase, per seed: the race of :mod:`.halving` over the run's
candidates (``auto`` expanded by :mod:`.auto_space`), each candidate trained through the run's
checkpointed trainers (:mod:`autosample_ext.run.phases`), then, with ``--sh-curriculum harder``,
the curriculum stage of :mod:`.curriculum`.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from autosample_ext.search.auto_space import auto_space, first_rung_schedules
from autosample_ext.search.curriculum import run_curriculum
from autosample_ext.search.halving import SuccessiveHalving
from autosample_ext.search.records import SH, PhaseContext, PhaseRecord, seed_for
from autosample_ext.search.space import AUTO

if TYPE_CHECKING:
    from autosample_ext.data.interactions import InteractionData
    from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)


def run(ctx: PhaseContext, seed: int) -> list[PhaseRecord]:
    """The strategy's entry point: the race of one seed, its winner's record."""
    return [run_sh(ctx, seed)]


def race_space(cfg: Any, data: InteractionData) -> tuple[str, ...]:
    """The candidates a race starts with: ``cfg.search_space`` with ``auto`` replaced by the
    static part of the automatic space (:func:`autosample_ext.search.auto_space.auto_space`)."""
    names: list[str] = []
    for name in cfg.search_space:
        names += list(auto_space(data, cfg.sampler_options)) if name == AUTO else [name]
    return tuple(dict.fromkeys(names))


def run_sh(ctx: PhaseContext, seed: int) -> PhaseRecord:
    """Successive halving over the candidates (every candidate from the model init and data
    order of seed ``seed``, its sampler stream as in a single run); the winner's result. With
    ``auto`` in the space the race adds the first rung's schedules; with ``sh_curriculum`` the
    winner's best state then trains on with a harder candidate
    (:mod:`autosample_ext.search.curriculum`)."""
    cfg = ctx.cfg

    def candidate_trainer(name: str) -> Trainer:
        # Within a race a candidate may be rebuilt from its checkpoint on resume only.
        return ctx.make_trainer(seed, f"{SH}-{name}", ctx.build_model(seed),
                                ctx.single_objective(seed, name),
                                ctx.candidate_train_config(seed, name))

    space = race_space(cfg, ctx.data)
    race = SuccessiveHalving(space, candidate_trainer, data=ctx.data,
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
        result, chosen, stage = run_curriculum(ctx, seed, race, outcome)
        extra["curriculum"] = stage
        extra["cpu_seconds"] += stage["cpu_seconds"]
        extra["wall_seconds"] += stage["seconds"]
    return PhaseRecord(seed, SH, chosen, result, extra)
