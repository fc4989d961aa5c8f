"""Stateful and model-aware samplers: GDNS's gain table (both layouts) against a dense reference, MixGCF's
mixing and gradients, SRNS's score-plus-std selection and history."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from samplerkit import batch_of, context, is_positive, make_data, perturb

from autosample_ext import ops
from autosample_ext.models import MF, NGCF, LightGCN
from autosample_ext.ops import reference
from autosample_ext.ops import reference_gdns
from autosample_ext.samplers import (
    MixGCFSampler,
    Negatives,
    SampleContext,
    SRNSSampler,
    build_sampler,
)


@pytest.mark.parametrize("table", [{"table": "dense"}, {"table": "slots", "num_slots": 16}])
def test_gdns_state_agrees_with_dense_reference(table):
    data = make_data(num_users=5, num_items=14, seed=4)
    opt = {"group_size": 3, "num_candidates": 6, "alpha": 0.2, **table}
    sampler = build_sampler("gdns", data, seed=0, num_negatives=2, **opt)
    assert sampler.table.plan.layout == table["table"]
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
        reference_gdns.gdns_dense_update(h, g, users, items, pos_s.unsqueeze(1), neg_s, 0.2, 1e-8)
        torch.testing.assert_close(sampler.gain(torch.arange(data.num_users), all_items), g)
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
    reference_gdns.gdns_dense_update(h, g, uniq, groups.negatives, ps, ns, 0.2, 1e-8)
    torch.testing.assert_close(sampler.gain(torch.arange(data.num_users), all_items), g)


@pytest.mark.parametrize("name, bound, other", [("gdns", "num_candidates", {"group_size": 2}),
                                                ("srns", "memory_size", {})])
def test_num_negatives_bounded_by_the_pool(name, bound, other):
    data = make_data()
    with pytest.raises(ValueError) as exc:
        build_sampler(name, data, num_negatives=5, **{bound: 4}, **other)
    assert str(exc.value) == f"{name}: num_negatives (5) must not exceed {bound} (4)"
    assert build_sampler(name, data, num_negatives=4, **{bound: 4}, **other).num_negatives == 4


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
