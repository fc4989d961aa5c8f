"""Search strategies over candidate samplers (docs/search.md): the paper's AutoSample
(Gumbel weights learned jointly with the model) and its retraining, successive halving on the
validation metric, the grid search baseline, and schedules (``aobpr@5+dns``) usable as
candidates anywhere. A candidate may carry options and a learning rate
(``dns(num_candidates=8)``, :mod:`.space`); ``--search-space auto`` is :mod:`.auto_space`.
The trainer they run on is :mod:`autosample_ext.training`."""
from autosample_ext.search.autosample import AutoSampleObjective, SearchConfig, gumbel_softmax_st
from autosample_ext.search.grid import GridOutcome, pick_best
from autosample_ext.search.halving import (
    HalvingConfig,
    HalvingOutcome,
    RungDecision,
    SuccessiveHalving,
    paired_bootstrap_se,
    rung_epochs,
)
from autosample_ext.search.retrain import RETRAIN_INITS, chosen_sampler, init_retrain_model
from autosample_ext.search.space import (
    AUTO,
    Candidate,
    CandidateError,
    expand_space,
    parse_candidate,
)
from autosample_ext.search.schedule import (
    Schedule,
    ScheduleSampler,
    build_candidate,
    canonical_name,
    is_schedule,
    parse_schedule,
)

__all__ = [
    "AutoSampleObjective", "SearchConfig", "gumbel_softmax_st", "GridOutcome", "pick_best",
    "HalvingConfig", "HalvingOutcome", "RungDecision", "SuccessiveHalving",
    "paired_bootstrap_se", "rung_epochs", "RETRAIN_INITS", "chosen_sampler",
    "init_retrain_model", "Schedule", "ScheduleSampler", "build_candidate", "canonical_name",
    "is_schedule", "parse_schedule", "AUTO", "Candidate", "CandidateError", "expand_space",
    "parse_candidate",
]
