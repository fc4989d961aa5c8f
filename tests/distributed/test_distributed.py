"""Training with torch.distributed (distributed/context.py): 2-process gloo runs on
the CPU spawned from here (1 thread per rank; the process side is tests/dist_worker.py).

Checked: the epoch partition (every global batch split by user owner, every pair once per epoch,
at one process's step); gradient averaging (the 2-rank weights and alpha logits equal one process
trained on the same global batches with the same negatives, replayed; the ranks' replicas are
bit-identical; the row exchange of MF's tables equals the dense all-reduce); sharded evaluation
(equal to one process); a stop requested on one rank only (both checkpoint at the same step) and
the resume (bit-identical to the uninterrupted run); the CLI under torchrun in every mode, a
rank killed with SIGKILL (the job stops, the rank is named, no hang), --resume refused with
another number of processes, and the resumed run equal to the uninterrupted one.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from autosample_ext.data import load
from autosample_ext.distributed.context import DistContext
from autosample_ext.samplers import Negatives, Sampler
from autosample_ext.samplers.gdns import GDNSGroups, GDNSOptions
from autosample_ext.search.autosample import AutoSampleObjective
from autosample_ext.train import main
from autosample_ext.training import SamplerObjective, Trainer, epoch_permutation
from faultdata import skewed_lines

import dist_worker as W

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parents[1] / "dist_worker.py"
#: seconds a 2-process launch may take before the test calls it a hang
LAUNCH_TIMEOUT = 240

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch.distributed is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.parent), env.get("PYTHONPATH", "")])
    return env


def spawn(args: list[str], world: int = 2) -> list[tuple[int, str]]:
    """``python ARGS`` as ``world`` ranks (torchrun's environment, no launcher); (status,
    output) per rank. Kills every rank and fails when they do not finish in time."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world),
                                       LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=port))
             for r in range(world)]
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    out = []
    try:
        for p in procs:
            text, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            out.append((p.returncode, text))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"{world} ranks of {args} did not finish within {LAUNCH_TIMEOUT} s (hang)")
    return out


def torchrun(args: list[str], cwd: Path) -> tuple[int, str, float]:
    """``python -m torch.distributed.run --nproc_per_node=2 ARGS``: (status, output, seconds)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", *args]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"torchrun {args} did not finish within {LAUNCH_TIMEOUT} s (hang)")
    return proc.returncode, proc.stdout, time.monotonic() - t0


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dist")
    skewed_lines(path / "tiny.txt", users=120, items=60, per_user=10)
    return path


@pytest.fixture(scope="module")
def results(folder) -> dict[str, Any]:
    """Every rank's results of ``dist_worker.py train`` (one 2-process launch)."""
    runs = spawn([str(WORKER), "train", str(folder)])
    for rank, (status, text) in enumerate(runs):
        assert status == 0, f"rank {rank} failed:\n{text[-4000:]}"
    out = torch.load(folder / "results.pt", weights_only=False)
    assert out["cli_status"] == 0
    return out


@pytest.fixture(scope="module")
def data(folder):
    return load(folder / "tiny.txt", split="3:1:1")


# ---------------------------------------------------------------------------------------------
# the 2-process Trainer runs (tests/dist_worker.py train)
# ---------------------------------------------------------------------------------------------

def _global_batches(data, epochs: int, batch: int = W.BATCH):
    """(step, users, pos) of one process's global batches."""
    users, items = data.train.pairs()
    cfg = W.train_config(epochs, batch)
    steps = -(-users.shape[0] // cfg.batch_size)
    for epoch in range(epochs):
        perm = epoch_permutation(cfg.seed, epoch, users.shape[0])
        for b in range(steps):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            yield epoch * steps + b, users[idx], items[idx]


def test_epoch_partition(results, data):
    """At each step rank r trains exactly the rows of one process's global batch whose user it
    owns, in order; over an epoch the two ranks cover every training pair exactly once."""
    logs = [r["mf-rns-rows"]["logs"]["rns"] for r in results["ranks"]]
    by_step = [{e["step"]: e for e in log} for log in logs]
    n = data.num_items
    for step, users, pos in _global_batches(data, W.EPOCHS):
        for rank in (0, 1):
            mine = users % 2 == rank
            entry = by_step[rank].get(step)
            got_u = entry["users"] if entry else torch.zeros(0, dtype=torch.int64)
            got_p = entry["pos"] if entry else torch.zeros(0, dtype=torch.int64)
            assert torch.equal(got_u, users[mine]) and torch.equal(got_p, pos[mine])
    per_epoch = -(-data.train.nnz // W.BATCH)
    for epoch in range(W.EPOCHS):
        keys = torch.cat([by_step[r][s]["users"] * n + by_step[r][s]["pos"]
                          for r in (0, 1) for s in range(epoch * per_epoch, (epoch + 1) * per_epoch)
                          if s in by_step[r]])
        u, i = data.train.pairs()
        assert torch.equal(torch.sort(keys).values, torch.sort(u * n + i).values)


class Replay(Sampler):
    """One process fed the 2 ranks' negatives, put back in the global batch's row order."""

    def __init__(self, data, name: str, rank_logs: list[list[dict]], groups: bool = False) -> None:
        super().__init__(data)
        self.name = name
        self.steps = [{e["step"]: e for e in log} for log in rank_logs]
        self.options = GDNSOptions()
        if groups:
            self.sample_groups = self._groups

    def _entries(self, step):
        return [s.get(step) for s in self.steps]

    def sample(self, ctx):
        out = torch.empty(ctx.users.shape[0], 1, dtype=torch.int64)
        for rank, entry in enumerate(self._entries(ctx.step)):
            mine = ctx.users % 2 == rank
            if entry is None:
                assert not bool(mine.any())
                continue
            assert torch.equal(entry["users"], ctx.users[mine])
            out[mine] = entry["negatives"]
        return Negatives(out)

    def _groups(self, users, step):
        parts = [e for e in self._entries(step) if e is not None]
        got = torch.cat([e["users"] for e in parts])
        order = torch.argsort(got)
        assert torch.equal(got[order], users)
        return GDNSGroups(users, torch.cat([e["positives"] for e in parts])[order],
                          torch.cat([e["negatives"] for e in parts])[order])

    def observe_groups(self, *args) -> None:
        pass


def _replayed(results, data, name: str):
    model_name, samplers, _, batch, epochs = W.SCENARIOS[name]
    ctx = DistContext()
    model, objective = W.build(data, ctx, model_name, samplers)
    replays = [Replay(data, s, [r[name]["logs"][s] for r in results["ranks"]],
                      groups=(s == "gdns")) for s in samplers]
    if len(replays) == 1:
        objective = SamplerObjective(replays[0], l2=1e-4)
    else:
        objective = AutoSampleObjective(replays, samplers, tau=1.0, alpha_lr=0.05, l2=1e-4, seed=3)
    trainer = Trainer(data, model, objective, W.train_config(epochs, batch))
    trainer.train_until(epochs)
    return model, objective, trainer


@pytest.mark.parametrize("name", list(W.SCENARIOS))
def test_gradients_averaged_as_one_process(results, data, name):
    """Same global batches, same negatives: the 2-rank weights (and alpha logits) are one
    process's, the per-epoch losses too; the two replicas are bit-identical."""
    ranks = [r[name] for r in results["ranks"]]
    for key, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][key]), key
    model, objective, trainer = _replayed(results, data, name)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"{name} {key}: {m}")
    if "logits" in ranks[0]:
        torch.testing.assert_close(ranks[0]["logits"], objective.logits.detach(), rtol=1e-4,
                                   atol=1e-6)
    assert len(ranks[0]["log"]) == len(trainer.log)
    for mine, one in zip(ranks[0]["log"], trainer.log):
        assert mine["loss"] == pytest.approx(one["loss"], rel=1e-5)
        assert mine["valid"] == pytest.approx(one["valid"], rel=1e-4, abs=1e-6)
        assert mine.get("selected") == one.get("selected")     # one Gumbel draw per global step
    if name.endswith("tiny-batches"):   # some steps gave a rank no row at all
        steps = -(-data.train.nnz // 3)
        assert min(len(r[name]["logs"]["rns"]) for r in results["ranks"]) < steps


def test_rows_exchange_equals_dense_all_reduce(results):
    """MF's tables as gathered rows or all-reduced densely: the same training, and the rows
    exchange moved fewer table bytes."""
    rows, dense = (results["ranks"][0][k] for k in ("mf-rns-rows", "mf-rns-dense"))
    assert rows["bytes"]["rows"] > 0 and rows["bytes"]["dense"] == 0
    assert dense["bytes"]["rows"] == 0 and dense["bytes"]["dense"] > 0
    for key, value in rows["model"].items():
        torch.testing.assert_close(value, dense["model"][key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(W.SCENARIOS))
def test_sharded_evaluation_equals_one_process(results, name):
    for rank in results["ranks"]:
        out = rank[name]
        for split in ("valid", "test"):
            assert out[f"sharded_{split}"].keys() == out[f"single_{split}"].keys()
            assert out[f"sharded_{split}"] == pytest.approx(out[f"single_{split}"], rel=1e-12,
                                                            abs=1e-15)
        (users, values), (users1, values1) = out["per_user"], out["per_user_single"]
        assert (users == users1).all() and values == pytest.approx(values1, rel=1e-12)


def test_sampled_evaluation_sharded_equals_one_process(results):
    """The leave-one-out protocol (held-out item among fixed negatives) under 2 ranks: each rank
    ranks the users it owns and the sums are all-reduced, so every rank reports one process's
    NDCG@K / Recall@K (not its own half's), during training and after it; the per-user values
    gathered in user order are one process's too."""
    for rank in results["ranks"]:
        out = rank["sampled"]
        for split in ("valid", "test"):
            single = out[f"single_{split}"]
            assert set(single) == {"ndcg@1", "ndcg@3", "recall@1", "recall@3"}
            assert 0.0 < single["recall@3"] < 1.0       # a trained model, not a constant
            assert out[f"sharded_{split}"] == pytest.approx(single, rel=1e-12, abs=1e-15)
        assert out["log"][-1]["valid"] == pytest.approx(out["single_valid"], rel=1e-12)
        (users, values), (users1, values1) = out["per_user"], out["per_user_single"]
        assert len(users) == len(users1) > 0
        assert (users == users1).all() and values == pytest.approx(values1, rel=1e-12)
    # the ranks report the same numbers
    a, b = (r["sampled"] for r in results["ranks"])
    assert a["sharded_test"] == b["sharded_test"]


def test_sampled_evaluation_of_an_owned_half_differs(results, folder):
    """Guard for the test above: one rank's own users alone give other numbers than the
    all-reduced means (so equality with one process is not a coincidence of the data)."""
    from autosample_ext.data import load as load_data
    from autosample_ext.eval import evaluate_sampled
    from autosample_ext.models import build_model

    loo = load_data(folder / "tiny.txt", split="loo",
                    num_negatives=W.SAMPLED_NEGATIVES, seed=1)
    model = build_model("mf", loo, dim=W.DIM, seed=5)
    model.load_state_dict(results["ranks"][0]["sampled"]["model"])
    u, i = (t.detach() for t in model.propagate())
    whole = evaluate_sampled(u, i, loo, (1, 3), split="test").to_dict()
    half = evaluate_sampled(u, i, loo, (1, 3), split="test",
                            users=torch.arange(0, loo.num_users, 2)).to_dict()
    assert whole == pytest.approx(results["ranks"][0]["sampled"]["sharded_test"], rel=1e-12)
    assert half != pytest.approx(whole, rel=1e-6)


def test_stop_on_one_rank_checkpoints_both_and_resume_is_identical(results):
    """Rank 1 alone asked to stop at step 20: both ranks stopped at the same step boundary (the
    request travels with the gradients); fresh objects resumed from rank 0's checkpoint (with
    rank 1's SRNS shard in it) end bit-identical to the uninterrupted run."""
    for rank in results["ranks"]:
        out = rank["resume"]
        stops = out["stopped_at_all"]
        assert stops[0] is not None and stops[0] == stops[1]
        assert stops[0][0] == 1 and 0 < stops[0][1] < 15       # mid-epoch 2
        assert out["resumed"] and out["resumed_at"] == tuple(stops[0])
        for key, value in out["ref_model"].items():
            assert torch.equal(value, out["model"][key]), key
        for key, value in out["ref_sampler"]["sampler"].items():
            assert torch.equal(value, out["sampler"]["sampler"][key]), key
        ref, got = out["ref_result"], out["result"]
        assert (ref["valid"], ref["test"], ref["best_epoch"]) == \
            (got["valid"], got["test"], got["best_epoch"])
    # each rank holds its own users' SRNS memory: the shards differ
    a, b = (r["resume"]["sampler"]["sampler"]["memory"] for r in results["ranks"])
    assert not torch.equal(a, b)


# ---------------------------------------------------------------------------------------------
# the command line under torchrun
# ---------------------------------------------------------------------------------------------

def _results_of(run_dir: Path) -> dict[str, Any]:
    """metrics.json without the timings (``*seconds``)."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if not k.endswith("seconds")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    metrics = json.loads((run_dir / "metrics.json").read_text())
    return strip({k: metrics[k] for k in ("runs", "aggregate", "autosample", "sh", "grid")})


def test_cli_killed_rank_stops_the_job_and_resume_continues(results, folder, capsys):
    """torchrun, 2 processes, --compare (AutoSample + retrain, SH, grid, budget singles): rank 1
    is killed (SIGKILL) mid-run (in the race, after its first rung); the job stops promptly
    naming rank 1; --resume with one process is refused; --resume with 2 processes ends exactly
    as the uninterrupted run."""
    ref = folder / "ref"
    saved = json.loads((ref / "config.json").read_text())
    assert saved["world_size"] == 2 and saved["launch"]["nproc_per_node"] == 2

    status, out, seconds = torchrun([str(WORKER), "cli-kill", str(folder)], folder)
    assert status != 0, out
    assert seconds < LAUNCH_TIMEOUT
    assert re.search(r"rank\s*:\s*1 \(local_rank: 1\)", out), out          # torchrun's report
    assert re.search(r"rank 0 of 2: .* failed .*rank 1 \(pid \d+\) is no longer running", out), out
    killed = folder / "killed"
    assert (killed / "config.json").is_file() and any((killed / "checkpoints").iterdir())

    assert main(["--resume", "--out", str(killed)]) == 1
    err = capsys.readouterr().err
    assert "trained by 2 processes" in err and "torchrun --nproc_per_node=2" in err

    # the command line itself, as torchrun starts it (its environment, without the launcher)
    runs = spawn(["-m", "autosample_ext.train", "--resume", "--out", str(killed), "--no-progress"])
    assert [status for status, _ in runs] == [0, 0], runs[0][1][-3000:] + runs[1][1][-3000:]
    assert "outputs in" in runs[0][1] and "outputs in" not in runs[1][1]   # rank 0 prints
    assert _results_of(killed) == _results_of(ref)
