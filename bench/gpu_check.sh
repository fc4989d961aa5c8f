#!/usr/bin/env bash
# One-command GPU check (issue 3), for a machine with an NVIDIA GPU and its own PyTorch, no
# network needed:
#   1. builds the extension from source in place with its CUDA kernels for the local GPU's arch,
#   2. runs tests/test_cuda_ops.py,
#   3. runs bench/bench_gpu.py (CUDA-events harness, no pytest-benchmark needed; set
#      PYTEST_BENCHMARK=1 to also run it under pytest-benchmark when that is installed),
#   4. writes bench/results/gpu_<gpu-name>_<date>.json and a .md summary (GPU, driver, torch,
#      test counts, timings, speedups). Copies them to $OUT too when that is set.
# Usage: bash bench/gpu_check.sh        (PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
START=$(date +%s)
log() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*"; }

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: torch sees no GPU')"
CAP="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))')"
GPU="$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"
GPU_TAG="$(echo "$GPU" | tr -c 'A-Za-z0-9.\n' '-' | sed 's/--*/-/g; s/-$//')"
DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || echo unknown)"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
if [[ -z "${CUDA_HOME:-}" ]]; then
  if command -v nvcc >/dev/null; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
  else
    CUDA_HOME=/usr/local/cuda
  fi
fi
export CUDA_HOME
log "GPU: $GPU (sm_${CAP/./}), driver $DRIVER, torch $("$PY" -c 'import torch; print(torch.__version__)'), CUDA_HOME=$CUDA_HOME"

log "building the extension with CUDA for arch $CAP"
rm -f autosample_ext/_C*.so
mkdir -p build
AUTOSAMPLE_WITH_CUDA=1 TORCH_CUDA_ARCH_LIST="$CAP" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "$PY" setup.py build_ext --inplace > build/gpu_check_build.log 2>&1 || { tail -50 build/gpu_check_build.log; exit 1; }
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import autosample_ext as a; i = a.build_info(); print(i); assert i['cuda_compiled']"

mkdir -p bench/results
BASE="bench/results/gpu_${GPU_TAG}_${STAMP}"
log "running tests/test_cuda_ops.py"
set +e
"$PY" -m pytest tests/test_cuda_ops.py -q -p no:cacheprovider --junitxml="$BASE.tests.xml" 2>&1 | tee "$BASE.tests.log"
TEST_RC=${PIPESTATUS[0]}
set -e

log "running bench/bench_gpu.py"
"$PY" bench/bench_gpu.py --out "$BASE.json" 2>&1 | tee "$BASE.bench.log"
if [[ "${PYTEST_BENCHMARK:-0}" == "1" ]] && "$PY" -c "import pytest_benchmark" 2>/dev/null; then
  "$PY" -m pytest bench/bench_gpu.py -q -p no:cacheprovider --benchmark-json="$BASE.pytest-benchmark.json"
fi

"$PY" - "$BASE" "$GPU" "$DRIVER" "$TEST_RC" <<'PY'
import json, sys, xml.etree.ElementTree as ET
base, gpu, driver, test_rc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
doc = json.load(open(base + ".json"))
suite = ET.parse(base + ".tests.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
tests = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
tests["passed"] = tests["tests"] - tests["failures"] - tests["errors"] - tests["skipped"]
doc.update({"driver": driver, "tests": tests, "tests_exit_code": test_rc})
json.dump(doc, open(base + ".json", "w"), indent=2)
lines = [f"# GPU check: {gpu}", "",
         f"- driver {driver}, torch {doc['torch']} (CUDA {doc['cuda']}), python {doc['python']}, "
         f"{doc['sm_count']} SMs; build {doc['build']}",
         f"- tests/test_cuda_ops.py: {tests['passed']} passed, {tests['failures']} failed, "
         f"{tests['errors']} errors, {tests['skipped']} skipped", f"- timer: {doc['timer']}", "",
         "| group | impl | median (us) | gathered GB/s | fraction of 3.35 TB/s |", "|---|---|---|---|---|"]
for r in doc["results"]:
    lines.append(f"| {r['group']} | {r['name']} | {r['median_s'] * 1e6:.1f} | "
                 f"{r.get('gathered_GBps', '')} | {r.get('fraction_of_h100_sxm_peak', '')} |")
lines += ["", "Speedup of autosample (baseline time / autosample time):", ""]
lines += [f"- {g}: " + ", ".join(f"{n} {v}x" for n, v in s.items())
          for g, s in doc["speedup_of_autosample_over"].items()]
open(base + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -f "$BASE.tests.xml"
if [[ -n "${OUT:-}" ]]; then cp "$BASE".* "$OUT"/ 2>/dev/null || true; cp build/gpu_check_build.log "$OUT"/ || true; fi
log "wrote $BASE.json and $BASE.md (tests exit code $TEST_RC)"
exit "$TEST_RC"
