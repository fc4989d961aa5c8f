"""Matrix factorisation (dot product of ego embeddings) and GDNS's GMF."""
from __future__ import annotations

import torch
from torch import nn

from autosample_ext.data.interactions import InteractionData
from autosample_ext.models._init import check_sizes, init_embedding, make_generator
from autosample_ext.models.base import Recommender


class MF(Recommender):
    """``score(u, i) = <P_u, Q_i>``; one layer, the ego tables are the final tables.

    Args:
        data: the dataset (only its sizes are used).
        dim: embedding width d.
        init: ``"normal"`` (N(0, std^2), default std 0.1) or ``"xavier"``.
        seed / generator: the initial weights are a function of these alone (CPU draw).
        device: where the parameters live.
    """

    def __init__(self, data: InteractionData, dim: int = 64, *, init: str = "normal",
                 init_std: float = 0.1, seed: int | None = 0,
                 generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        check_sizes(type(self).__name__, data.num_users, data.num_items, dim)
        self.num_users = int(data.num_users)
        self.num_items = int(data.num_items)
        self.dim = int(dim)
        self.user_embedding = nn.Embedding(self.num_users, self.dim)
        self.item_embedding = nn.Embedding(self.num_items, self.dim)
        gen = make_generator(seed, generator)
        init_embedding(self.user_embedding, init, init_std, gen)
        init_embedding(self.item_embedding, init, init_std, gen)
        self.to(device)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.weight, self.item_embedding.weight

    def layer_embeddings(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return [self.user_embedding.weight], [self.item_embedding.weight]

    def pool(self, layers: list[torch.Tensor]) -> torch.Tensor:
        if len(layers) != 1:
            raise ValueError(f"{type(self).__name__}.pool: expects 1 layer, got {len(layers)}")
        return layers[0]


class GMF(MF):
    """Generalised MF (NCF's GMF, the model of the GDNS paper): ``score = w^T (P_u ⊙ Q_i)``.

    Written as a dot product of final tables, ``<P_u ⊙ w, Q_i>``: :meth:`propagate` returns
    ``(P * w, Q)``. ``w [d]`` starts at ones (the model starts as MF); it is not part of the L2
    term, which covers the ego embeddings used in the batch as for every model.
    """

    def __init__(self, data: InteractionData, dim: int = 64, **kwargs) -> None:
        device = kwargs.pop("device", "cpu")
        super().__init__(data, dim, **kwargs)
        self.weight = nn.Parameter(torch.ones(self.dim))
        self.to(device)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.weight * self.weight, self.item_embedding.weight

    def layer_embeddings(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        users, items = self.propagate()
        return [users], [items]
