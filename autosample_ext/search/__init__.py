"""Search strategies over candidate samplers: the paper's AutoSample (Gumbel weights learned
jointly with the model) and its retraining, and the grid search baseline (DESIGN.md §1, §9).
The trainer they run on is :mod:`autosample_ext.training`."""
from autosample_ext.search.autosample import AutoSampleObjective, SearchConfig, gumbel_softmax_st
from autosample_ext.search.grid import GridOutcome, pick_best
from autosample_ext.search.retrain import RETRAIN_INITS, chosen_sampler, init_retrain_model

__all__ = [
    "AutoSampleObjective", "SearchConfig", "gumbel_softmax_st", "GridOutcome", "pick_best",
    "RETRAIN_INITS", "chosen_sampler", "init_retrain_model",
]
