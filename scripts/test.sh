#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
cd "$repo"
# Small tensors: one thread is faster on 2 cores and keeps results bit-for-bit repeatable.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "${HAND_MESH_VENV:-$repo/.venv}/bin/python" -m pytest -q "$@"
