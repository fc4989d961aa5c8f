"""AutoSample retraining (Algorithm 2): the sampler argmax(alpha*) alone, from the searched model.

After the search, ``alpha* = softmax(theta*)`` at the best-validation epoch picks one candidate
(ties to the first in search-space order, ``torch.argmax``). The model is re-initialised from
the search's best weights W' (the paper's initialisation; ``init="random"`` is the ablation
with a fresh seeded init), trained with that sampler alone with a fresh optimiser, early
stopping on validation, and the test metrics are those of the best-validation epoch.
"""
from __future__ import annotations

from typing import Sequence

import torch

from autosample_ext.models.base import Recommender

RETRAIN_INITS: tuple[str, ...] = ("searched", "random")


def chosen_sampler(alpha_logits: torch.Tensor | Sequence[float], candidates: Sequence[str]) -> str:
    """The candidate with the largest alpha* (first one on ties)."""
    logits = torch.as_tensor(alpha_logits, dtype=torch.float64).reshape(-1)
    if logits.numel() != len(candidates):
        raise ValueError(f"retrain: {logits.numel()} alpha logits for {len(candidates)} candidates")
    return str(candidates[int(torch.argmax(logits))])


def init_retrain_model(model: Recommender, searched_state: dict[str, torch.Tensor] | None,
                       init: str) -> Recommender:
    """Load W' into ``model`` for ``init == "searched"``; leave the fresh init for ``"random"``."""
    if init not in RETRAIN_INITS:
        raise ValueError(f"retrain: init must be one of {RETRAIN_INITS}, got {init!r}")
    if init == "searched":
        if searched_state is None:
            raise ValueError("retrain: init='searched' needs the search's best model state")
        model.load_state_dict(searched_state)
    return model
