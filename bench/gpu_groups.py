"""Group runner shared by the GPU benchmark files (bench/bench_gpu*.py), driven by gpu_check.sh.

A benchmark file defines ``GROUPS: dict[str, Callable[[], list[Case]]]`` (each builder makes
its inputs, checks correctness, and returns the cases to time) and ends with
``if __name__ == "__main__": run_main(GROUPS)``. Then::

    python -u bench/bench_gpu_x.py --out-dir DIR [--groups a b] [--skip-done] [--list]

runs the groups one by one and writes ``DIR/<group>.json`` as soon as each finishes. A group
that raises is recorded as ``DIR/<group>.failed.json`` (with the traceback) and skipped. Before a
group starts, ``DIR/<group>.running`` is written: when the process dies inside a group (a hang
killed by the caller's timeout, a fatal CUDA error), a rerun with ``--skip-done`` records that
group as failed ("died") and goes on with the next. Roofs (``DIR/roofs.json``, from the
``roofs`` group of bench_gpu.py) turn times into fractions: achieved bytes/s over the measured
device-to-device copy rate, FLOP/s over the measured FMA rate.

Every time is reported twice: CUDA events around each call (median of ``--reps``), and
kernel-only device time from torch.profiler (sum of the kernels' device time per call).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

log = logging.getLogger("gpu_groups")


def _torch():
    """torch, imported on first use (a benchmark file without GPU work need not load it)."""
    import torch

    return torch


def _cuda() -> bool:
    import sys

    return "torch" in sys.modules and _torch().cuda.is_available()


@dataclass
class Case:
    """One timed callable of a group. bytes / flops: the least the operation must move / do."""

    group: str
    name: str
    fn: Callable[[], object]
    bytes: float | None = None
    flops: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _sync() -> None:
    if _cuda():
        _torch().cuda.synchronize()


def time_events(fn: Callable[[], object], warmup: int, reps: int) -> list[float]:
    """Seconds per call, CUDA events around each call (host timer when no GPU: self-test)."""
    for _ in range(warmup):
        fn()
    _sync()
    out = []
    for _ in range(reps):
        if _cuda():
            torch = _torch()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return out


def time_kernels(fn: Callable[[], object], reps: int) -> float | None:
    """Kernel-only device seconds per call (torch.profiler), None when unavailable."""
    if not _cuda():
        return None
    from torch.profiler import ProfilerActivity, profile

    _sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn()
        _sync()
    # Sum of every row's self device time = each kernel once (the table's "Self CUDA time total").
    total_us = 0.0
    for row in prof.key_averages():
        total_us += float(getattr(row, "self_device_time_total", None)
                          or getattr(row, "self_cuda_time_total", 0.0) or 0.0)
    return total_us / 1e6 / reps if total_us > 0 else None


def load_roofs(out_dir: Path) -> dict[str, float]:
    path = out_dir / "roofs.json"
    if not path.exists():
        return {}
    return {r["name"]: r["value"] for r in json.loads(path.read_text()).get("results", []) if "value" in r}


def annotate(case: Case, seconds: float, roofs: dict[str, float]) -> dict[str, object]:
    """Achieved rates and their fractions of the measured roofs."""
    info: dict[str, object] = dict(case.extra)
    if case.bytes:
        bw = case.bytes / seconds
        info["GBps"] = round(bw / 1e9, 1)
        if roofs.get("d2d_copy_Bps"):
            info["fraction_of_d2d_copy"] = round(bw / roofs["d2d_copy_Bps"], 4)
    if case.flops:
        rate = case.flops / seconds
        info["TFLOPs"] = round(rate / 1e12, 3)
        if roofs.get("fp32_fma_FLOPs"):
            info["fraction_of_fp32_fma"] = round(rate / roofs["fp32_fma_FLOPs"], 4)
    return info


def run_group(name: str, builder: Callable[[], list[Case]], roofs: dict[str, float], warmup: int,
              reps: int) -> dict[str, object]:
    t0 = time.perf_counter()
    cases = builder()
    rows = []
    for case in cases:
        times = time_events(case.fn, warmup, reps)
        med = statistics.median(times)
        kernel = time_kernels(case.fn, max(3, reps // 2))
        row: dict[str, object] = {
            "group": case.group, "name": case.name, "median_s": med, "min_s": min(times),
            "rounds": len(times), "kernel_s": kernel, **annotate(case, med, roofs)}
        if kernel:
            row["kernel"] = annotate(case, kernel, roofs)
        rows.append(row)
        log.info("%-30s %-26s events %10.1f us  kernels %s  %s", case.group, case.name, med * 1e6,
                 f"{kernel * 1e6:10.1f} us" if kernel else "         n/a",
                 {k: v for k, v in row.items() if k.startswith(("GBps", "TFLOPs", "fraction"))})
    base = {r["name"]: r["median_s"] for r in rows}
    speedups = {n: round(t / base["autosample"], 3) for n, t in base.items()
                if "autosample" in base and n != "autosample"}
    return {"group": name, "seconds": round(time.perf_counter() - t0, 1), "results": rows,
            "speedup_of_autosample_over": speedups}


def device_facts() -> dict[str, object]:
    import platform

    facts: dict[str, object] = {"python": platform.python_version()}
    if not _cuda():
        return facts
    torch = _torch()
    facts.update({"torch": torch.__version__, "cuda": torch.version.cuda})
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        facts.update({"gpu": p.name, "sm_count": p.multi_processor_count,
                      "l2_bytes": getattr(p, "L2_cache_size", None), "memory_bytes": p.total_memory})
    return facts


def run_main(groups: dict[str, Callable[[], list[Case]]], argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, help="results folder (one JSON per group)")
    parser.add_argument("--groups", nargs="*", default=None, help="subset of the groups, in order")
    parser.add_argument("--skip-done", action="store_true",
                        help="skip groups with a result; record a group left '.running' as failed")
    parser.add_argument("--list", action="store_true", help="print the group names and exit")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(groups))
        return 0
    if args.out_dir is None:
        parser.error("--out-dir is required")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    names = args.groups if args.groups else list(groups)
    unknown = [n for n in names if n not in groups]
    if unknown:
        parser.error(f"unknown groups {unknown}; known: {list(groups)}")
    failures = 0
    for name in names:
        done, failed, running = out / f"{name}.json", out / f"{name}.failed.json", out / f"{name}.running"
        if args.skip_done and (done.exists() or failed.exists()):
            continue
        if running.exists():  # an earlier process died inside this group
            failed.write_text(json.dumps({"group": name, "status": "died",
                                          "error": "the process running this group died or was killed "
                                                   "(timeout, fatal CUDA error); see the log"}, indent=2))
            running.unlink()
            failures += 1
            log.info("%s: recorded as failed (an earlier run died in it)", name)
            continue
        running.write_text(str(time.time()))
        try:
            doc = run_group(name, groups[name], load_roofs(out), args.warmup, args.reps)
            doc.update({"status": "ok", **device_facts()})
            tmp = done.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, indent=2, default=_json_default))
            tmp.replace(done)
            log.info("%s: done in %.1f s -> %s", name, doc["seconds"], done)
        except Exception as exc:  # recorded and skipped; the other groups still run
            failures += 1
            failed.write_text(json.dumps({"group": name, "status": "failed", "error": repr(exc),
                                          "traceback": traceback.format_exc()}, indent=2))
            log.error("%s: FAILED (%r), recorded in %s", name, exc, failed)
            if _cuda():
                try:
                    _torch().cuda.synchronize()
                except Exception:  # a sticky CUDA error: the rest of this process is unusable
                    log.error("CUDA context unusable after %s; stopping this file", name)
                    running.unlink(missing_ok=True)
                    return 3
        running.unlink(missing_ok=True)
    return 1 if failures else 0


def _json_default(value: object) -> object:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return str(value)
