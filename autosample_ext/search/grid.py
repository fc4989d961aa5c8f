"""Grid search over the candidates: every sampler trained alone, the best by validation.

This is the exhaustive baseline of the paper's search-cost comparison: its cost is the sum of
the candidates' training times, against AutoSample's search + retrain. As a run's phases, per
seed: every candidate's single run (:func:`autosample_ext.run.phases.run_single`, the same
checkpoints and streams as ``--sampler``), then the grid's record of the best.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from autosample_ext.search.records import GRID, PhaseContext, PhaseRecord
from autosample_ext.training.config import TrainResult


@dataclass
class GridOutcome:
    best: str                     # the candidate with the best validation metric
    metric: str
    valid: dict[str, float]       # candidate -> its best validation value of ``metric``
    seconds: float                # total training time (wall) of all candidates
    cpu_seconds: float = 0.0      # total process CPU time of all candidates


def pick_best(results: Mapping[str, TrainResult], metric: str) -> GridOutcome:
    """Best candidate by validation ``metric`` (first in order on ties)."""
    if not results:
        raise ValueError("grid: no candidate results")
    valid = {name: float(r.valid[metric]) for name, r in results.items()}
    best = max(valid, key=lambda n: valid[n])  # max keeps the first of equal values
    seconds = float(sum(r.seconds for r in results.values()))
    cpu = float(sum(r.cpu_seconds for r in results.values()))
    return GridOutcome(best=best, metric=metric, valid=valid, seconds=seconds, cpu_seconds=cpu)


def run(ctx: PhaseContext, seed: int) -> list[PhaseRecord]:
    """The strategy's entry point: every candidate's single run, then the grid's record (the
    best candidate's result, the grid's total cost and every candidate's validation value)."""
    cfg = ctx.cfg
    singles = [ctx.run_single(seed, name) for name in cfg.search_space]
    g = pick_best({r.method: r.result for r in singles}, cfg.metric)
    pick = next(r for r in singles if r.method == g.best)
    return singles + [PhaseRecord(seed, GRID, g.best, pick.result,
                                  {"cpu_seconds": g.cpu_seconds, "wall_seconds": g.seconds,
                                   "valid_by_candidate": g.valid})]
