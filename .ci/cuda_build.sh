#!/usr/bin/env bash
# CI step: compile the extension WITH its CUDA kernels on a machine without a GPU.
#
# - A separate virtual environment with the PyTorch 2.14.1 CUDA 13.0 build, installed from local
#   files, kept in a cache folder outside the checkout ($AUTOSAMPLE_CUDA_CACHE, default
#   ~/.cache/autosample_ext/ci-cuda) and reused when it already has the right torch.
# - The sources are copied into that cache folder (only files whose content changed, so ninja's
#   objects from an earlier run stay valid) and built there: the CPU build's _C*.so in the
#   checkout (used by the CPU test suite) is never replaced.
# - CUDA_HOME is the toolkit above nvcc (default /usr/local/cuda); the CUDA library headers of
#   the wheels (site-packages/nvidia/cu13/include) are added by setup.py.
# - Asserts build_info()['cuda_compiled'] and that the shared object holds sm_80 and sm_90 code.
# Any compile error fails the step (set -e). Usage: bash .ci/cuda_build.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${AUTOSAMPLE_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/autosample_ext/ci-cuda}"
VENV="${AUTOSAMPLE_CUDA_VENV:-$WORK/venv}"
TORCH_VERSION="2.14.1"
START=$(date +%s)
log() { echo "[cuda_build +$(( $(date +%s) - START ))s] $*"; }

export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
if [[ ! -x "$CUDA_HOME/bin/nvcc" ]]; then
  if command -v nvcc >/dev/null; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
  else
    echo "cuda_build: no nvcc under CUDA_HOME=$CUDA_HOME nor on PATH" >&2
    exit 1
  fi
fi
log "CUDA_HOME=$CUDA_HOME ($("$CUDA_HOME/bin/nvcc" --version | tail -1))"

mkdir -p "$WORK"
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$TORCH_VERSION') and torch.version.cuda else 1)" 2>/dev/null; then
  log "creating $VENV with torch==$TORCH_VERSION (CUDA build)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" numpy ninja setuptools wheel
fi
"$VENV/bin/python" -c "import torch; assert torch.version.cuda, torch.__version__; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

log "syncing the sources to $WORK/src"
mkdir -p "$WORK/src"
FILES="$(cd "$ROOT" && { git ls-files -co --exclude-standard setup.py pyproject.toml README.md csrc autosample_ext 2>/dev/null \
  || find setup.py pyproject.toml README.md csrc autosample_ext -type f; } | grep -v -E '\.so$|__pycache__')"
# Files gone from the checkout go from the copy too (setup.py globs csrc/cuda/*.cu).
(cd "$WORK/src" && find csrc autosample_ext -type f ! -name '*.so' 2>/dev/null || true) | while read -r f; do
  grep -qxF "$f" <<<"$FILES" || rm -f "$WORK/src/$f"
done
while read -r f; do
  [[ -f "$ROOT/$f" ]] || continue
  if ! cmp -s "$ROOT/$f" "$WORK/src/$f"; then
    mkdir -p "$(dirname "$WORK/src/$f")"
    cp "$ROOT/$f" "$WORK/src/$f"
  fi
done <<<"$FILES"

log "building with AUTOSAMPLE_WITH_CUDA=1 TORCH_CUDA_ARCH_LIST=8.0;9.0"
(
  cd "$WORK/src"
  export PATH="$VENV/bin:$PATH"
  AUTOSAMPLE_WITH_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" MAX_JOBS="${MAX_JOBS:-2}" \
    "$VENV/bin/python" setup.py build_ext --inplace
)
SO="$(ls -t "$WORK"/src/autosample_ext/_C*.so | head -1)"
log "built $SO ($(du -h "$SO" | cut -f1))"

# Run from the built copy: python puts the working directory first on sys.path, and the
# checkout holds the CPU build of the same package.
cd "$WORK/src"
PYTHONPATH="$WORK/src" "$VENV/bin/python" - <<'PY'
import autosample_ext, torch
info = autosample_ext.build_info()
print("build_info:", info)
assert info["cuda_compiled"] is True, info
# every operator the schemas define (csrc/ops.cpp), not a list kept by hand
ops = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith("autosample::"))
assert len(ops) >= 13, ops
missing = [op for op in ops if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")]
assert not missing, f"no CUDA kernel registered for {missing}"
print(f"CUDA kernels registered for all {len(ops)} operators: {', '.join(ops)}")
PY

CUOBJDUMP=""
for c in "$CUDA_HOME/bin/cuobjdump" "$(command -v cuobjdump || true)" \
         "$("$VENV/bin/python" -c 'import triton, os; print(os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump"))' 2>/dev/null || true)"; do
  if [[ -n "$c" && -x "$c" ]]; then CUOBJDUMP="$c"; break; fi
done
if [[ -z "$CUOBJDUMP" ]]; then
  echo "cuda_build: cuobjdump not found (toolkit, PATH, triton wheel)" >&2
  exit 1
fi
ELF="$("$CUOBJDUMP" --list-elf "$SO")"
echo "$ELF" | sed 's/^/  /' | head -20
for arch in sm_80 sm_90; do
  if ! grep -q "$arch" <<<"$ELF"; then
    echo "cuda_build: $SO holds no $arch code" >&2
    exit 1
  fi
done
log "OK: CUDA build compiled, sm_80 and sm_90 code present"
