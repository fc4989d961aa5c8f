"""The validation-driven AutoSample search (--alpha-objective valid): the smooth recall the probes
measure, look-ahead steps that leave no trace, the alpha update, dropped candidates, a sampler
that hurts validation losing its weight, the options and their errors."""
from __future__ import annotations

import json
import math

import pytest
import torch

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.eval import evaluate_full_ranking
from autosample_ext.run import RunConfig, run
from autosample_ext.models import build_model
from autosample_ext.samplers import Negatives, SampleContext, Sampler, build_sampler
from autosample_ext.search.probes import (
    ProbeConfig,
    ProbeSet,
    probe_interval,
    soft_recall,
)
from autosample_ext.search.valid_alpha import (
    T_CLIP,
    ValidAlphaObjective,
    evidence_step,
    gain_evidence,
)
from autosample_ext.train import main
from autosample_ext.training import SamplerObjective, TrainConfig, Trainer
from autosample_ext.training.lookahead import restore, snapshot, trial_steps


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=300, num_items=200, mean_interactions=15.0)
    return default_dataset(seed=3, config=cfg)


def _soft_reference(user_table, item_table, data, users, k):
    """Dense pure-PyTorch smooth recall@k (the formula of probes.soft_recall)."""
    out = []
    for u in users.tolist():
        scores = (item_table @ user_table[u]).double()
        scores[data.train.row(u)] = -math.inf
        top = torch.sort(scores, descending=True).values[:k + 1]
        boundary = (top[k - 1] + top[k]) / 2
        temperature = max(float((top[0] - top[k]) / k), 1e-6)
        items = data.valid.row(u)
        out.append(torch.sigmoid((scores[items] - boundary) / temperature).mean())
    return torch.stack(out)


def test_soft_recall_matches_dense_reference_and_tends_to_recall(tiny):
    gen = torch.Generator().manual_seed(0)
    users_t = torch.randn(tiny.num_users, 8, generator=gen)
    items_t = torch.randn(tiny.num_items, 8, generator=gen)
    users = torch.nonzero(tiny.valid.degrees() > 0).flatten()[:40]
    got = soft_recall(users_t, items_t, tiny, users, 10)
    torch.testing.assert_close(got, _soft_reference(users_t, items_t, tiny, users, 10),
                               rtol=1e-5, atol=1e-6)
    assert bool(((got > 0) & (got < 1)).all())
    # scores far apart relative to the top gaps: the sigmoid is a step, soft recall = recall
    sharp = soft_recall(users_t * 1e4, items_t, tiny, users, 10).mean()
    exact = evaluate_full_ranking(users_t, items_t, tiny, "valid", (10,), users=users)
    assert float(sharp) == pytest.approx(exact["recall@10"], abs=0.02)


def test_probe_interval_is_whole_epochs_at_least_fifteen_steps():
    assert probe_interval(ProbeConfig(), 24) == 24
    assert probe_interval(ProbeConfig(), 5) == 15
    assert probe_interval(ProbeConfig(), 4) == 16
    assert probe_interval(ProbeConfig(every=7), 24) == 7
    with pytest.raises(ValueError, match="steps"):
        ProbeConfig(steps=0)


def test_probe_users_and_rows_are_seeded_and_cover_the_probe_users(tiny):
    users, _ = tiny.train.pairs()
    a = ProbeSet(tiny, users, ProbeConfig(users=50), seed=1, k=10)
    b = ProbeSet(tiny, users, ProbeConfig(users=50), seed=1, k=10)
    assert torch.equal(a.users, b.users) and a.users.numel() == 50
    assert set(users[a.rows].tolist()) == set(a.users.tolist())
    rows = a.batch_rows(7, 3, 64)
    assert rows.numel() == 3 * 64 and torch.equal(rows, b.batch_rows(7, 3, 64))
    assert not torch.equal(rows, a.batch_rows(8, 3, 64))
    assert set(users[rows].tolist()) <= set(a.users.tolist())


def _trainer(data, objective, **cfg):
    model = build_model("mf", data, 8, seed=0)
    return Trainer(data, model, objective, TrainConfig(progress=False, batch_size=128, **cfg))


def _tensors(obj):
    """Every tensor in a (nested) state dict, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj.clone()]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


@pytest.mark.parametrize("engine", ["fused", "autograd"])
def test_lookahead_steps_change_the_model_and_restore_puts_everything_back(tiny, engine):
    trainer = _trainer(tiny, SamplerObjective(build_sampler("rns", tiny, seed=0), l2=1e-4),
                       epochs=1, engine=engine)
    assert trainer.engine == engine
    trainer.fit()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    opt_before = _tensors(trainer.optimizer.state_dict())
    rng = torch.get_rng_state()
    snap = snapshot(trainer)
    trial_steps(trainer, SamplerObjective(build_sampler("dns", tiny, seed=1), l2=1e-4),
                torch.arange(256), first_step=10**6, epoch=0)
    torch.rand(3)  # anything drawing from the global RNG is undone too
    assert not torch.equal(trainer.model.user_embedding.weight, before["user_embedding.weight"])
    assert any(not torch.equal(a, b) for a, b in
               zip(opt_before, _tensors(trainer.optimizer.state_dict())))
    restore(trainer, snap)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for a, b in zip(opt_before, _tensors(trainer.optimizer.state_dict())):
        assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), rng)


class CountingSampler(Sampler):
    """Wraps a sampler; counts ``sample`` calls."""

    def __init__(self, inner: Sampler) -> None:
        self.inner, self.name, self.calls = inner, inner.name, 0
        self.needs_graph_model = False

    def sample(self, ctx: SampleContext) -> Negatives:
        self.calls += 1
        return self.inner.sample(ctx)

    def check_model(self, model) -> None:
        pass

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state) -> None:
        self.inner.load_state_dict(state)


class ValidationItemsSampler(Sampler):
    """A harmful sampler: each row's negative is one of the user's validation items (when it has
    one), i.e. a false negative pushed down where the validation metric looks."""

    name = "false_negatives"

    def __init__(self, data, seed: int = 0) -> None:
        super().__init__(data, seed=seed)
        self.fallback = build_sampler("rns", data, seed=seed)

    def sample(self, ctx: SampleContext) -> Negatives:
        items = self.fallback.sample(ctx).items.clone()
        valid = self.data.valid
        for row, user in enumerate(ctx.users.tolist()):
            own = valid.row(user)
            if own.numel():
                items[row, 0] = own[(ctx.step + row) % own.numel()]
        return Negatives(items)


def _objective(data, samplers, **probes):
    names = [s.name for s in samplers]
    return ValidAlphaObjective(samplers, names, data, tau=1.0, l2=1e-4, seed=0, k=10,
                               probes=ProbeConfig(**probes))


def test_only_the_drawn_candidate_draws_negatives_between_probes(tiny):
    samplers = [CountingSampler(build_sampler(n, tiny, seed=i)) for i, n in
                enumerate(("rns", "pns", "dns"))]
    obj = _objective(tiny, samplers, every=1000, steps=3)
    trainer = _trainer(tiny, obj, epochs=1)
    users, items = tiny.train.pairs()
    for step in range(1, 6):   # no probe due: one sampler per step, the drawn one
        trainer._train_step(users[:128], items[:128], step)
        assert sum(s.calls for s in samplers) == step
    assert [s.calls for s in samplers] == [int(c) for c in obj.selected_counts]
    for s in samplers:
        s.calls = 0
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    logits = obj.logits.detach().clone()
    obj.before_step(trainer, 1000)   # a probe: every active candidate trains 3 look-ahead steps
    assert [s.calls for s in samplers] == [3, 3, 3]
    assert obj.num_probes == 1 and set(obj.last_gains) == {"rns", "pns", "dns"}
    assert not torch.equal(obj.logits.detach(), logits)
    for k, v in trainer.model.state_dict().items():   # the probe left no trace
        assert torch.equal(v, before[k]), k


def test_alpha_moves_by_the_evidence_of_each_candidates_gain():
    gen = torch.Generator().manual_seed(0)
    users = 400
    noise = 0.01 * torch.randn(4, users, generator=gen, dtype=torch.float64)
    values = torch.stack([torch.full((users,), 0.30), torch.full((users,), 0.29),
                          torch.full((users,), 0.30), torch.zeros(users)]).double() + noise
    active = torch.tensor([True, True, True, False])
    alpha = torch.tensor([0.25, 0.25, 0.5, 0.0], dtype=torch.float64)
    sums = gain_evidence(values, alpha, active)
    assert sums[3].abs().sum() == 0 and float(sums[0, 2]) == users
    # the sums are those of the per-user advantage over the alpha-weighted mixture
    d = values[0] - (alpha[:3, None] * values[:3]).sum(0)
    torch.testing.assert_close(sums[0, :2], torch.stack([d.sum(), (d * d).sum()]))
    theta, t = evidence_step(torch.zeros(4), active, sums, 0.2)
    assert t[1] == -T_CLIP                       # far below the mixture: clipped evidence
    assert 0 < float(t[0]) <= T_CLIP and 0 < float(t[2]) <= T_CLIP   # a little above it
    assert theta[3] == 0 and float(theta[1]) == pytest.approx(-0.2 * T_CLIP)
    # equal candidates: noise alone, small evidence either way
    same = torch.full((4, users), 0.3, dtype=torch.float64) + noise
    _, t0 = evidence_step(torch.zeros(4), active, gain_evidence(same, alpha, active), 0.2)
    assert float(t0.abs().max()) < 3
    # sums over two halves of the users (two ranks) give the same step as over all of them
    halves = gain_evidence(values[:, :200], alpha, active) + gain_evidence(values[:, 200:], alpha,
                                                                          active)
    torch.testing.assert_close(evidence_step(torch.zeros(4), active, halves, 0.2)[1], t)


def test_a_sampler_that_hurts_validation_loses_its_weight_and_is_dropped(tiny):
    harmful = ValidationItemsSampler(tiny, seed=1)
    obj = _objective(tiny, [build_sampler("rns", tiny, seed=0), harmful],
                     every=3, steps=2, users=300, step_size=1.0)
    result = _trainer(tiny, obj, epochs=6, patience=0).fit()
    gains = [e["gains"] for e in result.log if "gains" in e]
    assert gains and sum(g["rns"] - g["false_negatives"] for g in gains) > 0
    assert obj.alpha_dict()["rns"] == 1.0
    assert not bool(obj.active[1])                        # dropped: never drawn again
    assert obj.finished() and result.stopped_early and result.epochs_run < 6  # search decided
    assert result.log[-1]["active"] == ["rns"]
    assert all(obj._draw() == 0 for _ in range(200))      # a dropped candidate is never drawn


def test_resume_of_a_run_with_another_alpha_objective_is_refused(capsys, tmp_path):
    out = tmp_path / "r"
    assert main(["--epochs", "1", "--dim", "8", "--batch-size", "8192", "--out", str(out),
                 "--no-progress", "--alpha-objective", "train"]) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["alpha_objective"] == "train"
    capsys.readouterr()
    assert main(["--resume", "--out", str(out), "--alpha-objective", "valid"]) == 2
    err = capsys.readouterr().err
    assert "--alpha-objective valid" in err and "train" in err and "saved" in err


def test_config_written_before_the_option_reads_as_the_paper_objective():
    plain = RunConfig().to_json()
    del plain["alpha_objective"]
    assert RunConfig.from_json(plain).alpha_objective == "train"
    assert RunConfig().alpha_objective == "valid"


def test_bad_alpha_objective_and_probe_options(capsys):
    def fails(argv, *needles):
        assert main(argv) == 2
        err = capsys.readouterr().err
        for needle in needles:
            assert needle in err, err
        assert "Traceback" not in err

    fails(["--alpha-objective", "loss"], "--alpha-objective", "'loss'", "valid, train")
    fails(["--probe-steps", "0"], "--probe-steps")
    fails(["--probe-users", "-3"], "--probe-users")
    fails(["--alpha-step", "0"], "--alpha-step")
    fails(["--protocol", "dens", "--alpha-objective", "valid"], "--alpha-objective valid",
          "no validation")
    with pytest.raises(ValueError, match="alpha_objective"):
        RunConfig(alpha_objective="loss")
    with pytest.raises(ValueError, match="probe_users"):
        RunConfig(probe_users=0)


def test_compare_shows_both_alpha_objectives_beside_sh_and_the_grid(tiny, tmp_path):
    cfg = RunConfig(out=str(tmp_path / "c"), compare=True, epochs=2, dim=8, batch_size=256,
                    progress=False, budget_singles=False, search_space=("rns", "dns"))
    summary = run(cfg, data=tiny)
    methods = {r.method for r in summary.records}
    assert {"autosample", "autosample-train", "search", "search-train", "sh", "grid"} <= methods
    assert set(summary.metrics["costs"]["cpu_ratio_to_grid"]) >= {"autosample",
                                                                 "autosample-train", "sh"}
    assert summary.metrics["autosample"]["0"]["alpha_objective"] == "valid"
    assert summary.metrics["autosample-train"]["0"]["alpha_objective"] == "train"
    table = (tmp_path / "c" / "table.md").read_text()
    assert "| AutoSample |" in table and "AutoSample (paper: alpha by training loss)" in table
    ckpts = {p.name for p in (tmp_path / "c" / "checkpoints").iterdir()}
    assert {"seed0-search.pt", "seed0-search-train.pt", "seed0-retrain-train.pt"} <= ckpts


def test_the_fused_engine_trains_the_validation_driven_search(tiny):
    samplers = [build_sampler(n, tiny, seed=i) for i, n in enumerate(("rns", "pns", "dns"))]
    obj = _objective(tiny, samplers, every=5, steps=2, drop_below=0.0)
    trainer = _trainer(tiny, obj, epochs=2, patience=0)
    assert trainer.engine == "fused"
    result = trainer.fit()
    steps = 2 * trainer.num_batches
    assert sum(sum(e["selected"].values()) for e in result.log) == steps   # one draw per step
    assert result.log[-1]["probes"] == -(-steps // 5)                      # before steps 0, 5, ..
    assert set(result.log[-1]["evidence"]) == {"rns", "pns", "dns"}
    assert not torch.allclose(torch.softmax(obj.logits.detach(), 0), torch.full((3,), 1 / 3))


def test_pick_table_judges_each_seed_against_the_grid_picks_spread(tmp_path):
    from autosample_ext.report.picks import pick_rows, pick_table

    (tmp_path / "config.json").write_text(json.dumps({"data": {"train": 100},
                                                      "config": {"batch_size": 10}}))
    (tmp_path / "log.jsonl").write_text("")
    grid_test = {"0": 0.30, "1": 0.31, "2": 0.32}          # the grid pick's std is 0.01
    auto = {"0": ("dns", 0.20), "1": ("rns", 0.305), "2": ("rns", 0.30)}
    runs, costs = [], {}
    for s, value in grid_test.items():
        runs += [{"method": "grid", "sampler": "dns", "seed": int(s), "test": {"recall@20": value}},
                 {"method": "autosample", "sampler": auto[s][0], "seed": int(s),
                  "test": {"recall@20": auto[s][1]}},
                 {"method": "autosample-train", "sampler": "rns", "seed": int(s),
                  "test": {"recall@20": 0.25}}]
        costs[s] = {"grid": {"cpu_seconds": 10.0}, "autosample": {"cpu_seconds": 4.0},
                    "autosample-train": {"cpu_seconds": 12.0}}
    m = {"_path": str(tmp_path), "runs": runs, "grid": {s: {"best": "dns"} for s in grid_test},
         "autosample": {}, "autosample-train": {}, "costs": {"per_seed": costs}}
    rows = pick_rows({"x-mf": {"compare": m}}, "recall@20")
    assert [r["ok"] for r in rows] == [True, True, False]   # same pick; -0.005; -0.02 < -0.01
    assert rows[0]["auto_cpu"] == pytest.approx(0.4) and rows[0]["paper_cpu"] == pytest.approx(1.2)
    assert math.isnan(rows[0]["auto_priced"])               # no search log to price
    table = pick_table({"x-mf": {"compare": m}}, "recall@20")
    assert "MISS by 0.0100 beyond 1 std" in table and "2 of 3 runs (67%)" in table
