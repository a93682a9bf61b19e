#!/usr/bin/env bash
# The GPU half of the inference backends' checks: run on a machine with an NVIDIA GPU (a Jetson
# on JetPack 6, or a desktop/server with CUDA). It sets up what that machine needs, runs the
# cuda and tensorrt backends' tests (skipped everywhere else) and `neurorack bench backends`,
# and prints what it found. Nothing here is needed on a Pi.
#
#   deploy/check-gpu.sh [OUT_DIR]          # results: OUT_DIR/bench-backends-gpu.json, OUT_DIR/check-gpu.log
#
# Where the machine cannot reach a package index, put wheels in $WHEELS (pip --find-links):
# torch with CUDA, torch-tensorrt and tensorrt for that torch, and the project's own needs.
# On a Jetson, torch and TensorRT are JetPack's: the venv sees the system's and installs none.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/check-gpu}
mkdir -p "$OUT"
LOG="$OUT/check-gpu.log"
exec > >(tee "$LOG") 2>&1
VENV=${VENV:-.venv-gpu}
PIP_EXTRA=()
[ -n "${WHEELS:-}" ] && PIP_EXTRA=(--find-links "$WHEELS")

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "the machine"
uname -m
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>/dev/null \
  || { [ -f /etc/nv_tegra_release ] && head -1 /etc/nv_tegra_release; } \
  || { echo "no NVIDIA GPU found: nothing to check here"; exit 2; }

step "python environment ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
  # System site packages: a Jetson's (or a container's) own torch and TensorRT are used as they are.
  python3 -m venv --system-site-packages "$VENV" || exit 1
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" 2>/dev/null; then
  [ -f /etc/nv_tegra_release ] && { echo "a Jetson without JetPack's torch: install it first (never from PyPI)"; exit 1; }
  "$PY" -m pip install -q "${PIP_EXTRA[@]}" torch || { echo "torch could not be installed"; exit 1; }
fi
"$PY" -m pip install -q "${PIP_EXTRA[@]}" -e ".[test,export]" || { echo "the project could not be installed"; exit 1; }
if ! "$PY" -c "import torch_tensorrt" 2>/dev/null; then
  # torch-tensorrt pins the torch it was built for: ask for the release that matches this torch.
  TV=$("$PY" -c "import torch; print(torch.__version__.split('+')[0].rsplit('.', 1)[0])")
  "$PY" -m pip install -q "${PIP_EXTRA[@]}" "torch-tensorrt==${TV}.*" --no-deps \
    && "$PY" -m pip install -q "${PIP_EXTRA[@]}" tensorrt dllist 2>/dev/null \
    || echo "torch-tensorrt could not be installed: the tensorrt backend's tests will be skipped"
fi
"$PY" - <<'PY'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
for name in ("tensorrt", "torch_tensorrt", "onnxruntime"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:
        print(name, "missing:", type(exc).__name__, exc)
PY

step "the backends' tests (cuda and tensorrt run here; -rs lists any skip and its reason)"
"$PY" -m pytest -q -rs firmware_tests/test_backends.py
TESTS=$?

step "neurorack bench backends"
NEURORACK_ENGINES="$OUT/engines" "$PY" -m neurorack.cli bench backends --out "$OUT/bench-backends-gpu.json" --repeats 50
BENCH=$?

step "done: tests exit $TESTS, bench exit $BENCH; log in $LOG"
exit $(( TESTS != 0 || BENCH != 0 ))
