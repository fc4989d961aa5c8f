"""AutoSample search / retrain / trainer: Gumbel straight-through, joint step, retrain, resume."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from autosample_ext.training.checkpoint import check_plain, load_checkpoint, save_checkpoint
from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.models import build_model
from autosample_ext.run import RunConfig, run
from autosample_ext.samplers import SampleContext, build_sampler
from autosample_ext.search import AutoSampleObjective, chosen_sampler, gumbel_softmax_st, init_retrain_model
from autosample_ext.training import (
    SamplerObjective,
    StopFlag,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    epoch_permutation,
)

CANDIDATES = ("rns", "pns", "dns", "aobpr")


@pytest.fixture(scope="module")
def tiny():
    """~300 users x 200 items, 3:1:1: a few steps per epoch at batch 256."""
    cfg = SyntheticConfig(num_users=300, num_items=200, mean_interactions=15.0)
    return default_dataset(seed=3, config=cfg)


def _search_objective(data, seed=0, tau=1.0, alpha_lr=0.05):
    samplers = [build_sampler(n, data, seed=seed + i) for i, n in enumerate(CANDIDATES)]
    return AutoSampleObjective(samplers, CANDIDATES, tau=tau, alpha_lr=alpha_lr, l2=1e-4, seed=seed)


# ---------------------------------------------------------------------------------------------
# Gumbel straight-through
# ---------------------------------------------------------------------------------------------


def test_gumbel_st_forward_is_one_hot_and_gradient_reaches_every_logit():
    logits = torch.tensor([0.3, -0.2, 1.0, 0.1], requires_grad=True)
    losses = torch.tensor([0.7, 0.2, 0.9, 0.4])
    gen = torch.Generator().manual_seed(5)
    z, y_soft, index = gumbel_softmax_st(logits, 0.7, gen)
    expected = torch.zeros(4)
    expected[index] = 1.0
    torch.testing.assert_close(z.detach(), expected, atol=1e-6, rtol=0)
    assert index == int(torch.argmax(y_soft))
    (z * losses).sum().backward()
    grad = logits.grad.clone()
    assert bool((grad != 0).all()), grad
    # The backward pass is that of the soft sample with the same noise.
    logits2 = logits.detach().clone().requires_grad_(True)
    _, y2, _ = gumbel_softmax_st(logits2, 0.7, torch.Generator().manual_seed(5))
    (y2 * losses).sum().backward()
    torch.testing.assert_close(grad, logits2.grad)


def test_gumbel_argmax_frequencies_follow_alpha():
    # Gumbel-max: argmax(log alpha + g) ~ Categorical(alpha), whatever tau.
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5])
    alpha = torch.softmax(logits.double(), 0).numpy()
    alpha /= alpha.sum()
    gen = torch.Generator().manual_seed(0)
    n = 20000
    counts = np.bincount([gumbel_softmax_st(logits, 0.5, gen)[2] for _ in range(n)], minlength=4)
    from scipy import stats

    assert stats.chisquare(counts, alpha * n).pvalue > 1e-3, (counts / n, alpha)


def test_gumbel_rejects_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax_st(torch.zeros(3), 0.0, torch.Generator())


# ---------------------------------------------------------------------------------------------
# The joint step
# ---------------------------------------------------------------------------------------------


def test_alpha_starts_uniform_and_stays_on_the_simplex(tiny):
    obj = _search_objective(tiny, alpha_lr=0.5)
    torch.testing.assert_close(obj.alpha, torch.full((4,), 0.25))
    model = build_model("mf", tiny, 16, seed=0)
    trainer = Trainer(tiny, model, obj, TrainConfig(epochs=3, batch_size=128, progress=False,
                                                    patience=0))
    result = trainer.fit()
    alphas = np.array([[e["alpha"][c] for c in CANDIDATES] for e in result.log])
    assert np.all(alphas > 0) and np.all(alphas < 1)
    np.testing.assert_allclose(alphas.sum(1), 1.0, atol=1e-6)
    assert not np.allclose(alphas[-1], 0.25)  # alpha moved with a large alpha_lr


def test_one_joint_step_changes_model_and_alpha_and_uses_selected_loss(tiny):
    model = build_model("mf", tiny, 16, seed=0)
    obj = _search_objective(tiny)
    trainer = Trainer(tiny, model, obj, TrainConfig(epochs=1, batch_size=64, progress=False))
    w0 = model.user_embedding.weight.detach().clone()
    theta0 = obj.logits.detach().clone()
    users, items = tiny.train.pairs()
    users, items = users[:64], items[:64]

    # The forward value is the selected candidate's loss (hard one-hot z).
    user_t, item_t = model.propagate()
    ctx = SampleContext(users, items, model, user_t.detach(), item_t.detach(), step=0)
    gen_state = obj.generator.get_state()
    out = obj.step_loss(ctx, user_t, item_t)
    obj.generator.set_state(gen_state)
    _, _, index = gumbel_softmax_st(obj.logits, obj.tau, obj.generator)
    assert out.selected == index
    negatives = obj.samplers[index].sample(ctx)
    from autosample_ext.training import score_and_loss

    alone, _, _ = score_and_loss(ctx, user_t, item_t, negatives, 1e-4)
    torch.testing.assert_close(out.loss.detach(), alone.detach(), rtol=1e-5, atol=1e-6)

    obj.generator.set_state(gen_state)
    trainer._train_step(users, items, step=0)
    assert not torch.equal(model.user_embedding.weight.detach(), w0)
    assert not torch.equal(obj.logits.detach(), theta0)
    assert bool((obj.logits.detach() != theta0).all())  # every logit got a gradient


def test_epoch_order_depends_only_on_seed_and_epoch():
    a = epoch_permutation(0, 3, 1000)
    assert torch.equal(a, epoch_permutation(0, 3, 1000))
    assert not torch.equal(a, epoch_permutation(0, 4, 1000))
    assert not torch.equal(a, epoch_permutation(1, 3, 1000))
    assert torch.equal(torch.sort(a).values, torch.arange(1000))


# ---------------------------------------------------------------------------------------------
# Retrain
# ---------------------------------------------------------------------------------------------


def test_chosen_sampler_is_argmax_of_alpha():
    assert chosen_sampler(torch.tensor([0.1, 0.5, 0.2, 0.0]), CANDIDATES) == "pns"
    assert chosen_sampler([0.3, 0.3, 0.1, 0.2], CANDIDATES) == "rns"  # first on ties
    with pytest.raises(ValueError):
        chosen_sampler([0.1, 0.2], CANDIDATES)


def test_retrain_init_searched_or_random(tiny):
    searched = build_model("mf", tiny, 8, seed=1).state_dict()
    model = init_retrain_model(build_model("mf", tiny, 8, seed=2), searched, "searched")
    torch.testing.assert_close(model.state_dict(), searched)
    fresh = build_model("mf", tiny, 8, seed=2)
    model = init_retrain_model(build_model("mf", tiny, 8, seed=2), searched, "random")
    torch.testing.assert_close(model.state_dict(), fresh.state_dict())
    assert not torch.equal(model.user_embedding.weight, searched["user_embedding.weight"])
    with pytest.raises(ValueError, match="init"):
        init_retrain_model(fresh, searched, "warm")


@pytest.mark.parametrize("init", ["searched", "random"])
def test_pipeline_retrains_argmax_alpha_from_searched_weights(tiny, tmp_path, monkeypatch, init):
    import autosample_ext.search.autosample_phases as runs

    seen = {}
    real_init = runs.init_retrain_model

    def spy(model, state, how):
        seen["state"] = {k: v.clone() for k, v in state.items()}
        out = real_init(model, state, how)
        seen["start"] = {k: v.detach().clone() for k, v in out.state_dict().items()}
        return out

    monkeypatch.setattr(runs, "init_retrain_model", spy)
    cfg = RunConfig(out=str(tmp_path / "r"), epochs=2, dim=8, batch_size=256, progress=False,
                    retrain_init=init, alpha_lr=0.1)
    summary = run(cfg, data=tiny)
    search = load_checkpoint(tmp_path / "r" / "checkpoints" / "seed0-search.pt")
    expected = CANDIDATES[int(torch.argmax(search["best_extra"]["alpha_logits"]))]
    auto = [r for r in summary.records if r.method == "autosample"][0]
    assert auto.sampler == expected
    retrain = load_checkpoint(tmp_path / "r" / "checkpoints" / "seed0-retrain.pt")
    assert json.loads(json.dumps(retrain["tag"])) == "seed0/retrain"
    torch.testing.assert_close(seen["state"], search["best_model"])
    if init == "searched":
        torch.testing.assert_close(seen["start"], search["best_model"])
    else:
        assert not torch.equal(seen["start"]["user_embedding.weight"],
                               search["best_model"]["user_embedding.weight"])


# ---------------------------------------------------------------------------------------------
# Early stopping, best state
# ---------------------------------------------------------------------------------------------


def test_best_validation_state_and_early_stopping(tiny):
    model = build_model("mf", tiny, 8, seed=0)
    obj = SamplerObjective(build_sampler("rns", tiny, seed=0), l2=1e-4)
    # A huge learning rate makes validation worse after the first epochs: early stop.
    trainer = Trainer(tiny, model, obj, TrainConfig(epochs=30, batch_size=256, lr=0.5,
                                                    patience=2, progress=False))
    result = trainer.fit()
    values = [e["valid"]["recall@20"] for e in result.log]
    best = int(np.argmax(values))
    assert result.best_epoch == best + 1
    assert result.valid["recall@20"] == pytest.approx(values[best])
    if result.stopped_early:
        assert len(values) - 1 - best == 2
    # The model holds the best weights: evaluating it again gives the best validation value.
    from autosample_ext.training import evaluate_model

    assert evaluate_model(model, tiny, "valid", (20,))["recall@20"] == pytest.approx(values[best])
    assert set(result.test) == {"recall@20", "ndcg@20", "precision@20", "hit@20", "mrr@20"}


# ---------------------------------------------------------------------------------------------
# Checkpoints and resume
# ---------------------------------------------------------------------------------------------


def test_checkpoint_refuses_objects_and_loads_weights_only(tmp_path):
    with pytest.raises(TypeError, match="not allowed"):
        save_checkpoint({"a": object()}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    state = {"w": torch.arange(3), "meta": {"epoch": 2, "names": ["a", "b"], "x": None}}
    save_checkpoint(state, tmp_path / "y.pt")
    back = load_checkpoint(tmp_path / "y.pt")
    assert torch.equal(back["w"], state["w"]) and back["meta"] == state["meta"]
    assert [p.name for p in tmp_path.iterdir()] == ["y.pt"]  # no temp file left
    check_plain({"opt": torch.optim.Adam([torch.zeros(1, requires_grad=True)]).state_dict()})


class Boom(RuntimeError):
    pass


def _metrics_of(summary):
    return [(r.seed, r.method, r.sampler, r.result.best_epoch, r.result.valid, r.result.test,
             [(e["epoch"], e["loss"], e.get("alpha"), e.get("valid")) for e in r.result.log])
            for r in summary.records]


@pytest.mark.parametrize("where", ["crash", "signal"])
def test_resume_after_interrupt_gives_identical_metrics(tiny, tmp_path, where):
    base = dict(epochs=3, dim=8, batch_size=128, progress=False, alpha_lr=0.1)
    reference = run(RunConfig(out=str(tmp_path / "ref"), **base), data=tiny)

    stop = StopFlag()
    nb = math.ceil(tiny.train.nnz / base["batch_size"])
    at = nb + nb // 2  # the middle of the search's second epoch

    def fault(tag, step):
        if tag == "seed0/search" and step == at:
            if where == "crash":
                raise Boom("simulated crash")
            stop.request("test")

    cfg = RunConfig(out=str(tmp_path / "run"), **base)
    with pytest.raises(Boom if where == "crash" else TrainingInterrupted):
        run(cfg, data=tiny, stop=stop, on_step=fault)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "seed0-search.pt")
    if where == "crash":
        assert (ckpt["epoch"], ckpt["batch"]) == (1, 0)                # the last epoch end
    else:
        assert (ckpt["epoch"], ckpt["batch"]) == (1, nb // 2 + 1)      # the step boundary
    resumed = run(cfg, data=tiny, resume=True)
    assert _metrics_of(resumed) == _metrics_of(reference)
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    ref_lines = [json.loads(x) for x in (tmp_path / "ref" / "log.jsonl").read_text().splitlines()]
    strip = lambda e: {k: v for k, v in e.items() if k != "seconds"}  # noqa: E731
    assert [strip(e) for e in lines] == [strip(e) for e in ref_lines]


def test_resume_refuses_existing_run_without_flag(tiny, tmp_path):
    cfg = RunConfig(out=str(tmp_path / "r"), epochs=1, dim=8, batch_size=512, progress=False,
                    sampler=("rns",))
    run(cfg, data=tiny)
    with pytest.raises(FileExistsError, match="--resume"):
        run(cfg, data=tiny)


def test_search_space_validation():
    from autosample_ext.search import SearchConfig

    with pytest.raises(ValueError, match="at least 2"):
        SearchConfig(candidates=("rns",))
    with pytest.raises(ValueError, match="repeats"):
        SearchConfig(candidates=("rns", "rns"))
    assert math.isclose(SearchConfig().tau, 1.0)


def test_gdns_single_mode_trains_with_group_loss(tiny):
    model = build_model("mf", tiny, 8, seed=0)
    sampler = build_sampler("gdns", tiny, seed=0, group_size=4, num_candidates=8, table="slots",
                            num_slots=16)
    obj = SamplerObjective(sampler, l2=1e-4)
    assert obj.group_mode
    trainer = Trainer(tiny, model, obj, TrainConfig(epochs=1, batch_size=256, progress=False))
    trainer.fit()
    assert bool((sampler.table.keys >= 0).any())  # the gain table was updated by observe_groups


def _record(seed, method, r):
    from autosample_ext.run import PhaseRecord
    from autosample_ext.training import TrainResult

    test = {"recall@20": r, "ndcg@20": r / 2, "precision@20": r / 10, "hit@20": 2 * r}
    return PhaseRecord(seed, method, method, TrainResult(1, dict(test), dict(test), 1, False, 0.0))


@pytest.mark.parametrize("delta,marker", [(0.01, "*"), (-0.01, "†")])
def test_table_ranks_and_ttest_markers(delta, marker):
    from autosample_ext.run import metrics_frame, paired_ttests, render_table

    recs = []
    for seed, noise in enumerate([0.0, 0.001, -0.0005]):
        recs += [_record(seed, "rns", 0.10 + noise), _record(seed, "dns", 0.20 + noise),
                 _record(seed, "autosample", 0.20 + noise + delta + noise / 10)]
    tests = paired_ttests(metrics_frame(recs, "test"), (20,))
    assert tests["recall@20"]["baseline"] == "dns" and tests["recall@20"]["significant"]
    table = render_table(recs, "test", 20, tests).splitlines()
    assert table[0] == "| Sampler | R@20 | N@20 | P@20 | H@20 | Avg rank |"
    rows = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    assert f"{marker} (" in rows["AutoSample"]
    assert rows["RNS"].endswith("| 3.00 |")
    best = "AutoSample" if delta > 0 else "DNS"
    assert rows[best].endswith("| 1.00 |")
