"""The model's optimisers: built the same way by the trainer and the search (alpha)."""
from __future__ import annotations

import torch


def make_adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam (PyTorch defaults) with the fused kernel on devices that have it (CPU, CUDA)."""
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def make_optimizer(name: str, params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The model's optimiser: ``"adam"`` (:func:`make_adam`), ``"adagrad"`` (PyTorch
    defaults: initial accumulator 0, eps 1e-10; the GDNS paper's optimiser) or ``"sgd"`` (plain,
    no momentum)."""
    if name == "adam":
        return make_adam(params, lr, device)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"train: unknown optimizer {name!r}")
