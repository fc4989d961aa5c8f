"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised bipartite graph."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.models._init import check_sizes, init_embedding, make_generator
from autosample_ext.models.base import Recommender

Propagation = Literal["ops", "reference"]
PROPAGATIONS: tuple[str, ...] = ("ops", "reference")


class GraphRecommender(Recommender):
    """Shared parts of the graph models: ego tables, adjacency buffers, layer split.

    The adjacency is ``data.norm_adj`` (``D^-1/2 A D^-1/2`` of the training graph, users first,
    float32 ``[(U+N), (U+N)]``, symmetric), held as non-persistent buffers: they follow
    ``.to(device)`` and are rebuilt from the data, never saved in a checkpoint.

    ``propagation``: ``"ops"`` (default) multiplies with the project's operators on the CSR
    (``adj_indptr``, ``adj_indices``, ``adj_values``; :func:`autosample_ext.ops.spmm` and, for
    LightGCN, the fused :func:`autosample_ext.ops.graph_propagate`); ``"reference"`` runs the
    pure-PyTorch code of the LightGCN / NGCF / MixGCF / DENS repositories, ``torch.sparse.mm`` on
    the COO ``norm_adj`` and ``torch.stack(...).mean(0)`` pooling: the oracle and the benchmark
    baseline. Both give the same tables up to float rounding.
    """

    def __init__(self, data: InteractionData, dim: int, num_layers: int, *, init: str,
                 init_std: float, seed: int | None, generator: torch.Generator | None,
                 propagation: Propagation = "ops") -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, data.num_users, data.num_items, dim)
        if num_layers < 0:
            raise ValueError(f"{name}: num_layers must be >= 0, got {num_layers}")
        if propagation not in PROPAGATIONS:
            raise ValueError(f"{name}: propagation must be one of {PROPAGATIONS}, got {propagation!r}")
        self.propagation = propagation
        self.num_users = int(data.num_users)
        self.num_items = int(data.num_items)
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.user_embedding = nn.Embedding(self.num_users, self.dim)
        self.item_embedding = nn.Embedding(self.num_items, self.dim)
        self._gen = make_generator(seed, generator)
        init_embedding(self.user_embedding, init, init_std, self._gen)
        init_embedding(self.item_embedding, init, init_std, self._gen)
        adj = data.norm_adj.to(torch.float32)
        if propagation == "ops":
            indptr, indices, values = ops.csr_from_coo(adj)
            self.register_buffer("adj_indptr", indptr, persistent=False)
            self.register_buffer("adj_indices", indices, persistent=False)
            self.register_buffer("adj_values", values, persistent=False)
        else:
            self.register_buffer("norm_adj", adj, persistent=False)

    @property
    def is_graph_model(self) -> bool:
        return True

    def _csr(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.adj_indptr, self.adj_indices, self.adj_values

    def adj_product(self, x: torch.Tensor) -> torch.Tensor:
        """``Â x`` for node tables ``x [(U+N), d]``, with autograd."""
        if self.propagation == "ops":
            return ops.spmm(*self._csr(), x, symmetric=True)
        return torch.sparse.mm(self.norm_adj, x)

    def _ego(self) -> torch.Tensor:
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)

    def _layers(self) -> list[torch.Tensor]:
        """Per-layer node tables ``[(U+N), d]`` x (L+1), layer 0 (ego) first, with autograd."""
        raise NotImplementedError

    def layer_embeddings(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        layers = self._layers()
        parts = [self._split(t) for t in layers]
        users = [u for u, _ in parts]
        items = [i for _, i in parts]
        return users, items

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split(self.pool(self._layers()))

    def _split(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Users' and items' rows of a node table; split's backward is one concatenation of the
        two gradients, where two slices would each zero-fill a full node table."""
        users, items = nodes.split([self.num_users, self.num_items])
        return users, items


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
        propagation: ``"ops"`` (the fused ``graph_propagate``: no ``[K+1, N, d]`` stack, backward
            by K products) or ``"reference"`` (torch.sparse.mm + stack + mean); see
            :class:`GraphRecommender`.
    """

    def __init__(self, data: InteractionData, dim: int = 64, num_layers: int = 3, *,
                 init: str = "normal", init_std: float = 0.1, seed: int | None = 0,
                 generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", propagation: Propagation = "ops") -> None:
        super().__init__(data, dim, num_layers, init=init, init_std=init_std, seed=seed,
                         generator=generator, propagation=propagation)
        self.to(device)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.propagation != "ops":
            return super().propagate()
        return self._split(ops.graph_propagate(*self._csr(), self._ego(), self.num_layers,
                                               symmetric=True))

    def _layers(self) -> list[torch.Tensor]:
        layers = [self._ego()]
        for _ in range(self.num_layers):
            layers.append(self.adj_product(layers[-1]))
        return layers

    def pool(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """Mean of the layers; with ``propagation="ops"`` summed in order without a stack (the
        bits of ``graph_propagate``), else ``torch.stack(layers).mean(0)`` (reference code)."""
        if len(layers) != self.num_layers + 1:
            raise ValueError(f"LightGCN.pool: expects {self.num_layers + 1} layers, got {len(layers)}")
        if self.propagation == "ops":
            return ops.mean_of_layers(layers)
        return torch.stack(layers, dim=0).mean(dim=0)
