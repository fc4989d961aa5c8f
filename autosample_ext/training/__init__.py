"""The generic trainer: settings, objectives, the epoch loop with early stopping, evaluation
during training, and atomic checkpoints (docs/design.md). Search strategies build on it
(:mod:`autosample_ext.search`)."""
from autosample_ext.training.checkpoint import (
    CheckpointError,
    check_plain,
    cpu_state,
    load_checkpoint,
    save_checkpoint,
)
from autosample_ext.training.config import StopFlag, TrainConfig, TrainingInterrupted, TrainResult
from autosample_ext.training.evaluate import evaluate_model
from autosample_ext.training.guard import TrainingDiverged, check_divergence
from autosample_ext.training.objectives import (
    Objective,
    SamplerObjective,
    StepOutput,
    candidate_losses,
    score_and_loss,
)
from autosample_ext.training.optim import make_adam, make_optimizer
from autosample_ext.training.trainer import Trainer, epoch_permutation

__all__ = [
    "check_plain", "cpu_state", "load_checkpoint", "save_checkpoint", "StopFlag", "TrainConfig",
    "TrainingInterrupted", "TrainResult", "evaluate_model", "Objective", "SamplerObjective",
    "StepOutput", "candidate_losses", "score_and_loss", "Trainer", "epoch_permutation",
    "make_adam", "make_optimizer",
]
__all__ += ["TrainingDiverged", "check_divergence", "CheckpointError"]
