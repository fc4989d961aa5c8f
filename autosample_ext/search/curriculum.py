"""The learned curriculum after a race (``--sh-curriculum harder``): the winner's best state
trains on with the next harder candidate of the race, and is kept where validation improves.

The race ranks its candidates by validation; its winner W stops improving at its best epoch.
The stage builds W's model from that best state (the race's best state) and trains it with H,
the least hard candidate of the race that is harder than W (hardness: RNS < PNS < DNS, SRNS,
GDNS < MixGCF < AOBPR; within DNS, ``num_candidates / top_k``, the share of the ranking its
negative comes from; a schedule counts as its last segment), with a fresh optimiser at a fifth of
the run's learning rate (fine-tuning: the full rate undoes the converged state in the first
epoch, measured on lastfm MF) under the same budget rules (early stopping on validation). The
result is the stage's model when its best validation value beats W's, else W's; its epochs
count in the race's cost either way.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from autosample_ext.samplers.candidate import Candidate
from autosample_ext.search.auto_space import HARDNESS
from autosample_ext.search.records import PhaseContext
from autosample_ext.search.space import parse_candidate
from autosample_ext.training.config import TrainResult

if TYPE_CHECKING:
    from autosample_ext.search.halving import HalvingOutcome, SuccessiveHalving

#: the stage's learning rate, as a share of the run's
LR_FACTOR = 0.2
STAGE = "sh-curriculum"


def hardness(cand: Candidate, run_options: dict[str, dict[str, Any]] | None = None
             ) -> tuple[int, float]:
    """The candidate's hardness: its last segment's family rank, then (DNS) the pool size over
    the pool's top: larger pools and smaller tops draw harder negatives."""
    seg = cand.segments[-1]
    opts = {**(run_options or {}).get(seg.sampler, {}), **dict(seg.options)}
    within = 0.0
    if seg.sampler == "dns":
        within = float(opts.get("num_candidates", 32)) / float(opts.get("top_k", 1))
    return HARDNESS.get(seg.sampler, 2), within


def harder_candidate(winner: str, candidates: list[str],
                     run_options: dict[str, dict[str, Any]] | None = None) -> str | None:
    """The least hard plain candidate (no schedule, no own learning rate) harder than
    ``winner``; None when there is none."""
    mine = hardness(parse_candidate(winner), run_options)
    pool = [(hardness(c, run_options), c.name) for c in map(parse_candidate, candidates)
            if not c.is_schedule and c.lr is None]
    harder = sorted((h, n) for h, n in pool if h > mine)
    return harder[0][1] if harder else None


def run_curriculum(ctx: PhaseContext, seed: int, race: SuccessiveHalving, outcome: HalvingOutcome
                   ) -> tuple[TrainResult, str, dict[str, Any]]:
    """The stage for one seed: ``(result, chosen, record)``; ``chosen`` is ``W>>H`` when the
    stage's model is kept, else W."""
    cfg = ctx.cfg
    winner = outcome.chosen
    harder = harder_candidate(winner, race.candidates, cfg.sampler_options)
    record: dict[str, Any] = {"harder": harder, "cpu_seconds": 0.0, "seconds": 0.0}
    if harder is None:
        return outcome.result, winner, record
    model = ctx.build_model(seed)
    model.load_state_dict(race.trainer(winner).best_model)
    base = ctx.candidate_train_config(seed, winner)
    train_cfg = dataclasses.replace(ctx.candidate_train_config(seed, harder),
                                    lr=base.lr * LR_FACTOR)
    trainer = ctx.make_trainer(seed, STAGE, model, ctx.single_objective(seed, harder),
                           train_cfg)
    result = trainer.fit()
    kept = result.valid[cfg.metric] > outcome.result.valid[cfg.metric]
    name = f"{winner}>>{harder}"
    record.update({"name": name, "kept": bool(kept), "valid": dict(result.valid),
                   "test": dict(result.test), "epochs_run": result.epochs_run,
                   "best_epoch": result.best_epoch, "cpu_seconds": result.cpu_seconds,
                   "seconds": result.seconds, "lr": train_cfg.lr})
    return (result, name, record) if kept else (outcome.result, winner, record)
