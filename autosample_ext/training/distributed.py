"""Training beyond one process: torch.distributed data parallelism (DESIGN.md §8).

Launch: ``torchrun --nproc_per_node=N [--nnodes=M ...] -m autosample_ext.train <flags>``; every
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
  number of processes (:func:`check_world_size`).
* **Failures**: every collective has the process group's timeout (``--dist-timeout``); a
  collective that fails or times out raises :class:`DistributedError` naming this rank and, when
  it can tell, the rank that died (a rank that raises records its error in the rendezvous
  store; a rank on this host whose process is gone is named by its pid). Under torchrun the
  launcher then stops the other ranks and names the failed one in its report.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as tdist

from autosample_ext.samplers.base import UserShard
from autosample_ext.training.checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)

#: default timeout of every collective, seconds (``--dist-timeout``)
DEFAULT_TIMEOUT_S = 600.0
_STORE_PREFIX = "autosample_ext"
T = TypeVar("T")


class DistributedError(RuntimeError):
    """A collective failed: another process died, or did not answer within the timeout."""


class RemoteError(RuntimeError):
    """Raised on the other ranks when work that rank 0 does alone (run directory, checkpoints),
    or that every rank does (loading the data), failed on some rank; names that rank."""


def check_world_size(saved: int, current: int, where: str, hint: str = "") -> None:
    """Raise ValueError when a run (or checkpoint) written by ``saved`` processes is continued
    by ``current``: the per-rank batches, sampler streams and user-sharded sampler states
    depend on the number of processes."""
    if int(saved) == int(current):
        return
    launch = (f"torchrun --nproc_per_node={saved} -m autosample_ext.train" if saved > 1
              else "python -m autosample_ext.train")
    raise ValueError(
        f"{where} was trained by {saved} process{'es' if saved != 1 else ''} (world_size "
        f"{saved}); this job has {current}. A distributed run continues only with the same "
        f"number of processes (each rank's share of the batches, its sampler streams and its "
        f"users' sampler state depend on it): resume it with {hint or launch} --resume")


def _process_gone(pid: int) -> bool:
    """True when ``pid`` is not a running process of this host (gone, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        from autosample_ext.experiment.lock import pid_alive  # pragma: no cover - no /proc

        return not pid_alive(pid)


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

    # -- failures ------------------------------------------------------------------------------

    @staticmethod
    def _store() -> Any:
        try:
            return tdist.distributed_c10d._get_default_store()
        except Exception:  # noqa: BLE001 - private API; the report is best effort
            return None

    def _register(self) -> None:
        store = self._store()
        if store is None:
            return
        try:
            store.set(f"{_STORE_PREFIX}/proc/{self.rank}", f"{socket.gethostname()} {os.getpid()}")
            store.delete_key(f"{_STORE_PREFIX}/failed/{self.rank}")
        except Exception:  # noqa: BLE001
            pass

    def report_failure(self, message: str) -> None:
        """Record this rank's error where the other ranks look when their collectives fail."""
        if not self.distributed:
            return
        store = self._store()
        try:
            if store is not None:
                store.set(f"{_STORE_PREFIX}/failed/{self.rank}", message[:800])
        except Exception:  # noqa: BLE001
            pass

    def peer_report(self, wait_s: float = 3.0) -> str:
        """Which other ranks failed or are gone, as far as this process can tell; waits up to
        ``wait_s`` for a dying process to finish exiting (its sockets close before it does)."""
        store = self._store()
        if store is None:
            return ""
        host = socket.gethostname()
        deadline = time.monotonic() + wait_s
        while True:
            notes: list[str] = []
            for r in range(self.world_size):
                if r == self.rank:
                    continue
                try:
                    key = f"{_STORE_PREFIX}/failed/{r}"
                    if store.check([key]):
                        notes.append(f"rank {r} failed: {store.get(key).decode(errors='replace')}")
                        continue
                    key = f"{_STORE_PREFIX}/proc/{r}"
                    if store.check([key]):
                        their_host, pid = store.get(key).decode().rsplit(" ", 1)
                        if their_host == host and _process_gone(int(pid)):
                            notes.append(f"rank {r} (pid {pid}) is no longer running")
                except Exception:  # noqa: BLE001 - the store went with a dead rank 0
                    return "; ".join(notes)
            if notes or time.monotonic() >= deadline:
                return "; ".join(notes)
            time.sleep(0.1)

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

    # -- checkpoints ---------------------------------------------------------------------------

    def load_checkpoint(self, path: str | os.PathLike) -> dict[str, Any] | None:
        """The checkpoint at ``path`` as this rank needs it, or None when there is none.

        Rank 0 reads the file (:func:`~autosample_ext.training.checkpoint.load_checkpoint`,
        ``weights_only``); the replicated part goes to every rank and each other rank receives
        its own ``rank_states`` entry, merged into the top level (``objective``, ``rng``, ...).
        """
        path = Path(path)

        def read() -> tuple[dict[str, Any] | None, list[Any] | None]:
            if not path.is_file():
                return None, None
            state = load_checkpoint(path)
            return state, state.pop("rank_states", None)

        if not self.distributed:
            state, parts = read()
            if state is not None and parts:
                check_world_size(int(state.get("world_size", 1)), 1, f"checkpoint {path}")
            return state
        state, parts = self.on_main(read, f"reading {path.name}") or (None, None)
        header = (None if state is None else int(state.get("world_size", 1)),
                  parts is not None) if self.is_main else None
        saved_world, has_parts = self.broadcast_object(header, f"reading {path.name}")
        if saved_world is None:
            return None
        if has_parts:
            check_world_size(saved_world, self.world_size, f"checkpoint {path}")
            if self.is_main and len(parts) != self.world_size - 1:
                raise CheckpointError(f"checkpoint {path} holds {len(parts) + 1} ranks' states "
                                      f"for world_size {saved_world}; it was not loaded")
        state = self.broadcast_object(state, f"sending {path.name}")
        if has_parts:
            mine = self.scatter_object([None, *parts] if self.is_main else None,
                                       f"sending each rank its part of {path.name}")
            if not self.is_main:
                state = {**state, **mine}
        return state


def _raise_if(problem: str) -> None:
    if problem:
        raise ValueError(problem)


def init_from_env(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """This process's context. Under torchrun (``WORLD_SIZE`` > 1 in the environment, with
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) the default process group is
    created (gloo; :meth:`DistContext.bind_device` adds NCCL for GPUs) with the collective
    timeout ``timeout_s``; otherwise one process."""
    if not timeout_s > 0:
        raise ValueError(f"--dist-timeout: must be > 0 seconds, got {timeout_s}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(timeout_s=timeout_s)
    if not tdist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not tdist.is_initialized():
        tdist.init_process_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
    ctx = current_context(timeout_s)
    ctx._register()
    return ctx


def current_context(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """The context of the default process group when one is initialised (library use inside a
    torchrun worker), else one process."""
    if not (tdist.is_available() and tdist.is_initialized()) or tdist.get_world_size() == 1:
        return DistContext(timeout_s=timeout_s)
    world = tdist.get_world_size()
    return DistContext(rank=tdist.get_rank(), world_size=world,
                       local_rank=int(os.environ.get("LOCAL_RANK", tdist.get_rank())),
                       local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", world)),
                       backend=str(tdist.get_backend()), timeout_s=timeout_s)


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group after a run that ended normally."""
    if ctx.distributed and tdist.is_initialized():
        tdist.destroy_process_group()


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
                touched[i] = (torch.nonzero((g != 0).any(dim=1)).squeeze(1) if g is not None
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
        """Gather every rank's (row, gradient row) pairs of table ``i`` and sum them into a
        dense gradient, rank by rank (each rank's rows are distinct: no two additions to one
        element within a rank, so the sum is the same on every rank and every device)."""
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
        out = torch.zeros_like(p)
        for r, count in enumerate(per_rank):
            if count:
                out.index_add_(0, all_idx[r][:count], all_vals[r][:count])
        p.grad = out
