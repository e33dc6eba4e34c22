#!/usr/bin/env bash
# Set up (if needed) and run the demo on bundled data. Outputs go to ./demo_out by default.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
exec "${HAND_MESH_VENV:-$repo/.venv}/bin/hand-mesh" demo "$@"
