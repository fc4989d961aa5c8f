"""Deterministic parameter initialisation shared by the models (CPU generator, then moved)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

InitScheme = Literal["normal", "xavier", "xavier_normal"]
INIT_SCHEMES: tuple[str, ...] = ("normal", "xavier", "xavier_normal")


def make_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """A CPU generator: ``generator`` when given, else one seeded with ``seed`` (default 0).

    Parameters are always drawn on the CPU and then moved, so a seed gives the same initial
    weights on every device.
    """
    if generator is not None:
        if generator.device.type != "cpu":
            raise ValueError(f"models: the init generator must be a CPU generator, got {generator.device}")
        return generator
    gen = torch.Generator(device="cpu")
    gen.manual_seed(0 if seed is None else int(seed))
    return gen


def init_embedding(table: nn.Embedding, scheme: str, std: float, gen: torch.Generator) -> None:
    """``normal``: N(0, std^2) (LightGCN's init, std 0.1); ``xavier``: Xavier-uniform (NGCF's,
    DENS's); ``xavier_normal``: Xavier-normal, N(0, 2 / (rows + dim)) (RecBole's)."""
    with torch.no_grad():
        if scheme == "normal":
            nn.init.normal_(table.weight, 0.0, std, generator=gen)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(table.weight, generator=gen)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(table.weight, generator=gen)
        else:
            raise ValueError(f"models: init must be one of {INIT_SCHEMES}, got {scheme!r}")


def check_sizes(model: str, num_users: int, num_items: int, dim: int) -> None:
    if num_users < 1 or num_items < 1:
        raise ValueError(f"{model}: needs at least one user and one item, got {num_users} x {num_items}")
    if dim < 1:
        raise ValueError(f"{model}: dim must be >= 1, got {dim}")
