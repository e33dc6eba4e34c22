"""The packages pass flake8 at 99 columns (config in setup.cfg)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_flake8_clean():
    targets = [str(REPO / p) for p in ("hand_mesh_core", "hand_mesh_ros", "launch", "test",
                                       "setup.py") if (REPO / p).exists()]
    proc = subprocess.run([sys.executable, "-m", "flake8", *targets], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"flake8 found problems:\n{proc.stdout}{proc.stderr}"
