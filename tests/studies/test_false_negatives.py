"""The GDNS §4.6 false-negative analysis command: planting, counting, outputs."""
from __future__ import annotations

import json

import pytest
import torch

from autosample_ext.data.loader import LoadOptions, build_default
from autosample_ext.data.synthetic import SyntheticConfig
from autosample_ext.studies.false_negatives import (
    SelectionProbe,
    main,
    ordinary_negatives,
    plant_false_negatives,
    run_analysis,
)
from autosample_ext.samplers import build_sampler
from autosample_ext.samplers.base import SampleContext


@pytest.fixture(scope="module")
def small():
    cfg = SyntheticConfig(num_users=300, num_items=400, mean_interactions=30)
    return build_default(LoadOptions(split="loo", seed=0), cfg)


def test_planting_removes_one_training_positive_per_user(small):
    planted_data, planted = plant_false_negatives(small, seed=1)
    deg = small.train.degrees()
    has = deg >= 2
    assert bool(((planted >= 0) == has).all())
    assert planted_data.train.nnz == small.train.nnz - int(has.sum())
    for u in torch.nonzero(has).flatten()[:50].tolist():
        item = int(planted[u])
        assert item in small.train.row(u).tolist()
        assert item not in planted_data.train.row(u).tolist()
    # valid / test / evaluation negatives untouched; the same seed plants the same items
    assert torch.equal(planted_data.test.indices, small.test.indices)
    assert torch.equal(plant_false_negatives(small, seed=1)[1], planted)
    ordinary = ordinary_negatives(small, planted, seed=1)
    for u in torch.nonzero(has).flatten()[:50].tolist():
        positives = set(small.train.row(u).tolist()) | set(small.valid.row(u).tolist()) \
            | set(small.test.row(u).tolist())
        assert int(ordinary[u]) not in positives


def test_probe_counts_planted_selections_exactly(small):
    planted_data, planted = plant_false_negatives(small, seed=0)
    inner = build_sampler("rns", planted_data, seed=0)
    free = planted_data.num_items - planted_data.train.degrees()
    probe = SelectionProbe(inner, planted, free)
    users = torch.nonzero(planted >= 0).flatten()[:64]
    ctx = SampleContext(users=users, pos_items=torch.zeros_like(users), model=None,
                        user_table=torch.zeros(1), item_table=torch.zeros(1), step=3)
    negatives = probe.sample(ctx)
    c = probe.epochs[0]
    assert c.selected == 64
    assert c.planted == int((negatives.items[:, 0] == planted[users]).sum())
    assert c.expected_uniform == pytest.approx(float((1.0 / free[users].double()).sum()))
    assert not hasattr(probe, "sample_groups")          # RNS has no group mode
    assert hasattr(SelectionProbe(build_sampler("gdns", planted_data, seed=0), planted, free),
                   "sample_groups")


def test_analysis_outputs_and_dns_prefers_planted_items(small, tmp_path, capsys):
    result = run_analysis(small, tmp_path, samplers=["gdns", "rns", "dns"], epochs=2, seed=0,
                          plant_seed=0, snapshot_epochs=[1, 2])
    names = {p.name for p in tmp_path.iterdir()}
    assert {"false_negatives.json", "report.md", "densities.png", "selection.png",
            "snapshots_gdns.npz"} <= names
    assert (tmp_path / "densities.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "false_negatives.json").read_text())
    assert saved["users_with_planted"] == int((small.train.degrees() >= 2).sum())

    def lift(name):
        e = saved["samplers"][name]["epochs"]
        return sum(c["planted"] for c in e.values()) / sum(c["expected_uniform"] for c in e.values())

    # DNS picks the highest-scored candidate: planted (true) positives far above uniform.
    assert lift("dns") > 2.0, lift("dns")
    assert lift("dns") > lift("rns")
    g = saved["samplers"]["gdns"]
    assert set(g["snapshots"]) == {"1", "2"}
    # the model scores the planted positives above ordinary negatives: their H is larger
    snap = g["snapshots"]["2"]
    assert snap["h_planted"]["mean"] > snap["h_ordinary"]["mean"]
    assert g["epochs"]["1"]["h_planted"] and g["epochs"]["1"]["g_ordinary"]
    # everything the figures draw is in the JSON: snapshot histograms over the bins, and the
    # exact gain's diagnostics per epoch
    assert len(saved["bins"]) == len(snap["h_planted"]["hist"]) + 1
    assert sum(snap["g_ordinary"]["hist"]) == saved["users_with_planted"]
    assert [set(e) for e in g["gain"]] == [{"gdns_live_fraction", "gdns_mean_g_selected",
                                             "gdns_mean_g_seen", "gdns_pairs_seen"}] * 2
    assert result["samplers"]["rns"]["epochs"]["1"]["selected"] == \
        result["samplers"]["dns"]["epochs"]["1"]["selected"]
    # the snapshot histograms are in the JSON: the figures redraw from it without the .npz
    assert sum(snap["h_planted"]["hist"]) == saved["users_with_planted"]
    redo = tmp_path / "redo"
    assert main(["--report-only", "--from-json", str(tmp_path / "false_negatives.json"),
                 "--out", str(redo)]) == 0
    assert {p.name for p in redo.iterdir()} == {"selection.png", "densities.png", "report.md"}
    assert (redo / "report.md").read_text() == (tmp_path / "report.md").read_text()


def test_command_line_errors(tmp_path, capsys):
    data = tmp_path / "d.txt"
    data.write_text("0 1 2\n")
    assert main(["--data", str(data), "--out", str(tmp_path), "--samplers", "nosuch"]) == 2
    assert "unknown sampler" in capsys.readouterr().err
    assert main(["--data", str(data), "--out", str(tmp_path), "--epochs", "3",
                 "--snapshot-epochs", "5"]) == 2
    assert "--snapshot-epochs" in capsys.readouterr().err
    # a path that does not exist is a bad argument, as for train's --data
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err


def test_refused_under_torchrun(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "one process (WORLD_SIZE=2)" in err and "not torchrun" in err
    assert not (tmp_path / "o").exists()
