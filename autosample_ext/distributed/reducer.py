"""The gradient reduction of a distributed run (docs/distributed.md; the contract is in
:mod:`autosample_ext.distributed.context`, "Gradients").

Each rank back-propagates ``n_r * L_r`` (its loss times its units: rows, or GDNS's distinct
users); :class:`GradientReducer` sums the gradients over the ranks and divides by ``sum_r n_r``.
Every rank then holds the same gradient: that of one process's loss over the global batch.

Why not DistributedDataParallel: the step's loss is computed from tables that the samplers also
read outside the model's forward (DNS scores, MixGCF's per-layer tables), the alpha logits of
the search live outside the model, the per-rank batches have different sizes (the rows of each
global batch owned by the rank) so a plain average over ranks would weight rows unequally, and
DDP all-reduces an embedding table's dense gradient although a step touches a few thousand of
its rows. The reduction here is explicit, weighted, exchanges row-used tables as rows when that
is cheaper, and carries the loss and the stop request in the same collectives.
"""
from __future__ import annotations

import time

import torch

from autosample_ext.distributed.context import DistContext


_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _touched_rows(grad: torch.Tensor) -> torch.Tensor:
    """Row ids of a 2-D gradient whose bits are not all zero (a row of -0.0 counts: adding it
    changes nothing). One pass over the table read as integers, 8 bytes at a time when the
    rows allow it (about 3x faster than ``(grad != 0).any(1)``, which writes a bool table)."""
    g = grad.contiguous()
    width = g.shape[1] * g.element_size()
    words = g.view(torch.int64) if width % 8 == 0 else g.view(_SAME_SIZE_INT[g.element_size()])
    return torch.nonzero(words.any(dim=1)).squeeze(1)


class GradientReducer:
    """Sums the gradients of ``params`` over the ranks weighted by each rank's units and divides
    by the total (module docstring, "Gradients"). ``row_params``: the parameters used by rows
    (MF's embedding tables), exchanged as rows when that moves fewer bytes.

    ``bytes_sent`` counts, per exchange kind (``"dense"``, ``"rows"``), the bytes one rank
    contributed over the ``steps`` reduced, ``seconds`` the wall time spent reducing (waiting
    for the slowest rank included); for benchmarks.
    """

    #: params smaller than this (elements) are reduced together in one flat buffer
    SMALL = 1 << 20

    def __init__(self, dist: DistContext, params: list[torch.Tensor],
                 row_params: list[torch.Tensor] = ()) -> None:
        self.dist = dist
        self.params = list(params)
        ids = {id(p) for p in row_params}
        self.row_used = [id(p) in ids and p.dim() == 2 for p in self.params]
        self.bytes_sent = {"dense": 0, "rows": 0}
        self.steps = 0
        self.seconds = 0.0

    def step(self, loss: torch.Tensor | None, units: int, rows: int, stop: bool
             ) -> tuple[torch.Tensor, bool]:
        """Back-propagate ``units * loss`` (nothing for an empty local batch: ``loss`` None),
        reduce the gradients, return (the global step loss, any rank asked to stop)."""
        device = self.params[0].device
        if loss is None:
            local = torch.zeros((), dtype=torch.float64, device=device)
            units = 0
        else:
            (loss * units).backward()
            local = loss.detach().to(torch.float64) * units
        total_units, total_loss, stop_any = self.reduce(units, local, stop)
        return total_loss / total_units, stop_any

    def reduce(self, units: int, loss_sum: torch.Tensor, stop: bool
               ) -> tuple[float, torch.Tensor, bool]:
        """Reduce the gradients in place; returns (sum of units, sum of ``units * loss``, any
        stop) over the ranks."""
        dist, params = self.dist, self.params
        device = params[0].device
        t0 = time.perf_counter()
        grads = [p.grad for p in params]
        row_idx = [i for i, used in enumerate(self.row_used) if used]
        touched: dict[int, torch.Tensor] = {}
        if dist.grad_exchange != "dense":
            for i in row_idx:
                g = grads[i]
                touched[i] = (_touched_rows(g) if g is not None
                              else torch.zeros(0, dtype=torch.int64, device=device))
        head = torch.tensor([float(units), 1.0 if stop else 0.0]
                            + [1.0 if g is not None else 0.0 for g in grads]
                            + [float(touched[i].numel()) for i in touched],
                            dtype=torch.float64, device=device)
        head = torch.cat([head[:1], loss_sum.reshape(1).to(torch.float64), head[1:]])
        n_params = len(params)
        by_rows: dict[int, list[int]] = {}
        if touched:
            heads = torch.stack(dist.all_gather(head, "exchanging the step's gradient sizes"))
            total = heads.sum(0)
            counts = heads[:, 3 + n_params:].to(torch.int64).cpu()      # [R, len(touched)]
            for j, i in enumerate(touched):
                per_rank = counts[:, j].tolist()
                d = params[i].shape[1]
                cheaper = dist.world_size * max(per_rank) * (d + 2) < params[i].numel()
                if dist.grad_exchange == "rows" or cheaper:
                    by_rows[i] = per_rank
        else:
            total = dist.all_reduce_(head, "reducing the step's loss")
        dense = [i for i in range(n_params) if i not in by_rows]
        self._dense(dense, grads)
        for i, per_rank in by_rows.items():
            self._rows(i, grads[i], touched[i], per_rank)
        units_total = float(total[0])
        has = total[3:3 + n_params]
        for i, p in enumerate(params):
            if float(has[i]) == 0:
                p.grad = None
            elif p.grad is not None:
                p.grad.div_(units_total)
        stop_any = bool(total[2] > 0)
        self.steps += 1
        self.seconds += time.perf_counter() - t0
        return units_total, total[1], stop_any

    def _dense(self, idx: list[int], grads: list[torch.Tensor | None]) -> None:
        """All-reduce (sum) the gradients ``idx``; small ones in one flat buffer."""
        small: list[int] = []
        for i in idx:
            p = self.params[i]
            if grads[i] is None:
                p.grad = torch.zeros_like(p)
            if p.numel() >= self.SMALL:
                self.dist.all_reduce_(p.grad, "all-reduce of the gradients")
                self.bytes_sent["dense"] += p.grad.numel() * p.grad.element_size()
            else:
                small.append(i)
        for dtype in {self.params[i].grad.dtype for i in small}:
            group = [self.params[i] for i in small if self.params[i].grad.dtype == dtype]
            flat = torch.cat([p.grad.reshape(-1) for p in group])
            self.dist.all_reduce_(flat, "all-reduce of the gradients")
            self.bytes_sent["dense"] += flat.numel() * flat.element_size()
            offset = 0
            for p in group:
                n = p.numel()
                p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
                offset += n

    def _rows(self, i: int, grad: torch.Tensor | None, rows: torch.Tensor,
              per_rank: list[int]) -> None:
        """Gather every rank's (row, gradient row) pairs of table ``i`` and sum them into this
        rank's gradient in place: its own rows are cleared first (every other row of it is
        zero), then each rank's rows are added in rank order. Each rank's rows are distinct, so
        no element gets two additions from one rank: the sum, in the same order on every rank
        and device, is bit-identical across ranks. O(rows) work besides the caller's scan."""
        p = self.params[i]
        width = max(per_rank)
        idx = torch.full((width,), -1, dtype=torch.int64, device=p.device)
        vals = torch.zeros(width, p.shape[1], dtype=p.dtype, device=p.device)
        n = rows.numel()
        if n:
            idx[:n] = rows
            vals[:n] = grad[rows]
        all_idx = self.dist.all_gather(idx, "all-gather of the gradient rows")
        all_vals = self.dist.all_gather(vals, "all-gather of the gradient rows")
        self.bytes_sent["rows"] += width * (8 + p.shape[1] * p.element_size())
        if grad is None:
            grad = p.grad = torch.zeros_like(p)
        elif n:
            grad.index_fill_(0, rows, 0)
        for r, count in enumerate(per_rank):
            if count:
                grad.index_add_(0, all_idx[r][:count], all_vals[r][:count])
