"""What a phase of a run returns and what it is called: :class:`PhaseRecord`, the method names
of the strategies' records (``autosample``, ``search``, ``sh``, ``grid``, ``<sampler>:budget``),
AutoSample's alpha objectives, and the random streams a phase derives from the run seed.

Below both the strategies (:mod:`autosample_ext.search.strategies`) and the run
(:mod:`autosample_ext.run`), which read and write these records.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from autosample_ext.training.config import TrainConfig, TrainResult

if TYPE_CHECKING:
    from autosample_ext.data.interactions import InteractionData
    from autosample_ext.distributed.context import DistContext
    from autosample_ext.training.objectives import SamplerObjective
    from autosample_ext.training.trainer import Trainer

#: what moves AutoSample's alpha: the validation metric's look-ahead gains (default) or the
#: training loss (the paper's Algorithm 1 as written)
ALPHA_OBJECTIVES: tuple[str, ...] = ("valid", "train")

AUTOSAMPLE = "autosample"
#: the search stage's record (its metrics are the search model's, not reported as a method)
SEARCH = "search"
SH = "sh"
GRID = "grid"
#: suffix of the method name of a single sampler trained for AutoSample's total epochs
BUDGET_SUFFIX = ":budget"


def autosample_method(cfg: Any, objective: str) -> str:
    """The method name (``cfg``: the run's ``RunConfig``) of AutoSample with alpha ``objective``: ``"autosample"`` for the run's
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


def name_stream(name: str) -> int:
    """A stream id of a sampler name, so a sampler draws the same negatives whatever its place
    in ``--sampler`` / ``--search-space``."""
    return zlib.crc32(name.encode())


class PhaseContext(Protocol):
    """What a search strategy trains with: the run's context, implemented by
    :class:`autosample_ext.run.phases.RunContext`. The strategies depend on this interface, so
    that ``search/`` never imports ``run/``."""

    cfg: Any                       # the run's RunConfig
    data: InteractionData
    out: Any                       # the run directory (its checkpoint paths)
    resume: bool
    dist: DistContext

    def read_checkpoint(self, seed: int, phase: str) -> dict[str, Any]: ...

    def build_model(self, seed: int) -> Any: ...

    def make_trainer(self, seed: int, phase: str, model: Any, objective: Any,
                     train_cfg: TrainConfig, *, resume: bool | None = None) -> Trainer: ...

    def run_trainer(self, seed: int, phase: str, model: Any, objective: Any,
                    train_cfg: TrainConfig) -> TrainResult: ...

    def single_objective(self, seed: int, name: str) -> SamplerObjective: ...

    def candidate_train_config(self, seed: int, name: str,
                               epochs: int | None = None) -> TrainConfig: ...

    def run_single(self, seed: int, name: str) -> PhaseRecord: ...
