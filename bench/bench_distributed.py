"""Training throughput and memory with 1 vs 2 processes (torch.distributed, docs/distributed.md).

Each side is a fresh set of processes training on ml-1m (given split, ~800k training pairs,
batch 2048 global) through the Trainer API, exactly as ``torchrun ... -m autosample_ext.train``
trains (the process side is this file run as a script, ``python bench/bench_distributed.py
worker ...``). Per side and model:

* step time: wall seconds of ``--steps`` optimiser steps after ``--warmup`` steps (rank 0's
  clock; the ranks advance in lock step), as training pairs per second;
* evaluation time: one full-ranking evaluation of the test split (sharded by users over ranks);
* memory: peak RSS (``ru_maxrss``) of every process at the end, and its RSS after the data
  and model were built (before training).

Sides, interleaved A B C C B A: 1 process x 1 thread, 1 process x 2 threads (all the machine's
cores in one process: the fair comparison on 2 cores), 2 processes x 1 thread (gloo). With
``--device cuda`` and at least 2 GPUs the same comparison runs with NCCL, one GPU per process.

Run (CPU):

    PYTHONPATH=. AUTOSAMPLE_DATA_DIR=../shared/data pytest bench/bench_distributed.py -s

or ``python bench/bench_distributed.py run [--device cuda] [--out bench/results/NAME]``. Results
go to ``bench/results/distributed_<device>.json`` and ``.md`` with the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AUTOSAMPLE_DATA_DIR", ROOT.parent / "shared" / "data")) / "ml-1m"
#: model, sampler, warm-up steps, timed steps
CASES: list[tuple[str, str, int, int]] = [
    ("mf", "dns", 10, 60),
    ("mf", "gdns", 5, 30),
    ("lightgcn", "rns", 3, 12),
]
#: (label, processes, threads per process)
SIDES: list[tuple[str, int, int]] = [("1 proc x 1 thread", 1, 1), ("1 proc x 2 threads", 1, 2),
                                     ("2 procs x 1 thread", 2, 1)]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(args: argparse.Namespace) -> None:
    """One process of one side: build, train ``warmup + steps`` steps, evaluate, report."""
    from autosample_ext.data import load
    from autosample_ext.models import build_model
    from autosample_ext.samplers import build_sampler
    from autosample_ext.training import SamplerObjective, TrainConfig, Trainer, TrainingInterrupted
    from autosample_ext.distributed.launch import init_from_env, shutdown
    from autosample_ext.training.evaluate import evaluate_model

    torch.set_num_threads(args.threads)
    dist = init_from_env(timeout_s=600)
    device = dist.bind_device(args.device)
    data = load(DATA, split="given")
    kwargs = {"num_layers": 3} if args.model == "lightgcn" else {}
    model = build_model(args.model, data, dim=64, seed=0, device=device, **kwargs)
    sampler = build_sampler(args.sampler, data, seed=1, device=device, shard=dist.shard)
    trainer = Trainer(data, model, SamplerObjective(sampler, l2=1e-4),
                      TrainConfig(epochs=1, batch_size=2048, progress=False, eval_split="test"),
                      dist=dist)
    rss_built = _rss_mb()
    marks: dict[int, tuple[float, float, float]] = {}

    def on_step(step: int) -> None:
        if device != "cpu":
            torch.cuda.synchronize()
        reducer = trainer.reducer
        marks[step] = (time.perf_counter(), time.process_time(), reducer.seconds if reducer else 0.0)
        if step == args.warmup + args.steps - 1:
            trainer.stop.request("benchmark: enough steps")

    trainer.on_step = on_step
    try:
        trainer.train_batches(0)
    except TrainingInterrupted:
        pass
    first, last = marks[args.warmup - 1], marks[args.warmup + args.steps - 1]
    step_s, cpu_step_s, exchange_s = ((b - a) / args.steps for a, b in zip(first, last))
    t0 = time.perf_counter()
    evaluate_model(model, data, "test", (20,), dist=dist)
    eval_s = time.perf_counter() - t0
    exchange = dict(trainer.reducer.bytes_sent) if trainer.reducer else {}
    report = {"rank": dist.rank, "world": dist.world_size, "threads": args.threads,
              "step_s": step_s, "pairs_per_s": 2048 / step_s, "eval_s": eval_s,
              "cpu_step_s": cpu_step_s, "exchange_step_s": exchange_s,
              "rss_built_mb": rss_built,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "bytes_per_step": {k: v / max(1, trainer.reducer.steps) for k, v in exchange.items()}
              if trainer.reducer else {}}
    print("RESULT " + json.dumps(report), flush=True)
    shutdown(dist)


def exchange_worker(args: argparse.Namespace) -> None:
    """One rank of the exchange micro-benchmark: a ``[users, 64]`` table whose gradient has
    ``rows`` non-zero rows (a step's batch), reduced densely and as rows, interleaved."""
    from autosample_ext.distributed.launch import init_from_env, shutdown
    from autosample_ext.distributed.reducer import GradientReducer

    torch.set_num_threads(1)
    dist = init_from_env(timeout_s=600)
    gen = torch.Generator().manual_seed(dist.rank)
    table = torch.zeros(args.users, 64, requires_grad=True)
    touched = torch.randperm(args.users, generator=gen)[:args.rows]
    grad = torch.zeros(args.users, 64)
    grad[touched] = torch.randn(args.rows, 64, generator=gen)
    out: dict[str, Any] = {"rank": dist.rank, "users": args.users, "touched": args.rows}
    for mode in ("dense", "rows", "rows", "dense"):
        dist.grad_exchange = mode
        reducer = GradientReducer(dist, [table], [table])
        wall = cpu = 0.0
        for i in range(3 + args.steps):
            table.grad = grad.clone()
            dist.barrier()
            c0, t0 = time.process_time(), time.perf_counter()
            reducer.reduce(1, torch.zeros((), dtype=torch.float64), False)
            if i >= 3:
                wall += time.perf_counter() - t0
                cpu += time.process_time() - c0
        runs = out.setdefault(mode, [])
        runs.append({"wall_ms": wall / args.steps * 1e3, "cpu_ms": cpu / args.steps * 1e3,
                     "kb_sent": sum(reducer.bytes_sent.values()) / reducer.steps / 1024})
    print("RESULT " + json.dumps(out), flush=True)
    shutdown(dist)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(model: str, sampler: str, warmup: int, steps: int, procs: int, threads: int,
           device: str = "cpu", cmd: list[str] | None = None) -> list[dict[str, Any]]:
    """One side: ``procs`` processes (torchrun's environment) -> every rank's report."""
    port = str(_free_port())
    cmd = cmd or [sys.executable, str(Path(__file__).resolve()), "worker", "--model", model,
                  "--sampler", sampler, "--warmup", str(warmup), "--steps", str(steps),
                  "--threads", str(threads), "--device", device]
    running = []
    for r in range(procs):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if procs > 1:
            env.update(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(procs),
                       LOCAL_WORLD_SIZE=str(procs), MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        else:
            env.pop("WORLD_SIZE", None)
        running.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    reports = []
    for p in running:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"benchmark worker failed ({p.returncode}):\n{out[-3000:]}")
        reports += [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
    return sorted(reports, key=lambda r: r["rank"])


def run_all(device: str = "cpu", repeats: int = 1) -> dict[str, Any]:
    sides = SIDES if device == "cpu" else [("1 GPU", 1, 1), ("2 GPUs (NCCL)", 2, 1)]
    order = sides + sides[::-1]
    results: dict[str, Any] = {"device": device, "load_before": os.getloadavg(), "cases": {}}
    for model, sampler, warmup, steps in CASES:
        case = f"{model}+{sampler}"
        runs: dict[str, list] = {label: [] for label, _, _ in sides}
        for _ in range(repeats):
            for label, procs, threads in order:
                runs[label].append(launch(model, sampler, warmup, steps, procs, threads, device))
        results["cases"][case] = runs
    results["load_after"] = os.getloadavg()
    return results


def run_exchange(sizes: tuple[tuple[int, int], ...] = ((6040, 1100), (192_403, 2048),
                                                      (1_000_000, 2048)), steps: int = 10
                 ) -> list[dict[str, Any]]:
    """Dense all-reduce vs rows exchange of one table's gradient, 2 processes, per size
    ``(users, touched rows per rank)``: ml-1m's user table, Amazon electronics' (the papers'
    largest), a million users."""
    out = []
    for users, rows in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "exchange", "--users", str(users),
               "--rows", str(rows), "--steps", str(steps)]
        out.append(launch("", "", 0, 0, 2, 1, cmd=cmd)[0])
    return out


def exchange_table(results: list[dict[str, Any]]) -> str:
    lines = ["| table rows | touched rows per rank | dense all-reduce ms (CPU ms) | rows exchange ms "
             "(CPU ms) | KB sent per rank, dense / rows |", "|---|---|---|---|---|"]
    for r in results:
        d, w = (_median([x["wall_ms"] for x in r[m]]) for m in ("dense", "rows"))
        dc, wc = (_median([x["cpu_ms"] for x in r[m]]) for m in ("dense", "rows"))
        lines.append(f"| {r['users']:,} | {r['touched']:,} | {d:.1f} ({dc:.1f}) | {w:.1f} ({wc:.1f}) | "
                     f"{r['dense'][0]['kb_sent']:,.0f} / {r['rows'][0]['kb_sent']:,.0f} |")
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else 0.5 * sum(values[len(values) // 2 - 1:
                                                                             len(values) // 2 + 1])


def table(results: dict[str, Any]) -> str:
    """The table of bench/results/distributed_cpu.md: throughput (median over the interleaved
    runs), ratio to the first side, evaluation time, peak RSS per process."""
    lines = ["| case | side | pairs/s | vs first side | step (ms) | CPU ms/step, all processes |"
             " exchange ms/step (KB sent) | eval (s) | peak RSS per process (MB) |"
             " RSS before training (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case, runs in results["cases"].items():
        base = None
        for label, reps in runs.items():
            rate = _median([rep[0]["pairs_per_s"] for rep in reps])
            step = _median([rep[0]["step_s"] for rep in reps]) * 1e3
            cpu = _median([sum(r["cpu_step_s"] for r in rep) for rep in reps]) * 1e3
            exch = _median([rep[0]["exchange_step_s"] for rep in reps]) * 1e3
            kb = sum(reps[0][0]["bytes_per_step"].values()) / 1024
            ev = _median([rep[0]["eval_s"] for rep in reps])
            peak = [max(r["peak_rss_mb"] for r in (rep[i] for rep in reps)) for i in range(len(reps[0]))]
            built = [max(r["rss_built_mb"] for r in (rep[i] for rep in reps)) for i in range(len(reps[0]))]
            base = base or rate
            lines.append(f"| {case} | {label} | {rate:,.0f} | {rate / base:.2f}x | {step:.1f} | "
                         f"{cpu:.1f} | " + (f"{exch:.1f} ({kb:,.0f})" if kb else "-") + f" | {ev:.2f} | "
                         f"{' / '.join(f'{p:.0f}' for p in peak)} | "
                         f"{' / '.join(f'{b:.0f}' for b in built)} |")
    load = results["load_before"], results["load_after"]
    lines.append(f"\nload average (1/5/15 min) before {tuple(round(x, 2) for x in load[0])}, after "
                 f"{tuple(round(x, 2) for x in load[1])}")
    return "\n".join(lines)


def machine() -> str:
    """One line about where the numbers come from."""
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}; "
            f"machine shared with other jobs (see the load average)")


def _save(results: dict[str, Any], stem: Path, title: str = "1 vs 2 processes on ml-1m",
          text: str | None = None) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    results = {**results, "machine": machine()}
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    body = text if text is not None else table(results)
    stem.with_suffix(".md").write_text(f"# Distributed training: {title}\n\n{machine()}. "
                                       f"Produced by bench/bench_distributed.py.\n\n{body}\n")


@pytest.fixture(scope="module")
def ml1m_present() -> None:
    if not (DATA / "train.txt").is_file():
        pytest.skip(f"ml-1m not found at {DATA} (set AUTOSAMPLE_DATA_DIR)")


def test_throughput_and_memory_cpu(ml1m_present):
    results = run_all("cpu")
    for runs in results["cases"].values():
        two = runs["2 procs x 1 thread"][0]
        assert len(two) == 2 and all(r["world"] == 2 for r in two)
    _save(results, ROOT / "bench" / "results" / "distributed_cpu")
    print("\n" + table(results))


def test_gradient_exchange_rows_vs_dense():
    results = run_exchange()
    for r in results:
        assert r["rows"][0]["kb_sent"] < r["dense"][0]["kb_sent"] or r["users"] < 10_000
    text = exchange_table(results) + f"\n\nload average after: {os.getloadavg()}"
    _save({"results": results}, ROOT / "bench" / "results" / "distributed_exchange_cpu",
          "a table's gradient, dense all-reduce vs rows, 2 processes", text)
    print("\n" + text)


@pytest.mark.cuda
def test_throughput_gpu(ml1m_present):
    import autosample_ext

    if not (torch.cuda.is_available() and autosample_ext.cuda_compiled()):
        pytest.skip("needs a CUDA device and a CUDA build")
    if torch.cuda.device_count() < 2:
        pytest.skip("the 2-process GPU comparison needs 2 GPUs (NCCL: one GPU per process)")
    results = run_all("cuda")
    _save(results, ROOT / "bench" / "results" / "distributed_gpu")
    print("\n" + table(results))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--model", required=True)
    w.add_argument("--sampler", required=True)
    w.add_argument("--warmup", type=int, required=True)
    w.add_argument("--steps", type=int, required=True)
    w.add_argument("--threads", type=int, default=1)
    w.add_argument("--device", default="cpu")
    e = sub.add_parser("exchange")
    e.add_argument("--users", type=int, required=True)
    e.add_argument("--rows", type=int, required=True)
    e.add_argument("--steps", type=int, default=10)
    sub.add_parser("run-exchange")
    r = sub.add_parser("run")
    r.add_argument("--device", default="cpu")
    r.add_argument("--repeats", type=int, default=1)
    r.add_argument("--out", default=None)
    args = p.parse_args()
    if args.what == "worker":
        worker(args)
        return
    if args.what == "exchange":
        exchange_worker(args)
        return
    if args.what == "run-exchange":
        results = run_exchange()
        text = exchange_table(results) + f"\n\nload average after: {os.getloadavg()}"
        _save({"results": results}, ROOT / "bench" / "results" / "distributed_exchange_cpu",
              "a table's gradient, dense all-reduce vs rows, 2 processes", text)
        print(text)
        return
    results = run_all(args.device, args.repeats)
    _save(results, Path(args.out) if args.out else ROOT / "bench" / "results" / f"distributed_{args.device}")
    print(table(results))


if __name__ == "__main__":
    main()
