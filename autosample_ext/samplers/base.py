"""The interface every negative sampler implements (docs/search.md)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.models.base import Recommender


class SamplerOptionError(ValueError):
    """A sampler option that cannot serve this data (the GDNS gain table over its memory budget):
    the message names the option, the value and what to do; the command line exits with
    status 2, as for any bad option."""


@dataclass
class SampleContext:
    """What a sampler sees at one training step.

    users, pos_items: ``[B]`` int64 (one training positive per row), on the training device. In
        an epoch of user batches (GDNS's group loop) each row is a distinct user and
        ``pos_items`` is -1: the group-mode sampler draws the user's positives itself.
    model: the model being trained (MixGCF reads its per-layer embeddings, with autograd).
    user_table, item_table: the model's final embeddings for this step, DETACHED (``[U, d]``,
        ``[N, d]``), for scoring candidates without building a graph.
    step: global training step; samplers use it as the RNG offset so every step draws anew and a
        resumed run draws exactly what an uninterrupted one would.
    layers: optional ``model.layer_embeddings()`` of this step (WITH autograd) when the trainer
        already computed them; samplers that need per-layer tables (MixGCF) call the model
        otherwise.
    epoch: 0-based training epoch of the step (set by the trainer; schedules switch on it),
        None when the caller does not know it.
    """

    users: torch.Tensor
    pos_items: torch.Tensor
    model: Recommender
    user_table: torch.Tensor
    item_table: torch.Tensor
    step: int
    layers: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
    epoch: int | None = None


@dataclass
class Negatives:
    """A sampler's answer for a batch.

    items: ``[B, n]`` int64 negative item ids, never a training positive of the row's user.
    embeddings: for samplers that synthesise negatives (MixGCF), ``[B, n, d]`` final negative
        embeddings WITH autograd, used for scoring instead of the item table; else None.
    reg_embeddings: ``[B, n, d]`` ego-layer embeddings (WITH autograd) that the L2 term covers
        instead of the ego rows of ``items`` (MixGCF's authors' code regularises the layer-0
        slice of the synthesised negative); None: the ego rows of ``items``.
    """

    items: torch.Tensor
    embeddings: torch.Tensor | None = None
    reg_embeddings: torch.Tensor | None = None


@dataclass(frozen=True)
class UserShard:
    """The users one process of a distributed run owns (docs/distributed.md): user ``u`` belongs to
    rank ``u % world_size``; its row in a rank's user-indexed state tables is
    ``u // world_size``. ``UserShard()`` (rank 0 of 1) owns every user, row = id.

    A rank trains the rows of each global batch whose user it owns, evaluates its users, and
    stateful samplers (GDNS gains, SRNS memory) keep state only for its users: per-user state is
    then touched by one rank only and needs no communication.
    """

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"UserShard: need 0 <= rank < world_size, got rank {self.rank}, "
                             f"world_size {self.world_size}")

    @property
    def sharded(self) -> bool:
        return self.world_size > 1

    def owns(self, users: torch.Tensor) -> torch.Tensor:
        """Bool mask of ``users`` (int64, any shape) that this rank owns."""
        if self.world_size == 1:
            return torch.ones_like(users, dtype=torch.bool)
        return users % self.world_size == self.rank

    def rows(self, users: torch.Tensor) -> torch.Tensor:
        """Rows of owned ``users`` in this rank's state tables (the ids themselves for one rank)."""
        return users if self.world_size == 1 else torch.div(users, self.world_size,
                                                            rounding_mode="floor")

    def count(self, num_users: int) -> int:
        """How many of users ``0 .. num_users-1`` this rank owns (rows of its state tables)."""
        return max(0, -(-(num_users - self.rank) // self.world_size))

    def check(self, users: torch.Tensor, who: str) -> None:
        """Raise ValueError when ``users`` holds a user of another rank (a partition bug)."""
        if self.world_size > 1 and users.numel() and not bool(self.owns(users).all()):
            bad = int(users[~self.owns(users)][0])
            raise ValueError(f"{who}: user {bad} belongs to rank {bad % self.world_size}, not to "
                             f"rank {self.rank} of {self.world_size}")


_MASK64 = 0xFFFFFFFFFFFFFFFF
#: RNG streams per training step (offset = step * STREAMS_PER_STEP + stream).
STREAMS_PER_STEP = 16


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix_seed(*parts: int) -> int:
    """A non-negative 63-bit seed hashed from integers (splitmix64 chain); stable across runs."""
    h = 0
    for p in parts:
        h = _splitmix64(h ^ (int(p) & _MASK64))
    return h & 0x7FFFFFFFFFFFFFFF


class Sampler:
    """Base class: draws negatives for (user, positive) rows, deterministically by seed and step.

    Subclasses set ``name`` and ``Options`` (their options dataclass) and implement
    :meth:`sample`; what they build beyond the common state (an alias table, per-user memory)
    goes in :meth:`setup`, so every sampler shares this constructor. Stateful samplers (SRNS,
    GDNS) also implement :meth:`observe` (called after the model scored the batch) and keep all
    state in tensors returned by :meth:`state_dict`, so checkpoints restore it exactly.

    ``shard``: in a distributed run, the users of this process (:class:`UserShard`); the
    sampler then only sees batches of those users, keys its streams by the rank and sizes
    per-user state for them alone.
    """

    name: ClassVar[str] = ""
    needs_graph_model: ClassVar[bool] = False
    #: the options dataclass; None for a sampler without one (a schedule: its parts have theirs)
    Options: ClassVar[type | None] = None
    #: the option that bounds ``num_negatives`` (the negatives are picked among that many)
    negatives_bound: ClassVar[str | None] = None

    def __init__(self, data: InteractionData, *, seed: int = 0, num_negatives: int = 1,
                 device: torch.device | str = "cpu", options: Any = None,
                 shard: UserShard | None = None) -> None:
        if num_negatives < 1:
            raise ValueError(f"{type(self).__name__}: num_negatives must be >= 1, got {num_negatives}")
        self.data = data
        self.seed = int(seed)
        self.shard = shard or UserShard()
        self.num_negatives = int(num_negatives)
        self.device = torch.device(device)
        # Checked once here (sorted, unique, in [0, num_items)): the op calls then pass
        # validate=False and skip the per-call row scans (bench/bench_validation.py: up to 2.7x
        # the cost of a one-negative sampling call).
        ops.check_csr(data.train.indptr, data.train.indices, data.num_items, "training positives")
        self.train_indptr = data.train.indptr.to(self.device)
        self.train_indices = data.train.indices.to(self.device)
        if self.Options is not None:
            self.options = options if options is not None else self.Options()
        bound = self.negatives_bound
        if bound is not None and self.num_negatives > getattr(self.options, bound):
            raise ValueError(f"{self.name}: num_negatives ({self.num_negatives}) must not exceed "
                             f"{bound} ({getattr(self.options, bound)})")
        self.setup()

    def setup(self) -> None:
        """Build what this sampler adds to the common state, once the constructor has set
        ``data``, ``seed``, ``shard``, ``num_negatives``, ``device``, ``options`` and the
        training positives on the device (``train_indptr``, ``train_indices``)."""

    # -- randomness: every draw is a function of (seed, name, step, rank, stream), never global
    # RNG --

    @property
    def stream_seed(self) -> int:
        """The op seed of this sampler: its seed hashed with its name, so two samplers built with
        the same seed (AutoSample's candidates) draw independent streams, and with the rank of a
        distributed run (rank 0 draws the single process's stream; every other rank its own)."""
        if self.shard.rank == 0:
            return mix_seed(self.seed, zlib.crc32(self.name.encode()))
        return mix_seed(self.seed, zlib.crc32(self.name.encode()), self.shard.rank)

    def stream(self, step: int, stream: int = 0) -> tuple[int, int]:
        """``(seed, offset)`` for the ops' Philox stream number ``stream`` of training step ``step``."""
        if step < 0:
            raise ValueError(f"{type(self).__name__}: step must be >= 0, got {step}")
        if not 0 <= stream < STREAMS_PER_STEP:
            raise ValueError(f"{type(self).__name__}: stream must be in [0, {STREAMS_PER_STEP}), got {stream}")
        return self.stream_seed, int(step) * STREAMS_PER_STEP + int(stream)

    def generator(self, step: int, stream: int = 0) -> torch.Generator:
        """A fresh CPU torch.Generator for (step, stream): the same every call. Draws are made on
        the CPU (see :meth:`rand`) so they do not depend on the device."""
        seed, offset = self.stream(step, stream)
        gen = torch.Generator()
        gen.manual_seed(mix_seed(seed, offset))
        return gen

    def rand(self, gen: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Uniforms in [0, 1) of ``shape`` from ``gen`` (CPU), on the sampler's device: the same
        values on CPU and CUDA."""
        return torch.rand(shape, generator=gen, dtype=dtype).to(self.device)

    def check_model(self, model: Recommender) -> None:
        """Raise ValueError when this sampler cannot work with ``model`` (MixGCF on MF)."""
        if self.needs_graph_model and not model.is_graph_model:
            raise ValueError(
                f"sampler {self.name!r} needs a graph model (LightGCN, NGCF) with per-layer "
                f"embeddings; got {type(model).__name__}"
            )

    def train_rows(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training positives of ``users [B]`` as a CSR ``(indptr [B+1], indices)`` on the
        sampler's device, rows in the given order (exclusion lists for ``rank_topk``)."""
        # index_select, not tensor[idx]: the same values, several times faster on the CPU
        starts = self.train_indptr.index_select(0, users)
        counts = self.train_indptr.index_select(0, users + 1) - starts
        indptr = torch.zeros(users.shape[0] + 1, dtype=torch.int64, device=self.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        owner = torch.repeat_interleave(torch.arange(users.shape[0], device=self.device), counts)
        shift = (starts - indptr[:-1]).index_select(0, owner)
        pos = torch.arange(indptr[-1].item(), device=self.device) + shift
        return indptr, self.train_indices.index_select(0, pos)

    def active(self, ctx: SampleContext) -> "Sampler":
        """The sampler that draws this step's negatives: ``self``, or a schedule's current
        segment (:class:`autosample_ext.samplers.schedule.ScheduleSampler`)."""
        return self

    def sample(self, ctx: SampleContext) -> Negatives:
        raise NotImplementedError

    def observe(self, ctx: SampleContext, negatives: Negatives, pos_scores: torch.Tensor,
                neg_scores: torch.Tensor) -> None:
        """Feedback after scoring: ``pos_scores [B]``, ``neg_scores [B, n]`` (detached)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def _copy_state(self, state: dict[str, Any], names: tuple[str, ...]) -> None:
        """Copy tensors ``state[name]`` into the attributes ``name`` (same shape and dtype)."""
        if set(state) != set(names):
            raise ValueError(f"{self.name}: state keys {sorted(state)} != {sorted(names)}")
        for key in names:
            mine, value = getattr(self, key), state[key]
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(mine.shape) \
                    or value.dtype != mine.dtype:
                got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{self.name}: state {key!r} is {got}, expected {tuple(mine.shape)} {mine.dtype}")
        for key in names:
            getattr(self, key).copy_(state[key])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state but got keys {sorted(state)}")
