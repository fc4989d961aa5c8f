"""The process side of tests/distributed/test_distributed.py (not a test module).

Every rank runs ``python tests/dist_worker.py SCENARIO FOLDER [ARGS...]`` with torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), set by the test or by
torchrun itself:

* ``train FOLDER``: every training scenario of :data:`SCENARIOS` on ``FOLDER/tiny.txt``
  through the Trainer API (each rank records its rows and negatives per step), the sharded
  evaluations beside one process's, a stop requested on rank 1 only and the resume from the
  checkpoint, the sampled (leave-one-out) evaluation sharded beside one process's, then the
  CLI reference run ``FOLDER/ref`` (:data:`CLI_ARGS`). Rank 0 saves
  everything to ``FOLDER/results.pt``.
* ``cli-kill FOLDER``: the CLI run ``FOLDER/killed`` with :data:`CLI_ARGS`, rank 1 killed with
  SIGKILL after :data:`KILL_AT_STEP` optimiser steps.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch

from autosample_ext.data import load
from autosample_ext.distributed.context import DistContext
from autosample_ext.distributed.launch import init_from_env
from autosample_ext.models import build_model
from autosample_ext.samplers import build_sampler
from autosample_ext.search.autosample import AutoSampleObjective
from autosample_ext.training import SamplerObjective, TrainConfig, Trainer, TrainingInterrupted
from autosample_ext.training.evaluate import evaluate_model, per_user_metric

#: name -> (model, sampler(s), grad_exchange, batch size, epochs)
SCENARIOS: dict[str, tuple[str, tuple[str, ...], str, int, int]] = {
    "mf-rns-rows": ("mf", ("rns",), "rows", 48, 2),
    "mf-rns-dense": ("mf", ("rns",), "dense", 48, 2),
    "mf-autosample": ("mf", ("rns", "pns"), "auto", 48, 2),
    "lightgcn-dns": ("lightgcn", ("dns",), "auto", 48, 2),
    "mf-gdns-groups": ("mf", ("gdns",), "auto", 48, 2),
    # batches of 3 rows: many steps where one rank owns no row (its share is empty)
    "mf-autosample-tiny-batches": ("mf", ("rns", "pns"), "auto", 3, 1),
}
EPOCHS, BATCH, DIM = 2, 48, 8
#: fixed negatives per held-out item of the sampled-protocol scenario (tiny.txt: 60 items)
SAMPLED_NEGATIVES = 20
KS = (5, 20)
#: the CLI run every mode goes through (AutoSample + retrain, SH, grid, budget singles)
CLI_ARGS = ["--compare", "--search-space", "rns,srns", "--epochs", "2", "--sh-first-rung", "1",
            "--dim", "8", "--batch-size", "64", "--no-progress", "--threads", "1",
            "--dist-timeout", "60"]
#: 12 steps per epoch: search 1-24, retrain 25-48, the race's first rung 49-72, then its survivor(s)
KILL_AT_STEP = 76


def train_config(epochs: int = EPOCHS, batch: int = BATCH) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch, lr=0.01, eval_every=1, patience=0,
                       ks=KS, progress=False, seed=3)


def record(sampler: Any, log: list) -> None:
    """Wrap ``sampler.sample`` / ``sample_groups`` to log what this rank drew per step."""
    sample = sampler.sample

    def sample_and_log(ctx):
        negatives = sample(ctx)
        log.append({"step": ctx.step, "users": ctx.users.clone(), "pos": ctx.pos_items.clone(),
                    "negatives": negatives.items.clone()})
        return negatives

    sampler.sample = sample_and_log
    if hasattr(sampler, "sample_groups"):
        groups = sampler.sample_groups

        def groups_and_log(users, step):
            out = groups(users, step)
            log.append({"step": step, "users": out.users.clone(), "positives": out.positives.clone(),
                        "negatives": out.negatives.clone()})
            return out

        sampler.sample_groups = groups_and_log


def build(data, dist: DistContext, model_name: str, samplers: tuple[str, ...],
          logs: dict[str, list] | None = None):
    model = build_model(model_name, data, dim=DIM, seed=5, **({"num_layers": 2}
                                                              if model_name == "lightgcn" else {}))
    built = [build_sampler(name, data, seed=11, shard=dist.shard) for name in samplers]
    if logs is not None:
        for name, sampler in zip(samplers, built):
            record(sampler, logs.setdefault(name, []))
    if len(built) == 1:
        objective = SamplerObjective(built[0], l2=1e-4)
    else:
        objective = AutoSampleObjective(built, samplers, tau=1.0, alpha_lr=0.05, l2=1e-4, seed=3)
    return model, objective


def scenario(data, dist: DistContext, name: str) -> dict[str, Any]:
    model_name, samplers, exchange, batch, epochs = SCENARIOS[name]
    dist.grad_exchange = exchange
    logs: dict[str, list] = {}
    model, objective = build(data, dist, model_name, samplers, logs)
    trainer = Trainer(data, model, objective, train_config(epochs, batch), dist=dist)
    trainer.train_until(epochs)
    out: dict[str, Any] = {"logs": logs, "model": {k: v.clone() for k, v in model.state_dict().items()},
                           "log": trainer.log, "bytes": dict(trainer.reducer.bytes_sent)}
    if len(samplers) > 1:
        out["logits"] = objective.logits.detach().clone()
    for split in ("valid", "test"):
        out[f"sharded_{split}"] = evaluate_model(model, data, split, KS, dist=dist)
        out[f"single_{split}"] = evaluate_model(model, data, split, KS)
    out["per_user"] = per_user_metric(model, data, "valid", "ndcg@20", dist=dist)
    out["per_user_single"] = per_user_metric(model, data, "valid", "ndcg@20")
    return out


def interrupted_and_resumed(data, dist: DistContext, folder: Path) -> dict[str, Any]:
    """MF + SRNS (user-sharded state): uninterrupted, then stopped by a request on rank 1 alone
    in epoch 2 and resumed by fresh objects from the checkpoint."""
    dist.grad_exchange = "auto"
    out: dict[str, Any] = {}
    model, objective = build(data, dist, "mf", ("srns",))
    ref = Trainer(data, model, objective, train_config(3), dist=dist,
                  checkpoint_path=folder / "ref.pt")
    ref.fit()
    out["ref_model"] = {k: v.clone() for k, v in model.state_dict().items()}
    out["ref_sampler"] = objective.state_dict()
    out["ref_result"] = ref.result.to_plain()

    def on_step(step: int) -> None:
        if dist.rank == 1 and step == 20:
            t.stop.request("test: stop on rank 1 only")

    model, objective = build(data, dist, "mf", ("srns",))
    t = Trainer(data, model, objective, train_config(3), dist=dist, on_step=on_step,
                checkpoint_path=folder / "int.pt")
    try:
        t.fit()
        out["stopped_at"] = None
    except TrainingInterrupted:
        out["stopped_at"] = (t.epoch, t.batch)
    out["stopped_at_all"] = dist.all_gather_object(out["stopped_at"])
    model, objective = build(data, dist, "mf", ("srns",))
    resumed = Trainer(data, model, objective, train_config(3), dist=dist,
                      checkpoint_path=folder / "int.pt")
    out["resumed"] = resumed.resume()
    out["resumed_at"] = (resumed.epoch, resumed.batch)
    resumed.fit()
    out["model"] = {k: v.clone() for k, v in model.state_dict().items()}
    out["sampler"] = objective.state_dict()
    out["result"] = resumed.result.to_plain()
    return out


def sampled(folder: Path, dist: DistContext) -> dict[str, Any]:
    """The sampled (leave-one-out) protocol under 2 ranks: MF trained 2 epochs with
    ``eval_protocol="sampled"`` (the Trainer's validation sharded), then the final model's valid
    and test metrics and per-user NDCG@3 sharded beside one process's."""
    data = load(folder / "tiny.txt", split="loo", num_negatives=SAMPLED_NEGATIVES, seed=1)
    dist.grad_exchange = "auto"
    model, objective = build(data, dist, "mf", ("rns",))
    config = TrainConfig(epochs=2, batch_size=BATCH, lr=0.05, eval_every=1, patience=0,
                         ks=(1, 3), metric="ndcg@3", eval_protocol="sampled", progress=False,
                         seed=3)
    trainer = Trainer(data, model, objective, config, dist=dist)
    trainer.train_until(2)
    out: dict[str, Any] = {"log": trainer.log,
                           "model": {k: v.clone() for k, v in model.state_dict().items()}}
    for split in ("valid", "test"):
        out[f"sharded_{split}"] = evaluate_model(model, data, split, (1, 3), protocol="sampled",
                                                 dist=dist)
        out[f"single_{split}"] = evaluate_model(model, data, split, (1, 3), protocol="sampled")
    out["per_user"] = per_user_metric(model, data, "valid", "ndcg@3", dist=dist,
                                      protocol="sampled")
    out["per_user_single"] = per_user_metric(model, data, "valid", "ndcg@3", protocol="sampled")
    return out


def train(folder: Path) -> None:
    from autosample_ext.train import main

    dist = init_from_env(timeout_s=60)
    data = load(folder / "tiny.txt", split="3:1:1")
    results: dict[str, Any] = {"world_size": dist.world_size}
    for name in SCENARIOS:
        results[name] = scenario(data, dist, name)
    results["resume"] = interrupted_and_resumed(data, dist, folder)
    results["sampled"] = sampled(folder, dist)
    gathered = dist.gather_object(results)
    status = main(["--data", str(folder / "tiny.txt"), "--out", str(folder / "ref"), *CLI_ARGS])
    if dist.is_main:
        torch.save({"ranks": gathered, "cli_status": status}, folder / "results.pt")


def cli_kill(folder: Path) -> int:
    from autosample_ext.train import main

    steps = [0]

    def on_step(tag: str, step: int) -> None:
        steps[0] += 1
        if os.environ.get("RANK") == "1" and steps[0] == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)

    return main(["--data", str(folder / "tiny.txt"), "--out", str(folder / "killed"), *CLI_ARGS],
                on_step=on_step)


if __name__ == "__main__":
    torch.set_num_threads(1)
    what, where = sys.argv[1], Path(sys.argv[2])
    if what == "train":
        train(where)
    elif what == "cli-kill":
        sys.exit(cli_kill(where))
    else:
        raise SystemExit(f"dist_worker: unknown scenario {what!r}")
