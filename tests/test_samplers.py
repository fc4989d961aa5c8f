"""Samplers: never a positive, shapes, determinism, state round trips, and each sampler's
distribution or selection rule against a hand-written reference."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from scipy import stats

from autosample_ext import ops
from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.models import MF, NGCF, LightGCN, Recommender
from autosample_ext.ops import reference
from autosample_ext.samplers import (MixGCFSampler, Negatives, SampleContext, SRNSSampler,
                                     build_sampler, sampler_names)

# --------------------------------------------------------------------------------------------
# helpers: tiny data and models
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# every sampler
# --------------------------------------------------------------------------------------------

ALL = sampler_names()


def test_registry_lists_every_sampler():
    assert ALL == ["rns", "pns", "dns", "aobpr", "srns", "mixgcf", "gdns"]


@pytest.mark.parametrize("name", ALL)
def test_never_positive_fixed_shape(name):
    data = make_data()
    users, _ = batch_of(data)
    for items in draws(name, data, seed=3, steps=range(4)):
        assert items.shape == (users.shape[0], 3) and items.dtype == torch.int64
        assert int(items.min()) >= 0 and int(items.max()) < data.num_items
        assert not bool(is_positive(data, users, items).any())
        # near-full users: user 0's only negative is item 0; user 1's are items 0 and 1
        assert bool((items[users == 0] == 0).all())
        assert set(items[users == 1].unique().tolist()) <= {0, 1}


@pytest.mark.parametrize("name", ALL)
def test_deterministic_by_seed_and_step(name):
    data = make_data()
    a = draws(name, data, seed=5, steps=range(3))
    torch.manual_seed(123)  # the global RNG must not matter
    b = draws(name, data, seed=5, steps=range(3))
    c = draws(name, data, seed=6, steps=range(3))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert any(not torch.equal(x, z) for x, z in zip(a, c))
    assert not torch.equal(a[0], a[1])


@pytest.mark.parametrize("name", ALL)
def test_state_round_trip(name):
    data = make_data()
    sampler = build(name, data, seed=2)
    draws(name, data, 2, range(3), sampler)
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    later = draws(name, data, 2, range(3, 6), sampler)
    buffer.seek(0)
    restored = build(name, data, seed=2)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    again = draws(name, data, 2, range(3, 6), restored)
    for x, y in zip(later, again):
        assert torch.equal(x, y)


def test_stateful_samplers_reject_bad_state():
    data = make_data()
    sampler = build("gdns", data)
    state = sampler.state_dict()
    with pytest.raises(ValueError, match="slot_g"):
        sampler.load_state_dict({**state, "slot_g": state["slot_g"][:1]})
    with pytest.raises(ValueError, match="state keys"):
        build("srns", data).load_state_dict({})
    with pytest.raises(ValueError, match="no state"):
        build("rns", data).load_state_dict({"x": torch.zeros(1)})


def test_registry_errors():
    data = make_data()
    with pytest.raises(ValueError, match="unknown sampler 'foo'"):
        build_sampler("foo", data)
    with pytest.raises(ValueError, match=r"no option\(s\) \['m'\].*num_candidates"):
        build_sampler("dns", data, m=3)
    with pytest.raises(ValueError, match="top_k"):
        build_sampler("dns", data, num_candidates=4, top_k=5)
    with pytest.raises(ValueError, match="num_negatives"):
        build_sampler("rns", data, num_negatives=0)
    assert build_sampler("DNS", data, num_candidates=16).options.num_candidates == 16


def test_samplers_with_one_seed_draw_independent_streams():
    data = make_data()
    rns, dns = build_sampler("rns", data, seed=1), build_sampler("dns", data, seed=1)
    assert rns.stream(4, 0)[0] != dns.stream(4, 0)[0]
    assert rns.stream(4, 0)[1] != rns.stream(5, 0)[1] != rns.stream(4, 1)[1]


# --------------------------------------------------------------------------------------------
# per-sampler semantics
# --------------------------------------------------------------------------------------------


def test_rns_is_the_uniform_op_stream():
    data = make_data()
    sampler = build_sampler("rns", data, seed=9, num_negatives=4)
    users, pos = batch_of(data)
    items = sampler.sample(context(MF(data, 8), users, pos, 7)).items
    seed, offset = sampler.stream(7, 0)
    expected = reference.sample_negatives(data.train.indptr, data.train.indices, users, data.num_items, 4,
                                          seed, offset)
    assert torch.equal(items, expected)


@pytest.mark.parametrize("num_negatives", [1, 2])
def test_dns_is_the_argmax_over_its_candidates(num_negatives):
    data = make_data(num_items=60)
    sampler = build_sampler("dns", data, seed=4, num_negatives=num_negatives, num_candidates=16)
    model = MF(data, 8)
    users, pos = batch_of(data)
    ctx = context(model, users, pos, 11)
    items = sampler.sample(ctx).items
    seed, offset = sampler.stream(11, 0)
    cand = ops.sample_negatives(data.train.indptr, data.train.indices, users, data.num_items,
                                16 * num_negatives, seed, offset)
    assert torch.equal(cand, sampler.candidates(users, 11))
    scores = reference.score_candidates(ctx.user_table[users], ctx.item_table, cand)
    pools = scores.view(-1, num_negatives, 16)
    best = pools.argmax(dim=2)  # first maximum = canonical tie order
    expected = cand.view(-1, num_negatives, 16).gather(2, best.unsqueeze(2)).squeeze(2)
    assert torch.equal(items, expected)


def test_dns_top_k_draws_among_the_k_best():
    data = make_data(num_items=60)
    users, pos = batch_of(data)
    ctx = context(MF(data, 8), users, pos, 3)
    sampler = build_sampler("dns", data, seed=4, num_negatives=1, num_candidates=16, top_k=3)
    items = sampler.sample(ctx).items.squeeze(1)
    cand = sampler.candidates(users, 3)
    top3 = reference.score_topk(ctx.user_table[users], ctx.item_table, cand, 3)[1]
    local_rank = (top3 == items.unsqueeze(1)).int().argmax(1)
    assert bool((top3 == items.unsqueeze(1)).any(1).all())
    assert set(local_rank.tolist()) == {0, 1, 2}
    # rank_lambda = 0 over all candidates is the argmax again
    argmax = build_sampler("dns", data, seed=4, num_candidates=16, top_k=16, rank_lambda=0.0)
    assert torch.equal(argmax.sample(ctx).items.squeeze(1), top3[:, 0])


def test_pns_frequencies_follow_popularity_power_on_non_positives():
    data = make_data(num_users=30, num_items=25, seed=1)
    pop = data.item_popularity.double()
    user = 5
    positives = set(data.train.row(user).tolist())
    sampler = build_sampler("pns", data, seed=0, num_negatives=50)
    users = torch.full((400,), user)
    counts = torch.zeros(data.num_items)
    model = MF(data, 8)
    for step in range(2):
        items = sampler.sample(context(model, users, users, step)).items
        counts += torch.bincount(items.reshape(-1), minlength=data.num_items)
    allowed = torch.tensor([i not in positives and pop[i] > 0 for i in range(data.num_items)])
    assert counts[~allowed].sum() == 0
    weights = pop.pow(0.75) * allowed
    expected = weights / weights.sum() * counts.sum()
    result = stats.chisquare(counts[allowed].numpy(), expected[allowed].numpy())
    assert result.pvalue > 1e-4, result
    # the sampler's own weights are popularity^0.75 (zero-popularity items stay at 0)
    assert torch.allclose(sampler.weights, pop.pow(0.75))


def test_pns_smoothing_makes_unseen_items_drawable():
    data = make_data(num_users=6, num_items=50, seed=2)
    unseen = (data.item_popularity == 0).nonzero().squeeze(1)
    assert unseen.numel() > 0
    sampler = build_sampler("pns", data, seed=0, num_negatives=200, smoothing=1.0)
    users = torch.arange(2, data.num_users)
    items = sampler.sample(context(MF(data, 8), users, users, 0)).items
    assert bool(torch.isin(items, unseen).any())
    plain = build_sampler("pns", data, seed=0, num_negatives=200)
    items = plain.sample(context(MF(data, 8), users, users, 0)).items
    assert not bool(torch.isin(items, unseen).any())


def full_ranking(ctx: SampleContext, data: InteractionData, user: int) -> torch.Tensor:
    """The user's non-positive items, best first (canonical order)."""
    scores = ctx.item_table @ ctx.user_table[user]
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[~torch.isin(order, data.train.row(user))]


@pytest.mark.parametrize("tail", ["renormalise", "uniform"])
def test_aobpr_rank_distribution(tail):
    data = make_data(num_users=8, num_items=40, seed=3)
    user, lam, top = 4, 2.5, 6
    model = MF(data, 8, seed=1)
    sampler = build_sampler("aobpr", data, seed=1, num_negatives=40, rank_lambda=lam, top_ranks=top, tail=tail)
    users = torch.full((300,), user)
    ctx = context(model, users, users, 0)
    ranking = full_ranking(ctx, data, user)
    free = ranking.shape[0]
    rank_of = torch.full((data.num_items,), -1)
    rank_of[ranking] = torch.arange(free)
    ranks = torch.cat([rank_of[sampler.sample(context(model, users, users, s)).items].reshape(-1)
                       for s in range(2)])
    assert int(ranks.min()) >= 0
    counts = torch.bincount(ranks, minlength=free).double()
    w = torch.exp(-torch.arange(free, dtype=torch.float64) / lam)
    if tail == "renormalise":
        assert counts[top:].sum() == 0
        expected = w[:top] / w[:top].sum()
        observed = counts[:top]
    else:
        # head ranks exact; the tail mass spread uniformly over the remaining non-positives
        p = w / w.sum()
        expected = torch.cat([p[:top], p[top:].sum().expand(free - top) / (free - top)])
        observed = counts
    result = stats.chisquare(observed.numpy(), (expected * observed.sum()).numpy())
    assert result.pvalue > 1e-4, result


def test_aobpr_lambda_zero_is_the_argmax_and_near_full_users_work():
    data = make_data(num_users=8, num_items=40, seed=3)
    model = MF(data, 8, seed=2)
    sampler = build_sampler("aobpr", data, seed=1, num_negatives=3, rank_lambda=0.0)
    users = torch.arange(data.num_users)
    ctx = context(model, users, users, 0)
    items = sampler.sample(ctx).items
    best = torch.stack([full_ranking(ctx, data, u)[0] for u in range(data.num_users)])
    assert torch.equal(items, best.unsqueeze(1).expand(-1, 3))


def test_gdns_state_agrees_with_dense_reference():
    data = make_data(num_users=5, num_items=14, seed=4)
    opt = {"group_size": 3, "num_candidates": 6, "num_slots": 16, "alpha": 0.2}
    sampler = build_sampler("gdns", data, seed=0, num_negatives=2, **opt)
    h = torch.ones(data.num_users, data.num_items)
    g = torch.ones(data.num_users, data.num_items)
    model = MF(data, 8)
    users, pos = batch_of(data, repeat_near_full=2)
    all_items = torch.arange(data.num_items).expand(data.num_users, -1)
    for step in range(6):
        perturb(model, step)
        ctx = context(model, users, pos, step)
        items = sampler.sample(ctx).items
        cand = sampler.candidates(users, step)
        expected = cand.gather(1, reference.canonical_topk(g[users.unsqueeze(1), cand], 2)[1])
        assert torch.equal(items, expected)
        pos_s = (ctx.user_table[users] * ctx.item_table[pos]).sum(-1)
        neg_s = reference.score_candidates(ctx.user_table[users], ctx.item_table, items)
        sampler.observe(ctx, Negatives(items), pos_s, neg_s)
        reference.gdns_update_dense(h, g, users, items, pos_s.unsqueeze(1), neg_s, 0.2, 1e-8)
        got = ops.gdns_lookup(sampler.slot_keys, sampler.slot_g, torch.arange(data.num_users), all_items)
        torch.testing.assert_close(got, g)
    assert bool((g < 1).any())

    # group mode on the same state
    uniq = torch.arange(2, data.num_users)
    groups = sampler.sample_groups(uniq, 6)
    assert groups.positives.shape == groups.negatives.shape == (3, 3)
    assert bool(is_positive(data, uniq, groups.positives).all())
    assert not bool(is_positive(data, uniq, groups.negatives).any())
    cand = sampler.candidates(uniq, 6)
    assert torch.equal(groups.negatives, cand.gather(1, reference.canonical_topk(g[uniq.unsqueeze(1), cand], 3)[1]))
    ctx = context(model, uniq, uniq, 6)
    ps = reference.score_candidates(ctx.user_table[uniq], ctx.item_table, groups.positives)
    ns = reference.score_candidates(ctx.user_table[uniq], ctx.item_table, groups.negatives)
    sampler.observe_groups(groups, ps, ns)
    reference.gdns_update_dense(h, g, uniq, groups.negatives, ps, ns, 0.2, 1e-8)
    got = ops.gdns_lookup(sampler.slot_keys, sampler.slot_g, torch.arange(data.num_users), all_items)
    torch.testing.assert_close(got, g)


def test_gdns_positive_group_without_replacement_when_possible():
    data = make_data(num_users=10, num_items=40, seed=5)
    sampler = build_sampler("gdns", data, seed=3, group_size=4, num_candidates=8)
    users = torch.arange(data.num_users)
    groups = sampler.positive_group(users, 0)
    for u in range(data.num_users):
        row = set(data.train.row(u).tolist())
        got = groups[u].tolist()
        assert set(got) <= row
        if len(row) >= 4:
            assert len(set(got)) == 4
        else:
            assert set(got) == row
    assert not torch.equal(groups, sampler.positive_group(users, 1))


def test_mixgcf_rejects_mf():
    data = make_data()
    sampler = build_sampler("mixgcf", data)
    users, pos = batch_of(data)
    with pytest.raises(ValueError, match="needs a graph model.*got MF"):
        sampler.sample(context(MF(data, 8), users, pos, 0))
    with pytest.raises(ValueError, match="got MF"):
        sampler.check_model(MF(data, 8))
    assert MixGCFSampler.needs_graph_model
    sampler.check_model(LightGCN(data, 8))


@pytest.mark.parametrize("model_name", ["lightgcn", "ngcf"])
def test_mixgcf_matches_hand_mixing_and_gradients_reach_items(model_name):
    data = make_data(num_items=30)
    if model_name == "lightgcn":
        model = LightGCN(data, 8, num_layers=2, seed=1)
    else:  # concatenation pooling, message dropout on: the layers must come from ctx.layers
        model = NGCF(data, 8, num_layers=2, seed=1, message_dropout=0.3)
    model.train()
    sampler = build_sampler("mixgcf", data, seed=8, num_negatives=2, num_candidates=5)
    users, pos = batch_of(data, repeat_near_full=1)
    user_layers, item_layers = model.layer_embeddings()
    user_table, item_table = model.pool(user_layers), model.pool(item_layers)
    ctx = SampleContext(users, pos, model, user_table.detach(), item_table.detach(), 4,
                        layers=(user_layers, item_layers))
    negatives = sampler.sample(ctx)
    b = users.shape[0]
    assert negatives.embeddings.shape == (b, 2, model.final_dim) and negatives.items.shape == (b, 2)

    # hand reference: mixed candidates per layer, hop choice by the pooled user embedding
    # (LightGCN) or the layer's user embedding (NGCF's concatenated width differs)
    with torch.no_grad():
        cand = sampler.candidates(users, 4).view(b, 2, 5)
        a = sampler.mixing_weights(b, 3, 4, torch.float32)
        picked = []
        for layer in range(3):
            e_u = ctx.user_table[users] if model_name == "lightgcn" else user_layers[layer][users]
            mixed = (a[:, :, layer, None, None] * item_layers[layer][pos][:, None, None, :]
                     + (1 - a[:, :, layer, None, None]) * item_layers[layer][cand])  # [B, 2, 5, d]
            best = (mixed * e_u[:, None, None, :]).sum(-1).argmax(-1)
            picked.append(mixed.gather(2, best[:, :, None, None].expand(-1, -1, 1, 8)).squeeze(2))
            if layer == 2:
                assert torch.equal(negatives.items, cand.gather(2, best.unsqueeze(2)).squeeze(2))
        torch.testing.assert_close(negatives.embeddings.detach(), model.pool(picked))
    assert not bool(is_positive(data, users, negatives.items).any())

    negatives.embeddings.sum().backward()
    grad = model.item_embedding.weight.grad
    assert grad is not None and bool((grad.abs().sum(1) > 0).any())
    chosen = negatives.items.unique()
    assert bool((grad[chosen].abs().sum(1) > 0).all())


def test_mixgcf_pooled_hop_score_needs_layer_width():
    data = make_data()
    model = NGCF(data, 8, num_layers=2)
    sampler = build_sampler("mixgcf", data, hop_score="pooled")
    users, pos = batch_of(data)
    with pytest.raises(ValueError, match="hop_score='pooled'"):
        sampler.sample(context(model, users, pos, 0))


def test_srns_selection_is_score_plus_alpha_std():
    data = make_data(num_users=4, num_items=30, seed=6)
    opt = dict(memory_size=4, num_fresh=3, history_length=3, alpha=3.0)
    sampler: SRNSSampler = build_sampler("srns", data, seed=1, num_negatives=1, **opt)
    model = MF(data, 8)
    users = torch.tensor([2, 3, 2])
    pos = torch.stack([data.train.row(2)[0], data.train.row(3)[0], data.train.row(2)[-1]])
    std_decided = 0  # rows where the std term changed the choice
    for step in range(8):
        perturb(model, step)
        ctx = context(model, users, pos, step)
        memory = sampler.memory.clone()
        history = sampler.history.clone()
        length = sampler.history_len.clone()
        items = sampler.sample(ctx).items.squeeze(1)
        u_np, i_np = ctx.user_table.numpy().astype(np.float64), ctx.item_table.numpy().astype(np.float64)
        for row, (u, i) in enumerate(zip(users.tolist(), pos.tolist())):
            mem = memory[u].numpy()
            r_now = i_np[mem] @ u_np[u]
            r_pos = i_np[i] @ u_np[u]
            keys = []
            for slot in range(4):
                past = history[u, slot, 3 - int(length[u, slot]):].numpy().astype(np.float64)
                seen = np.concatenate([past, [r_now[slot]]])[-3:]
                p_hist = 1 / (1 + np.exp(-(seen - r_pos)))
                keys.append(1 / (1 + np.exp(-(r_now[slot] - r_pos))) + 3.0 * np.std(p_hist))
            keys = np.array(keys)
            assert items[row] == mem[int(np.argmax(keys))], (step, row, keys)
            std_decided += int(np.argmax(keys) != np.argmax(r_now))
        # memory update: old memory or this step's fresh candidates, history carried along
        uniq = torch.tensor([2, 3])
        seed, offset = sampler.stream(step, 0)
        fresh = reference.sample_negatives(data.train.indptr, data.train.indices, uniq, data.num_items, 3,
                                           seed, offset)
        for k, u in enumerate(uniq.tolist()):
            pool = torch.cat([memory[u], fresh[k]])
            assert bool(torch.isin(sampler.memory[u], pool).all())
            new_len = sampler.history_len[u]
            carried = set((length[u] + 1).clamp(max=3).tolist()) | {1}
            assert set(new_len.tolist()) <= carried
            assert torch.allclose(sampler.history[u, :, -1],
                                  ctx.item_table[sampler.memory[u]] @ ctx.user_table[u], atol=1e-5)
    assert std_decided > 0


def test_srns_history_period_keeps_one_entry_per_period():
    data = make_data(num_users=4, num_items=30, seed=6)
    sampler = build_sampler("srns", data, seed=1, memory_size=4, num_fresh=1, history_length=3,
                            history_period=2)
    uniq = torch.tensor([2])
    expected = {0: ([0, 0, 1], 1), 1: ([0, 0, 2], 1), 2: ([0, 2, 3], 2), 3: ([0, 2, 4], 2), 4: ([2, 4, 5], 3),
                6: ([4, 5, 7], 3)}
    for step, (entries, length) in expected.items():
        history, history_len = sampler._record(uniq, torch.full((1, 4), float(step + 1)), step)
        sampler.history[uniq], sampler.history_len[uniq] = history, history_len
        assert history[0, 0].tolist() == entries and bool((history_len == length).all()), step
    assert int(sampler.last_period[2]) == 3
