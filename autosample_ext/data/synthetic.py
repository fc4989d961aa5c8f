"""The embedded default dataset: synthetic implicit feedback with learnable structure.

Generative model (all draws from one seeded numpy Generator):

* item popularity prior: Zipf over a random permutation of items, ``b_i = -s * log(rank_i)``
  scaled by ``popularity_weight``, so observed item degrees follow a power law;
* latent preference: user / item factors ``P [U, d]``, ``Q [N, d]`` i.i.d. normal, score
  ``latent_scale * P Q^T / sqrt(d)`` (unit variance before scaling);
* user activity ``n_u``: log-normal around ``mean_interactions``, clipped to
  ``[min_interactions, num_items // 2]``;
* each user draws ``n_u`` distinct items from ``softmax(score_u + b)`` without replacement
  (Gumbel top-k), i.e. the truth ``score_u + b`` ranks a user's items.

A low-rank model that learns ``P``, ``Q`` (MF) therefore beats popularity ranking, which only
sees ``b``. The defaults (2,000 users x 1,500 items, about 80k interactions) keep the whole
AutoSample pipeline on it to minutes on two CPU cores.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autosample_ext.data.raw import RawTable, Source
from autosample_ext.data.splits import STREAM_SYNTHETIC, rng_for



@dataclass
class SyntheticConfig:
    num_users: int = 2000
    num_items: int = 1500
    dim: int = 8
    mean_interactions: float = 40.0
    activity_sigma: float = 0.6
    min_interactions: int = 5
    zipf_exponent: float = 1.0
    popularity_weight: float = 1.0
    latent_scale: float = 2.5


@dataclass
class SyntheticTruth:
    """The generator's latent variables: ``scores()`` is the ground-truth preference."""

    user_factors: np.ndarray   # float64 [U, d]
    item_factors: np.ndarray   # float64 [N, d]
    item_bias: np.ndarray      # float64 [N]
    latent_scale: float

    def scores(self) -> np.ndarray:
        """Ground-truth logits ``[U, N]`` float64."""
        d = self.user_factors.shape[1]
        return (self.latent_scale / np.sqrt(d)) * (self.user_factors @ self.item_factors.T) \
            + self.item_bias[None, :]


@dataclass
class SyntheticPairs:
    users: np.ndarray
    items: np.ndarray
    truth: SyntheticTruth
    config: SyntheticConfig = field(default_factory=SyntheticConfig)


def generate(seed: int = 0, config: SyntheticConfig | None = None) -> SyntheticPairs:
    """Deterministic (user, item) pairs for ``seed``; pairs sorted by (user, item)."""
    cfg = config or SyntheticConfig()
    U, N, d = cfg.num_users, cfg.num_items, cfg.dim
    if min(U, N, d) <= 0 or cfg.min_interactions < 1 or cfg.min_interactions > N // 2:
        raise ValueError(f"invalid synthetic config {cfg}")
    rng = rng_for(seed, STREAM_SYNTHETIC)
    rank = rng.permutation(N) + 1
    bias = -cfg.popularity_weight * cfg.zipf_exponent * np.log(rank)
    P = rng.standard_normal((U, d))
    Q = rng.standard_normal((N, d))
    truth = SyntheticTruth(P, Q, bias, cfg.latent_scale)
    mu = np.log(cfg.mean_interactions) - cfg.activity_sigma ** 2 / 2
    n = np.rint(rng.lognormal(mu, cfg.activity_sigma, U)).astype(np.int64)
    n = np.clip(n, cfg.min_interactions, N // 2)
    perturbed = truth.scores() + rng.gumbel(size=(U, N))
    order = np.argsort(-perturbed, axis=1, kind="stable")
    take = np.arange(N)[None, :] < n[:, None]
    users = np.repeat(np.arange(U, dtype=np.int64), n)
    items = order[take].astype(np.int64)
    sort = np.lexsort((items, users))
    return SyntheticPairs(users[sort], items[sort], truth, cfg)


def default_source(seed: int = 0, config: SyntheticConfig | None = None) -> Source:
    """The generated pairs as a loader Source (one unsplit table, ids kept)."""
    g = generate(seed, config)
    table = RawTable(Path("<default>"), "synthetic", g.users, g.items,
                     np.arange(g.users.size, dtype=np.int64) + 1,
                     declared_users=np.arange(g.config.num_users, dtype=np.int64))
    return Source("default", "synthetic", {"all": table}, default_remap=False,
                  num_users=g.config.num_users, num_items=g.config.num_items)
