#!/usr/bin/env bash
# One-command GPU check for a fresh machine with an NVIDIA GPU, its own PyTorch and a CUDA
# toolkit, no network. Fits in 8 minutes of command time on an H100 / H200:
#   1. facts: GPU, driver, torch, CUDA_HOME (bench/cuda_home.sh: also behind an nvcc wrapper);
#   2. builds the extension in place for the local GPU's arch only, MAX_JOBS = nproc, with the
#      register / spill report of ptxas in the build log;
#   3. CUDA tests (per-test timeout when pytest-timeout is there, and a step timeout);
#   4. every bench/bench_gpu*.py file, group by group (bench/gpu_groups.py): each group's JSON is
#      written as soon as it finishes, a failing group is recorded and skipped, a hanging or
#      crashing one is killed by the step's timeout and recorded on the retry that follows;
#   5. one ncu pass on rank_topk (bench/gpu_probe.py --op rank_topk);
#   6. compute-sanitizer memcheck on a small workload of every op (gpu_probe.py --sanitize).
# Every step has a timeout drawn from one budget (GPU_CHECK_BUDGET_S, default 450 s); a step
# that fails or is skipped is recorded in status.tsv and the script goes on. Whatever happens
# (failure, timeout, Ctrl-C, SIGTERM), the exit trap writes the summary
# bench/results/gpu_<GPU>_<stamp>.{md,json} beside the folder of logs and results, and copies
# summary, status, log and a tarball of the folder to $OUT when that is set.
#
# Usage: bash bench/gpu_check.sh     (PYTHON=/path/to/python to choose the interpreter)
# Self-test knobs (tests/tools/test_gpu_check.py runs the script on a machine without a GPU):
#   GPU_CHECK_ALLOW_NO_GPU=1  go on without a GPU      GPU_CHECK_SKIP_BUILD=1  use the built _C
#   GPU_CHECK_ARCH=9.0        arch when no GPU          GPU_CHECK_RESULTS=DIR   results root
#   GPU_CHECK_TESTS="files"   test files                GPU_CHECK_BENCH="files" benchmark files
#   GPU_CHECK_BENCH_ATTEMPT_S per-attempt timeout of a benchmark file (default 240)
#   GPU_CHECK_TOOLS_RESERVE_S seconds of the budget kept for ncu + memcheck during the benchmarks
#                             (default 150 when both will run, 0 without a GPU)
#   GPU_CHECK_BUILD_S         build timeout (default 300; the 2-core CI machine needs ~1500)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
START=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET_S:-450}"
RESERVE=15  # seconds kept for the summary and the copy
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="${GPU_CHECK_RESULTS:-$ROOT/bench/results}"
GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
GPU_TAG="$(echo "${GPU:-no-gpu}" | tr -c 'A-Za-z0-9.\n' '-' | sed 's/--*/-/g; s/-$//')"
RES="$RESULTS/gpu_${GPU_TAG}_${STAMP}"
mkdir -p "$RES/bench"
STATUS="$RES/status.tsv"
: > "$STATUS"
FAILED=0
CHILD=
STEP=
STEP_T0=0

log() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*" | tee -a "$RES/gpu_check.log"; }
record() {  # step status seconds note
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >> "$STATUS"
  [[ "$2" == ok || "$2" == skipped || "$2" == unavailable ]] || FAILED=1
  log "$1: $2 (${3}s) ${4:-}"
}
left() { echo $(( START + BUDGET - RESERVE - $(date +%s) )); }

# run_step NAME MAX_SECONDS CMD...: runs CMD with a timeout (the smaller of MAX_SECONDS and the
# budget left), output to $RES/NAME.log; records ok / failed (rc) / timeout / skipped.
run_step() {
  local name="$1" max="$2"; shift 2
  local l t0 rc; l="$(left)"
  if (( l < 10 )); then record "$name" skipped 0 "no time left in the ${BUDGET}s budget"; return 99; fi
  (( max > l )) && max=$l
  t0=$(date +%s)
  log "$name: start (timeout ${max}s)"
  timeout -k 5 "$max" "$@" > "$RES/$name.log" 2>&1 &
  CHILD=$! STEP=$name STEP_T0=$t0
  wait "$CHILD"  # in the background, so that a signal reaches the trap at once
  rc=$?
  CHILD= STEP=
  if (( rc == 0 )); then record "$name" ok $(( $(date +%s) - t0 ))
  elif (( rc == 124 || rc == 137 )); then record "$name" timeout $(( $(date +%s) - t0 )) "killed after ${max}s"
  else record "$name" failed $(( $(date +%s) - t0 )) "exit code $rc"; fi
  (( rc == 0 )) || tail -25 "$RES/$name.log" | sed "s/^/    [$name] /"
  checkpoint
  return $rc
}

# Summary and copy to $OUT after every step too: a run killed with SIGKILL (the caller's own
# time limit) still leaves what it had.
summarise() {
  "$PY" "$ROOT/bench/gpu_summary.py" "$RES" "$RES" > "$RES/summary.log" 2>&1 \
    || echo "summary failed: see $RES/summary.log" >> "$RES/gpu_check.log"
}
checkpoint() {
  [[ -n "${OUT:-}" ]] || return 0
  summarise
  mkdir -p "$OUT"
  cp -f "$RES.md" "$RES.json" "$STATUS" "$RES/gpu_check.log" "$OUT"/ 2>/dev/null
  tar czf "$OUT/gpu_check_results.tar.gz" -C "$(dirname "$RES")" "$(basename "$RES")" \
    "$(basename "$RES").md" "$(basename "$RES").json" 2>/dev/null
  return 0
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "${CHILD:-}" ]]; then
    kill "$CHILD" 2>/dev/null && log "stopped the running step (pid $CHILD)"
    record "$STEP" interrupted $(( $(date +%s) - STEP_T0 )) "stopped by the exit trap (exit code $rc)"
  fi
  log "finishing (exit code $rc); writing the summary"
  summarise
  [[ -f "$RES.md" ]] && tail -60 "$RES.md"
  checkpoint && [[ -n "${OUT:-}" ]] && log "copied summary, status, log and gpu_check_results.tar.gz to $OUT"
  exit "$rc"
}
trap finish EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- 1. facts ------------------------------------------------------------------------------------
TORCH_FACTS="$("$PY" -c 'import sys, torch
gpu = torch.cuda.is_available()
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "gpu", gpu)
print("%d.%d" % torch.cuda.get_device_capability(0) if gpu else "none")' 2>&1)"
{
  echo "date: $STAMP"; echo "host: $(hostname) ($(nproc) CPUs)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem \
    --format=csv 2>&1 | head -3
  echo "$TORCH_FACTS" | head -1
  # What the build and the tests need beside torch (the machine has no network: a missing one
  # explains a failed step below). Without ninja the build compiles file by file.
  echo "python modules missing: $("$PY" -c 'import importlib.util as u
print(" ".join(m for m in ("numpy", "scipy", "pandas", "tqdm", "setuptools", "ninja", "pytest",
      "pytest_timeout", "hypothesis", "triton") if u.find_spec(m) is None) or "none")' 2>&1 | tail -1)"
  echo "ninja: $(command -v ninja || echo 'not on PATH (serial build)')"
} > "$RES/env.txt"
tee -a "$RES/gpu_check.log" < "$RES/env.txt"
LOCAL_CAP="$(echo "$TORCH_FACTS" | tail -1)"
HAVE_GPU=0
[[ "$LOCAL_CAP" =~ ^[0-9]+\.[0-9]+$ ]] && HAVE_GPU=1
if (( HAVE_GPU )); then record gpu ok 0 "$GPU (sm_${LOCAL_CAP/./})"
elif [[ "${GPU_CHECK_ALLOW_NO_GPU:-0}" == 1 ]]; then record gpu unavailable 0 "no GPU; going on (self-test)"
else record gpu failed 0 "torch sees no GPU: $TORCH_FACTS"; exit 2; fi
CAP="${GPU_CHECK_ARCH:-$( (( HAVE_GPU )) && echo "$LOCAL_CAP" || echo 9.0)}"

# shellcheck source=bench/cuda_home.sh
source "$ROOT/bench/cuda_home.sh"
if CUDA_HOME="$(find_cuda_home 2>"$RES/cuda_home.log")"; then
  export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
  record cuda_home ok 0 "$CUDA_HOME ($("$CUDA_HOME/bin/nvcc" --version | tail -1))"
else
  record cuda_home failed 0 "$(cat "$RES/cuda_home.log")"
fi

# --- 2. build ------------------------------------------------------------------------------------
BUILT=0
if [[ "${GPU_CHECK_SKIP_BUILD:-0}" == 1 ]]; then
  record build skipped 0 "GPU_CHECK_SKIP_BUILD=1: using the extension already built"
  BUILT=1
elif [[ -n "${CUDA_HOME:-}" ]]; then
  rm -f autosample_ext/_C*.so
  if run_step build "${GPU_CHECK_BUILD_S:-300}" env AUTOSAMPLE_WITH_CUDA=1 TORCH_CUDA_ARCH_LIST="$CAP" MAX_JOBS="$(nproc)" \
       NVCC_APPEND_FLAGS="-Xptxas=-v" "$PY" setup.py build_ext --inplace; then
    BUILT=1
    grep -E "registers|spill" "$RES/build.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
  fi
else
  record build skipped 0 "no CUDA toolkit"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if (( BUILT )); then
  run_step smoke 60 "$PY" -c "import autosample_ext as a, torch; print(a.build_info()); \
assert a.cuda_compiled() or not torch.cuda.is_available(), 'built without CUDA kernels'" || BUILT=0
fi

# --- 3. tests ------------------------------------------------------------------------------------
TESTS="${GPU_CHECK_TESTS:-tests/cuda tests/ops/test_op_bad_inputs.py tests/ops/test_op_properties.py tests/ops/test_op_mf_step_bad_inputs.py}"
if (( BUILT )); then
  TIMEOUT_ARGS=()
  "$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_ARGS=(-p pytest_timeout --timeout=90)
  # shellcheck disable=SC2086
  run_step tests 200 "$PY" -m pytest $TESTS -q -p no:cacheprovider --maxfail=30 "${TIMEOUT_ARGS[@]}" \
    -k cuda --junitxml="$RES/tests.xml"
else
  record tests skipped 0 "no build"
fi

# --- 4. benchmarks, group by group ---------------------------------------------------------------
# Seconds kept for steps 5 and 6 while the benchmarks run (only when they will run), so that a
# slow benchmark cannot squeeze out the profiler and the sanitizer.
TOOLS_RESERVE=0
if (( BUILT && HAVE_GPU )); then
  command -v ncu >/dev/null && TOOLS_RESERVE=$(( TOOLS_RESERVE + 60 ))
  command -v compute-sanitizer >/dev/null && TOOLS_RESERVE=$(( TOOLS_RESERVE + 90 ))
fi
TOOLS_RESERVE="${GPU_CHECK_TOOLS_RESERVE_S:-$TOOLS_RESERVE}"
BENCH="${GPU_CHECK_BENCH:-$(ls bench/bench_gpu*.py 2>/dev/null | sort | tr '\n' ' ')}"
for file in $BENCH; do
  name="bench-$(basename "$file" .py)"
  for attempt in 1 2 3; do  # a retry skips the groups done and records the one that died
    cap=$(( $(left) - TOOLS_RESERVE ))
    if (( cap < 10 )); then
      record "$name-$attempt" skipped 0 "the rest of the budget is kept for ncu / memcheck (${TOOLS_RESERVE}s)"
      break
    fi
    max="${GPU_CHECK_BENCH_ATTEMPT_S:-240}"
    (( max > cap )) && max=$cap
    run_step "$name-$attempt" "$max" \
      "$PY" -u "$file" --out-dir "$RES/bench" --skip-done
    rc=$?
    (( rc == 0 || rc == 1 || rc == 99 )) && break  # 1: a group failed and was recorded
  done
done
for f in "$RES"/bench/*.failed.json; do
  [[ -e "$f" ]] && record "group $(basename "$f" .failed.json)" failed 0 "$(head -c 300 "$f" | tr '\n' ' ')"
done

# --- 5. ncu on rank_topk -------------------------------------------------------------------------
if ! (( BUILT && HAVE_GPU )); then record ncu skipped 0 "needs the build and a GPU"
elif ! command -v ncu >/dev/null; then record ncu unavailable 0 "ncu not on PATH"
elif run_step ncu 120 ncu --clock-control none --kernel-name regex:rank_topk_kernel --launch-skip 1 \
       --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats \
       --section MemoryWorkloadAnalysis_Tables --section ComputeWorkloadAnalysis \
       -o "$RES/ncu_rank_topk" -f "$PY" bench/gpu_probe.py --op rank_topk; then
  ncu --import "$RES/ncu_rank_topk.ncu-rep" --page details > "$RES/ncu_rank_topk.txt" 2>&1
fi

# --- 6. compute-sanitizer memcheck ---------------------------------------------------------------
if ! (( BUILT && HAVE_GPU )); then record memcheck skipped 0 "needs the build and a GPU"
elif ! command -v compute-sanitizer >/dev/null; then record memcheck unavailable 0 "compute-sanitizer not on PATH"
else
  run_step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 7 --print-limit 20 \
    "$PY" bench/gpu_probe.py --sanitize
fi

log "done: $(grep -c . "$STATUS") steps, failures: $FAILED"
exit "$FAILED"
