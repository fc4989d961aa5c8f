"""InteractionData: the validated, split, CSR-indexed dataset every other part consumes."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch


@dataclass(frozen=True)
class CSR:
    """Per-user positives: items of user u are ``indices[indptr[u]:indptr[u+1]]``, sorted, unique.

    ``indptr`` is int64 ``[num_users + 1]``, ``indices`` int64 ``[nnz]`` (CPU tensors).
    """

    indptr: torch.Tensor
    indices: torch.Tensor

    @property
    def num_users(self) -> int:
        return int(self.indptr.shape[0]) - 1

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def degrees(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def row(self, user: int) -> torch.Tensor:
        return self.indices[self.indptr[user]: self.indptr[user + 1]]

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) int64 of every stored pair, in row order."""
        users = torch.repeat_interleave(torch.arange(self.num_users), self.degrees())
        return users, self.indices

    def select_rows(self, users: torch.Tensor) -> "CSR":
        """The sub-CSR of the given rows, in the given order (for a batch of users)."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        counts = ends - starts
        indptr = torch.zeros(users.shape[0] + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=indptr[1:])
        owner = torch.repeat_interleave(torch.arange(users.shape[0]), counts)
        pos = torch.arange(int(indptr[-1])) - indptr[owner] + starts[owner]
        return CSR(indptr, self.indices[pos])

    @staticmethod
    def from_pairs(users: np.ndarray | torch.Tensor, items: np.ndarray | torch.Tensor,
                   num_users: int, num_items: int | None = None) -> "CSR":
        """CSR from (user, item) pairs; duplicates are removed, rows sorted.

        One sort of the combined key ``user * num_items + item`` (``num_items`` defaults to
        ``max(items) + 1``).
        """
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        if num_items is None:
            num_items = int(i.max()) + 1 if i.size else 1
        keys = np.sort(u * num_items + i)
        if keys.size:
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        indptr = np.searchsorted(keys, np.arange(num_users + 1, dtype=np.int64) * num_items)
        owners = np.repeat(np.arange(num_users, dtype=np.int64), np.diff(indptr))
        return CSR(torch.from_numpy(indptr.astype(np.int64)),
                   torch.from_numpy(keys - owners * num_items))

    @staticmethod
    def empty(num_users: int) -> "CSR":
        return CSR(torch.zeros(num_users + 1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))


@dataclass
class InteractionData:
    """A split implicit-feedback dataset with contiguous ids ``[0, num_users)``, ``[0, num_items)``.

    ``valid`` is an empty CSR when the dataset has no validation split. ``eval_negatives`` is
    ``[num_users, 100]`` int64 for the leave-one-out protocol (sampled metrics), else None.
    ``raw_user_ids`` / ``raw_item_ids`` map internal ids back to the file's ids when remapped.
    """

    name: str
    num_users: int
    num_items: int
    train: CSR
    valid: CSR
    test: CSR
    eval_negatives: torch.Tensor | None = None
    raw_user_ids: np.ndarray | None = None
    raw_item_ids: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @cached_property
    def item_popularity(self) -> torch.Tensor:
        """Training interactions per item, int64 ``[num_items]``."""
        return torch.bincount(self.train.indices, minlength=self.num_items)

    def train_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.train.pairs()

    @cached_property
    def norm_adj(self) -> torch.Tensor:
        """Symmetric-normalised bipartite adjacency ``D^-1/2 A D^-1/2`` of the training graph.

        Sparse COO (coalesced) float32 of size ``(U + N) x (U + N)``; users first, then items
        (item i is node ``U + i``). Isolated nodes have zero rows.
        """
        users, items = self.train.pairs()
        n = self.num_users + self.num_items
        rows = torch.cat([users, items + self.num_users])
        cols = torch.cat([items + self.num_users, users])
        deg = torch.bincount(rows, minlength=n).to(torch.float32)
        inv_sqrt = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
        values = inv_sqrt[rows] * inv_sqrt[cols]
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, n),
                                       check_invariants=True).coalesce()
