"""Summary statistics and data-quality warnings of an InteractionData (JSON-serialisable)."""
from __future__ import annotations

from typing import Any

import numpy as np

from autosample_ext.data.interactions import CSR, InteractionData


def _keys(csr: CSR, num_items: int) -> np.ndarray:
    indptr = csr.indptr.numpy()
    users = np.repeat(np.arange(csr.num_users, dtype=np.int64), np.diff(indptr))
    return users * max(num_items, 1) + csr.indices.numpy()


def overlap(a: CSR, b: CSR, num_items: int) -> int:
    """Number of (user, item) pairs present in both CSRs."""
    if a.nnz == 0 or b.nnz == 0:
        return 0
    return int(np.intersect1d(_keys(a, num_items), _keys(b, num_items), assume_unique=True).size)


def summarize(data: InteractionData) -> dict[str, Any]:
    """Counts per split, density, overlaps and warnings.

    ``users`` / ``items`` are the id ranges ``num_users`` / ``num_items``; ``*_pairs`` count
    unique (user, item) pairs; ``users_without_test`` counts users with training items and no
    test item; ``test_items_not_in_train`` counts distinct test items with no training pair.
    """
    U, N = data.num_users, data.num_items
    tr, va, te = data.train, data.valid, data.test
    train_deg, test_deg = tr.degrees().numpy(), te.degrees().numpy()
    pop = np.bincount(tr.indices.numpy(), minlength=N)
    test_items = np.flatnonzero(np.bincount(te.indices.numpy(), minlength=N))
    cold_test = test_items[pop[test_items] == 0]
    cold_test_pairs = int(np.isin(te.indices.numpy(), cold_test).sum())
    s: dict[str, Any] = {
        "users": U,
        "items": N,
        "train_pairs": tr.nnz,
        "valid_pairs": va.nnz,
        "test_pairs": te.nnz,
        "interactions": tr.nnz + va.nnz + te.nnz,
        "density": (tr.nnz + va.nnz + te.nnz) / (U * N) if U and N else 0.0,
        "train_density": tr.nnz / (U * N) if U and N else 0.0,
        "users_with_train": int((train_deg > 0).sum()),
        "items_with_train": int((pop > 0).sum()),
        "users_with_test": int((test_deg > 0).sum()),
        "users_with_valid": int((va.degrees().numpy() > 0).sum()),
        "users_without_test": int(((train_deg > 0) & (test_deg == 0)).sum()),
        "users_without_train": int((train_deg == 0).sum()),
        "test_in_train": overlap(tr, te, N),
        "valid_in_train": overlap(tr, va, N),
        "valid_in_test": overlap(va, te, N),
        "test_items_not_in_train": int(cold_test.size),
        "test_pairs_with_items_not_in_train": cold_test_pairs,
    }
    warnings: list[str] = []
    if s["test_in_train"]:
        warnings.append(f"{s['test_in_train']} of {te.nnz} test pairs also appear in train "
                        f"(kept as given; full-ranking evaluation masks train items)")
    if s["valid_in_train"]:
        warnings.append(f"{s['valid_in_train']} validation pairs also appear in train")
    if s["valid_in_test"]:
        warnings.append(f"{s['valid_in_test']} validation pairs also appear in test")
    if s["users_without_test"]:
        warnings.append(f"{s['users_without_test']} users with training items have no test "
                        f"item (skipped by evaluation)")
    if s["users_without_train"]:
        warnings.append(f"{s['users_without_train']} users have no training item")
    if cold_test.size:
        warnings.append(f"{cold_test.size} test items ({cold_test_pairs} test pairs) never "
                        f"appear in train")
    occurring_users = int(((train_deg + va.degrees().numpy() + test_deg) > 0).sum())
    occurring_items = int(((pop + np.bincount(va.indices.numpy(), minlength=N)
                            + np.bincount(te.indices.numpy(), minlength=N)) > 0).sum())
    if U > 2 * occurring_users + 1000 or N > 2 * occurring_items + 1000:
        warnings.append(f"sparse id range: {occurring_users} of {U} user ids and "
                        f"{occurring_items} of {N} item ids occur (consider remap=True)")
    dups = data.info.get("duplicates_removed", {}).get("total", 0)
    if dups:
        warnings.append(f"{dups} duplicate (user, item) records removed")
    s["warnings"] = warnings
    return s
