# shellcheck shell=bash
# find_cuda_home: print the CUDA toolkit root (the folder holding bin/nvcc, include/cuda_runtime.h
# and the cudart library), or print why none was found on stderr and return 1. Sourced by
# bench/gpu_check.sh; tested by tests/tools/test_gpu_check.py.
#
# Tried in order: $CUDA_HOME; nvcc on PATH resolved through symlinks; a wrapper script on PATH
# (`exec /usr/local/cuda-13.0/bin/nvcc "$@"`, as on the GPU machines: its folder's parent is
# /usr/local, not a toolkit, and a build against it fails with `cannot find -lcudart`) read for
# the nvcc it runs; then $CUDA_HOME_CANDIDATES (default: /usr/local/cuda /usr/local/cuda-*).

is_cuda_root() {
  local root="$1"
  [[ -n "$root" && -x "$root/bin/nvcc" && -f "$root/include/cuda_runtime.h" ]] || return 1
  local lib
  for lib in "$root"/lib64/libcudart* "$root"/lib/libcudart* "$root"/targets/*/lib/libcudart*; do
    [[ -e "$lib" ]] && return 0
  done
  return 1
}

find_cuda_home() {
  local tried=() c nvcc real target
  if [[ -n "${CUDA_HOME:-}" ]]; then
    is_cuda_root "$CUDA_HOME" && { echo "$CUDA_HOME"; return 0; }
    tried+=("CUDA_HOME=$CUDA_HOME (not a toolkit root)")
  fi
  nvcc="$(command -v nvcc 2>/dev/null || true)"
  if [[ -n "$nvcc" ]]; then
    real="$(readlink -f "$nvcc")"
    c="$(dirname "$(dirname "$real")")"
    is_cuda_root "$c" && { echo "$c"; return 0; }
    tried+=("nvcc on PATH: $real -> $c (not a toolkit root)")
    if head -c 2 "$real" 2>/dev/null | grep -q '#!'; then  # a wrapper script: which nvcc does it run?
      for target in $(grep -o '/[^ "'"'"']*/bin/nvcc' "$real" 2>/dev/null); do
        c="$(dirname "$(dirname "$(readlink -f "$target")")")"
        is_cuda_root "$c" && { echo "$c"; return 0; }
        tried+=("wrapper $real runs $target -> $c (not a toolkit root)")
      done
    fi
  else
    tried+=("no nvcc on PATH")
  fi
  # shellcheck disable=SC2086
  for c in ${CUDA_HOME_CANDIDATES:-/usr/local/cuda /usr/local/cuda-*}; do
    is_cuda_root "$c" && { echo "$c"; return 0; }
    tried+=("$c")
  done
  echo "find_cuda_home: no CUDA toolkit found; tried: ${tried[*]}" >&2
  return 1
}
