"""Every method of the GDNS comparison trained as the paper trained its baselines: the learning
rate chosen on validation over the paper's grid, then more seeds at the chosen rate.

    python -m autosample_ext.studies.gdns_lr_sweep --data ../shared/data/ml-1m --root runs/gdns-ml1m --jobs 2

Stages (each a set of ordinary, resumable ``python -m autosample_ext.train --protocol gdns``
runs; a finished run is skipped, an interrupted one continued with ``--resume``):

1. ``sweep``: each method at every lr of ``--lrs`` (the paper's {0.01, 0.03, 0.09, 0.3, 1.0};
   methods and rates run in the order given), seed 0, in ``ROOT/sweep/<method>-lr<lr>``. A run that diverges
   (exit status 3) or collapses (its loss at ln 2 for 10 epochs, see ``COLLAPSE_EPOCHS``) is out. The lr with the best validation NDCG@3 (the protocol's selection
   metric) is the method's choice, written to ``ROOT/chosen_lr.json`` with every lr's value
   (a run still going counts with its best so far, flagged; while it leads, no choice).
2. ``final``: each method at its chosen lr with the other seeds (``--seeds``, default 1,2) in
   ``ROOT/final/<method>``, started as soon as the method's sweep is complete; its seed 0 is the
   sweep's run at that lr (the same settings).
3. ``own``: SRNS with its own paper's setting (Adam, lr 1e-3, L2 0.01), all seeds, in
   ``ROOT/own/srns-adam``.

Methods: ``gdns`` (the paper's loop, exact gain), ``uniform-group`` (the control: GDNS's loop and
group-wise loss with uniform negatives, ``gdns.selection=uniform``), ``rns``, ``dns``, ``srns``
(BPR, batches of training pairs). The table: ``python -m autosample_ext.studies.gdns_table --root ROOT``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PAPER_LRS = (0.01, 0.03, 0.09, 0.3, 1.0)
# GDNS's loop has short epochs (6 steps on ml-1m) and the dense gain table makes a checkpoint
# 0.1-0.2 GB: a checkpoint every 10 epochs (a resumed run repeats at most 10 epochs, exactly).
_EVERY_10 = ["--checkpoint-every", "10"]
METHODS: dict[str, list[str]] = {
    "gdns": ["--sampler", "gdns", *_EVERY_10],
    "uniform-group": ["--sampler", "gdns", "--sampler-opt", "gdns.selection=uniform", *_EVERY_10],
    "rns": ["--sampler", "rns"],
    "dns": ["--sampler", "dns"],
    "srns": ["--sampler", "srns"],
}
#: SRNS's own paper's optimiser and regularisation
SRNS_OWN = ["--sampler", "srns", "--optimizer", "adam", "--lr", "0.001", "--l2", "0.01"]
EXIT_DIVERGED = 3


@dataclass
class Job:
    name: str
    out: Path
    args: list[str]
    seeds: str


def sweep_dir(root: Path, method: str, lr: float) -> Path:
    return root / "sweep" / f"{method}-lr{lr:g}"


def final_dir(root: Path, method: str) -> Path:
    return root / "final" / method


def own_dir(root: Path) -> Path:
    return root / "own" / "srns-adam"


def seed_records(run_dir: Path) -> list[dict[str, Any]]:
    """One record per ``checkpoints/seed<S>-<sampler>.pt``: done, epochs run, best validation
    value and epoch, test metrics at it (when done), the log."""
    out = []
    for path in sorted((run_dir / "checkpoints").glob("seed*-*.pt")):
        seed, _, sampler = path.stem.removeprefix("seed").partition("-")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        result = ckpt.get("result") or {}
        weight = (ckpt.get("model") or {}).get("weight")  # GMF's output vector w (last epoch)
        out.append({"seed": int(seed), "sampler": sampler, "path": path, "done": bool(ckpt.get("done")),
                    "epochs": int(ckpt.get("epoch", 0)), "best_epoch": ckpt.get("best_epoch"),
                    "best_valid": ckpt.get("best_value"), "test": result.get("test"),
                    "w_norm": float(weight.norm()) if weight is not None else None,
                    "log": list(ckpt.get("log") or [])})
    return out


def diverged(run_dir: Path) -> bool:
    log = run_dir / "log.jsonl"
    return log.is_file() and any(json.loads(line).get("diverged") for line in
                                 log.read_text().splitlines() if line.strip())


#: A BPR run whose mean loss stays within COLLAPSE_TOL of ln 2 for COLLAPSE_EPOCHS epochs has
#: collapsed: GMF's output vector w went to ~0, every score is ~0 (docs/protocols.md, gdns). Its
#: validation metric can still creep up by noise (DNS/SRNS at lr 0.09: 0.05 -> 0.067 over 30
#: epochs), which keeps resetting the patience; the sweep stops such a run and counts it out.
COLLAPSE_TOL, COLLAPSE_EPOCHS = 1e-3, 10
COLLAPSED = "collapsed.json"


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    log = run_dir / "log.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []


def collapsed(run_dir: Path) -> dict[str, Any] | None:
    """The evidence when the run's last COLLAPSE_EPOCHS epochs all had a loss within
    COLLAPSE_TOL of ln 2 (None otherwise); recorded once in ``collapsed.json``."""
    marker = run_dir / COLLAPSED
    if marker.is_file():
        return json.loads(marker.read_text())
    tail = [e for e in read_log(run_dir) if "loss" in e][-COLLAPSE_EPOCHS:]
    if len(tail) < COLLAPSE_EPOCHS or any(abs(e["loss"] - math.log(2)) >= COLLAPSE_TOL for e in tail):
        return None
    return {"epochs": [e["epoch"] for e in tail], "losses": [e["loss"] for e in tail],
            "valid_by_epoch": [e["valid"]["ndcg@3"] for e in tail if "valid" in e]}


def finished(run_dir: Path) -> bool:
    return ((run_dir / "metrics.json").is_file() or diverged(run_dir)
            or (run_dir / COLLAPSED).is_file())


def command(job: Job, data: str, threads: int) -> list[str]:
    cmd = [sys.executable, "-m", "autosample_ext.train", "--protocol", "gdns", "--data", data,
           *job.args, "--seeds", job.seeds, "--threads", str(threads), "--no-progress",
           "--out", str(job.out)]
    if (job.out / "config.json").is_file():
        cmd.append("--resume")
    return cmd


def run_jobs(jobs: list[Job], data: str, parallel: int, threads: int, logs: Path,
             more: Any = None) -> dict[str, int]:
    """Run the unfinished jobs, ``parallel`` at a time (niced); returns each job's exit status.
    ``more()``, called after every job that ends, returns jobs to run next (ahead of the rest),
    e.g. a method's final runs as soon as its sweep is complete."""
    logs.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not finished(j.out)]
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    status: dict[str, int] = {}
    queued = {j.name for j in todo}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    while todo or running:
        while todo and len(running) < parallel:
            job = todo.pop(0)
            fh = open(logs / f"{job.name}.log", "a")  # noqa: SIM115 (closed when the job ends)
            cmd = command(job, data, threads)
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            running[job.name] = (subprocess.Popen(["nice", "-n", "10", *cmd], stdout=fh,
                                                  stderr=subprocess.STDOUT, env=env), fh)
            print(f"{time.strftime('%H:%M:%S')} started {job.name}", flush=True)
        time.sleep(5)
        for job in jobs:  # a collapsed sweep run: stopped (it checkpoints) and counted out
            if job.name in running and job.seeds == "0" and not (job.out / COLLAPSED).is_file():
                evidence = collapsed(job.out)
                if evidence is not None:
                    (job.out / COLLAPSED).write_text(json.dumps(evidence) + "\n")
                    running[job.name][0].send_signal(signal.SIGTERM)
                    print(f"{time.strftime('%H:%M:%S')} {job.name}: collapsed, stopped", flush=True)
        for name, (proc, fh) in list(running.items()):
            if proc.poll() is not None:
                fh.close()
                status[name] = proc.returncode
                del running[name]
                print(f"{time.strftime('%H:%M:%S')} {name}: exit {proc.returncode}", flush=True)
                extra = [j for j in (more() if more else []) if j.name not in queued
                         and not finished(j.out)]
                queued |= {j.name for j in extra}
                todo = extra + todo
    return status


def choose(root: Path, methods: list[str], lrs: list[float]) -> dict[str, Any]:
    """The lr with the best validation NDCG@3 of each method's seed-0 sweep (diverged runs are
    out; a tie goes to the smaller lr). A run not finished yet counts with its best so far and
    is flagged; the choice is None ("pending") while such a run leads."""
    chosen: dict[str, Any] = {}
    for method in methods:
        values: dict[str, Any] = {}
        for lr in lrs:
            run = sweep_dir(root, method, lr)
            recs = [r for r in seed_records(run) if r["seed"] == 0] if run.is_dir() else []
            if diverged(run):
                values[f"{lr:g}"] = {"diverged": True}
            elif collapsed(run) is not None:
                values[f"{lr:g}"] = {"collapsed": True, **collapsed(run),
                                     "best_valid_ndcg@3": recs[0]["best_valid"] if recs else None,
                                     "w_norm": recs[0]["w_norm"] if recs else None}
            elif recs and recs[0]["best_valid"] is not None and recs[0]["epochs"] > 0:
                values[f"{lr:g}"] = {"valid_ndcg@3": recs[0]["best_valid"],
                                     "best_epoch": recs[0]["best_epoch"],
                                     "epochs": recs[0]["epochs"], "finished": recs[0]["done"],
                                     "w_norm": recs[0]["w_norm"]}
        ok = {lr: v["valid_ndcg@3"] for lr, v in values.items() if "valid_ndcg@3" in v}
        best = max(ok, key=lambda lr: (ok[lr], -float(lr))) if ok else None
        pending = best is None or not values[best]["finished"]
        chosen[method] = {"lr": None if pending else float(best), "by_lr": values,
                          "complete": all(v.get("finished") or v.get("diverged") or v.get("collapsed")
                                          for v in values.values()) and len(values) == len(lrs)}
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--lrs", default=",".join(f"{x:g}" for x in PAPER_LRS))
    p.add_argument("--seeds", default="1,2", help="seeds of the final stage (seed 0 is the sweep's)")
    p.add_argument("--stages", default="sweep,final,own")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1)
    ns = p.parse_args(argv)
    methods = [m for m in ns.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"--methods: unknown {unknown}; known: {', '.join(METHODS)}")
    lrs = [float(x) for x in ns.lrs.split(",")]
    stages = ns.stages.split(",")
    root: Path = ns.root
    logs = root / "logs"
    root.mkdir(parents=True, exist_ok=True)

    def finals() -> list[Job]:
        """Write chosen_lr.json; the final runs of every method whose sweep is complete."""
        chosen = choose(root, methods, lrs)
        (root / "chosen_lr.json").write_text(json.dumps(chosen, indent=2) + "\n")
        if "final" not in stages:
            return []
        return [Job(m, final_dir(root, m), [*METHODS[m], "--lr", f"{chosen[m]['lr']:g}"], ns.seeds)
                for m in methods if chosen[m]["complete"] and chosen[m]["lr"] is not None]

    jobs: list[Job] = []
    for m in methods:  # method by method (the order of --methods: put the slowest first), each
        if "sweep" in stages:  # in the order of --lrs
            jobs += [Job(f"{m}-lr{lr:g}", sweep_dir(root, m, lr), [*METHODS[m], "--lr", f"{lr:g}"],
                         "0") for lr in lrs]
        if m == "srns" and "own" in stages:
            jobs.append(Job("srns-adam", own_dir(root), SRNS_OWN, f"0,{ns.seeds}"))
    run_jobs(finals() + jobs, ns.data, ns.jobs, ns.threads, logs, more=finals)
    print(json.dumps({m: c["lr"] for m, c in choose(root, methods, lrs).items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
