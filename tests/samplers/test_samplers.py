"""Samplers: never a positive, shapes, determinism, state round trips, and the stateless samplers'
(RNS, DNS, PNS, AOBPR) distribution or selection rule against a hand-written reference. The
stateful ones (GDNS, MixGCF, SRNS) are in test_samplers_stateful.py."""
from __future__ import annotations

import io

import pytest
import torch
from samplerkit import batch_of, build, context, draws, is_positive, make_data
from scipy import stats

from autosample_ext import ops
from autosample_ext.data.interactions import InteractionData
from autosample_ext.models import MF
from autosample_ext.ops import reference
from autosample_ext.samplers import SampleContext, build_sampler, sampler_names

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
    sampler = build("gdns", data)  # the dense gain table
    table = sampler.state_dict()["table"]
    with pytest.raises(ValueError, match="gain table is"):
        sampler.load_state_dict({"table": {**table, "shape": [1, data.num_items]}})
    slots = build_sampler("gdns", data, table="slots", num_slots=4)
    table = slots.state_dict()["table"]
    with pytest.raises(ValueError, match="'g' is"):
        slots.load_state_dict({"table": {**table, "g": table["g"][:1]}})
    with pytest.raises(ValueError, match="holds a 'dense' gain table"):
        slots.load_state_dict(sampler.state_dict())
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


def test_one_unknown_sampler_message_everywhere():
    """Every way of naming a sampler (a name, a schedule, a candidate, --sampler-opt, a run's
    configuration) reports an unknown one with the registry's message; RunConfig refuses it
    when it is built, not when the sampler is."""
    from autosample_ext.run import RunConfig
    from autosample_ext.samplers import (
        check_sampler_name,
        parse_sampler_opt,
        parse_schedule,
    )
    from autosample_ext.search.space import expand_space

    message = "unknown sampler 'foo'; known samplers: rns, pns, dns, aobpr, srns, mixgcf, gdns"
    with pytest.raises(ValueError) as direct:
        check_sampler_name("foo")
    assert str(direct.value) == message
    assert check_sampler_name("DNS") == "dns"
    data = make_data()
    for call in (lambda: build_sampler("foo", data), lambda: build_sampler("rns@1+foo", data),
                 lambda: parse_schedule("foo@1+dns"), lambda: expand_space("rns,foo(x=1)"),
                 lambda: parse_sampler_opt("foo.x=1"), lambda: RunConfig(sampler="foo"),
                 lambda: RunConfig(search_space=("rns", "dns@1+foo")),
                 lambda: RunConfig(sampler_options={"foo": {"x": 1}})):
        with pytest.raises(ValueError) as exc:
            call()
        assert str(exc.value).endswith(message), str(exc.value)


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


def test_train_rows_lists_each_users_positives_in_the_given_order():
    """Sampler.train_rows (AOBPR's exclusion lists): row r holds the training items of users[r],
    repeated users and users without positives included."""
    data = make_data()
    sampler = build("aobpr", data)
    deg = data.train.degrees()
    users = torch.tensor([int(deg.argmax()), 0, int(deg.argmax()), data.num_users - 1, 3])
    if bool((deg == 0).any()):
        users = torch.cat([users, torch.nonzero(deg == 0).flatten()[:1]])
    indptr, indices = sampler.train_rows(users)
    assert indptr.tolist()[0] == 0 and indptr.shape == (users.shape[0] + 1,)
    for r, u in enumerate(users.tolist()):
        want = data.train.indices[data.train.indptr[u]:data.train.indptr[u + 1]]
        assert torch.equal(indices[indptr[r]:indptr[r + 1]], want), (r, u)
    assert indices.shape[0] == int(indptr[-1])
