#!/usr/bin/env bash
# Create or reuse .venv and install hand_mesh with its extras. Idempotent: a second run with an
# unchanged setup.py only checks a stamp file and returns in about a second.
#
# Usage: bash scripts/setup.sh            (sourced by scripts/demo.sh and scripts/test.sh)
# Environment:
#   HAND_MESH_VENV         venv folder (default: <repo>/.venv)
#   HAND_MESH_TORCH_SPEC   pip requirement for torch (default: torch==2.13.0). On a CPU-only
#                          machine, point pip at PyTorch's CPU wheel index (PIP_EXTRA_INDEX_URL)
#                          to avoid downloading the CUDA build.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HAND_MESH_VENV:-$repo/.venv}"
torch_spec="${HAND_MESH_TORCH_SPEC:-torch==2.13.0}"
python="${PYTHON:-python3}"

# open3d needs libusb at import time.
if ! ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0"; then
  if [ "$(id -u)" = "0" ]; then
    echo "[setup] installing libusb-1.0-0 (needed by open3d) with apt-get"
    (apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libusb-1.0-0 >/dev/null))
  else
    echo "[setup] open3d needs libusb. Run: sudo apt-get install -y libusb-1.0-0" >&2
    exit 1
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$python" -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed"'
  "$python" -m venv "$venv"
fi

stamp="$venv/.hand_mesh_setup_stamp"
want="$(cat "$repo/setup.py" "$repo/setup.cfg" | sha256sum | cut -d' ' -f1) $torch_spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$venv/bin/python" -c "import hand_mesh_core" 2>/dev/null; then
  exit 0
fi

log="$venv/setup.log"
echo "[setup] installing hand_mesh into $venv (first run takes a few minutes; log: $log)"
pip_install() {
  if ! "$venv/bin/python" -m pip install "$@" >>"$log" 2>&1; then
    echo "[setup] pip install $* failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
}
: > "$log"
pip_install --upgrade pip
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  pip_install "$torch_spec"
fi
pip_install -e "$repo[ros,test]"
echo "$want" > "$stamp"
echo "[setup] done"
