"""Inputs of the fused MF / GMF training step (autosample::mf_bpr_train) shared by its CPU and
CUDA tests: a small training CSR, tables, the per-sampler arguments, and calls of the op and of
its oracle on copies of the same state."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from autosample_ext import ops
from autosample_ext.ops import reference_mf
from autosample_ext.ops.fused import new_state
from autosample_ext.samplers.dns import exp_rank_cdf


@dataclass
class Problem:
    """A training CSR, rows in training order and the tables (with their optimiser state)."""

    indptr: torch.Tensor
    indices: torch.Tensor
    users: torch.Tensor
    pos: torch.Tensor
    P: torch.Tensor
    Q: torch.Tensor
    w: torch.Tensor | None
    state: list[torch.Tensor]
    extra: dict[str, Any] = field(default_factory=dict)

    def copy(self, device: str | torch.device | None = None) -> Problem:
        def mv(t):
            return None if t is None else t.detach().clone().to(device or t.device)
        return Problem(mv(self.indptr), mv(self.indices), mv(self.users), mv(self.pos), mv(self.P),
                       mv(self.Q), mv(self.w), [mv(s) for s in self.state],
                       {k: mv(v) if isinstance(v, torch.Tensor) else v for k, v in self.extra.items()})

    def tables(self) -> list[torch.Tensor]:
        return [self.P, self.Q] + ([self.w] if self.w is not None else []) + list(self.state)


def make_problem(*, users: int = 12, items: int = 40, rows: int = 70, dim: int = 8,
                 dtype: torch.dtype = torch.float64, optimizer: str = "adam", gmf: bool = False,
                 sampler: str = "rns", n: int = 2, M: int = 5, k: int = 1,
                 seed: int = 0) -> Problem:
    """Random problem; ``extra`` holds the sampler's keyword arguments of :func:`op_kwargs`."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    deg = rng.integers(1, items // 2, users)
    rows_ = [np.sort(rng.choice(items, size=int(c), replace=False)) for c in deg]
    indptr = torch.tensor(np.concatenate([[0], np.cumsum(deg)]), dtype=torch.int64)
    indices = torch.from_numpy(np.concatenate(rows_)).to(torch.int64)
    u = torch.from_numpy(rng.integers(0, users, rows)).to(torch.int64)
    pos = torch.tensor([int(rng.choice(rows_[int(x)])) for x in u], dtype=torch.int64)
    P = (torch.randn(users, dim, generator=g, dtype=torch.float64) * 0.3).to(dtype)
    Q = (torch.randn(items, dim, generator=g, dtype=torch.float64) * 0.3).to(dtype)
    w = (1 + 0.2 * torch.randn(dim, generator=g, dtype=torch.float64)).to(dtype) if gmf else None
    state = new_state(optimizer, P, Q, w)
    for s in state:  # non-zero state: every moment and sum matters
        s.copy_(torch.rand(s.shape, generator=g, dtype=torch.float64).to(dtype) * 0.01)
    extra: dict[str, Any] = {"sampler": sampler, "num_negatives": n}
    if sampler == "pns":
        pop = torch.from_numpy(rng.integers(0, 30, items).astype(np.float64))
        extra["alias_prob"], extra["alias_idx"] = ops.build_alias_table(pop.pow(0.75) + 0.1)
    if sampler == "dns":
        extra["num_candidates"], extra["top_k"] = M, k
        if k > 1:
            extra["cdf"] = exp_rank_cdf(k, 1.5, torch.device("cpu"))
            extra["uniforms"] = torch.rand(rows, n, generator=g, dtype=torch.float64)
    if sampler == "given":
        extra["negatives"] = ops.sample_negatives(indptr, indices, u, items, n, 11, 22)
    return Problem(indptr, indices, u, pos, P, Q, w, state, extra)


HYPER = {"seed": 1234, "offset": 7, "offset_stride": 16, "lr": 0.05, "l2": 0.01, "beta1": 0.9, "beta2": 0.999,
             "eps": 1e-8}


def run_op(p: Problem, optimizer: str, batch_size: int = 16, opt_step: int = 0,
           **over: Any) -> torch.Tensor:
    """The operator on ``p`` (in place); returns the losses."""
    kw = {**HYPER, **p.extra, **over}
    return ops.mf_bpr_train(p.P, p.Q, p.state, p.indptr, p.indices, p.users, p.pos, weight=p.w,
                            batch_size=batch_size, optimizer=optimizer, opt_step=opt_step, **kw)


def run_reference(p: Problem, optimizer: str, batch_size: int = 16, opt_step: int = 0,
                  **over: Any) -> torch.Tensor:
    """The oracle on ``p`` (in place); returns the losses."""
    kw = {**HYPER, **p.extra, **over}
    return reference_mf.mf_bpr_train(
        p.P, p.Q, p.w, p.state, p.indptr, p.indices, p.users, p.pos, kw.get("negatives"),
        batch_size, kw["num_negatives"], kw["sampler"], kw.get("num_candidates", 1),
        kw.get("top_k", 1), kw.get("alias_prob"), kw.get("alias_idx"), kw.get("cdf"),
        kw.get("uniforms"), kw["seed"], kw["offset"], kw["offset_stride"], kw["lr"], kw["l2"],
        optimizer, kw["beta1"], kw["beta2"], kw["eps"], opt_step)


SAMPLER_CASES = [("rns", {}), ("pns", {}), ("dns", {"M": 5, "k": 1}), ("dns", {"M": 6, "k": 3}),
                 ("given", {})]
