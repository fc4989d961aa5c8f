"""AutoSample search, retraining and grid search (DESIGN.md §1, §6), and the shared trainer."""
from autosample_ext.search.autosample import AutoSampleObjective, SearchConfig, gumbel_softmax_st
from autosample_ext.search.grid import GridOutcome, pick_best
from autosample_ext.search.retrain import RETRAIN_INITS, chosen_sampler, init_retrain_model
from autosample_ext.search.trainer import (
    Objective,
    SamplerObjective,
    StopFlag,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    TrainResult,
    evaluate_model,
)

__all__ = [
    "AutoSampleObjective", "SearchConfig", "gumbel_softmax_st", "GridOutcome", "pick_best",
    "RETRAIN_INITS", "chosen_sampler", "init_retrain_model", "Objective", "SamplerObjective",
    "StopFlag", "TrainConfig", "Trainer", "TrainingInterrupted", "TrainResult", "evaluate_model",
]
