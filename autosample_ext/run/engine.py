"""Which engine trains which part of a run (``--engine``), known before training starts: the
``engines`` entry of ``config.json`` and the run's one-line notice of what stays on autograd.

The fused engine (:mod:`autosample_ext.training.fused`) trains MF / GMF with RNS, PNS, DNS and
AOBPR (and schedules of them) in one process; the AutoSample search, graph models, the other
samplers and distributed runs train with autograd. Each phase's result records the engine that
actually trained it (``metrics.json``, ``runs[].engine``).
"""
from __future__ import annotations

import logging
from typing import Any

from autosample_ext.run.config import RunConfig

log = logging.getLogger(__name__)

FUSED_MODELS: tuple[str, ...] = ("mf", "gmf")
FUSED_SAMPLER_NAMES: tuple[str, ...] = ("rns", "pns", "dns", "aobpr")


def _parts(name: str) -> tuple[str, ...]:
    """The samplers a candidate trains: ``aobpr@4+dns(top_k=2)`` -> aobpr, dns (the fused
    engine reads a sampler's options from the sampler it is given)."""
    from autosample_ext.search.space import AUTO, base_samplers

    if name == AUTO:  # built from the four default samplers (their options, schedules of them)
        return FUSED_SAMPLER_NAMES
    return base_samplers(name)


def engine_plan(cfg: RunConfig, world_size: int = 1) -> dict[str, Any]:
    """``{"requested": ..., "samplers": {name: engine}, ["search": "autograd"], "notice": str |
    None}``: the engine of every sampler the run trains alone (single runs, candidates of a
    race or grid, the retrain, budget runs) and of the AutoSample search; ``notice`` is the one
    line saying what trains with autograd although ``fused`` was asked for."""
    names = cfg.sampler if cfg.mode == "single" else cfg.search_space  # schedules by name
    reasons: list[str] = []
    if cfg.engine == "autograd":
        samplers = {n: "autograd" for n in names}
    elif cfg.model not in FUSED_MODELS:
        samplers = {n: "autograd" for n in names}
        reasons.append(f"--model {cfg.model} trains with autograd (the fused engine trains MF and GMF)")
    elif world_size > 1:
        samplers = {n: "autograd" for n in names}
        reasons.append(f"a distributed run ({world_size} processes) trains with autograd (the fused "
                       "engine runs in one process)")
    else:
        samplers = {n: "fused" if all(p in FUSED_SAMPLER_NAMES for p in _parts(n)) else "autograd"
                    for n in names}
        slow = [n for n, e in samplers.items() if e == "autograd"]
        if slow:
            reasons.append(f"{', '.join(slow)} train{'s' if len(slow) == 1 else ''} with autograd "
                           f"(the fused engine draws RNS, PNS, DNS and AOBPR)")
    plan: dict[str, Any] = {"requested": cfg.engine, "samplers": samplers}
    if cfg.mode in ("autosample", "compare"):
        # the validation-driven search trains one drawn candidate per step: fused where every
        # candidate is; the paper's (alpha's gradient needs every candidate's loss) autograd
        fused_search = bool(samplers) and all(e == "fused" for e in samplers.values())
        plan["search"] = "fused" if fused_search and cfg.alpha_objective == "valid" else "autograd"
        if cfg.mode == "compare" or cfg.alpha_objective == "train":
            plan["search_train"] = "autograd"
            if cfg.engine == "fused" and not reasons:
                reasons.append("the AutoSample search with --alpha-objective train trains with "
                               "autograd (alpha's gradient needs every candidate's loss at each "
                               "step); its retrain uses the fused engine where it applies")
    plan["notice"] = ("engine: " + "; ".join(reasons)) if reasons else None
    return plan


def log_engine_notice(plan: dict[str, Any]) -> None:
    """The run's one line about what trains with autograd (nothing when all is fused)."""
    if plan.get("notice"):
        log.info("%s", plan["notice"])
