"""The distributed pieces that need no launch (distributed/context.py, launch.py, reducer.py,
failures.py, samplers' user shards): one process, fast. The 2-process runs are in
test_distributed.py. Also the trainer's once-per-epoch check of asynchronous op errors."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from autosample_ext.data import load
from autosample_ext.distributed.context import DistContext
from autosample_ext.distributed.launch import check_world_size
from autosample_ext.distributed.reducer import GradientReducer
from autosample_ext.samplers import UserShard, build_sampler
from autosample_ext.training import Trainer
from faultdata import skewed_lines

import dist_worker as W

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch.distributed is not available")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist-local") / "tiny.txt"
    skewed_lines(path, users=120, items=60, per_user=10)
    return load(path, split="3:1:1")



def test_user_shard_partitions_users_and_rows():
    users = torch.arange(11)
    shards = [UserShard(r, 3) for r in range(3)]
    owned = torch.stack([s.owns(users) for s in shards])
    assert owned.sum(0).eq(1).all()                       # every user exactly once
    for s in shards:
        mine = users[s.owns(users)]
        assert s.rows(mine).tolist() == list(range(s.count(11)))   # dense rows 0..count-1
    assert UserShard().rows(users) is users
    with pytest.raises(ValueError, match="belongs to rank 1"):
        shards[0].check(torch.tensor([3, 4]), "gdns")
    with pytest.raises(ValueError, match="rank"):
        UserShard(2, 2)


def test_sampler_streams_keyed_by_rank(data):
    """Rank 0 draws the single process's stream; another rank its own; per-user state only for
    the rank's users."""
    users = torch.tensor([0, 2, 4, 6])
    single = build_sampler("rns", data, seed=1)
    rank0 = build_sampler("rns", data, seed=1, shard=UserShard(0, 2))
    rank1 = build_sampler("rns", data, seed=1, shard=UserShard(1, 2))
    assert single.stream(7) == rank0.stream(7) != rank1.stream(7)
    gdns = build_sampler("gdns", data, seed=1, shard=UserShard(1, 2))
    assert gdns.table.g.shape == (data.num_users // 2, data.num_items)   # dense rows of its users
    srns = build_sampler("srns", data, seed=1, shard=UserShard(1, 2))
    assert srns.memory.shape[0] == data.num_users // 2 and bool((srns.memory >= 0).all())
    with pytest.raises(ValueError, match="belongs to rank 0"):
        gdns.select(users, 0, 1)


def test_world_size_mismatch_message():
    check_world_size(2, 2, "run")
    with pytest.raises(ValueError, match=r"trained by 2 processes.*this job has 1.*"
                                         r"torchrun --nproc_per_node=2"):
        check_world_size(2, 1, "run")


def test_one_process_context_is_transparent(data):
    ctx = DistContext()
    assert not ctx.distributed and ctx.on_main(lambda: 5, "x") == 5
    assert ctx.everywhere(lambda: 6, "x") == 6 and ctx.sum_floats([1.5], "x") == [1.5]
    assert ctx.all_gather_object("a") == ["a"] and ctx.broadcast_object(3) == 3
    model, objective = W.build(data, ctx, "mf", ("rns",))
    assert Trainer(data, model, objective, W.train_config()).reducer is None


def test_gradient_reducer_one_process_is_not_built(data):
    """The reducer only exists in a distributed run; its rows rule is the documented one."""
    model, objective = W.build(data, DistContext(), "mf", ("rns",))
    fake = DistContext(rank=0, world_size=2)
    reducer = GradientReducer(fake, list(model.parameters()), [model.user_embedding.weight])
    assert reducer.row_used == [True, False]


def test_failure_report_names_failed_and_gone_ranks(monkeypatch):
    """What a rank whose collective failed says about the others: a recorded error, or a pid of
    this host that is no longer running (a SIGKILLed rank records nothing)."""
    from autosample_ext.distributed import failures

    store = torch.distributed.HashStore()
    monkeypatch.setattr(failures, "_store", lambda: store)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    failures.register(0)
    store.set(f"{failures.PREFIX}/proc/1", f"{socket.gethostname()} {gone.pid}")
    failures.report(2, "ValueError: rank 2's own error")
    store.set(f"{failures.PREFIX}/proc/3", f"{socket.gethostname()} {os.getpid()}")  # alive
    report = failures.peer_report(0, 4, wait_s=0.2)
    assert f"rank 1 (pid {gone.pid}) is no longer running" in report
    assert "rank 2 failed: ValueError: rank 2's own error" in report
    assert "rank 3" not in report
    assert "rank 0" not in failures.peer_report(3, 4, wait_s=0.0)   # registered, alive


def test_trainer_raises_asynchronous_op_errors_at_each_epoch_end(data, monkeypatch):
    """CUDA ops report bad values asynchronously (ops.check_errors); the trainer checks once per
    epoch, where it synchronises anyway, so an error of the epoch's last op is never lost."""
    from autosample_ext import ops
    from autosample_ext.training import trainer as trainer_module

    calls = []
    monkeypatch.setattr(ops, "check_errors", lambda: calls.append(1))
    model, objective = W.build(data, DistContext(), "mf", ("rns",))
    Trainer(data, model, objective, W.train_config(2)).fit()
    assert trainer_module.ops is ops and len(calls) == 2

    def pending() -> None:
        raise RuntimeError("autosample::score_topk: argument 'cand' holds item id 99")

    monkeypatch.setattr(ops, "check_errors", pending)
    model, objective = W.build(data, DistContext(), "mf", ("rns",))
    with pytest.raises(RuntimeError, match="holds item id 99"):
        Trainer(data, model, objective, W.train_config(1)).fit()


def test_one_process_commands_refuse_torchrun(monkeypatch, capsys):
    """The experiments command plans many runs in one process: under torchrun every rank would
    run (and write) all of them, so it stops with exit 2 and says how to launch instead."""
    from autosample_ext.experiments.__main__ import main as experiments_main
    from autosample_ext.distributed.launch import single_process_error

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert single_process_error("x", "advice") is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert single_process_error("x", "advice") == \
        "x: error: this command runs in one process (WORLD_SIZE=2); advice"
    assert experiments_main(["--runs", "unused"]) == 2
    err = capsys.readouterr().err
    assert "one process (WORLD_SIZE=2)" in err and "-m autosample_ext.train" in err
