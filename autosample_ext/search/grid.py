"""Grid search over the candidates: every sampler trained alone, the best by validation.

This is the exhaustive baseline of the paper's search-cost comparison: its cost is the sum of
the candidates' training times, against AutoSample's search + retrain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

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
