"""Training beyond one process: torch.distributed data parallelism (docs/distributed.md).

Launch (:mod:`autosample_ext.distributed.launch` starts and stops the process group): ``torchrun --nproc_per_node=N [--nnodes=M ...] -m autosample_ext.train <flags>``; every
flag means what it means for one process, in every mode (single samplers, AutoSample search +
retrain, successive halving, grid). ``--device cpu`` runs gloo; ``--device cuda`` gives local
rank k the GPU ``cuda:k`` and runs the tensor collectives over NCCL (objects and checkpoint
traffic stay on gloo).

Contract, with R processes (ranks) and B = ``--batch-size``:

* **Users are sharded**: rank ``r`` owns user ``u`` when ``u % R == r``
  (:class:`~autosample_ext.samplers.base.UserShard`).
* **Data order**: an epoch's order of the (user, positive) pairs is drawn once from
  (seed, epoch) (:func:`~autosample_ext.training.trainer.epoch_permutation`; every rank computes
  the same permutation) and cut into global batches of B rows; at step ``b`` rank ``r`` trains
  the rows of global batch ``b`` whose user it owns, in the permutation's order. Together the
  ranks train every pair of the epoch exactly once, at the step where one process would.
* **Gradients**: rank ``r``'s loss ``L_r`` is the objective's loss over its ``n_r`` units (rows;
  the distinct users of GDNS's group loss, ``StepOutput.units``). The step's loss is
  ``sum_r n_r L_r / sum_r n_r``: one process's loss of the global batch. Every rank
  back-propagates ``n_r L_r``; :class:`GradientReducer` sums the gradients of the model and of
  the objective's parameters (AutoSample's alpha logits) over the ranks and divides by
  ``sum_r n_r``, so all ranks apply the same update and their replicas stay bit-identical (every
  rank reduces the same numbers in the same order). Tables used by rows (MF's embeddings: a
  step touches a few thousand of their rows) travel as (row, gradient) pairs gathered from all
  ranks when that moves fewer bytes than the dense all-reduce of the table
  (``R * max_r rows_r * (d + 2) < U * d``); all other gradients are all-reduced densely.
* **Samplers** draw from (seed, name, step, rank) streams (rank 0's is the single process's).
  Per-user state (GDNS gains, SRNS memory) is sharded by user: only the owner rank holds a
  user's rows (1/R of the memory per rank) and only it ever updates them, so the state of each
  user evolves from exactly its own rows as in one process, with no communication. (An
  all-gather of every step's state updates would keep R full copies and move the updates of
  the whole batch to every rank each step.) The search's Gumbel draw is one per global step
  (the same generator on every rank).
* **Evaluation** is sharded the same way: a rank ranks its own users; the per-user metric sums
  and the user count are all-reduced in float64 (:func:`~autosample_ext.training.evaluate.evaluate_model`),
  the same numbers as one process to float rounding.
* **Stops**: a stop request (SIGINT / SIGTERM) of any rank is carried in the step's gradient
  reduction and at every epoch end, so all ranks checkpoint at the same step boundary.
* **Files**: rank 0 alone writes the run directory and the checkpoints (atomically, as for one
  process); a checkpoint holds the replicated state once and each other rank's own state
  (sampler shards, RNG, CPU time) under ``"rank_states"``; on resume rank 0 reads it and sends
  each rank its part. ``config.json`` records ``"world_size"``; a run resumes only with the same
  number of processes (:func:`~autosample_ext.distributed.launch.check_world_size`).
* **Failures**: every collective has the process group's timeout (``--dist-timeout``); a
  collective that fails or times out raises :class:`DistributedError` naming this rank and, when
  it can tell, the rank that died (a rank that raises records its error in the rendezvous
  store; a rank on this host whose process is gone is named by its pid). Under torchrun the
  launcher then stops the other ranks and names the failed one in its report.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as tdist

from autosample_ext.distributed import failures
from autosample_ext.samplers.base import UserShard

log = logging.getLogger(__name__)

#: default timeout of every collective, seconds (``--dist-timeout``)
DEFAULT_TIMEOUT_S = 600.0
T = TypeVar("T")


class DistributedError(RuntimeError):
    """A collective failed: another process died, or did not answer within the timeout."""


class RemoteError(RuntimeError):
    """Raised on the other ranks when work that rank 0 does alone (run directory, checkpoints),
    or that every rank does (loading the data), failed on some rank; names that rank."""


@dataclass
class DistContext:
    """This process's place in a run: rank, world size, the process groups.

    ``DistContext()`` is one process (rank 0 of 1): every collective is the identity and
    :meth:`on_main` / :meth:`everywhere` just call the function. ``grad_exchange`` chooses how
    row-used tables travel: ``"auto"`` (rows when cheaper), ``"dense"`` or ``"rows"``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    grad_exchange: str = "auto"
    _device_group: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.grad_exchange not in ("auto", "dense", "rows"):
            raise ValueError(f"grad_exchange must be 'auto', 'dense' or 'rows', got "
                             f"{self.grad_exchange!r}")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> UserShard:
        return UserShard(self.rank, self.world_size)

    @property
    def nnodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))

    def launch_command(self) -> str:
        """How this job was started, for messages (``torchrun --nproc_per_node=2 -m ...``)."""
        if not self.distributed:
            return "python -m autosample_ext.train"
        nodes = f"--nnodes={self.nnodes} (and your rendezvous flags) " if self.nnodes > 1 else ""
        return f"torchrun {nodes}--nproc_per_node={self.local_world_size} -m autosample_ext.train"

    def launch_record(self) -> dict[str, Any]:
        """What config.json records about the processes."""
        return {"world_size": self.world_size, "nnodes": self.nnodes,
                "nproc_per_node": self.local_world_size, "backend": self.backend or "none"}

    # -- devices -------------------------------------------------------------------------------

    def bind_device(self, device: str) -> str:
        """The device of this rank for ``--device device``: CPU as given; ``cuda`` becomes
        ``cuda:LOCAL_RANK`` (set as the current device) and the tensor collectives move to an
        NCCL group. Raises ValueError (on every rank) for an explicit ``cuda:i`` with several
        processes or too few GPUs."""
        dev = torch.device(device)
        if not self.distributed or dev.type != "cuda":
            return device
        problem = ""
        if dev.index is not None:
            problem = (f"--device {device} with {self.world_size} processes: use --device cuda "
                       f"(the process of local rank k uses cuda:k)")
        elif self.local_rank >= torch.cuda.device_count():
            problem = (f"rank {self.rank}: --device cuda needs one GPU per process; local rank "
                       f"{self.local_rank} but this node has {torch.cuda.device_count()} "
                       f"visible GPU(s) (use --nproc_per_node <= the GPUs per node)")
        self.everywhere(lambda: _raise_if(problem), "choosing the GPU")
        torch.cuda.set_device(self.local_rank)
        with self._guard("creating the NCCL group"):
            self._device_group = tdist.new_group(backend="nccl",
                                                 timeout=timedelta(seconds=self.timeout_s))
        self.backend = "gloo+nccl"
        return "cuda"

    def _group(self, tensor: torch.Tensor) -> Any:
        if tensor.is_cuda:
            if self._device_group is None:
                raise RuntimeError("DistContext: a CUDA tensor collective before bind_device('cuda')")
            return self._device_group
        return None  # the default (gloo) group

    # -- failures (distributed/failures.py) -----------------------------------------------------

    def _register(self) -> None:
        failures.register(self.rank)

    def report_failure(self, message: str) -> None:
        """Record this rank's error where the other ranks look when their collectives fail."""
        if self.distributed:
            failures.report(self.rank, message)

    def peer_report(self, wait_s: float = 3.0) -> str:
        """Which other ranks failed or are gone, as far as this process can tell."""
        return failures.peer_report(self.rank, self.world_size, wait_s)

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Translate a failed collective into DistributedError naming the ranks."""
        try:
            yield
        except DistributedError:
            raise
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            first = re.sub(r"^\[[^\]]*\] ", "", first).split(". This is typically")[0]
            peers = self.peer_report() or (
                f"no other rank reported an error: one stopped answering within the timeout "
                f"({self.timeout_s:g} s, --dist-timeout) or failed on another node (see the "
                f"launcher's report)")
            raise DistributedError(f"rank {self.rank} of {self.world_size}: {what} failed "
                                   f"({first}); {peers}") from None

    # -- collectives ---------------------------------------------------------------------------

    def all_reduce_(self, tensor: torch.Tensor, what: str = "all-reduce",
                    op: str = "sum") -> torch.Tensor:
        """In-place sum (or ``op="max"``) over the ranks."""
        if self.distributed:
            red = tdist.ReduceOp.SUM if op == "sum" else tdist.ReduceOp.MAX
            with self._guard(what):
                tdist.all_reduce(tensor, op=red, group=self._group(tensor))
        return tensor

    def all_gather(self, tensor: torch.Tensor, what: str = "all-gather") -> list[torch.Tensor]:
        """Every rank's ``tensor`` (same shape and dtype on every rank), in rank order."""
        if not self.distributed:
            return [tensor]
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        with self._guard(what):
            tdist.all_gather(out, tensor.contiguous(), group=self._group(tensor))
        return out

    def all_gather_object(self, obj: Any, what: str = "all-gather") -> list[Any]:
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        with self._guard(what):
            tdist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, what: str = "broadcast") -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        with self._guard(what):
            tdist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_object(self, obj: Any, what: str = "gather") -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (None elsewhere)."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        with self._guard(what):
            tdist.gather_object(obj, out, dst=0)
        return out

    def scatter_object(self, objs: list[Any] | None, what: str = "scatter") -> Any:
        """``objs[r]`` (given on rank 0) on rank ``r``."""
        if not self.distributed:
            return objs[0] if objs else None
        box: list[Any] = [None]
        with self._guard(what):
            tdist.scatter_object_list(box, objs if self.is_main else None, src=0)
        return box[0]

    def sum_floats(self, values: list[float], what: str = "sum") -> list[float]:
        """Sums over the ranks of a few floats (float64, one collective)."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        return self.all_reduce_(t, what).tolist()

    def barrier(self, what: str = "barrier") -> None:
        if self.distributed:
            with self._guard(what):
                tdist.barrier()

    # -- work done by one rank, or by every rank -----------------------------------------------

    def on_main(self, fn: Callable[[], T], what: str, *, share: bool = False) -> T | None:
        """Run ``fn`` on rank 0 only; every rank learns whether it failed (then rank 0 raises
        the error and the others :class:`RemoteError`). Returns ``fn()`` on rank 0, and on the
        others that value when ``share`` (it must pickle) else None."""
        if not self.distributed:
            return fn()
        result: Any = None
        error: BaseException | None = None
        if self.is_main:
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after telling the others
                error = exc
        payload = None
        if self.is_main:
            payload = (None if error is None else f"{type(error).__name__}: {error}",
                       result if share and error is None else None)
        payload = self.broadcast_object(payload, f"{what} (result from rank 0)")
        if self.is_main:
            if error is not None:
                raise error
            return result
        status, value = payload
        if status is not None:
            raise RemoteError(f"{what} failed on rank 0: {status}")
        return value

    def everywhere(self, fn: Callable[[], T], what: str) -> T:
        """Run ``fn`` on every rank; if it failed on any rank, raise on every rank (a failed rank
        its own error, the others :class:`RemoteError` naming the first failed rank)."""
        if not self.distributed:
            return fn()
        result: Any = None
        error: Exception | None = None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after telling the others
            error = exc
        statuses = self.all_gather_object(
            None if error is None else f"{type(error).__name__}: {error}", f"{what} (status)")
        if error is not None:
            raise error
        failed = [(r, s) for r, s in enumerate(statuses) if s is not None]
        if failed:
            rank, status = failed[0]
            raise RemoteError(f"{what} failed on rank {rank}: {status}")
        return result

    def check_same(self, value: Any, what: str) -> None:
        """Raise ValueError on every rank when ``value`` differs between ranks (e.g. a node that
        read another dataset at the same path)."""
        if not self.distributed:
            return
        values = self.all_gather_object(value, f"comparing {what}")
        bad = [r for r, v in enumerate(values) if v != values[0]]
        if bad:
            raise ValueError(f"{what} differs between the processes: rank 0 has {values[0]}, "
                             f"rank {bad[0]} has {values[bad[0]]}; every node must see the same "
                             f"files at the same paths")


def _raise_if(problem: str) -> None:
    if problem:
        raise ValueError(problem)
