"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised bipartite graph."""
from __future__ import annotations

import torch
from torch import nn

from autosample_ext.data.interactions import InteractionData
from autosample_ext.models._init import check_sizes, init_embedding, make_generator
from autosample_ext.models.base import Recommender


class GraphRecommender(Recommender):
    """Shared parts of the graph models: ego tables, adjacency buffer, layer split.

    The adjacency is ``data.norm_adj`` (``D^-1/2 A D^-1/2`` of the training graph, users first,
    COO float32 ``[(U+N), (U+N)]``), held as a non-persistent buffer: it follows ``.to(device)``
    and is rebuilt from the data, never saved in a checkpoint.
    """

    norm_adj: torch.Tensor

    def __init__(self, data: InteractionData, dim: int, num_layers: int, *, init: str,
                 init_std: float, seed: int | None, generator: torch.Generator | None) -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, data.num_users, data.num_items, dim)
        if num_layers < 0:
            raise ValueError(f"{name}: num_layers must be >= 0, got {num_layers}")
        self.num_users = int(data.num_users)
        self.num_items = int(data.num_items)
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.user_embedding = nn.Embedding(self.num_users, self.dim)
        self.item_embedding = nn.Embedding(self.num_items, self.dim)
        self._gen = make_generator(seed, generator)
        init_embedding(self.user_embedding, init, init_std, self._gen)
        init_embedding(self.item_embedding, init, init_std, self._gen)
        self.register_buffer("norm_adj", data.norm_adj.to(torch.float32), persistent=False)

    @property
    def is_graph_model(self) -> bool:
        return True

    def _ego(self) -> torch.Tensor:
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)

    def _layers(self) -> list[torch.Tensor]:
        """Per-layer node tables ``[(U+N), d]`` x (L+1), layer 0 (ego) first, with autograd."""
        raise NotImplementedError

    def layer_embeddings(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        layers = self._layers()
        users = [t[: self.num_users] for t in layers]
        items = [t[self.num_users:] for t in layers]
        return users, items

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        final = self.pool(self._layers())
        return final[: self.num_users], final[self.num_users:]


class LightGCN(GraphRecommender):
    """``E^(k) = Â E^(k-1)``, final ``= mean(E^(0), ..., E^(K))`` (uniform alpha_k = 1/(K+1)).

    Args:
        data: the dataset; its training graph is propagated over.
        dim: embedding width d (final tables are ``[., d]``).
        num_layers: K (default 3).
        init: ``"normal"`` with std 0.1 (the LightGCN reference implementation, default) or
            ``"xavier"``.
        seed / generator: the initial weights are a function of these alone (CPU draw).
        device: where parameters and adjacency live.
    """

    def __init__(self, data: InteractionData, dim: int = 64, num_layers: int = 3, *,
                 init: str = "normal", init_std: float = 0.1, seed: int | None = 0,
                 generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(data, dim, num_layers, init=init, init_std=init_std, seed=seed,
                         generator=generator)
        self.to(device)

    def _layers(self) -> list[torch.Tensor]:
        layers = [self._ego()]
        for _ in range(self.num_layers):
            layers.append(torch.sparse.mm(self.norm_adj, layers[-1]))
        return layers

    def pool(self, layers: list[torch.Tensor]) -> torch.Tensor:
        if len(layers) != self.num_layers + 1:
            raise ValueError(f"LightGCN.pool: expects {self.num_layers + 1} layers, got {len(layers)}")
        return torch.stack(layers, dim=0).mean(dim=0)
