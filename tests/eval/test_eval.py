"""Evaluation: metric definitions on hand-computed cases, brute force, sampled protocol, t-tests."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.eval import (
    RankingMetrics,
    compare_with_best_baseline,
    evaluate_full_ranking,
    evaluate_sampled,
    paired_ttest,
    paired_ttest_users,
    popularity_tables,
)


def csr(rows: dict[int, list[int]], num_users: int) -> CSR:
    u = [user for user, items in rows.items() for _ in items]
    i = [item for items in rows.values() for item in items]
    return CSR.from_pairs(np.array(u, dtype=np.int64), np.array(i, dtype=np.int64), num_users)


def data_of(num_users, num_items, train, test, valid=None, negatives=None) -> InteractionData:
    return InteractionData("hand", num_users, num_items, csr(train, num_users),
                           csr(valid or {}, num_users), csr(test, num_users), eval_negatives=negatives)


def score_tables(scores: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tables whose dot products are exactly ``scores``: users = scores, items = identity."""
    s = torch.tensor(scores, dtype=torch.float32)
    return s, torch.eye(s.shape[1])


def lg(x: float) -> float:
    return 1.0 / math.log2(x)


# user 0: train {0}, test {1, 4}; ranking without 0: 1, 3, 5, 4, 2
# user 1: train only -> skipped
# user 2: train {5}, test {0, 1, 2} (|T| = 3 > K = 2); ranking without 5: 1, 2, 3, 4, 0
# user 3: no train, test {4}, all scores tied -> ranking by item id 0, 1, 2, 3, 4, 5
HAND_SCORES = [[9, 8, 1, 7, 2, 3], [1, 2, 3, 4, 5, 6], [1, 6, 5, 4, 3, 9], [0, 0, 0, 0, 0, 0]]
HAND_TRAIN = {0: [0], 1: [2, 3], 2: [5]}
HAND_TEST = {0: [1, 4], 2: [0, 1, 2], 3: [4]}


def test_full_ranking_hand_example():
    data = data_of(4, 6, HAND_TRAIN, HAND_TEST)
    m = evaluate_full_ranking(*score_tables(HAND_SCORES), data, ks=(2, 3, 5), per_user=True)
    assert m.num_users == 3 and m.users.tolist() == [0, 2, 3]
    expected = {
        # K = 2: user 0 top (1, 3); user 2 top (1, 2); user 3 top (0, 1)
        "recall@2": [1 / 2, 2 / 3, 0], "precision@2": [1 / 2, 1, 0], "hit@2": [1, 1, 0],
        "ndcg@2": [1 / (1 + lg(3)), (1 + lg(3)) / (1 + lg(3)), 0],
        # K = 3: user 0 top (1, 3, 5); user 2 top (1, 2, 3); user 3 top (0, 1, 2)
        "recall@3": [1 / 2, 2 / 3, 0], "precision@3": [1 / 3, 2 / 3, 0], "hit@3": [1, 1, 0],
        "ndcg@3": [1 / (1 + lg(3)), (1 + lg(3)) / (1 + lg(3) + lg(4)), 0],
        # K = 5: user 0 hits at ranks 0 and 3; user 2 hits at 0, 1, 4; user 3 hit at 4
        "recall@5": [1, 1, 1], "precision@5": [2 / 5, 3 / 5, 1 / 5], "hit@5": [1, 1, 1],
        "ndcg@5": [(1 + lg(5)) / (1 + lg(3)), (1 + lg(3) + lg(6)) / (1 + lg(3) + lg(4)), lg(6)],
        # MRR: users 0 and 2 hit at rank 0; user 3's first hit is at rank 4 (1/5 from K = 5)
        "mrr@2": [1, 1, 0], "mrr@3": [1, 1, 0], "mrr@5": [1, 1, 1 / 5],
    }
    assert set(m.values) == set(expected)
    for key, per in expected.items():
        np.testing.assert_allclose(m.per_user[key], per, rtol=1e-12, atol=1e-12, err_msg=key)
        assert m[key] == pytest.approx(np.mean(per), abs=1e-12), key


def test_full_ranking_exclusion_rules():
    # valid item 3 of user 0 is removed from the test ranking by default, kept with ("train",)
    data = data_of(4, 6, HAND_TRAIN, HAND_TEST, valid={0: [3]})
    tables = score_tables(HAND_SCORES)
    m = evaluate_full_ranking(*tables, data, ks=(3,), per_user=True, users=[0])
    assert m.users.tolist() == [0]
    # ranking without 0 and 3: 1, 5, 4 -> hits at 0 and 2
    assert m.per_user["ndcg@3"][0] == pytest.approx((1 + lg(4)) / (1 + lg(3)))
    assert m["recall@3"] == 1.0 and m["precision@3"] == pytest.approx(2 / 3)
    m = evaluate_full_ranking(*tables, data, ks=(3,), exclude=("train",), users=[0])
    assert m["recall@3"] == 0.5
    # the validation split: targets {3}, only train excluded -> ranking 1, 3, ...
    v = evaluate_full_ranking(*tables, data, split="valid", ks=(1, 2), per_user=True)
    assert v.users.tolist() == [0] and v["hit@1"] == 0.0 and v["ndcg@2"] == pytest.approx(lg(3))


def test_test_item_also_in_train_cannot_be_hit():
    # lastfm's quirk: test pair (0, 0) repeats a train pair; it stays in T_u and is masked
    data = data_of(1, 4, {0: [0]}, {0: [0, 2]})
    m = evaluate_full_ranking(*score_tables([[9, 1, 5, 0]]), data, ks=(1, 3), exclude=("train",))
    assert m["recall@1"] == 0.5 and m["hit@1"] == 1.0
    assert m["recall@3"] == 0.5 and m["ndcg@3"] == pytest.approx(1 / (1 + lg(3)))


def brute_force(scores: np.ndarray, excluded: list[set], targets: list[set], ks) -> dict[str, list]:
    out: dict[str, list] = {f"{m}@{k}": [] for m in ("recall", "precision", "ndcg", "hit", "mrr")
                            for k in ks}
    for u in range(scores.shape[0]):
        if not targets[u]:
            continue
        order = [i for i in sorted(range(scores.shape[1]), key=lambda i: (-scores[u, i], i))
                 if i not in excluded[u]]
        for k in ks:
            rel = [1.0 if i in targets[u] else 0.0 for i in order[:k]]
            h = sum(rel)
            dcg = sum(r / math.log2(j + 2) for j, r in enumerate(rel))
            idcg = sum(1 / math.log2(j + 2) for j in range(min(len(targets[u]), k)))
            out[f"recall@{k}"].append(h / len(targets[u]))
            out[f"precision@{k}"].append(h / k)
            out[f"ndcg@{k}"].append(dcg / idcg)
            out[f"hit@{k}"].append(float(h > 0))
            out[f"mrr@{k}"].append(next((1 / (j + 1) for j, r in enumerate(rel) if r), 0.0))
    return out


def test_full_ranking_equals_brute_force():
    rng = np.random.default_rng(7)
    U, N, d = 37, 50, 4
    sets = {name: [set() for _ in range(U)] for name in ("train", "valid", "test")}
    for u in range(U):
        perm = rng.permutation(N)
        a, b, c = rng.integers(0, 12), rng.integers(0, 3), rng.integers(0, 6)
        if u == 5:
            a, b, c = N - 6, 2, 3  # only 1 rankable item left for the test ranking (< K)
        sets["train"][u] = set(perm[:a].tolist())
        sets["valid"][u] = set(perm[a:a + b].tolist())
        sets["test"][u] = set(perm[a + b:a + b + c].tolist())
    data = data_of(U, N, *({u: sorted(s[u]) for u in range(U)} for s in
                           (sets["train"], sets["test"], sets["valid"])))
    ue = torch.from_numpy(rng.normal(size=(U, d))).float()
    ie = torch.from_numpy(rng.normal(size=(N, d))).float()
    ie[7] = ie[8]  # exact ties between two items
    scores = (ue @ ie.T).numpy()
    ks = (1, 5, 10)
    for split, excl in (("test", ("train", "valid")), ("test", ("train",)), ("valid", ("train",))):
        m = evaluate_full_ranking(ue, ie, data, split=split, ks=ks, exclude=excl, batch_size=8,
                                  per_user=True)
        excluded = [set().union(*(sets[e][u] for e in excl)) for u in range(U)]
        ref = brute_force(scores, excluded, sets[split], ks)
        assert m.users.tolist() == [u for u in range(U) if sets[split][u]]
        for key, values in ref.items():
            np.testing.assert_allclose(m.per_user[key], values, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{split} {excl} {key}")
            assert m[key] == pytest.approx(np.mean(values), abs=1e-12)


def test_popularity_baseline():
    data = data_of(3, 5, {0: [0, 1], 1: [0, 2], 2: [0, 1, 3]}, {0: [3], 1: [1], 2: [4]})
    # popularity: 0:3, 1:2, 2:1, 3:1, 4:0. user 0 ranks 2, 3 (tie: smaller id first), 4;
    # user 1 ranks 1, 3, 4; user 2 ranks 2, 4
    m = evaluate_full_ranking(*popularity_tables(data), data, ks=(1, 2), per_user=True)
    np.testing.assert_array_equal(m.per_user["hit@1"], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(m.per_user["hit@2"], [1.0, 1.0, 1.0])


def test_full_ranking_errors():
    data = data_of(4, 6, HAND_TRAIN, HAND_TEST)
    ut, it = score_tables(HAND_SCORES)
    with pytest.raises(ValueError, match="split must be"):
        evaluate_full_ranking(ut, it, data, split="train")
    with pytest.raises(ValueError, match="exclude entries"):
        evaluate_full_ranking(ut, it, data, exclude=("train", "test"))
    with pytest.raises(ValueError, match=r"ks must be .* in \[1, 6\]"):
        evaluate_full_ranking(ut, it, data, ks=(7,))
    with pytest.raises(ValueError, match="data 'hand' has 4 x 6"):
        evaluate_full_ranking(ut[:3], it, data)
    with pytest.raises(ValueError, match="user_table has non-finite"):
        evaluate_full_ranking(torch.full_like(ut, float("nan")), it, data)
    with pytest.raises(ValueError, match="no user of 'hand' has items in split 'valid'"):
        evaluate_full_ranking(ut, it, data, split="valid", ks=(1,))


def test_sampled_protocol_hand_example():
    # 4 negatives per user; user u's test item is scored against negatives[u]
    negatives = torch.tensor([[1, 2, 3, 4], [0, 2, 3, 4], [0, 1, 3, 4], [0, 1, 2, 4]])
    data = data_of(4, 6, {}, {0: [0], 1: [1], 3: [5]}, negatives=negatives)
    scores = [[5, 1, 2, 3, 4, 0],   # user 0: target best -> rank 0
              [5, 1, 0, 0, 0, 0],   # user 1: one negative above -> rank 1
              [0, 0, 0, 0, 0, 0],   # user 2: no test item, skipped
              [3, 3, 3, 0, 0, 3]]   # user 3: target ties 3 negatives -> pessimistic rank 3
    m = evaluate_sampled(*score_tables(scores), data, ks=(1, 3), per_user=True)
    assert m.users.tolist() == [0, 1, 3]
    np.testing.assert_allclose(m.per_user["ndcg@1"], [1, 0, 0])
    np.testing.assert_allclose(m.per_user["ndcg@3"], [1, lg(3), 0])
    np.testing.assert_allclose(m.per_user["recall@3"], [1, 1, 0])
    assert m["ndcg@3"] == pytest.approx((1 + lg(3)) / 3) and m["recall@1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="user 0 has 2 items"):
        evaluate_sampled(*score_tables(scores), data_of(4, 6, {}, {0: [0, 1]}, negatives=negatives))
    with pytest.raises(ValueError, match="no eval_negatives"):
        evaluate_sampled(*score_tables(scores), data_of(4, 6, {}, {0: [0]}))


def test_paired_ttest_matches_scipy_and_hand_formula():
    a = np.array([0.30, 0.32, 0.31, 0.35, 0.33])
    b = np.array([0.29, 0.30, 0.30, 0.31, 0.30])
    r = paired_ttest(a, b)
    diff = a - b
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(5))
    assert r.statistic == pytest.approx(t) and r.n == 5
    ref = stats.ttest_rel(a, b)
    assert r.pvalue == pytest.approx(ref.pvalue)
    assert r.pvalue == pytest.approx(2 * stats.t.sf(abs(t), df=4))
    assert r.significant and r.marker == "*" and r.mean_difference == pytest.approx(diff.mean())
    weak = paired_ttest([0.30, 0.31, 0.29], [0.31, 0.30, 0.295])
    assert weak.pvalue > 0.05 and not weak.significant and weak.marker == ""
    strict = paired_ttest(a, b, alpha=r.pvalue / 2)
    assert not strict.significant
    same = paired_ttest(a, a)
    assert not same.significant and same.marker == ""
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_ttest([1.0], [2.0])
    with pytest.raises(ValueError, match="equal length"):
        paired_ttest([1.0, 2.0], [1.0])


def test_compare_with_best_baseline():
    results = {"autosample": [0.40, 0.41, 0.42], "rns": [0.30, 0.31, 0.29],
               "dns": [0.38, 0.37, 0.39], "pns": [0.20, 0.22, 0.21]}
    base, r = compare_with_best_baseline(results, "autosample")
    assert base == "dns"
    assert r.pvalue == pytest.approx(stats.ttest_rel(results["autosample"], results["dns"]).pvalue)
    base, _ = compare_with_best_baseline(results, "autosample", higher_is_better=False)
    assert base == "pns"
    with pytest.raises(ValueError, match="not in"):
        compare_with_best_baseline(results, "gdns")


def test_paired_ttest_users():
    users = np.array([0, 2, 3])
    a = RankingMetrics((20,), {"recall@20": 0.5}, 3, users, {"recall@20": np.array([0.2, 0.5, 0.9])})
    b = RankingMetrics((20,), {"recall@20": 0.3}, 3, users, {"recall@20": np.array([0.1, 0.3, 0.4])})
    r = paired_ttest_users(a, b, "recall@20")
    assert r.pvalue == pytest.approx(stats.ttest_rel([0.2, 0.5, 0.9], [0.1, 0.3, 0.4]).pvalue)
    c = RankingMetrics((20,), {"recall@20": 0.3}, 3, np.array([0, 1, 3]), b.per_user)
    with pytest.raises(ValueError, match="different users"):
        paired_ttest_users(a, c, "recall@20")
    with pytest.raises(ValueError, match="per_user=True"):
        paired_ttest_users(a, RankingMetrics((20,), {}, 3, users), "recall@20")


@pytest.mark.cuda
def test_cuda_tables_match_cpu():
    data = data_of(4, 6, HAND_TRAIN, HAND_TEST, valid={0: [3]})
    ut, it = score_tables(HAND_SCORES)
    cpu = evaluate_full_ranking(ut, it, data, ks=(1, 3, 5), per_user=True)
    gpu = evaluate_full_ranking(ut.cuda(), it.cuda(), data, ks=(1, 3, 5), per_user=True, batch_size=2)
    assert cpu.values == pytest.approx(gpu.values, abs=1e-12)
    negatives = torch.tensor([[1, 2], [0, 2], [0, 1], [0, 1]])
    loo = data_of(4, 6, {}, {0: [0], 2: [5]}, negatives=negatives)
    assert evaluate_sampled(ut, it, loo, ks=(1, 2)).values == \
        evaluate_sampled(ut.cuda(), it.cuda(), loo, ks=(1, 2)).values


def test_evaluate_model_uses_eval_mode_and_restores_it():
    from autosample_ext.eval import evaluate_model
    from autosample_ext.models import NGCF

    data = data_of(4, 6, HAND_TRAIN, HAND_TEST)
    model = NGCF(data, dim=3, num_layers=1, seed=0, message_dropout=0.5)
    m = evaluate_model(model, data, ks=(2,))
    assert model.training
    model.eval()
    with torch.no_grad():
        ref = evaluate_full_ranking(*model.propagate(), data, ks=(2,))
    assert m.values == ref.values


def test_sampled_protocol_on_generated_loo_split_equals_brute_force():
    from autosample_ext.data import SyntheticConfig, default_dataset

    data = default_dataset(seed=3, config=SyntheticConfig(num_users=150, num_items=200,
                                                          mean_interactions=12.0), split="loo")
    assert data.eval_negatives is not None
    g = torch.Generator().manual_seed(0)
    ut = torch.randn(data.num_users, 4, generator=g)
    it = torch.randn(data.num_items, 4, generator=g)
    it[:, :] = torch.round(it * 2) / 2  # coarse scores: many exact ties
    m = evaluate_sampled(ut, it, data, ks=(1, 3, 10), per_user=True)
    scores = (ut @ it.T).numpy()
    negs = data.eval_negatives.numpy()
    users = [u for u in range(data.num_users) if data.test.degrees()[u] == 1]
    ranks = np.array([(scores[u, negs[u]] >= scores[u, int(data.test.row(u)[0])]).sum() for u in users])
    assert m.users.tolist() == users
    for k in (1, 3, 10):
        np.testing.assert_allclose(m.per_user[f"recall@{k}"], (ranks < k).astype(float))
        np.testing.assert_allclose(m.per_user[f"ndcg@{k}"], np.where(ranks < k, 1 / np.log2(ranks + 2), 0))


def test_sampled_subset_and_per_user_metric_use_the_sampled_protocol():
    """``evaluate_sampled(users=...)`` keeps those users' values; ``per_user_metric(...,
    protocol="sampled")`` (successive halving's paired test) gives the sampled protocol's values,
    not full ranking's (which differ on this data)."""
    from autosample_ext.data import SyntheticConfig, default_dataset
    from autosample_ext.models import build_model
    from autosample_ext.training.evaluate import evaluate_model as train_eval, per_user_metric

    data = default_dataset(seed=3, config=SyntheticConfig(num_users=150, num_items=200,
                                                          mean_interactions=12.0), split="loo")
    model = build_model("mf", data, dim=8, seed=1)
    ut, it = (t.detach() for t in model.propagate())
    whole = evaluate_sampled(ut, it, data, ks=(3,), split="valid", per_user=True)
    odd = evaluate_sampled(ut, it, data, ks=(3,), split="valid", per_user=True,
                           users=torch.arange(1, data.num_users, 2))
    keep = whole.users % 2 == 1
    assert odd.users.tolist() == whole.users[keep].tolist()
    np.testing.assert_array_equal(odd.per_user["ndcg@3"], whole.per_user["ndcg@3"][keep])
    users, values = per_user_metric(model, data, "valid", "ndcg@3", protocol="sampled")
    assert users.tolist() == whole.users.tolist()
    np.testing.assert_array_equal(values, whole.per_user["ndcg@3"])
    full = train_eval(model, data, "valid", (3,))["ndcg@3"]
    assert values.mean() == pytest.approx(train_eval(model, data, "valid", (3,),
                                                     protocol="sampled")["ndcg@3"])
    assert abs(values.mean() - full) > 1e-3
    with pytest.raises(ValueError, match="protocol must be 'full' or 'sampled'"):
        per_user_metric(model, data, "valid", "ndcg@3", protocol="loo")


def test_lastfm_popularity_equals_independent_computation(data_dir):
    from autosample_ext.data import load

    data = load(data_dir / "lastfm")
    m = evaluate_full_ranking(*popularity_tables(data), data, ks=(20,), exclude=("train",),
                              per_user=True)
    pop = np.bincount(data.train.indices.numpy(), minlength=data.num_items).astype(float)
    recall, ndcg = [], []
    for u in range(data.num_users):
        targets = set(data.test.row(u).tolist())
        if not targets:
            continue
        s = pop.copy()
        s[data.train.row(u).numpy()] = -np.inf
        top = np.argsort(-s, kind="stable")[:20]
        rel = np.array([i in targets for i in top], dtype=float)
        recall.append(rel.sum() / len(targets))
        ndcg.append((rel / np.log2(np.arange(2, 22))).sum()
                    / (1 / np.log2(np.arange(2, 2 + min(len(targets), 20)))).sum())
    assert m.num_users == len(recall) == 575
    np.testing.assert_allclose(m.per_user["recall@20"], recall, atol=1e-12)
    np.testing.assert_allclose(m.per_user["ndcg@20"], ndcg, atol=1e-12)
