"""Protocols (``--protocol dens | gdns | recbole``): fixed settings, conflicts with explicit
options, the DENS training loop (test schedule, ties, dropped last batch), the GDNS setting with
the sampled evaluation, RecBole's split sizes (by hand) and metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autosample_ext import data as D
from autosample_ext.run import RunConfig, run
from autosample_ext.run.protocols import PROTOCOL_SPECS, ProtocolConflict
from autosample_ext.models import build_model
from autosample_ext.samplers import build_sampler
from autosample_ext.train import config_from_args, build_parser, main
from autosample_ext.training import SamplerObjective, TrainConfig, Trainer
from faultdata import rated_csv


def _lines_folder(path: Path, users: int, items: int, per_user: int, test_per_user: int,
                  seed: int = 0) -> Path:
    """A train.txt / test.txt folder with random interactions (``user item item ...``)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    weight = 1.0 / np.arange(1, items + 1) ** 0.8                   # popular items exist
    with open(path / "train.txt", "w") as tr, open(path / "test.txt", "w") as te:
        for u in range(users):
            chosen = rng.choice(items, per_user + test_per_user, replace=False,
                                p=weight / weight.sum()).tolist()
            tr.write(" ".join(map(str, [u] + chosen[:per_user])) + "\n")
            te.write(" ".join(map(str, [u] + chosen[per_user:])) + "\n")
    return path


# -- resolution and conflicts ------------------------------------------------------------------

def test_protocol_fixed_settings_are_applied():
    cfg = RunConfig(protocol="dens").resolved()
    for key, value in PROTOCOL_SPECS["dens"].fixed.items():
        assert getattr(cfg, key) == value, key
    assert cfg.sampler == ("rns", "dns", "mixgcf")
    assert cfg.sampler_options["dns"]["num_candidates"] == 6       # DENS's parser default
    assert cfg.sampler_options["mixgcf"]["l2_target"] == "mixed"
    assert cfg.resolved() == cfg                                    # idempotent
    tc = cfg.train_config(0)
    assert (tc.eval_split, tc.eval_start, tc.eval_every, tc.drop_last, tc.ties_improve,
            tc.patience, tc.epochs) == ("test", 1, 5, True, True, 10, 1000)
    g = RunConfig(protocol="gdns").resolved()
    assert (g.model, g.dim, g.optimizer, g.lr, g.batch_size, g.split, g.eval_protocol, g.metric,
            g.ks, g.min_rating) == ("gmf", 32, "adagrad", 0.09, 1024, "loo", "sampled",
                                    "ndcg@3", (1, 3), 4.0)
    assert g.sampler == ("gdns", "rns", "dns", "srns")
    assert g.sampler_options == {"gdns": {"group_size": 32, "margin": 1.0, "alpha": 0.2,
                                          "num_candidates": 64}}
    assert (g.l2, g.epochs) == (0.0, 1000)
    # the optimiser, lr, L2 and epoch cap are defaults under gdns: given values are kept, also
    # when equal to the library's defaults (adam), and a second resolve keeps them
    s = RunConfig(protocol="gdns", sampler=("srns",), optimizer="adam", lr=1e-3, l2=0.01) \
        .resolved(explicit={"sampler", "optimizer", "lr", "l2"})
    assert (s.optimizer, s.lr, s.l2) == ("adam", 1e-3, 0.01)
    assert s.resolved() == s
    r = RunConfig(protocol="recbole").resolved()
    assert (r.split, r.split_rounding, r.metric, r.patience, r.ties_improve, r.init, r.l2) == \
        ("8:1:1", "floor", "mrr@10", 11, True, "xavier_normal", 0.0)
    # a search space named explicitly keeps the AutoSample pipeline under gdns
    assert RunConfig(protocol="gdns", search_space=("rns", "dns")).resolved().mode == "autosample"
    # a pool set by the user wins over the protocol's default
    cfg = RunConfig(protocol="dens", sampler=("dns",),
                    sampler_options={"dns": {"num_candidates": 8}}).resolved()
    assert cfg.sampler_options == {"dns": {"num_candidates": 8, "top_k": 1}}


def test_library_conflicts_are_errors_listing_each():
    with pytest.raises(ProtocolConflict) as exc:
        RunConfig(protocol="dens", epochs=30, lr=0.01, model="ngcf").resolved()
    msg = str(exc.value)
    for needle in ("--protocol dens", "--epochs 30 (the protocol fixes 1000)",
                   "--lr 0.01 (the protocol fixes 0.001)", "--model ngcf (the protocol fixes lightgcn)"):
        assert needle in msg, msg
    assert len(exc.value.conflicts) == 3
    with pytest.raises(ProtocolConflict, match="--ks"):
        RunConfig(protocol="gdns", ks=(20,), split="loo").resolved(explicit={"ks", "split"})
    with pytest.raises(ValueError, match="does not allow the compare mode"):
        RunConfig(protocol="dens", compare=True).resolved()


def _given(argv):
    return config_from_args(build_parser().parse_args(argv))


def test_cli_conflicts_exit_2_naming_every_flag(capsys, tmp_path):
    assert main(["--protocol", "dens", "--lr", "0.01", "--batch-size", "1024", "--patience",
                 "5", "--eval-every", "1", "--init", "normal"]) == 2
    err = capsys.readouterr().err
    for needle in ("--lr 0.01", "--batch-size 1024", "--patience 5", "--eval-every 1",
                   "--init normal", "(the protocol fixes 2048)"):
        assert needle in err, err
    # an explicit value EQUAL to the protocol's is fine, even when it is not the CLI default
    cfg, _ = _given(["--protocol", "dens", "--lr", "0.001", "--epochs", "1000"])
    assert cfg.lr == 1e-3
    # the CLI default of a flag the user passes explicitly is still a conflict (5e-3 != 1e-3)
    assert main(["--protocol", "dens", "--lr", "0.005"]) == 2
    assert "--lr 0.005" in capsys.readouterr().err
    assert main(["--protocol", "recbole", "--split-rounding", "half_up"]) == 2
    assert "--split-rounding half_up" in capsys.readouterr().err
    assert main(["--eval-protocol", "sampled"]) == 2
    assert "--split loo" in capsys.readouterr().err


# -- the DENS training loop --------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    return D.load(None, split="3:1:1", seed=0)


def _trainer(data, **cfg):
    model = build_model("mf", data, 8, seed=0)
    obj = SamplerObjective(build_sampler("rns", data, seed=0), l2=0.0)
    return Trainer(data, model, obj, TrainConfig(progress=False, **cfg))


def test_eval_schedule_and_dropped_last_batch(tiny):
    n = tiny.train.nnz
    t = _trainer(tiny, epochs=12, batch_size=5000, eval_start=1, eval_every=5, patience=0,
                 drop_last=True)
    assert t.num_batches == n // 5000 and n % 5000 != 0
    result = t.fit()
    assert [e["epoch"] for e in result.log if "valid" in e] == [1, 6, 11]   # not 12
    assert {e["steps"] for e in result.log} == {n // 5000}
    t = _trainer(tiny, epochs=7, batch_size=5000, eval_every=5, patience=0)
    assert t.num_batches == -(-n // 5000)
    assert [e["epoch"] for e in t.fit().log if "valid" in e] == [5, 7]       # and the last
    with pytest.raises(ValueError, match="fewer than one batch"):
        _trainer(tiny, epochs=1, batch_size=n + 1, drop_last=True)


def test_ties_count_as_improvement_when_asked(tiny):
    # lr 1e-12: the model does not move, every evaluation ties the first one
    tied = _trainer(tiny, epochs=8, lr=1e-12, patience=2, ties_improve=True).fit()
    assert not tied.stopped_early and tied.best_epoch == 8
    values = {e["valid"]["recall@20"] for e in tied.log}
    assert len(values) == 1
    strict = _trainer(tiny, epochs=8, lr=1e-12, patience=2).fit()
    assert strict.stopped_early and strict.best_epoch == 1 and strict.epochs_run == 3


def test_dens_protocol_end_to_end(tmp_path, capsys):
    folder = _lines_folder(tmp_path / "d", users=120, items=150, per_user=20, test_per_user=5)
    out = tmp_path / "run"
    assert main(["--protocol", "dens", "--data", str(folder), "--sampler", "dns",
                 "--sampler-opt", "dns.num_candidates=4", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    c = config["config"]
    assert (c["epochs"], c["patience"], c["eval_start"], c["eval_every"], c["drop_last"],
            c["ties_improve"], c["init"], c["l2"]) == (1000, 10, 1, 5, True, True, "xavier", 5e-5)
    assert config["samplers"]["dns"]["num_candidates"] == 4
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    tested = [e["epoch"] for e in log if "test" in e]
    assert tested[:3] == [1, 6, 11] and all((e - 1) % 5 == 0 for e in tested)
    assert {e["steps"] for e in log} == {config["data"]["train"] // 2048}
    metrics = json.loads((out / "metrics.json").read_text())
    entry = metrics["runs"][0]
    # stopped by the rule: 10 tests after the best (ties count as improvement)
    assert entry["stopped_early"]
    values = [e["test"]["recall@20"] for e in log if "test" in e]
    best = max(range(len(values)), key=lambda i: (values[i], i))     # the later on a tie
    assert len(values) - 1 - best == 10
    assert entry["best_epoch"] == tested[best]
    assert entry["best_test"]["recall@20"] == values[best]


# -- GDNS --------------------------------------------------------------------------------------

def test_gdns_protocol_end_to_end(tmp_path, capsys):
    csv = rated_csv(tmp_path / "r.csv")
    out = tmp_path / "g"
    assert main(["--protocol", "gdns", "--data", str(csv), "--sampler", "gdns,rns",
                 "--sampler-opt", "gdns.group_size=4", "--sampler-opt", "gdns.num_candidates=8",
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| Sampler | N@1 | N@3 | R@3 | Avg rank |" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["min_rating_applied"] is True
    assert config["data"]["split"] == "loo" and config["data"]["loo_by"] == "time"
    assert config["samplers"]["gdns"]["group_size"] == 4
    assert config["samplers"]["gdns"]["alpha"] == 0.2 and config["samplers"]["gdns"]["margin"] == 1.0
    # only ratings >= 4 were kept: 60 users x 12 ratings, about 40% of them
    raw = np.loadtxt(csv, delimiter=",", skiprows=1)
    kept = int((raw[:, 2] >= 4).sum())
    assert config["data"]["train"] + config["data"]["valid"] + config["data"]["test"] == kept
    metrics = json.loads((out / "metrics.json").read_text())
    for entry in metrics["runs"]:
        assert set(entry["test"]) == {"ndcg@1", "ndcg@3", "recall@1", "recall@3"}
        assert entry["test"]["ndcg@1"] == entry["test"]["recall@1"]
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert all("valid" in e for e in log)                           # every epoch
    assert metrics["table_columns"] == ["ndcg@1", "ndcg@3", "recall@3"]


def test_gdns_protocol_on_data_without_ratings_says_so(tmp_path, capsys, caplog):
    folder = _lines_folder(tmp_path / "d", users=40, items=220, per_user=10, test_per_user=2)
    summary = run(RunConfig(protocol="gdns", data=str(folder), sampler=("rns",),
                            out=str(tmp_path / "o"), progress=False))
    config = json.loads((summary.path / "config.json").read_text())
    assert config["data"]["min_rating_applied"] is False
    assert "has no rating column; every interaction is a positive" in caplog.text
    # an explicit --min-rating on such data stays an error
    assert main(["--data", str(folder), "--min-rating", "4", "--split", "3:1:1",
                 "--out", str(tmp_path / "x")]) == 1
    assert "no rating column" in capsys.readouterr().err


# -- RecBole -----------------------------------------------------------------------------------

# Per-user (train, valid, test) sizes of RecBole's 8:1:1 split, worked out by hand from
# Dataset._calcu_split_ids: valid = floor(0.1 n), test = floor(0.1 n); then test, then valid,
# get one item when 0 < 0.1 n < 1 while train still holds more than one.
RECBOLE_SIZES = {1: (1, 0, 0), 2: (1, 0, 1), 3: (1, 1, 1), 5: (3, 1, 1), 9: (7, 1, 1),
                 10: (8, 1, 1), 15: (13, 1, 1), 19: (17, 1, 1), 20: (16, 2, 2), 29: (25, 2, 2),
                 31: (25, 3, 3)}
# The same users under this tool's default rounding (round half up, at least one test item).
HALF_UP_SIZES = {1: (1, 0, 0), 2: (1, 0, 1), 3: (1, 1, 1), 5: (3, 1, 1), 9: (7, 1, 1),
                 10: (8, 1, 1), 15: (11, 2, 2), 19: (15, 2, 2), 20: (16, 2, 2), 29: (23, 3, 3),
                 31: (25, 3, 3)}


def _pairs_file(path: Path) -> Path:
    lines = []
    for u, n in enumerate(RECBOLE_SIZES):
        lines += [f"{u}\t{(7 * u + 3 * j) % 40}" for j in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("rounding, expected", [("floor", RECBOLE_SIZES), ("half_up", HALF_UP_SIZES)])
def test_recbole_split_sizes_by_hand(tmp_path, rounding, expected):
    data = D.load(_pairs_file(tmp_path / "p.txt"), "pairs", split="8:1:1", seed=0,
                  split_rounding=rounding)
    for u, n in enumerate(expected):
        got = (int(data.train.degrees()[u]), int(data.valid.degrees()[u]),
               int(data.test.degrees()[u]))
        assert got == expected[n], (n, got)
    assert data.info["split_rounding"] == rounding


def test_recbole_floor_equals_recbole_code_for_every_n():
    from autosample_ext.data.splits import floor_split_sizes

    def recbole(tot, ratios=(0.8, 0.1, 0.1)):   # RecBole 1.2.1 Dataset._calcu_split_ids
        ratios = [r / sum(ratios) for r in ratios]
        cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
        cnt[0] = tot - sum(cnt[1:])
        for i in range(1, len(ratios)):
            if cnt[0] <= 1:
                break
            if 0 < ratios[-i] * tot < 1:
                cnt[-i] += 1
                cnt[0] -= 1
        return cnt

    n = np.arange(0, 2000)
    for ratio in ((0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.6, 0.2, 0.2)):
        valid, test = floor_split_sizes(n, ratio)
        assert np.array_equal(np.stack([n - valid - test, valid, test], 1),
                              np.array([recbole(int(k), ratio) for k in n])), ratio


def test_recbole_protocol_end_to_end(tmp_path, capsys):
    folder = _lines_folder(tmp_path / "d", users=80, items=120, per_user=15, test_per_user=0)
    (folder / "test.txt").unlink()
    data_file = folder / "train.txt"
    out = tmp_path / "r"
    assert main(["--protocol", "recbole", "--data", str(data_file), "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| Sampler | R@10 | MRR@10 | N@10 | H@10 | P@10 |\n" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["split_rounding"] == "floor" and config["config"]["patience"] == 11
    # 15 interactions per user: 8:1:1 with RecBole's rounding holds out 1 + 1 (half up: 2 + 2)
    assert config["data"]["valid"] == config["data"]["test"] == 80
    metrics = json.loads((out / "metrics.json").read_text())
    entry = metrics["runs"][0]
    assert {"mrr@10", "recall@10", "ndcg@10", "hit@10", "precision@10"} <= set(entry["test"])
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    values = [e["valid"]["mrr@10"] for e in log]
    best = max(range(len(values)), key=lambda i: (values[i], i))
    if entry["stopped_early"]:     # "more than 10 evaluations without improvement"
        assert len(values) - 1 - best == 11
    assert entry["best_epoch"] == best + 1


def test_readme_lists_every_setting_each_protocol_fixes():
    """The settings table of the protocols' documentation (README.md or a docs/ page, in one of
    them) is the one the code generates."""
    from autosample_ext.run.protocols import settings_table

    root = Path(__file__).resolve().parents[2]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    holders = [p.read_text() for p in pages if "<!-- protocol-settings" in p.read_text()]
    assert len(holders) == 1
    readme = holders[0]
    start = readme.index("<!-- protocol-settings")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- /protocol-settings -->")
    assert readme[start:end] == settings_table()
    for spec in PROTOCOL_SPECS.values():
        for name in spec.fixed:
            assert f"`--{name.replace('_', '-')}`" in readme[start:end], name
