"""Models: MF, GMF, LightGCN, NGCF, and a registry by name."""
from __future__ import annotations

import torch

from autosample_ext.data.interactions import InteractionData
from autosample_ext.models.base import Recommender
from autosample_ext.models.lightgcn import PROPAGATIONS, LightGCN
from autosample_ext.models.mf import GMF, MF
from autosample_ext.models.ngcf import NGCF

MODELS: dict[str, type[Recommender]] = {"mf": MF, "gmf": GMF, "lightgcn": LightGCN, "ngcf": NGCF}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def build_model(name: str, data: InteractionData, dim: int = 64, *, seed: int | None = 0,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                **kwargs) -> Recommender:
    """Construct a model by name (``mf``, ``gmf``, ``lightgcn``, ``ngcf``, case-insensitive).

    ``kwargs`` go to the model's constructor (``num_layers``, ``init``, ``pooling``,
    ``propagation``, ...); an option the model does not take raises ``TypeError`` naming it,
    except ``num_layers`` and ``propagation``, which the non-graph models (mf, gmf) ignore so one
    config serves every model.
    """
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    if key in ("mf", "gmf"):
        kwargs.pop("num_layers", None)
        kwargs.pop("propagation", None)
    return MODELS[key](data, dim, seed=seed, generator=generator, device=device, **kwargs)


__all__ = ["Recommender", "MF", "GMF", "LightGCN", "NGCF", "MODELS", "MODEL_NAMES", "PROPAGATIONS",
           "build_model"]
