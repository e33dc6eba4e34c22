#!/usr/bin/env bash
# Set up (if needed) and run the demo on bundled data: the ROS 2 stereo node on loopback DDS,
# fed a synthetic stereo sequence and the real STB pair. Outputs go to ./demo_out by default.
# Extra arguments go to the demo (see: .venv/bin/python -m hand_mesh_ros.demo --help).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
cd "$repo"
exec "${HAND_MESH_VENV:-$repo/.venv}/bin/python" -m hand_mesh_ros.demo "$@"
