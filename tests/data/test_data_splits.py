"""Splits: proportions, small-user rules, determinism by seed, leave-one-out negatives."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from autosample_ext.data import (CSR, load, leave_one_out_split, ratio_split,
                                 sample_eval_negatives, valid_from_train)
from autosample_ext.data.splits import TEST, TRAIN, VALID, parse_ratio


def random_pairs(num_users=300, num_items=400, seed=0, max_deg=60):
    rng = np.random.default_rng(seed)
    deg = rng.integers(1, max_deg, size=num_users)
    users = np.repeat(np.arange(num_users), deg)
    items = np.concatenate([rng.choice(num_items, d, replace=False) for d in deg])
    return users.astype(np.int64), items.astype(np.int64), num_items


def test_parse_ratio():
    assert parse_ratio("3:1:1") == pytest.approx((0.6, 0.2, 0.2))
    assert parse_ratio("8:2") == pytest.approx((0.8, 0.0, 0.2))
    for bad in ("a:b:c", "0:1:1", "3:1:0", "1:1:1:1", "3:-1:1"):
        with pytest.raises(ValueError):
            parse_ratio(bad)


@pytest.mark.parametrize("split, fracs", [("3:1:1", (0.6, 0.2, 0.2)), ("8:1:1", (0.8, 0.1, 0.1))])
def test_ratio_split_per_user_proportions(split, fracs):
    users, items, _ = random_pairs(max_deg=80)
    a = ratio_split(users, items, 300, parse_ratio(split), seed=0)
    n = np.bincount(users, minlength=300)
    for code, f in zip((TRAIN, VALID, TEST), fracs):
        per_user = np.bincount(users[a == code], minlength=300)
        big = n >= 10
        # per user the count is n * f rounded (at most 1 off after the minimum-one rules)
        assert np.all(np.abs(per_user[big] - n[big] * f) <= 1.0), (split, code)
        assert abs((a == code).mean() - f) < 0.02


def test_ratio_split_small_users():
    users = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3], dtype=np.int64)
    items = np.array([0, 0, 1, 0, 1, 2, 0, 1, 2, 3], dtype=np.int64)
    for seed in range(5):
        for ratio in ("3:1:1", "8:1:1"):
            a = ratio_split(users, items, 5, parse_ratio(ratio), seed)
            cnt = {c: np.bincount(users[a == c], minlength=5) for c in (TRAIN, VALID, TEST)}
            assert list(cnt[TRAIN][:4]) == [1, 1, 1, 2]
            assert list(cnt[TEST][:4]) == [0, 1, 1, 1]
            assert list(cnt[VALID][:4]) == [0, 0, 1, 1]
    a = ratio_split(users, items, 5, parse_ratio("8:2"), 0)
    assert not (a == VALID).any()


def test_ratio_split_deterministic_and_order_independent():
    users, items, _ = random_pairs()
    a = ratio_split(users, items, 300, parse_ratio("3:1:1"), seed=7)
    b = ratio_split(users, items, 300, parse_ratio("3:1:1"), seed=7)
    c = ratio_split(users, items, 300, parse_ratio("3:1:1"), seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    perm = np.random.default_rng(1).permutation(users.size)
    d = ratio_split(users[perm], items[perm], 300, parse_ratio("3:1:1"), seed=7)
    assert np.array_equal(d, a[perm])


def test_leave_one_out_by_time_and_random():
    users = np.array([0, 0, 0, 1, 1, 2], dtype=np.int64)
    items = np.array([5, 6, 7, 5, 8, 1], dtype=np.int64)
    ts = np.array([30, 10, 20, 1, 2, 9], dtype=np.float64)
    a = leave_one_out_split(users, items, 3, seed=0, timestamps=ts)
    assert list(a) == [TEST, TRAIN, VALID, TRAIN, TEST, TRAIN]
    a = leave_one_out_split(users, items, 3, seed=0, timestamps=ts, valid=False)
    assert list(a) == [TEST, TRAIN, TRAIN, TRAIN, TEST, TRAIN]
    u, i, _ = random_pairs()
    r = leave_one_out_split(u, i, 300, seed=4)
    n = np.bincount(u, minlength=300)
    assert np.array_equal(np.bincount(u[r == TEST], minlength=300), (n >= 2).astype(int))
    assert np.array_equal(np.bincount(u[r == VALID], minlength=300), (n >= 3).astype(int))
    assert np.array_equal(r, leave_one_out_split(u, i, 300, seed=4))
    assert not np.array_equal(r, leave_one_out_split(u, i, 300, seed=5))


def test_valid_from_train():
    u, i, _ = random_pairs()
    train = CSR.from_pairs(u, i, 300)
    tr, va = valid_from_train(train, 0.25, seed=0)
    n = train.degrees().numpy()
    nv = va.degrees().numpy()
    assert np.all(tr.degrees().numpy() + nv == n)
    assert np.all(nv[n == 1] == 0) and np.all(nv[n >= 2] >= 1)
    assert np.all(tr.degrees().numpy()[n >= 1] >= 1)
    big = n >= 8
    assert np.all(np.abs(nv[big] - n[big] * 0.25) <= 0.5 + 1e-9)
    for user in range(0, 300, 37):
        assert set(tr.row(user).tolist()) | set(va.row(user).tolist()) == set(train.row(user).tolist())
    tr2, va2 = valid_from_train(train, 0.25, seed=0)
    assert torch.equal(va.indices, va2.indices)
    with pytest.raises(ValueError):
        valid_from_train(train, 1.5, seed=0)


@pytest.mark.parametrize("num_items", [400, 130])  # 130: many dense users take the exact path
def test_eval_negatives_never_positive_never_repeated(num_items):
    u, i, _ = random_pairs(num_items=num_items, max_deg=min(60, num_items - 100))
    pos = CSR.from_pairs(u, i, 300)
    neg = sample_eval_negatives(pos, num_items, 100, seed=0)
    assert neg.shape == (300, 100) and neg.dtype == torch.int64
    for user in range(300):
        row = neg[user]
        assert torch.unique(row).numel() == 100
        assert not set(row.tolist()) & set(pos.row(user).tolist())
        assert int(row.min()) >= 0 and int(row.max()) < num_items
    assert torch.equal(neg, sample_eval_negatives(pos, num_items, 100, seed=0))
    assert not torch.equal(neg, sample_eval_negatives(pos, num_items, 100, seed=1))


def test_eval_negatives_uniform():
    # one user with items {0..9}: negatives from the 90 others, each kept with prob 10/90
    pos = CSR.from_pairs(np.zeros(10, np.int64), np.arange(10), 1)
    counts = np.zeros(100)
    for s in range(300):
        counts[sample_eval_negatives(pos, 100, 10, seed=s)[0].numpy()] += 1
    assert counts[:10].sum() == 0
    assert np.all(np.abs(counts[10:] - 300 / 9) < 20)


def test_eval_negatives_too_few_free_items():
    pos = CSR.from_pairs(np.zeros(50, np.int64), np.arange(50), 1)
    with pytest.raises(ValueError, match="fewer than num_negatives=100"):
        sample_eval_negatives(pos, 120, 100, seed=0)


def test_load_loo_has_negatives_outside_every_split():
    d = load(None, split="loo", seed=2)
    neg = d.eval_negatives
    assert neg.shape == (d.num_users, 100)
    for user in range(0, d.num_users, 97):
        seen = set()
        for s in ("train", "valid", "test"):
            seen |= set(getattr(d, s).row(user).tolist())
        assert not seen & set(neg[user].tolist())
    assert torch.all(d.test.degrees() == 1) and torch.all(d.valid.degrees() == 1)


def test_load_resplit_of_given_folder():
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "lines_given"
    d = load(folder, split="8:1:1", seed=0)
    base = load(folder)

    def union(data):
        return {(int(u), int(i)) for s in ("train", "valid", "test")
                for u, i in zip(*getattr(data, s).pairs())}

    assert union(d) == union(base)  # the union of the files, each pair once
    assert d.info["test_in_train"] == 0 and d.info["split"] == "8:1:1"


@settings(max_examples=40, deadline=None)
@given(degrees=st.lists(st.integers(1, 12), min_size=1, max_size=30),
       ratio=st.sampled_from(["3:1:1", "8:1:1", "1:1:1", "8:2", "1:3:3"]),
       seed=st.integers(0, 2**31))
def test_ratio_split_invariants(degrees, ratio, seed):
    """Every pair lands in exactly one split; every user keeps a training item; a user with
    n >= 2 has a test item and, with a validation share, n >= 3 has a validation item."""
    users = np.repeat(np.arange(len(degrees)), degrees).astype(np.int64)
    items = np.concatenate([np.arange(d) for d in degrees]).astype(np.int64)
    a = ratio_split(users, items, len(degrees), parse_ratio(ratio), seed)
    n = np.array(degrees)
    tr, va, te = (np.bincount(users[a == c], minlength=len(degrees)) for c in (TRAIN, VALID, TEST))
    assert np.array_equal(tr + va + te, n)
    assert np.all(tr >= 1)
    assert np.all(te[n >= 2] >= 1) and np.all(te[n == 1] == 0)
    has_valid = parse_ratio(ratio)[1] > 0
    assert np.all((va[n >= 3] >= 1) == has_valid) and np.all(va[n < 3] == 0)


def test_valid_fraction_with_train_test_ratio():
    d = load(None, split="8:2", valid_fraction=0.125, seed=0)
    total = d.info["interactions"]
    assert abs(d.test.nnz / total - 0.2) < 0.01 and abs(d.valid.nnz / total - 0.1) < 0.01
    assert d.info["valid_in_train"] == 0 and d.info["valid_in_test"] == 0
    with pytest.raises(ValueError, match="already has validation pairs"):
        load(None, split="3:1:1", valid_fraction=0.1)
