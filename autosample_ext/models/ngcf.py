"""NGCF (Wang et al., SIGIR 2019): graph propagation with feature transforms and bi-interaction."""
from __future__ import annotations

from typing import Literal

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.models.lightgcn import GraphRecommender, Propagation

logger = logging.getLogger(__name__)


class NGCF(GraphRecommender):
    """Per layer (paper eq. 7, row-vector form, ``Â = D^-1/2 A D^-1/2``, ``S = Â E``)::

        E' = LeakyReLU_0.2( (S + E) W1 + (S ⊙ E) W2 [+ b1 + b2] )

    then message dropout on ``E'`` (training only). ``E'`` (after dropout) feeds the next layer;
    the layer's output for pooling is ``E'`` L2-normalised per row (as the authors' code).
    Layer 0 is the ego table, not normalised.

    Pooling: ``"concat"`` (the paper's ``e* = e(0) || ... || e(L)``, default) gives final tables
    of width ``final_dim = dim * (L + 1)``; ``"mean"`` averages the layers (width ``dim``).
    :meth:`pool` applies the same rule to any per-layer tensors (MixGCF's negatives).

    The paper has no bias terms; ``bias=True`` adds them (the authors' code has them). W1, W2
    and the ego tables start Xavier-uniform as in the paper's code (``init="normal"`` gives
    N(0, 0.1^2) ego tables instead). Message dropout draws from a generator on the model's
    device seeded from ``seed`` (deterministic across runs, not across devices).
    ``propagation``: ``"ops"`` (``S = Â E`` with :func:`autosample_ext.ops.spmm`) or
    ``"reference"`` (``torch.sparse.mm``), see :class:`GraphRecommender`.
    """

    def __init__(self, data: InteractionData, dim: int = 64, num_layers: int = 3, *,
                 pooling: Literal["concat", "mean"] = "concat", message_dropout: float = 0.1,
                 bias: bool = False, negative_slope: float = 0.2, init: str = "xavier",
                 init_std: float = 0.1, seed: int | None = 0,
                 generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", propagation: Propagation = "ops") -> None:
        super().__init__(data, dim, num_layers, init=init, init_std=init_std, seed=seed,
                         generator=generator, propagation=propagation)
        if pooling not in ("concat", "mean"):
            raise ValueError(f"NGCF: pooling must be 'concat' or 'mean', got {pooling!r}")
        if not 0.0 <= message_dropout < 1.0:
            raise ValueError(f"NGCF: message_dropout must be in [0, 1), got {message_dropout}")
        self.pooling = pooling
        self.message_dropout = float(message_dropout)
        self.negative_slope = float(negative_slope)
        self.w1 = nn.ModuleList(nn.Linear(self.dim, self.dim, bias=bias) for _ in range(num_layers))
        self.w2 = nn.ModuleList(nn.Linear(self.dim, self.dim, bias=bias) for _ in range(num_layers))
        with torch.no_grad():
            for lin in [*self.w1, *self.w2]:
                nn.init.xavier_uniform_(lin.weight, generator=self._gen)
                if lin.bias is not None:
                    lin.bias.zero_()
        self._dropout_seed = int(torch.randint(0, 2**62, (1,), generator=self._gen))
        self._dropout_gen: torch.Generator | None = None
        self.to(device)

    @property
    def final_dim(self) -> int:
        return self.dim * (self.num_layers + 1) if self.pooling == "concat" else self.dim

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.message_dropout == 0.0:
            return x
        if self._dropout_gen is None or self._dropout_gen.device != x.device:
            self._dropout_gen = torch.Generator(device=x.device)
            self._dropout_gen.manual_seed(self._dropout_seed)
        keep = torch.rand(x.shape, generator=self._dropout_gen, device=x.device) >= self.message_dropout
        return x * keep / (1.0 - self.message_dropout)

    def get_extra_state(self) -> dict[str, Any]:
        gen = self._dropout_gen
        return {
            "dropout_seed": self._dropout_seed,
            "dropout_device": "" if gen is None else gen.device.type,
            "dropout_rng": torch.zeros(0, dtype=torch.uint8) if gen is None else gen.get_state(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._dropout_seed = int(state["dropout_seed"])
        self._dropout_gen = None
        rng = state["dropout_rng"]
        if rng.numel() == 0:
            return
        device = self.user_embedding.weight.device
        if device.type != state["dropout_device"]:
            logger.warning("NGCF: dropout RNG state saved on %s, model on %s; masks restart from "
                           "the seed", state["dropout_device"], device.type)
            return
        self._dropout_gen = torch.Generator(device=device)
        self._dropout_gen.set_state(rng)

    def layer(self, ego: torch.Tensor, index: int) -> torch.Tensor:
        """One propagation layer ``E -> E'`` (before dropout and normalisation)."""
        side = self.adj_product(ego)
        out = self.w1[index](side + ego) + self.w2[index](side * ego)
        return F.leaky_relu(out, self.negative_slope)

    def _layers(self) -> list[torch.Tensor]:
        ego = self._ego()
        layers = [ego]
        for index in range(self.num_layers):
            ego = self._dropout(self.layer(ego, index))
            layers.append(F.normalize(ego, p=2, dim=1))
        return layers

    def pool(self, layers: list[torch.Tensor]) -> torch.Tensor:
        if len(layers) != self.num_layers + 1:
            raise ValueError(f"NGCF.pool: expects {self.num_layers + 1} layers, got {len(layers)}")
        if self.pooling == "concat":
            return torch.cat(layers, dim=-1)
        if self.propagation == "ops":
            return ops.mean_of_layers(layers)
        return torch.stack(layers, dim=0).mean(dim=0)
