"""The decisions of a successive-halving race at a rung: who stays, and why.

Two rules (``HalvingConfig.rule``):

``"halving"`` (the classic rule, as first shipped): rank the survivors by their best-so-far
validation value, keep the top ``ceil(n / eta)``; a dropped candidate within ``tie_se``
paired-bootstrap standard errors of the anchor (the last kept one, or the leader with
``tie_anchor="best"``) is kept too, then the next dropped one, until one is clearly worse.

``"race"`` (the default): the same ranking, with the leader L as the anchor of every test, and
for each other candidate c at epoch r (SE = the paired bootstrap SE of L - c):

* **catching up**: c stays, whatever its rank, when its gap to the leader, relative to the
  leader's value, at least shrank by the factor ``eta`` since epoch ``ceil(r / eta)`` (the
  previous rung's epoch: on its current course it closes the gap over the next interval) and
  the gap it closed at the current scale exceeds ``catch_up_se`` SEs. A late bloomer (a
  sampler that learns slower but ends higher, the classic failure of successive halving) is
  kept while it closes in; a candidate that only keeps pace is not.
* **the quota**: the top ``ceil(n / eta)`` stay, except, from the bracket's second rung on,
  those clearly behind the leader (more than ``tie_se`` SEs): the race stops as soon as the
  leader is clear. The first rung keeps its quota whatever the gaps: values there are early
  and noisy.
* **ties**: at the bracket's first rung, where values are early and noisy, a candidate below
  the quota stays when it cannot be told from the leader (within ``tie_se`` SEs); later the
  quota is the cut. A cluster of candidates tied with each other far behind the leader is not
  kept, and ties on small, noisy validation sets do not keep 2-3 candidates to the end: the
  race halves them by their values, as plain successive halving does.

The SEs come from the per-user validation values of the candidates' best-so-far models, on at
most ``bootstrap_users`` validation users (a seeded subsample: rung decisions stay cheap on large
data). Ties in value keep the candidate order.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from autosample_ext.training.config import TrainResult

RULES: tuple[str, ...] = ("race", "halving")
TIE_ANCHORS: tuple[str, ...] = ("last", "best")


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


#: the settings of a race saved before they existed: the race as it ran then
LEGACY: dict[str, Any] = {"tie_anchor": "last", "rule": "halving", "catch_up_se": 0.0,
                          "brackets": 1, "bootstrap_users": 0}


@dataclass
class HalvingConfig:
    """Settings of the race; see the module docstring and :mod:`autosample_ext.search.rungs`.

    first_rung: epochs of the first rung (r0 >= 1).
    eta: reduction factor (>= 2): keep ``ceil(n / eta)`` per rung; rungs grow by ``eta``.
    tie_se: a candidate within ``tie_se`` paired-bootstrap SEs of the anchor is tied with it.
    tie_anchor: the classic rule's anchor, ``"last"`` kept candidate or ``"best"`` (the race
        rule always anchors at the leader).
    bootstrap_samples: resamples of the validation users for the SE.
    rule: ``"race"`` or ``"halving"`` (the classic rule).
    catch_up_se: the race rule keeps a candidate catching up with the leader when the gap it
        closed exceeds this many SEs (0: off).
    brackets: Hyperband brackets (1: plain successive halving).
    bootstrap_users: the SEs use at most this many validation users (a seeded subsample;
        0: all).
    """

    first_rung: int = 4
    eta: int = 2
    tie_se: float = 2.0
    tie_anchor: str = "best"
    bootstrap_samples: int = 1000
    rule: str = "race"
    catch_up_se: float = 2.0
    brackets: int = 1
    bootstrap_users: int = 2000

    def __post_init__(self) -> None:
        if self.first_rung < 1:
            raise ValueError(f"successive halving: first_rung must be >= 1, got {self.first_rung}")
        if self.eta < 2:
            raise ValueError(f"successive halving: eta must be >= 2, got {self.eta}")
        if not self.tie_se >= 0:
            raise ValueError(f"successive halving: tie_se must be >= 0, got {self.tie_se}")
        if self.tie_anchor not in TIE_ANCHORS:
            raise ValueError(f"successive halving: tie_anchor must be one of {TIE_ANCHORS}, "
                             f"got {self.tie_anchor!r}")
        if self.bootstrap_samples < 2:
            raise ValueError(f"successive halving: bootstrap_samples must be >= 2, "
                             f"got {self.bootstrap_samples}")
        if self.rule not in RULES:
            raise ValueError(f"successive halving: rule must be one of {RULES}, got {self.rule!r}")
        if not self.catch_up_se >= 0:
            raise ValueError(f"successive halving: catch_up_se must be >= 0, got {self.catch_up_se}")
        if self.brackets < 1:
            raise ValueError(f"successive halving: brackets must be >= 1, got {self.brackets}")
        if self.bootstrap_users < 0:
            raise ValueError(f"successive halving: bootstrap_users must be >= 0, "
                             f"got {self.bootstrap_users}")

    def bracket_rungs(self, max_epochs: int, eval_every: int = 1) -> list[list[int]]:
        """The rung epochs of every bracket."""
        return [rung_epochs(self.first_rung * self.eta ** b, self.eta, max_epochs, eval_every)
                for b in range(self.brackets)]


@dataclass
class HalvingOutcome:
    """The race's result: the winner, its training result (test at its best validation
    epoch), every candidate's run, the rung decisions, the candidates added during the race
    (``added``: name, parent, epoch) and the costs of the whole race."""

    chosen: str
    result: TrainResult
    runs: list[dict[str, Any]]
    decisions: list[RungDecision]
    cpu_seconds: float
    wall_seconds: float
    rungs: list[int]
    added: list[dict[str, Any]] = field(default_factory=list)
    bracket_rungs: list[list[int]] = field(default_factory=list)


@dataclass
class RungDecision:
    """What rung ``index`` (at ``epochs``) of bracket ``bracket`` decided: values of the
    survivors (best first), who was kept and dropped, each tie test ``{kept, dropped, diff, se,
    kept_both}``, why each kept candidate stayed (``reasons``: leader, quota, catching up, tie)
    and the best-so-far values at the previous rung's epoch (``previous``)."""

    index: int
    epochs: int
    values: dict[str, float]
    kept: list[str]
    dropped: list[str]
    ties: list[dict[str, Any]] = field(default_factory=list)
    bracket: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    previous: dict[str, float] = field(default_factory=dict)


#: (name) -> the SE of mean(leader - name) over validation users; computed on demand
SEFunction = Callable[[str, str, int], float]


def decide_halving(order: list[str], values: dict[str, float], *, eta: int, tie_se: float,
                   anchor_rule: str, se: SEFunction, index: int, epochs: int) -> RungDecision:
    """The classic rule (module docstring)."""
    keep = math.ceil(len(order) / eta)
    anchor = order[0] if anchor_rule == "best" else order[keep - 1]
    ties: list[dict[str, Any]] = []
    if tie_se > 0:
        while keep < len(order):
            other = order[keep]
            s = se(anchor, other, keep)
            diff = values[anchor] - values[other]
            tie = diff <= tie_se * s    # identical values (SE 0) tie too
            ties.append({"kept": anchor, "dropped": other, "diff": diff, "se": s,
                         "kept_both": bool(tie)})
            if not tie:
                break
            keep += 1
    reasons = {n: ("leader" if i == 0 else "quota" if i < math.ceil(len(order) / eta) else "tie")
               for i, n in enumerate(order[:keep])}
    return RungDecision(index=index, epochs=epochs, values={n: values[n] for n in order},
                        kept=order[:keep], dropped=order[keep:], ties=ties, reasons=reasons)


def decide_race(order: list[str], values: dict[str, float], previous: dict[str, float], *,
                eta: int, tie_se: float, catch_up_se: float, first_rung: bool,
                se: SEFunction, index: int, epochs: int) -> RungDecision:
    """The default rule (module docstring). ``previous``: best-so-far values at epoch
    ``ceil(epochs / eta)``; ``first_rung``: the bracket's first rung."""
    lead = order[0]
    quota = math.ceil(len(order) / eta)
    kept, reasons, ties = [lead], {lead: "leader"}, []
    for rank, name in enumerate(order[1:], start=1):
        s = se(lead, name, rank)
        behind = values[lead] - values[name]
        tied = behind <= tie_se * s
        ties.append({"kept": lead, "dropped": name, "diff": behind, "se": s, "kept_both": tied})
        g_now = behind / values[lead] if values[lead] > 0 else 0.0
        prev_lead = previous.get(lead, 0.0)
        g_prev = (prev_lead - previous.get(name, 0.0)) / prev_lead if prev_lead > 0 else 0.0
        closed = g_prev * values[lead] - behind       # the gap closed, at the current scale
        if catch_up_se > 0 and behind > 0 and g_now <= g_prev / eta and closed > catch_up_se * s:
            reason = "catching up"
        elif rank < quota and (first_rung or tied):
            reason = "quota"
        elif tied and first_rung:
            reason = "tie"
        else:
            continue
        kept.append(name)
        reasons[name] = reason
    ties = [t | {"kept_both": t["dropped"] in reasons} for t in ties]
    return RungDecision(index=index, epochs=epochs, values={n: values[n] for n in order},
                        kept=kept, dropped=[n for n in order if n not in reasons], ties=ties,
                        reasons=reasons, previous={n: previous.get(n, 0.0) for n in order})
