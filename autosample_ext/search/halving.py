"""Successive halving over candidate samplers, raced on the validation metric.

Every candidate (a sampler, a configured sampler such as ``dns(num_candidates=8)``, or a
schedule) is a :class:`~autosample_ext.training.Trainer` that starts from the SAME initial
weights and sees the SAME data order (same ``TrainConfig.seed``); only the sampler (and, when a
candidate says so, its learning rate) differs. The race (:class:`SuccessiveHalving`):

1. brackets (Hyperband): bracket ``b`` has rungs at ``r0 * eta^(b + i)`` epochs, each rounded up
   to a multiple of ``eval_every`` so that a validation happened at the rung, for every rung
   ``< max_epochs``; ``brackets = 1`` (default) is plain successive halving, more brackets start
   later and hedge against candidates that are slow to start. Every bracket races every
   candidate; the trainers are shared, so a candidate trained to epoch 8 in one bracket is not
   trained again in another, and the rungs of all brackets are decided in epoch order;
2. at a rung every survivor of the bracket trains until it has run the rung's epochs in total
   (:meth:`Trainer.train_until`; a candidate stopped early stays as it is), then the rule of
   :mod:`autosample_ext.search.rungs` decides who stays (``"race"``: leader, quota, catching
   up, one-rung ties; ``"halving"``: the classic top ``ceil(n / eta)`` plus ties);
3. after the first rung, ``expand`` (when given) may add candidates that branch from a
   candidate's state at that epoch (the schedules of ``--search-space auto``): a branch is the
   trainer of ``A@r+B`` continued from A's checkpoint at epoch r, which is exactly A's run so
   far (same initial weights, data order and draws), so it costs nothing until it trains on;
4. once a bracket has one survivor, or its rungs are used up, its survivors train on to
   ``max_epochs`` with early stopping as usual; the best validation value among every
   bracket's survivors wins (ties: candidate order) and its best-validation model is the
   result (no retraining).

Cost: the CPU seconds (``time.process_time``) and wall seconds of the whole race = every
candidate's own training epochs (a branch's inherited prefix is counted once, in its parent) plus
the rung decisions (bootstrap evaluations), so that it compares with a grid search's sum of
single runs.

Resume: the candidates checkpoint at every epoch end through their trainers; the race state
(rungs decided, survivors per bracket, the candidates added, decisions, decision costs) is
written atomically after each rung to ``state_path``. A race interrupted anywhere and continued
ends with the same result.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.distributed.context import DistContext
from autosample_ext.search.rungs import (
    LEGACY,
    RULES,
    TIE_ANCHORS,
    HalvingConfig,
    HalvingOutcome,
    RungDecision,
    decide_halving,
    decide_race,
    paired_bootstrap_se,
    rung_epochs,
)
from autosample_ext.training.checkpoint import cpu_state, load_for_rank, save_checkpoint
from autosample_ext.training.config import TrainResult
from autosample_ext.training.evaluate import evaluated_users, per_user_metric
from autosample_ext.training.trainer import Trainer

log = logging.getLogger(__name__)

STATE_VERSION = 2
__all__ = [
    "RULES",
    "TIE_ANCHORS",
    "HalvingConfig",
    "HalvingOutcome",
    "RungDecision",
    "SuccessiveHalving",
    "paired_bootstrap_se",
    "rung_epochs",
]

#: (race, the first rung's decision) -> candidates to add: (name, parent, epoch) each
Expand = Callable[["SuccessiveHalving", RungDecision], list[tuple[str, str, int]]]


class SuccessiveHalving:
    """The race of ``candidates``; see the module docstring.

    Args:
        candidates: sampler names, configured candidates or schedules, in order (the order
            breaks ties).
        make_trainer: builds the :class:`Trainer` of a candidate, restored from its checkpoint
            when one exists. Every candidate's trainer must share the initial weights and the
            config (seed, epochs, batch size, metric, ...; a candidate may have its own learning
            rate); the race checks the initial weights of fresh trainers and the configs.
        data: the dataset (validation users for the bootstrap).
        config: :class:`HalvingConfig`.
        seed: seeds the bootstrap and its subsample of users.
        state_path: where the race state is written after each rung (None: nowhere).
        dist: a distributed run's context: the candidates' trainers run on every rank, rank 0
            writes the race state, the bootstrap sees every rank's validation users (gathered)
            and decides the same on every rank.
        expand: called once, after the first rung of the first bracket, with the race and that
            rung's decision; returns candidates to add as ``(name, parent, epoch)``: ``name`` is
            a schedule ``parent@epoch+...`` whose trainer branches from ``parent``'s at ``epoch``
            (:meth:`Trainer.branch_from`). They join every bracket.
    """

    def __init__(self, candidates: Sequence[str], make_trainer: Callable[[str], Trainer], *,
                 data: InteractionData, config: HalvingConfig | None = None, seed: int = 0,
                 state_path: str | Path | None = None, dist: DistContext | None = None,
                 expand: Expand | None = None) -> None:
        self.candidates = [str(c) for c in candidates]
        if len(self.candidates) < 2:
            raise ValueError(f"successive halving: needs at least 2 candidates, got {self.candidates}")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"successive halving: repeated candidate in {self.candidates}")
        self.initial_candidates = list(self.candidates)
        self.make_trainer = make_trainer
        self.data = data
        self.config = config or HalvingConfig()
        self.seed = int(seed)
        self.state_path = Path(state_path) if state_path is not None else None
        self.dist = dist or DistContext()
        self.expand = expand
        self.trainers: dict[str, Trainer] = {}
        self._initial: dict[str, torch.Tensor] | None = None
        self._per_user_cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        # race state
        self.steps_done = 0
        self.alive: list[list[str]] = [list(self.candidates) for _ in range(self.config.brackets)]
        self.decisions: list[RungDecision] = []
        self.added: list[dict[str, Any]] = []
        self.expanded = False
        self.inherited: dict[str, list[float]] = {}
        self.decision_cpu = 0.0
        self.decision_wall = 0.0
        self.bracket_rungs: list[list[int]] | None = None

    # -- compatibility with the one-bracket race -----------------------------------------------

    @property
    def survivors(self) -> list[str]:
        """The candidates alive in any bracket (candidate order)."""
        alive = {n for b in self.alive for n in b}
        return [n for n in self.candidates if n in alive]

    @property
    def rungs(self) -> list[int] | None:
        """The rung epochs of all brackets, in order."""
        if self.bracket_rungs is None:
            return None
        return sorted({e for rs in self.bracket_rungs for e in rs})

    # -- candidates ----------------------------------------------------------------------------

    def trainer(self, name: str) -> Trainer:
        """The candidate's trainer, built on first use (and restored by ``make_trainer``)."""
        if name not in self.trainers:
            t = self.make_trainer(name)
            if self.trainers:
                ref = next(iter(self.trainers.values()))
                for key in ("seed", "epochs", "batch_size", "l2", "eval_every", "patience",
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

    def add_branch(self, name: str, parent: str, epoch: int) -> None:
        """Add candidate ``name``, branched from ``parent``'s run at ``epoch`` (its trainer
        continues the parent's checkpoint; see :meth:`Trainer.branch_from`), to every bracket."""
        if name in self.candidates:
            raise ValueError(f"successive halving: candidate {name!r} is already in the race")
        t = self.trainer(name)
        if t.epoch == 0 and t.batch == 0:      # not branched yet (a resumed race may have)
            source = self.trainer(parent)
            if source.epoch != epoch or source.batch != 0:
                raise ValueError(f"successive halving: cannot branch {name!r} from {parent!r} at "
                                 f"epoch {epoch}: {parent!r} is at epoch {source.epoch}")
            t.branch_from(source)
        self.candidates.append(name)
        self.added.append({"name": name, "parent": parent, "epoch": int(epoch)})
        self.inherited[name] = [float(t.cpu_seconds), float(t.seconds)]
        for alive in self.alive:
            alive.append(name)

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "candidates": list(self.initial_candidates),
                "config": asdict(self.config), "rungs": [list(r) for r in self.bracket_rungs or []],
                "steps_done": self.steps_done, "alive": [list(a) for a in self.alive],
                "added": list(self.added),
                "expanded": self.expanded, "inherited": dict(self.inherited),
                "decisions": [asdict(d) for d in self.decisions],
                "decision_cpu": self.decision_cpu, "decision_wall": self.decision_wall}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version = state.get("version")
        if version not in (1, STATE_VERSION):
            raise ValueError(f"successive halving: state version {version} is not "
                             f"{STATE_VERSION}")
        saved = dict(state)
        saved["config"] = {**asdict(HalvingConfig()), **LEGACY, **state["config"]}
        if version == 1:   # one bracket: rungs, rungs_done, survivors
            saved["rungs"] = [state["rungs"]]
        for key, mine in (("candidates", self.initial_candidates),
                          ("config", asdict(self.config)), ("rungs", self.bracket_rungs)):
            if saved[key] != mine:
                raise ValueError(f"successive halving: the saved race has {key}={saved[key]!r}, "
                                 f"this one {mine!r}; resume needs the same setting")
        decisions = [RungDecision(**d) for d in state["decisions"]]
        if version == 1:
            self.steps_done = int(state["rungs_done"])    # one bracket: its rungs are the schedule
            self.alive = [list(state["survivors"])]
        else:
            self.steps_done = int(state["steps_done"])
            self.alive = [list(a) for a in state["alive"]]
            self.expanded = bool(state["expanded"])
            for item in state["added"]:
                if item["name"] not in self.candidates:
                    self.candidates.append(item["name"])
                    self.added.append(dict(item))
            self.inherited = {k: list(v) for k, v in state["inherited"].items()}
        self.decisions = decisions
        self.decision_cpu = float(state["decision_cpu"])
        self.decision_wall = float(state["decision_wall"])

    def _save(self) -> None:
        if self.state_path is not None:
            path = self.state_path
            self.dist.on_main(lambda: save_checkpoint(self.state_dict(), path), f"writing {path.name}")

    # -- the race ------------------------------------------------------------------------------

    def run(self) -> HalvingOutcome:
        ref = self.trainer(self.candidates[0]).config
        self.bracket_rungs = self.config.bracket_rungs(ref.epochs, ref.eval_every)
        saved = load_for_rank(self.state_path, self.dist) if self.state_path is not None else None
        if saved is not None:
            self.load_state_dict(saved)
            log.info("successive halving: resumed after %d rung epoch(s), alive %s",
                     self.steps_done, self.alive)
        schedule = self.rungs or []
        while self.steps_done < len(schedule) and any(len(a) > 1 for a in self.alive):
            epochs = schedule[self.steps_done]
            deciding = [b for b, rs in enumerate(self.bracket_rungs) if epochs in rs
                        and len(self.alive[b]) > 1]
            names = [n for n in self.candidates if any(n in self.alive[b] for b in deciding)]
            for name in names:
                self.trainer(name).train_until(epochs)
            c0, t0 = time.process_time(), time.perf_counter()
            made = [self._decide(b, epochs) for b in deciding]
            # CPU time of every process (distributed), as the trainers count theirs
            self.decision_cpu += self.dist.sum_floats([time.process_time() - c0], "rung end")[0]
            self.decision_wall += time.perf_counter() - t0
            self._per_user_cache.clear()
            for b, decision in zip(deciding, made):
                self.decisions.append(decision)
                self.alive[b] = list(decision.kept)
                log.info("successive halving: bracket %d, rung %d (%d epochs): kept %s, dropped %s",
                         b + 1, decision.index + 1, epochs, decision.kept, decision.dropped)
            first = next((d for b, d in zip(deciding, made) if b == 0 and d.index == 0), None)
            if self.expand is not None and not self.expanded and first is not None:
                for name, parent, at in self.expand(self, first):
                    self.add_branch(name, parent, at)
                self.expanded = True
            self.steps_done += 1
            self._save()
        finalists = self.survivors
        if len(finalists) > 1:
            for name in finalists:
                self.trainer(name).train_until(self.max_epochs)
        chosen = max(finalists, key=lambda n: self.trainer(n).best_value)
        result = self.trainer(chosen).fit()
        return self._outcome(chosen, result)

    def value_at(self, name: str, epochs: int) -> float:
        """The candidate's best validation value over its first ``epochs`` epochs (its log)."""
        t = self.trainer(name)
        split, metric = t.config.eval_split, t.config.metric
        seen = [e[split][metric] for e in t.log if e["epoch"] <= epochs and split in e]
        return float(max(seen)) if seen else 0.0

    def _users(self) -> torch.Tensor | None:
        """The validation users of the bootstrap: all, or a seeded subsample."""
        t = self.trainer(self.candidates[0])
        if self.config.bootstrap_users == 0:
            return None
        users = evaluated_users(self.data, t.config.eval_split, t.config.eval_protocol)
        if users.numel() <= self.config.bootstrap_users:
            return None
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xB007]))
        pick = np.sort(rng.choice(users.numel(), size=self.config.bootstrap_users, replace=False))
        return users[torch.from_numpy(pick)]

    def _per_user(self, name: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-user validation ``metric`` of the candidate's best-so-far model (the bootstrap's
        users, gathered over the ranks of a distributed run); cached within a rung."""
        t = self.trainer(name)
        key = (name, t.epoch)
        if key in self._per_user_cache:
            return self._per_user_cache[key]
        if t.best_model is None:
            raise RuntimeError(f"successive halving: candidate {name!r} was never evaluated")
        model = t.model
        current = cpu_state(model.state_dict())
        try:
            model.load_state_dict(t.best_model)
            out = per_user_metric(model, self.data, t.config.eval_split, metric,
                                  batch_size=t.config.eval_batch_size, dist=self.dist,
                                  protocol=t.config.eval_protocol, users=self._users())
        finally:
            model.load_state_dict(current)
        self._per_user_cache[key] = out
        return out

    def _decide(self, bracket: int, epochs: int) -> RungDecision:
        cfg = self.config
        metric = self.trainer(self.candidates[0]).config.metric
        survivors = self.alive[bracket]
        index = sum(1 for d in self.decisions if d.bracket == bracket)
        values = {n: self.value_at(n, epochs) for n in survivors}
        order = sorted(survivors, key=lambda n: -values[n])   # stable: candidate order

        def se(anchor: str, other: str, rank: int) -> float:
            users_a, per_a = self._per_user(anchor, metric)
            users_b, per_b = self._per_user(other, metric)
            if not np.array_equal(users_a, users_b):
                raise RuntimeError("successive halving: candidates were evaluated on "
                                   "different validation users")
            key = [self.seed, index, rank, 0x5E1F] + ([bracket] if bracket else [])
            rng = np.random.default_rng(np.random.SeedSequence(key))
            return paired_bootstrap_se(per_a, per_b, cfg.bootstrap_samples, rng)

        if cfg.rule == "halving":
            decision = decide_halving(order, values, eta=cfg.eta, tie_se=cfg.tie_se,
                                      anchor_rule=cfg.tie_anchor, se=se, index=index,
                                      epochs=epochs)
        else:
            previous = {n: self.value_at(n, math.ceil(epochs / cfg.eta)) for n in survivors}
            decision = decide_race(order, values, previous, eta=cfg.eta, tie_se=cfg.tie_se,
                                   catch_up_se=cfg.catch_up_se, first_rung=index == 0,
                                   se=se, index=index, epochs=epochs)
        decision.bracket = bracket
        return decision

    def _outcome(self, chosen: str, result: TrainResult) -> HalvingOutcome:
        dropped_at: dict[str, int] = {}
        for d in self.decisions:
            for n in d.dropped:
                dropped_at[n] = max(dropped_at.get(n, 0), d.epochs)
        alive = set(self.survivors)
        parents = {a["name"]: a for a in self.added}
        runs: list[dict[str, Any]] = []
        cpu, wall = self.decision_cpu, self.decision_wall
        for name in self.candidates:
            t = self.trainer(name)
            own_cpu = t.cpu_seconds - self.inherited.get(name, [0.0, 0.0])[0]
            own_wall = t.seconds - self.inherited.get(name, [0.0, 0.0])[1]
            cpu += own_cpu
            wall += own_wall
            entry: dict[str, Any] = {
                "sampler": name, "epochs_run": t.log[-1]["epoch"] if t.log else 0,
                "best_epoch": t.best_epoch, "stopped_early": t.stopped_early,
                "valid": dict(t.best_metrics),
                "eliminated_at_epoch": None if name in alive else dropped_at.get(name),
                "cpu_seconds": own_cpu, "seconds": own_wall}
            if name in parents:
                entry["branched_from"] = parents[name]["parent"]
                entry["branch_epoch"] = parents[name]["epoch"]
            if name == chosen:
                entry["test"] = dict(result.test)
            runs.append(entry)
        return HalvingOutcome(chosen=chosen, result=result, runs=runs,
                              decisions=list(self.decisions), cpu_seconds=cpu,
                              wall_seconds=wall, rungs=list(self.rungs or []),
                              added=list(self.added),
                              bracket_rungs=[list(r) for r in self.bracket_rungs or []])
