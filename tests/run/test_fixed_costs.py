"""Fixed costs of a run: checkpoint cadence (--checkpoint-every; a run killed between
checkpoints resumes from the last one and still ends exactly as an uninterrupted run), what a
run imports, and the CLI's thread / propagation / cadence options."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.run import RunConfig, run
from autosample_ext.training import StopFlag, TrainConfig, TrainingInterrupted, load_checkpoint
from autosample_ext.training import trainer_state as trainer_module


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_users=200, num_items=150, mean_interactions=12.0)
    return default_dataset(seed=4, config=cfg)


BASE = dict(epochs=5, eval_every=2, dim=8, batch_size=128, progress=False, sampler=("rns",),
            model="lightgcn", layers=2, patience=0)


class Boom(RuntimeError):
    pass


def _outcome(summary):
    return [(r.seed, r.method, r.result.best_epoch, r.result.valid, r.result.test,
             [(e["epoch"], e["loss"], e.get("valid")) for e in r.result.log])
            for r in summary.records]


def _log_lines(path):
    strip = lambda e: {k: v for k, v in e.items() if k != "seconds"}  # noqa: E731
    return [strip(json.loads(x)) for x in (path / "log.jsonl").read_text().splitlines()]


def _count_saves(monkeypatch) -> list[int]:
    saved: list[int] = []
    real = trainer_module.save_checkpoint

    def counting(state, path):
        saved.append(int(state["epoch"]))
        return real(state, path)

    monkeypatch.setattr(trainer_module, "save_checkpoint", counting)
    return saved


@pytest.mark.parametrize(("every", "last_ckpt_epoch"), [(None, 4), (3, 3), (0, None)])
def test_crash_between_checkpoints_resumes_to_identical_results(tiny, tmp_path, monkeypatch,
                                                                every, last_ckpt_epoch):
    reference = run(RunConfig(out=str(tmp_path / "ref"), **BASE), data=tiny)
    nb = math.ceil(tiny.train.nnz / BASE["batch_size"])
    at = 4 * nb + nb // 2  # the middle of epoch 5 (0-based epoch 4)

    def crash(tag, step):
        if step == at:
            raise Boom("simulated crash")

    saved = _count_saves(monkeypatch)
    cfg = RunConfig(out=str(tmp_path / "run"), checkpoint_every=every, **BASE)
    with pytest.raises(Boom):
        run(cfg, data=tiny, on_step=crash)
    # Default: after the evaluating epochs 2 and 4; every 3: after epoch 3; 0: none.
    assert saved == {None: [2, 4], 3: [3], 0: []}[every]
    ckpt_path = tmp_path / "run" / "checkpoints" / "seed0-rns.pt"
    if last_ckpt_epoch is None:
        assert not ckpt_path.exists()
    else:
        assert (load_checkpoint(ckpt_path)["epoch"], load_checkpoint(ckpt_path)["batch"]) == (last_ckpt_epoch, 0)
    resumed = run(cfg, data=tiny, resume=True)
    assert _outcome(resumed) == _outcome(reference)
    assert _log_lines(tmp_path / "run") == _log_lines(tmp_path / "ref")


def test_stop_signal_checkpoints_at_the_next_step_whatever_the_cadence(tiny, tmp_path):
    reference = run(RunConfig(out=str(tmp_path / "ref"), **BASE), data=tiny)
    nb = math.ceil(tiny.train.nnz / BASE["batch_size"])
    stop = StopFlag()

    def signal_at(tag, step):
        if step == nb + 1:
            stop.request("test")

    cfg = RunConfig(out=str(tmp_path / "run"), checkpoint_every=0, **BASE)
    with pytest.raises(TrainingInterrupted):
        run(cfg, data=tiny, stop=stop, on_step=signal_at)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "seed0-rns.pt")
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 2)
    assert _outcome(run(cfg, data=tiny, resume=True)) == _outcome(reference)


def test_checkpoint_every_validation():
    with pytest.raises(ValueError, match="checkpoint_every must be >= 0"):
        TrainConfig(checkpoint_every=-1)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 0"):
        RunConfig(checkpoint_every=-2)


def test_training_and_evaluation_import_neither_pandas_nor_scipy():
    """The CLI module, data loading of a `user item ...` folder, a training epoch and a full
    ranking evaluation: pandas and scipy are imported only when a run reports."""
    code = """
import sys
import autosample_ext.train  # the CLI module and everything it imports
from autosample_ext.data import SyntheticConfig, default_dataset
from autosample_ext.models import build_model
from autosample_ext.samplers import build_sampler
from autosample_ext.training import SamplerObjective, TrainConfig, Trainer
data = default_dataset(seed=1, config=SyntheticConfig(num_users=60, num_items=50, mean_interactions=8.0))
model = build_model("lightgcn", data, 8, num_layers=2)
Trainer(data, model, SamplerObjective(build_sampler("rns", data), l2=1e-4),
        TrainConfig(epochs=1, batch_size=256, progress=False, patience=0)).fit()
print(sorted(m for m in ("pandas", "scipy") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cli_options_of_the_fixed_costs(capsys, tmp_path, tiny):
    from autosample_ext.train import (DEFAULT_THREADS, CLIError, build_parser, config_from_args,
                                      main, resume_config)

    assert DEFAULT_THREADS == 1
    for argv, needle in ((["--threads", "0"], "--threads: must be >= 1"),
                         (["--checkpoint-every", "-1"], "--checkpoint-every: must be >= 0")):
        assert main(argv) == 2
        assert needle in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--propagation", "dense"])
    assert exc.value.code == 2 and "--propagation" in capsys.readouterr().err
    # A resumed run may change its checkpoint cadence, not its propagation.
    out = tmp_path / "r"
    run(RunConfig(out=str(out), **{**BASE, "epochs": 1}), data=tiny)
    parser = build_parser()
    ns = parser.parse_args(["--resume", "--out", str(out), "--checkpoint-every", "3"])
    assert resume_config(ns, config_from_args(ns)[1]).checkpoint_every == 3
    ns = parser.parse_args(["--resume", "--out", str(out), "--propagation", "reference"])
    with pytest.raises(CLIError, match="--propagation reference differs"):
        resume_config(ns, config_from_args(ns)[1])
