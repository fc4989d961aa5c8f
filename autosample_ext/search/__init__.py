"""Search strategies over candidate samplers (docs/search.md): the paper's AutoSample
(Gumbel weights learned jointly with the model) and its retraining, successive halving on the
validation metric and the grid search baseline; a candidate is a sampler or a schedule
(``aobpr@5+dns``, :mod:`autosample_ext.samplers.schedule`) and may carry options and a learning rate
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
    canonical_name,
    expand_space,
    parse_candidate,
)

__all__ = [
    "AutoSampleObjective", "SearchConfig", "gumbel_softmax_st", "GridOutcome", "pick_best",
    "HalvingConfig", "HalvingOutcome", "RungDecision", "SuccessiveHalving",
    "paired_bootstrap_se", "rung_epochs", "RETRAIN_INITS", "chosen_sampler",
    "init_retrain_model", "AUTO", "Candidate", "CandidateError", "canonical_name", "expand_space",
    "parse_candidate",
]
