"""The real datasets (../shared/data or $AUTOSAMPLE_DATA_DIR) match their README table."""
from __future__ import annotations

import pytest
import torch

from autosample_ext.data import load

# ../shared/data/README.md (beside the repository): users, items (id ranges), unique train pairs, unique test pairs;
# plus the quirks it lists (lastfm duplicates, overlap, users without test items).
EXPECTED = {
    "lastfm": dict(users=640, items=4165, train_pairs=13039, test_pairs=6014,
                   rows_train=90136, test_in_train=3518, users_with_test=575,
                   users_without_test=65, test_items_not_in_train=0),
    "beauty": dict(users=7670, items=10887, train_pairs=63601, test_pairs=18696,
                   rows_train=63601, test_in_train=0, users_with_test=7145,
                   users_without_test=525, test_items_not_in_train=0),
    "ml-1m": dict(users=6040, items=3706, train_pairs=800005, test_pairs=200204,
                  rows_train=800005, test_in_train=0, users_with_test=6038,
                  users_without_test=2, test_items_not_in_train=26),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_summary_matches_readme(data_dir, name):
    if not (data_dir / name).is_dir():
        pytest.skip(f"{name} not in {data_dir}")
    d = load(data_dir / name)
    e, info = EXPECTED[name], d.info
    assert (d.num_users, d.num_items) == (e["users"], e["items"])
    assert (info["users"], info["items"]) == (e["users"], e["items"])
    assert d.train.nnz == e["train_pairs"] and d.test.nnz == e["test_pairs"]
    assert info["rows_read"]["train"] == e["rows_train"]
    assert info["duplicates_removed"]["train"] == e["rows_train"] - e["train_pairs"]
    assert info["test_in_train"] == e["test_in_train"]
    assert info["users_with_test"] == e["users_with_test"]
    assert info["users_without_test"] == e["users_without_test"]
    assert info["test_items_not_in_train"] == e["test_items_not_in_train"]
    assert info["split"] == "given" and d.valid.nnz == 0 and not info["remapped"]
    for csr in (d.train, d.test):  # rows sorted, unique, in range
        step = csr.indices[1:] - csr.indices[:-1]
        boundary = torch.zeros(csr.nnz, dtype=torch.bool)
        boundary[csr.indptr[1:-1][csr.indptr[1:-1] < csr.nnz]] = True
        assert torch.all((step > 0) | boundary[1:])
        assert int(csr.indices.max()) < d.num_items
    if e["test_in_train"]:
        assert any("also appear in train" in w for w in info["warnings"])
    if e["test_items_not_in_train"]:
        assert any("never appear in train" in w for w in info["warnings"])


def test_lastfm_with_validation_from_train(data_dir):
    d = load(data_dir / "lastfm", valid_fraction=0.1, seed=0)
    assert d.train.nnz + d.valid.nnz == 13039 and d.valid.nnz > 1000
    assert d.info["valid_in_train"] == 0
