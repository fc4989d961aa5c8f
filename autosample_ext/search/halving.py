"""Successive halving over candidate samplers, raced on the validation metric (DESIGN.md §1).

Every candidate (a sampler or a schedule) is a :class:`~autosample_ext.training.Trainer` that
starts from the SAME initial weights and sees the SAME data order (same ``TrainConfig.seed``);
only the sampler differs. The race (:class:`SuccessiveHalving`):

1. rung epochs ``r_i = r0 * eta^i`` (``r0 = first_rung``), each rounded up to a multiple of
   ``eval_every`` so that a validation happened at the rung, for every ``r_i < max_epochs``;
2. at rung ``i`` every surviving candidate trains until it has run ``r_i`` epochs in total
   (:meth:`Trainer.train_until`; a candidate stopped early stays as it is), then the survivors
   are ranked by their BEST-SO-FAR validation metric (ties: candidate order) and the top
   ``ceil(n / eta)`` are kept;
3. tie rule: let A be the last kept. The first dropped candidate B is kept too when
   ``value(A) - value(B) <= tie_se * SE``, SE = the paired-bootstrap standard error over
   validation users of the mean per-user difference of the two best-so-far models
   (``bootstrap_samples`` resamples of the users, numpy Generator seeded by (seed, rung, B's
   rank); "<=" so that two equal models, SE 0, are kept both); then the next dropped one is
   compared with A the same way, until one is clearly worse (default ``tie_se = 2``;
   ``tie_se = 0`` turns the rule off). ``tie_anchor = "best"`` (an option, not the issue's
   rule) takes A = the leader instead: a dropped candidate stays only while it cannot be told
   from the best one, so a cluster of candidates tied with each other far behind the leader is
   still halved;
4. once one candidate is left it trains on to ``max_epochs`` with early stopping as usual, and
   its best-validation model is the result (no retraining). If several are left when the rungs
   are used up (rung >= ``max_epochs``), they all train to the end and the best validation
   value wins (ties: candidate order).

Cost: the CPU seconds (``time.process_time``) and wall seconds of the whole race = every
candidate's training epochs (the winner's included) plus the rung decisions (bootstrap
evaluations), so that it compares with a grid search's sum of single runs.

Resume: the candidates checkpoint at every epoch end through their trainers; the race state
(rungs decided, survivors, decisions, decision costs) is written atomically after each rung to
``state_path``. A race interrupted anywhere and continued ends with the same result.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.training.checkpoint import cpu_state, save_checkpoint
from autosample_ext.training.config import TrainResult
from autosample_ext.training.distributed import DistContext
from autosample_ext.training.evaluate import per_user_metric
from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

STATE_VERSION = 1
TIE_ANCHORS: tuple[str, ...] = ("last", "best")


@dataclass
class HalvingConfig:
    """Settings of the race; see the module docstring.

    first_rung: epochs of the first rung (r0 >= 1).
    eta: reduction factor (>= 2): keep ``ceil(n / eta)`` per rung; rungs grow by ``eta``.
    tie_se: keep a dropped candidate within ``tie_se`` paired-bootstrap SEs of the anchor.
    tie_anchor: ``"last"`` (the last kept candidate: the specified rule) or ``"best"``.
    bootstrap_samples: resamples of the validation users for the SE.
    """

    first_rung: int = 3
    eta: int = 2
    tie_se: float = 2.0
    tie_anchor: str = "last"
    bootstrap_samples: int = 1000

    def __post_init__(self) -> None:
        if self.first_rung < 1:
            raise ValueError(f"successive halving: first_rung must be >= 1, got {self.first_rung}")
        if self.eta < 2:
            raise ValueError(f"successive halving: eta must be >= 2, got {self.eta}")
        if self.tie_se < 0:
            raise ValueError(f"successive halving: tie_se must be >= 0, got {self.tie_se}")
        if self.tie_anchor not in TIE_ANCHORS:
            raise ValueError(f"successive halving: tie_anchor must be one of {TIE_ANCHORS}, "
                             f"got {self.tie_anchor!r}")
        if self.bootstrap_samples < 2:
            raise ValueError(f"successive halving: bootstrap_samples must be >= 2, "
                             f"got {self.bootstrap_samples}")


def rung_epochs(first_rung: int, eta: int, max_epochs: int, eval_every: int = 1) -> list[int]:
    """``[r0, r0*eta, ...]`` rounded up to multiples of ``eval_every``, all ``< max_epochs``."""
    out: list[int] = []
    r = first_rung
    while True:
        rung = -(-r // eval_every) * eval_every
        if rung >= max_epochs:
            return out
        if not out or rung > out[-1]:
            out.append(rung)
        r *= eta


def paired_bootstrap_se(a: np.ndarray, b: np.ndarray, samples: int,
                        rng: np.random.Generator, chunk: int = 100) -> float:
    """Standard error of ``mean(a - b)`` by the paired bootstrap: users resampled with
    replacement ``samples`` times (both arrays with the same resample), the standard deviation
    (ddof 1) of the resampled means. ``a``, ``b``: per-user values ``[U]`` on the same users."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"paired_bootstrap_se: need two equal non-empty 1-D arrays, got {d.shape}")
    means = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, chunk):
        rows = min(chunk, samples - start)
        idx = rng.integers(0, d.size, size=(rows, d.size))
        means[start:start + rows] = d[idx].mean(axis=1)
    return float(means.std(ddof=1))


@dataclass
class RungDecision:
    """What rung ``index`` (at ``epochs``) decided: values of the survivors (best first), who
    was kept, and each tie test ``{kept, dropped, diff, se, kept_both}``."""

    index: int
    epochs: int
    values: dict[str, float]
    kept: list[str]
    dropped: list[str]
    ties: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class HalvingOutcome:
    """The race's result: the winner, its training result (test at its best validation
    epoch), every candidate's run, the rung decisions and the costs of the whole race."""

    chosen: str
    result: TrainResult
    runs: list[dict[str, Any]]
    decisions: list[RungDecision]
    cpu_seconds: float
    wall_seconds: float
    rungs: list[int]


class SuccessiveHalving:
    """The race of ``candidates``; see the module docstring.

    Args:
        candidates: sampler names or schedules, in order (the order breaks ties).
        make_trainer: builds the :class:`Trainer` of a candidate, restored from its checkpoint
            when one exists. Every candidate's trainer must share the initial weights and the
            config (seed, epochs, batch size, metric, ...); the race checks the initial weights
            of fresh trainers and the configs.
        data: the dataset (validation users for the bootstrap).
        config: :class:`HalvingConfig`.
        seed: seeds the bootstrap.
        state_path: where the race state is written after each rung (None: nowhere).
        dist: a distributed run's context: the candidates' trainers run on every rank, rank 0
            writes the race state, the bootstrap sees every rank's validation users (gathered)
            and decides the same on every rank.
    """

    def __init__(self, candidates: Sequence[str], make_trainer: Callable[[str], Trainer], *,
                 data: InteractionData, config: HalvingConfig | None = None, seed: int = 0,
                 state_path: str | Path | None = None, dist: DistContext | None = None) -> None:
        self.candidates = [str(c) for c in candidates]
        if len(self.candidates) < 2:
            raise ValueError(f"successive halving: needs at least 2 candidates, got {self.candidates}")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"successive halving: repeated candidate in {self.candidates}")
        self.make_trainer = make_trainer
        self.data = data
        self.config = config or HalvingConfig()
        self.seed = int(seed)
        self.state_path = Path(state_path) if state_path is not None else None
        self.dist = dist or DistContext()
        self.trainers: dict[str, Trainer] = {}
        self._initial: dict[str, torch.Tensor] | None = None
        # race state
        self.rungs_done = 0
        self.survivors = list(self.candidates)
        self.decisions: list[RungDecision] = []
        self.decision_cpu = 0.0
        self.decision_wall = 0.0
        self.rungs: list[int] | None = None

    # -- candidates ----------------------------------------------------------------------------

    def trainer(self, name: str) -> Trainer:
        """The candidate's trainer, built on first use (and restored by ``make_trainer``)."""
        if name not in self.trainers:
            t = self.make_trainer(name)
            if self.trainers:
                ref = next(iter(self.trainers.values()))
                for key in ("seed", "epochs", "batch_size", "lr", "l2", "eval_every", "patience",
                            "metric", "eval_split"):
                    if getattr(t.config, key) != getattr(ref.config, key):
                        raise ValueError(f"successive halving: candidate {name!r} has {key}="
                                         f"{getattr(t.config, key)!r}, the others "
                                         f"{getattr(ref.config, key)!r}")
            if t.epoch == 0 and t.batch == 0:
                state = cpu_state(t.model.state_dict())
                if self._initial is None:
                    self._initial = state
                elif state.keys() != self._initial.keys() or any(
                        not torch.equal(state[k], self._initial[k]) for k in state):
                    raise ValueError(f"successive halving: candidate {name!r} does not start "
                                     "from the same initial weights as the others")
            self.trainers[name] = t
        return self.trainers[name]

    @property
    def max_epochs(self) -> int:
        return self.trainer(self.candidates[0]).config.epochs

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "candidates": list(self.candidates),
                "config": asdict(self.config), "rungs": list(self.rungs or []),
                "rungs_done": self.rungs_done, "survivors": list(self.survivors),
                "decisions": [asdict(d) for d in self.decisions],
                "decision_cpu": self.decision_cpu, "decision_wall": self.decision_wall}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"successive halving: state version {state.get('version')} is not "
                             f"{STATE_VERSION}")
        saved = dict(state)
        saved["config"] = {**asdict(HalvingConfig()), **state["config"]}  # older states
        for key, mine in (("candidates", self.candidates), ("config", asdict(self.config)),
                          ("rungs", self.rungs)):
            if saved[key] != mine:
                raise ValueError(f"successive halving: the saved race has {key}={state[key]!r}, "
                                 f"this one {mine!r}; resume needs the same setting")
        self.rungs_done = int(state["rungs_done"])
        self.survivors = list(state["survivors"])
        self.decisions = [RungDecision(**d) for d in state["decisions"]]
        self.decision_cpu = float(state["decision_cpu"])
        self.decision_wall = float(state["decision_wall"])

    def _save(self) -> None:
        if self.state_path is not None:
            path = self.state_path
            self.dist.on_main(lambda: save_checkpoint(self.state_dict(), path), f"writing {path.name}")

    # -- the race ------------------------------------------------------------------------------

    def run(self) -> HalvingOutcome:
        ref = self.trainer(self.candidates[0]).config
        self.rungs = rung_epochs(self.config.first_rung, self.config.eta, ref.epochs,
                                 ref.eval_every)
        saved = self.dist.load_checkpoint(self.state_path) if self.state_path is not None else None
        if saved is not None:
            self.load_state_dict(saved)
            log.info("successive halving: resumed after %d rung(s), survivors %s",
                     self.rungs_done, self.survivors)
        while len(self.survivors) > 1 and self.rungs_done < len(self.rungs):
            epochs = self.rungs[self.rungs_done]
            for name in self.survivors:
                self.trainer(name).train_until(epochs)
            c0, t0 = time.process_time(), time.perf_counter()
            decision = self._decide(self.rungs_done, epochs)
            # CPU time of every process (distributed), as the trainers count theirs
            self.decision_cpu += self.dist.sum_floats([time.process_time() - c0], "rung end")[0]
            self.decision_wall += time.perf_counter() - t0
            self.decisions.append(decision)
            self.survivors = list(decision.kept)
            self.rungs_done += 1
            log.info("successive halving: rung %d (%d epochs): kept %s, dropped %s",
                     decision.index + 1, epochs, decision.kept, decision.dropped)
            self._save()
        if len(self.survivors) > 1:
            for name in self.survivors:
                self.trainer(name).train_until(self.max_epochs)
            chosen = max(self.survivors, key=lambda n: self.trainer(n).best_value)
        else:
            chosen = self.survivors[0]
        result = self.trainer(chosen).fit()
        return self._outcome(chosen, result)

    def _per_user(self, name: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-user validation ``metric`` of the candidate's best-so-far model (all validation
        users, gathered over the ranks of a distributed run)."""
        t = self.trainer(name)
        if t.best_model is None:
            raise RuntimeError(f"successive halving: candidate {name!r} was never evaluated")
        model = t.model
        current = cpu_state(model.state_dict())
        try:
            model.load_state_dict(t.best_model)
            return per_user_metric(model, self.data, t.config.eval_split, metric,
                                   batch_size=t.config.eval_batch_size, dist=self.dist,
                                   protocol=t.config.eval_protocol)
        finally:
            model.load_state_dict(current)

    def _decide(self, index: int, epochs: int) -> RungDecision:
        metric = self.trainer(self.candidates[0]).config.metric
        values = {n: float(self.trainer(n).best_value) for n in self.survivors}
        order = sorted(self.survivors, key=lambda n: -values[n])   # stable: candidate order
        keep = math.ceil(len(order) / self.config.eta)
        anchor = order[0] if self.config.tie_anchor == "best" else order[keep - 1]
        ties: list[dict[str, Any]] = []
        if self.config.tie_se > 0:
            users_a, per_a = self._per_user(anchor, metric)
            while keep < len(order):
                other = order[keep]
                users_b, per_b = self._per_user(other, metric)
                if not np.array_equal(users_a, users_b):
                    raise RuntimeError("successive halving: candidates were evaluated on "
                                       "different validation users")
                rng = np.random.default_rng(np.random.SeedSequence(
                    [self.seed, index, keep, 0x5E1F]))
                se = paired_bootstrap_se(per_a, per_b, self.config.bootstrap_samples, rng)
                diff = values[anchor] - values[other]
                tie = diff <= self.config.tie_se * se    # identical values (SE 0) tie too
                ties.append({"kept": anchor, "dropped": other, "diff": diff, "se": se,
                             "kept_both": bool(tie)})
                if not tie:
                    break
                keep += 1
        return RungDecision(index=index, epochs=epochs,
                            values={n: values[n] for n in order},
                            kept=order[:keep], dropped=order[keep:], ties=ties)

    def _outcome(self, chosen: str, result: TrainResult) -> HalvingOutcome:
        dropped_at = {n: d.epochs for d in self.decisions for n in d.dropped}
        runs: list[dict[str, Any]] = []
        cpu, wall = self.decision_cpu, self.decision_wall
        for name in self.candidates:
            t = self.trainer(name)
            cpu += t.cpu_seconds
            wall += t.seconds
            entry: dict[str, Any] = {
                "sampler": name, "epochs_run": t.log[-1]["epoch"] if t.log else 0,
                "best_epoch": t.best_epoch, "stopped_early": t.stopped_early,
                "valid": dict(t.best_metrics), "eliminated_at_epoch": dropped_at.get(name),
                "cpu_seconds": t.cpu_seconds, "seconds": t.seconds}
            if name == chosen:
                entry["test"] = dict(result.test)
            runs.append(entry)
        return HalvingOutcome(chosen=chosen, result=result, runs=runs,
                              decisions=list(self.decisions), cpu_seconds=cpu,
                              wall_seconds=wall, rungs=list(self.rungs or []))
