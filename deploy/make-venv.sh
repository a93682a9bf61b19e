#!/usr/bin/env bash
# The development venv behind `make demo` and `make test`: deploy/make-venv.sh PYTHON VENV.
#
# torch, where it comes from:
#   Jetson:  JetPack's own (the venv sees the system packages); never another.
#   else:    the CPU-only build from PyTorch's own index ($TORCH_CPU_INDEX), pinned ($TORCH_SPEC),
#            when that index answers within 10 s. Where it does not: on x86-64 the same pin
#            from the usual index (on this project's machines that is the CPU build on disk);
#            on arm64 no torch at all, because PyPI's aarch64 torch is the CUDA build (gigabytes
#            of nvidia packages): the venv then runs torch-free (the onnx backend), without the
#            torch and train extras (auraloss needs torch), and says how to add the CPU build later.
#
# deploy/make-venv.sh --plan PYTHON: print where torch would come from and which extras, and
# install nothing (make check-arm64 asks it on the emulated Pi).
set -euo pipefail
PLAN=0
[ "${1:-}" = --plan ] && { PLAN=1; shift; }
PYTHON="${1:?python}" VENV="${2:-.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
PY="$VENV/bin/python"

reachable() { "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" "$1/" >/dev/null 2>&1; }
if [ -e /etc/nv_tegra_release ]; then
  torch=system extras=train,test,jetson
elif reachable "$TORCH_CPU_INDEX"; then
  torch=cpu-index extras=dev
elif [ "$(uname -m)" = x86_64 ]; then
  torch=pin extras=dev
else
  torch=none extras=analysis,test   # not train: auraloss would pull PyPI's torch
fi
if [ "$PLAN" = 1 ]; then echo "torch=$torch extras=$extras"; exit 0; fi

if [ "$torch" = system ]; then
  "$PYTHON" -m venv --system-site-packages "$VENV"
else
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
case "$torch" in
  cpu-index) echo "torch: $TORCH_SPEC, the CPU-only build from $TORCH_CPU_INDEX"
             "$PY" -m pip install -q --index-url "$TORCH_CPU_INDEX" "$TORCH_SPEC" ;;
  pin) echo "torch: $TORCH_SPEC ($TORCH_CPU_INDEX is unreachable; the pin from the usual index)"
       "$PY" -m pip install -q "$TORCH_SPEC" ;;
  none) echo "torch: none. $TORCH_CPU_INDEX is unreachable, and this index's $(uname -m) torch is the CUDA build;"
        echo "  the venv runs torch-free (the onnx backend). Training, the torch backends and the tests need"
        echo "  torch: $PY -m pip install --index-url $TORCH_CPU_INDEX \"$TORCH_SPEC\" where that index answers." ;;
  system) echo "torch: JetPack's own (the venv sees the system's packages)" ;;
esac
"$PY" -m pip install -q -e ".[$extras]"
