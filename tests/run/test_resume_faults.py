"""Faults around the run directory: resume from anywhere (the folder is the run), unusable
checkpoints named and not loaded, one writer per folder, stale temp files; and the Python API's
config conveniences. Exit statuses as in test_bad_inputs.py."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autosample_ext.train import main
from faultdata import FAST, skewed_lines

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# Resume: the folder is the run
# ---------------------------------------------------------------------------------------------

def _finished_run(tmp_path, monkeypatch, capsys, rel_out="runs/r") -> tuple[Path, dict]:
    """A finished single-sampler run started from ``tmp_path/a`` with a relative --out and a
    relative --data."""
    work = tmp_path / "a"
    work.mkdir()
    skewed_lines(work / "tiny.txt")
    monkeypatch.chdir(work)
    assert main(["--data", "tiny.txt", "--sampler", "rns", "--out", rel_out, *FAST]) == 0
    capsys.readouterr()
    run_dir = work / rel_out
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_config_paths_are_relative_to_the_run(tmp_path, monkeypatch, capsys):
    run_dir, _ = _finished_run(tmp_path, monkeypatch, capsys)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["out"] == "."
    assert saved["config"]["data"] == os.path.join("..", "..", "tiny.txt")
    assert saved["data"]["path"] == str(tmp_path / "a" / "tiny.txt")


@pytest.mark.parametrize("how", ["other-cwd", "moved-folder", "moved-folder-and-data"])
def test_resume_continues_the_folder_given(tmp_path, monkeypatch, capsys, how):
    run_dir, metrics = _finished_run(tmp_path, monkeypatch, capsys)
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    extra: list[str] = []
    if how == "other-cwd":
        target = run_dir
    else:
        target = tmp_path / "moved" / "r"
        target.parent.mkdir()
        shutil.move(run_dir, target)
        if how == "moved-folder-and-data":
            # both moved: the saved paths are gone, --data says where the dataset is now
            shutil.move(tmp_path / "a", tmp_path / "a2")
            extra = ["--data", str(tmp_path / "a2" / "tiny.txt")]
            assert main(["--resume", "--out", str(target), "--no-progress"]) == 2
            assert "pass --data PATH with --resume" in capsys.readouterr().err
    # a 0-byte temp file left by a SIGKILL during a checkpoint write is removed on start
    stale = target / "checkpoints" / ".seed0-rns.pt.k1ll3d.tmp"
    stale.write_bytes(b"")
    (target / "metrics.json.tmp").write_text("{")
    assert main(["--resume", "--out", str(target), "--no-progress", *extra]) == 0
    printed = capsys.readouterr().out
    assert str(target) in printed
    again = json.loads((target / "metrics.json").read_text())
    # the finished stage was loaded, not retrained: same metrics and the same recorded time
    assert again["runs"] == metrics["runs"]
    assert not stale.exists() and not (target / "metrics.json.tmp").exists()
    assert list(elsewhere.iterdir()) == []  # nothing written in the working directory


def test_resume_with_another_setting_is_refused(tmp_path, monkeypatch, capsys):
    run_dir, _ = _finished_run(tmp_path, monkeypatch, capsys)
    assert main(["--resume", "--out", str(run_dir), "--dim", "16"]) == 2
    err = capsys.readouterr().err
    assert "--dim 16 differs from the saved run's 8" in err


def test_existing_run_without_resume_is_refused(tmp_path, monkeypatch, capsys):
    run_dir, _ = _finished_run(tmp_path, monkeypatch, capsys)
    assert main(["--data", "tiny.txt", "--sampler", "rns", "--out", str(run_dir), *FAST]) == 1
    assert "already holds a run; use --resume" in capsys.readouterr().err


def test_interrupt_hint_is_absolute(tmp_path, monkeypatch, capsys):
    from autosample_ext import train as T
    from autosample_ext.training import TrainingInterrupted

    def interrupted(cfg, **kwargs):
        raise TrainingInterrupted("seed0/rns: received SIGTERM; checkpoint at epoch 1, step 1")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(T, "run", interrupted)
    assert main(["--sampler", "rns", "--out", "rel/run"]) == 130
    err = capsys.readouterr().err
    assert f"--resume --out {tmp_path / 'rel' / 'run'}" in err


# ---------------------------------------------------------------------------------------------
# Checkpoints that cannot be used
# ---------------------------------------------------------------------------------------------

class Payload:
    """Unpickling this would create a marker file: a refused checkpoint must never run it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _corrupt(kind: str, ckpt: Path, tmp_path: Path) -> list[str]:
    if kind == "truncated":
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 3])
        return [str(ckpt), "truncated or corrupt", "not loaded"]
    if kind == "empty":
        ckpt.write_bytes(b"")
        return [str(ckpt), "truncated or corrupt", "0 bytes"]
    if kind == "pickled":
        marker = tmp_path / "pwned"
        torch.save({"model": Payload(str(marker))}, ckpt)
        return [str(ckpt), "not a checkpoint of this tool", "not loaded"]
    if kind == "other-dim":
        from autosample_ext.training import load_checkpoint, save_checkpoint

        state = load_checkpoint(ckpt)
        state["model"] = {k: torch.zeros(v.shape[0], 16) for k, v in state["model"].items()}
        state["done"], state["result"] = False, None
        save_checkpoint(state, ckpt)
        return [str(ckpt), "'user_embedding.weight' has shape [80, 16]", "needs [80, 8]",
                "--dim", "not loaded"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "empty", "pickled", "other-dim"])
def test_unusable_checkpoint_is_named_and_not_loaded(tmp_path, monkeypatch, capsys, kind):
    run_dir, _ = _finished_run(tmp_path, monkeypatch, capsys)
    ckpt = run_dir / "checkpoints" / "seed0-rns.pt"
    needles = _corrupt(kind, ckpt, tmp_path)
    assert main(["--resume", "--out", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, (needle, err)
    assert "Traceback" not in err and "weights_only=False" not in err
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------------------------
# One writer per run directory
# ---------------------------------------------------------------------------------------------

_HOLDER = """
import sys, time
from autosample_ext.run.lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_second_writer_is_refused_and_a_killed_owner_frees_the_lock(tmp_path, capsys):
    skewed_lines(tmp_path / "tiny.txt")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["--data", str(tmp_path / "tiny.txt"), "--sampler", "rns", "--out", str(run_dir),
                *FAST]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "being written by another process" in err
        assert not (run_dir / "config.json").exists()
        holder.send_signal(signal.SIGKILL)  # the owner dies holding the lock
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert json.loads((run_dir / ".lock").read_text())["pid"] == holder.pid  # left behind
    assert main(argv) == 0
    assert not (run_dir / ".lock").exists()


def test_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    from autosample_ext.run.lock import RunLock, pid_alive

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not pid_alive(dead.pid)
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "host": "h"}))
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(RuntimeError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()  # a second holder, even in the same process
    assert not (tmp_path / ".lock").exists()


# ---------------------------------------------------------------------------------------------
# The Python API
# ---------------------------------------------------------------------------------------------

def test_runconfig_takes_a_str_as_one_sampler():
    from autosample_ext.run import RunConfig

    assert RunConfig(sampler="dns").sampler == ("dns",)
    assert RunConfig(sampler="rns,dns").sampler == ("rns", "dns")
    assert RunConfig(search_space="rns,pns").search_space == ("rns", "pns")
    assert RunConfig(seeds=3).seeds == (3,)
    assert RunConfig(ks=10).ks == (10,)
    with pytest.raises(TypeError, match="sampler"):
        RunConfig(sampler=("dns", 3))


def test_trainer_defaults_are_the_command_line_defaults():
    import dataclasses

    from autosample_ext.run import RunConfig
    from autosample_ext.training import TrainConfig

    run_defaults = RunConfig()
    train_defaults = TrainConfig()
    shared = {f.name for f in dataclasses.fields(TrainConfig)} & {
        f.name for f in dataclasses.fields(RunConfig)}
    assert {"epochs", "lr", "batch_size", "l2", "patience", "eval_every", "metric", "ks"} <= shared
    for name in shared:
        if name == "seed":
            continue
        assert getattr(train_defaults, name) == getattr(run_defaults, name), (
            f"TrainConfig.{name} = {getattr(train_defaults, name)!r} but RunConfig (the CLI) has "
            f"{getattr(run_defaults, name)!r}: align the defaults")
    # and RunConfig hands them to the trainer unchanged
    assert run_defaults.train_config(0) == dataclasses.replace(train_defaults, seed=0)


def test_api_resume_with_another_config_names_the_fields(tmp_path, monkeypatch, capsys):
    from autosample_ext.run import RunConfig, run

    run_dir, _ = _finished_run(tmp_path, monkeypatch, capsys)
    cfg = RunConfig(data=str(tmp_path / "a" / "tiny.txt"), sampler="rns", out=str(run_dir),
                    epochs=1, dim=16, batch_size=512, progress=False)
    with pytest.raises(ValueError, match=r"dim=16 \(saved 8\)"):
        run(cfg, resume=True)
    same = run(dataclasses.replace(cfg, dim=8), resume=True)
    assert same.path == run_dir
    assert same.metrics["runs"] == json.loads((run_dir / "metrics.json").read_text())["runs"]
