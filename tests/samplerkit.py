"""Tiny data, models and sampling steps shared by the sampler tests."""
from __future__ import annotations

import numpy as np
import torch

from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.models import MF, LightGCN, Recommender
from autosample_ext.ops import reference
from autosample_ext.samplers import Negatives, SampleContext, build_sampler


def make_data(num_users: int = 12, num_items: int = 40, seed: int = 0) -> InteractionData:
    """Random positives; user 0 has all items but one, user 1 all but two (near-full users)."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(num_users):
        if u == 0:
            row = np.arange(1, num_items)
        elif u == 1:
            row = np.arange(2, num_items)
        else:
            row = rng.choice(num_items, size=rng.integers(1, num_items // 3), replace=False)
        users += [u] * len(row)
        items += list(row)
    train = CSR.from_pairs(np.array(users), np.array(items), num_users)
    return InteractionData("tiny", num_users, num_items, train, CSR.empty(num_users), CSR.empty(num_users))


def context(model: Recommender, users: torch.Tensor, pos: torch.Tensor, step: int) -> SampleContext:
    with torch.no_grad():
        user_table, item_table = model.propagate()
    return SampleContext(users, pos, model, user_table.detach(), item_table.detach(), step)


def batch_of(data: InteractionData, repeat_near_full: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Every training pair once, plus extra rows of the near-full users 0 and 1."""
    users, items = data.train_pairs()
    extra_u = torch.tensor([0, 1] * repeat_near_full)
    extra_i = torch.stack([data.train.row(0)[:repeat_near_full], data.train.row(1)[:repeat_near_full]], 1).reshape(-1)
    return torch.cat([users, extra_u]), torch.cat([items, extra_i])


def is_positive(data: InteractionData, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    return reference.is_positive(data.train.indptr, data.train.indices, data.num_items,
                                 users.unsqueeze(1).expand_as(items), items)


def run_step(sampler, model, users, pos, step) -> Negatives:
    """One training step as the trainer drives it: sample, score, observe."""
    ctx = context(model, users, pos, step)
    negatives = sampler.sample(ctx)
    if negatives.embeddings is not None:
        neg_scores = (ctx.user_table[users].unsqueeze(1) * negatives.embeddings.detach()).sum(-1)
    else:
        neg_scores = reference.score_candidates(ctx.user_table[users], ctx.item_table, negatives.items)
    pos_scores = (ctx.user_table[users] * ctx.item_table[pos]).sum(-1)
    sampler.observe(ctx, negatives, pos_scores, neg_scores)
    return negatives


def model_for(name: str, data: InteractionData, seed: int = 0) -> Recommender:
    return LightGCN(data, 8, num_layers=2, seed=seed) if name == "mixgcf" else MF(data, 8, seed=seed)


def perturb(model: Recommender, step: int) -> None:
    """Stand-in for an optimiser step: the scores change between steps."""
    gen = torch.Generator().manual_seed(1000 + step)
    with torch.no_grad():
        model.user_embedding.weight.add_(0.3 * torch.randn(model.user_embedding.weight.shape, generator=gen))
        model.item_embedding.weight.add_(0.3 * torch.randn(model.item_embedding.weight.shape, generator=gen))


SMALL_OPTIONS = {"srns": {"memory_size": 6, "num_fresh": 4, "history_length": 3},
                 "gdns": {"group_size": 4, "num_candidates": 8, "num_slots": 16},
                 "dns": {"num_candidates": 8}, "mixgcf": {"num_candidates": 8},
                 "aobpr": {"rank_lambda": 2.0}}


def build(name: str, data: InteractionData, seed: int = 0, num_negatives: int = 3):
    return build_sampler(name, data, seed=seed, num_negatives=num_negatives, **SMALL_OPTIONS.get(name, {}))


def draws(name: str, data: InteractionData, seed: int, steps: range, sampler=None) -> list[torch.Tensor]:
    sampler = sampler or build(name, data, seed)
    model = model_for(name, data)
    users, pos = batch_of(data)
    out = []
    for step in steps:
        perturb(model, step)
        out.append(run_step(sampler, model, users, pos, step).items)
    return out
