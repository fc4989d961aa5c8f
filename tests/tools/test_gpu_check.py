"""bench/gpu_check.sh, run here on a machine without a GPU up to the point where one is
needed: its failure handling (a group that raises, one that hangs and is killed by the step
timeout then recorded on the retry, a failing test, missing ncu / compute-sanitizer), the
summary, the copy to $OUT (also when the script is stopped by SIGTERM), and the CUDA toolkit
search behind an nvcc wrapper script (bench/cuda_home.sh)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "gpu_check"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "GPU_CHECK_RESULTS": str(tmp_path / "results"),
        "GPU_CHECK_ALLOW_NO_GPU": "1", "GPU_CHECK_SKIP_BUILD": "1", "CUDA_VISIBLE_DEVICES": "",
        "GPU_CHECK_TESTS": f"--noconftest {FIXTURES / 'fake_cuda_tests.py'}",  # no torch import
        "GPU_CHECK_BENCH": str(FIXTURES / "fake_bench_gpu.py"), "GPU_CHECK_BENCH_ATTEMPT_S": "5",
        "GPU_CHECK_BUDGET_S": "120", "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def status(tmp_path: Path) -> dict[str, str]:
    (run,) = (tmp_path / "results").glob("gpu_*_*/status.tsv")
    return {line.split("\t")[0]: line.split("\t")[1] for line in run.read_text().splitlines()}


def test_failures_are_recorded_and_skipped(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=script_env(tmp_path),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]  # failures, but it finished
    st = status(tmp_path)
    assert st["gpu"] == "unavailable" and st["build"] == "skipped" and st["smoke"] == "ok"
    assert st["tests"] == "failed"  # the planted failing test
    assert st["bench-fake_bench_gpu-1"] == "timeout"  # the hanging group, killed
    assert st["bench-fake_bench_gpu-2"] == "failed"  # the retry: exit 1, groups recorded
    assert st["group fake_raises"] == "failed" and st["group fake_hangs"] == "failed"
    assert st["ncu"] == "skipped" and st["memcheck"] == "skipped"
    (run,) = (tmp_path / "results").glob("gpu_*_*/")
    bench = run / "bench"
    assert json.loads((bench / "fake_ok.json").read_text())["status"] == "ok"
    assert json.loads((bench / "fake_after.json").read_text())["status"] == "ok"  # ran after the hang
    assert "planted failure" in (bench / "fake_raises.failed.json").read_text()
    assert json.loads((bench / "fake_hangs.failed.json").read_text())["status"] == "died"
    out = tmp_path / "out"
    assert {"gpu_check_results.tar.gz", "status.tsv", "gpu_check.log"} <= {p.name for p in out.iterdir()}
    summary = next(out.glob("gpu_*.md")).read_text()
    assert "fake_ok | autosample" in summary and "fake_hangs: died" in summary
    assert "1 passed, 1 failed" in summary
    with tarfile.open(out / "gpu_check_results.tar.gz") as tar:
        assert any(n.endswith("bench/fake_after.json") for n in tar.getnames())


def test_sigterm_still_copies_the_results(tmp_path: Path) -> None:
    env = script_env(tmp_path, GPU_CHECK_BENCH_ATTEMPT_S="100")
    proc = subprocess.Popen(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not list((tmp_path / "results").glob("gpu_*/bench/fake_hangs.running")):
        time.sleep(0.5)
    assert list((tmp_path / "results").glob("gpu_*/bench/fake_hangs.running")), "never reached the hang"
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output[-3000:]
    assert "interrupted" in output and "stopped the running step" in output
    out = tmp_path / "out"
    steps = {line.split("\t")[0]: line.split("\t")[1] for line in (out / "status.tsv").read_text().splitlines()}
    assert steps["bench-fake_bench_gpu-1"] == "interrupted"  # the step that was running is recorded
    assert (out / "gpu_check_results.tar.gz").exists() and (out / "status.tsv").exists()
    assert "fake_ok" in next(out.glob("gpu_*.md")).read_text()


def fake_toolkit(root: Path) -> Path:
    for sub in ("bin", "include", "lib64"):
        (root / sub).mkdir(parents=True)
    (root / "bin" / "nvcc").write_text("#!/bin/sh\necho fake nvcc\n")
    (root / "bin" / "nvcc").chmod(0o755)
    (root / "include" / "cuda_runtime.h").write_text("")
    (root / "lib64" / "libcudart.so").write_text("")
    return root


def find(tmp_path: Path, path: str, **env: str) -> subprocess.CompletedProcess:
    full = {"PATH": f"{path}:/usr/bin:/bin", "CUDA_HOME_CANDIDATES": str(tmp_path / "nowhere"), **env}
    return subprocess.run(["bash", "-c", f"source {ROOT / 'bench' / 'cuda_home.sh'}; find_cuda_home"],
                          env=full, capture_output=True, text=True)


def test_cuda_home_behind_an_nvcc_wrapper(tmp_path: Path) -> None:
    toolkit = fake_toolkit(tmp_path / "cuda-13.0")
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    (wrappers / "nvcc").write_text(f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    (wrappers / "nvcc").chmod(0o755)
    got = find(tmp_path, str(wrappers))
    assert got.returncode == 0 and got.stdout.strip() == str(toolkit), got.stderr
    links = tmp_path / "links"
    links.mkdir()
    (links / "nvcc").symlink_to(toolkit / "bin" / "nvcc")
    assert find(tmp_path, str(links)).stdout.strip() == str(toolkit)
    assert find(tmp_path, "/nonexistent", CUDA_HOME=str(toolkit)).stdout.strip() == str(toolkit)


def test_cuda_home_missing_is_a_clear_failure(tmp_path: Path) -> None:
    got = find(tmp_path, str(tmp_path / "empty"), CUDA_HOME=str(tmp_path))
    assert got.returncode == 1 and got.stdout == ""
    assert "no CUDA toolkit found" in got.stderr and "not a toolkit root" in got.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "nvcc").write_text('#!/bin/sh\nexec /opt/gone/bin/nvcc "$@"\n')
    (broken / "nvcc").chmod(0o755)
    got = find(tmp_path, str(broken))
    assert got.returncode == 1 and "wrapper" in got.stderr and "/opt/gone/bin/nvcc" in got.stderr


def test_the_real_test_files_and_graph_benchmarks(tmp_path: Path) -> None:
    """The script's own defaults up to the GPU: the real CUDA test files are collected (every
    test skipped here, none failing to import), the real graph benchmark runs every group
    through gpu_groups.py on the CPU (AUTOSAMPLE_BENCH_DEVICE=cpu, small graphs), and the real
    bench_gpu.py, which needs CUDA for every group, has each group recorded as failed and skipped."""
    env = script_env(tmp_path, GPU_CHECK_BENCH="bench/bench_gpu_graph.py bench/bench_gpu.py",
                     GPU_CHECK_BENCH_ATTEMPT_S="150", GPU_CHECK_BUDGET_S="400",
                     AUTOSAMPLE_BENCH_DEVICE="cpu", AUTOSAMPLE_BENCH_SMALL="1", OMP_NUM_THREADS="1")
    del env["GPU_CHECK_TESTS"]
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, capture_output=True,
                          text=True, timeout=420)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]  # bench_gpu.py's groups failed
    st = status(tmp_path)
    assert st["tests"] == "ok" and st["bench-bench_gpu_graph-1"] == "ok" and st["bench-bench_gpu-1"] == "failed"
    (run,) = (tmp_path / "results").glob("gpu_*_*/")
    suite = (run / "tests.xml").read_text()
    cuda_files = sorted(p.stem for p in (ROOT / "tests" / "cuda").glob("test_*.py"))
    assert len(cuda_files) >= 7, cuda_files
    for name in cuda_files:  # the whole CUDA folder, whatever is added to it
        assert f"tests.cuda.{name}" in suite, name  # collected
    summary = json.loads(next((tmp_path / "out").glob("gpu_*.json")).read_text())
    tests = summary["tests"]["tests"]
    assert tests["tests"] > 100 and tests["tests"] == tests["skipped"] and not tests["failed"]
    graph = sorted(p.name for p in (run / "bench").glob("*graph_propagate*.json")) + \
        sorted(p.name for p in (run / "bench").glob("spmm-*.json"))
    assert len(graph) == 8 and not any(n.endswith(".failed.json") for n in graph), graph
    assert json.loads((run / "bench" / "spmm-ml1m.json").read_text())["speedup_of_autosample_over"]
    assert st["group roofs"] == "failed"
    assert (run / "bench" / "rank_topk-ml1m.failed.json").exists()


def test_time_kept_for_ncu_and_memcheck(tmp_path: Path) -> None:
    """Benchmarks do not start when what is left of the budget is kept for the profiler and the
    sanitizer (GPU_CHECK_TOOLS_RESERVE_S; 150 s by default when both will run)."""
    env = script_env(tmp_path, GPU_CHECK_TOOLS_RESERVE_S="1000")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, capture_output=True,
                          text=True, timeout=180)
    st = status(tmp_path)
    assert st["bench-fake_bench_gpu-1"] == "skipped", proc.stdout[-3000:]
    assert "kept for ncu / memcheck" in (tmp_path / "out" / "status.tsv").read_text()
    assert not list((tmp_path / "results").glob("gpu_*/bench/*.json"))
