"""AutoSample as a run's phases, per seed: the search (Algorithm 1, :mod:`.autosample`, or the
validation-driven alpha of :mod:`.valid_alpha`) then the retrain of the chosen sampler
(Algorithm 2, :mod:`.retrain`); in a ``--compare`` run, the same beside it with the other alpha
objective. Each phase trains through the run's checkpointed trainers
(:mod:`autosample_ext.run.phases`) and resumes from them.
"""
from __future__ import annotations

import logging

import torch

from autosample_ext.samplers.registry import build_sampler
from autosample_ext.search.autosample import AutoSampleObjective
from autosample_ext.search.records import (
    ALPHA_OBJECTIVES,
    AUTOSAMPLE,
    SEARCH,
    PhaseContext,
    PhaseRecord,
    autosample_method,
    name_stream,
    seed_for,
)
from autosample_ext.search.retrain import chosen_sampler, init_retrain_model
from autosample_ext.search.space import parse_candidate
from autosample_ext.search.valid_alpha import ValidAlphaObjective
from autosample_ext.training.objectives import SamplerObjective

log = logging.getLogger(__name__)


def run(ctx: PhaseContext, seed: int) -> list[PhaseRecord]:
    """The strategy's entry point: AutoSample with the run's alpha objective; in a
    ``--compare`` run, then with the other one (valid and train)."""
    records = run_autosample(ctx, seed)
    if ctx.cfg.mode == "compare":
        records += run_autosample(ctx, seed, other_objective(ctx.cfg.alpha_objective))
    return records


def other_objective(objective: str) -> str:
    """The alpha objective ``--compare`` runs beside the run's own."""
    return next(o for o in ALPHA_OBJECTIVES if o != objective)


def search_objective(ctx: PhaseContext, seed: int, objective: str):
    """The search stage's objective: alpha moved by the validation probes (``"valid"``,
    :class:`~autosample_ext.search.valid_alpha.ValidAlphaObjective`) or by the training loss
    (``"train"``, the paper's Algorithm 1). Both draw the same model init and sampler streams."""
    cfg = ctx.cfg
    samplers = [build_sampler(parse_candidate(name), ctx.data,
                              seed_for(seed, 1000, name_stream(name)), cfg.device,
                              options=cfg.sampler_options, shard=ctx.dist.shard)
                for name in cfg.search_space]
    if objective == "train":
        return AutoSampleObjective(samplers, cfg.search_space, tau=cfg.tau,
                                   alpha_lr=cfg.alpha_lr, l2=cfg.l2, seed=seed,
                                   device=cfg.device)
    return ValidAlphaObjective(samplers, cfg.search_space, ctx.data, tau=cfg.tau, l2=cfg.l2,
                               seed=seed, k=int(cfg.metric.partition("@")[2]),
                               probes=cfg.probe_config(), device=cfg.device)


def run_autosample(ctx: PhaseContext, seed: int, objective: str | None = None) -> list[PhaseRecord]:
    """Search (Algorithm 1, alpha moved by ``objective``, default the run's) then retrain
    (Algorithm 2) for one seed. The run's objective writes the phases ``search`` / ``retrain``
    and the method ``autosample``; the other one (``--compare``) ``search-<objective>`` /
    ``retrain-<objective>`` and ``autosample-<objective>``."""
    cfg = ctx.cfg
    objective = objective or cfg.alpha_objective
    method = autosample_method(cfg, objective)
    suffix = method[len(AUTOSAMPLE):]
    search_phase, retrain_phase = SEARCH + suffix, "retrain" + suffix
    model = ctx.build_model(seed)
    search = ctx.run_trainer(seed, search_phase, model, search_objective(ctx, seed, objective),
                         cfg.train_config(seed))
    alpha_logits = search.best_fields["alpha_logits"]
    chosen = chosen_sampler(alpha_logits, cfg.search_space)
    alpha_star = torch.softmax(torch.as_tensor(alpha_logits, dtype=torch.float64), 0).tolist()
    log.info("seed %d: search (alpha objective %s) picked %s (alpha* %s)", seed, objective,
             chosen, ", ".join(f"{n}={a:.3f}" for n, a in zip(cfg.search_space, alpha_star)))
    searched_state = ctx.read_checkpoint(seed, search_phase)["best_model"]
    retrain_model = init_retrain_model(ctx.build_model(seed_for(seed, 2000)),
                                       searched_state, cfg.retrain_init)
    sampler = build_sampler(parse_candidate(chosen), ctx.data, seed_for(seed, 3000), cfg.device,
                            options=cfg.sampler_options, shard=ctx.dist.shard)
    retrain = ctx.run_trainer(seed, retrain_phase, retrain_model,
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
