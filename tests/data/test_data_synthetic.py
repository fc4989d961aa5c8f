"""The embedded default dataset: determinism, size, power-law popularity, learnable structure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

from autosample_ext.data import SyntheticConfig, default_dataset, generate, load


@pytest.fixture(scope="module")
def data():
    return default_dataset(seed=0)


def recall_at(scores: np.ndarray, d, k: int = 20) -> float:
    """Full-ranking Recall@k on test, train and valid items masked, over users with test items."""
    s = scores.astype(np.float64, copy=True)
    for split in ("train", "valid"):
        u, i = getattr(d, split).pairs()
        s[u.numpy(), i.numpy()] = -np.inf
    top = np.argpartition(-s, k, axis=1)[:, :k]
    truth = np.zeros(s.shape, dtype=bool)
    u, i = d.test.pairs()
    truth[u.numpy(), i.numpy()] = True
    hits = truth[np.arange(s.shape[0])[:, None], top].sum(1)
    n = truth.sum(1)
    return float((hits[n > 0] / n[n > 0]).mean())


def test_deterministic_for_a_seed(data):
    again = default_dataset(seed=0)
    other = default_dataset(seed=1)
    for s in ("train", "valid", "test"):
        assert torch.equal(getattr(data, s).indptr, getattr(again, s).indptr)
        assert torch.equal(getattr(data, s).indices, getattr(again, s).indices)
    assert not torch.equal(data.train.indices, other.train.indices)
    loaded = load()
    assert torch.equal(loaded.test.indices, data.test.indices)
    assert loaded.info["synthetic"]["num_users"] == 2000 and loaded.info["format"] == "synthetic"
    assert torch.equal(load("default").train.indptr, data.train.indptr)


def test_size_and_split(data):
    assert (data.num_users, data.num_items) == (2000, 1500)
    total = data.info["interactions"]
    assert 60_000 <= total <= 100_000
    assert data.info["split"] == "3:1:1" and data.name == "default"
    fr = np.array([data.train.nnz, data.valid.nnz, data.test.nnz]) / total
    assert np.allclose(fr, [0.6, 0.2, 0.2], atol=0.01)
    assert data.info["test_in_train"] == 0 and data.info["users_without_test"] == 0
    assert int(data.train.degrees().min()) >= 3  # every user has >= 5 interactions


def test_power_law_popularity(data):
    pop = np.sort(data.item_popularity.numpy())[::-1].astype(float)
    top10 = pop[: pop.size // 10].sum() / pop.sum()
    assert top10 > 0.35  # a uniform catalogue would give 0.10
    # log-log slope of degree vs rank over the head is clearly negative (power law)
    ranks = np.arange(1, 301)
    slope = np.polyfit(np.log(ranks), np.log(pop[:300] + 1), 1)[0]
    assert slope < -0.5


def test_structure_is_learnable(data):
    """The truth beats popularity by far, and so does a rank-8 PureSVD fitted on train alone,
    so the latent structure is recoverable from the observed interactions."""
    g = generate(0)
    pop = data.item_popularity.numpy().astype(np.float64)
    r_pop = recall_at(np.tile(pop, (data.num_users, 1)), data)
    r_truth = recall_at(g.truth.scores(), data)
    u, i = data.train.pairs()
    x = csr_matrix((np.ones(u.numel()), (u.numpy(), i.numpy())),
                   shape=(data.num_users, data.num_items))
    lu, sv, vt = svds(x, k=8, random_state=0)
    r_svd = recall_at((lu * sv) @ vt, data)
    assert r_truth > 2.0 * r_pop
    assert r_svd > 1.4 * r_pop


def test_generator_truth_matches_pairs():
    g = generate(3, SyntheticConfig(num_users=50, num_items=80, mean_interactions=10))
    assert np.all(np.diff(g.users) >= 0)
    assert g.truth.scores().shape == (50, 80)
    n = np.bincount(g.users, minlength=50)
    assert n.min() >= 5 and n.max() <= 40
    # each user's items are distinct
    assert np.unique(g.users * 80 + g.items).size == g.users.size
    with pytest.raises(ValueError):
        generate(0, SyntheticConfig(num_items=4))


def test_default_dataset_options():
    d = default_dataset(seed=0, config=SyntheticConfig(num_users=100, num_items=300),
                        split="8:1:1", kcore=3)
    assert d.info["split"] == "8:1:1" and d.info["kcore"]["k"] == 3
    assert d.num_items == 300
