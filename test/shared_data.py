"""Where the tests find ../shared: the read-only data laid beside the checkout (the real STB
sample, the DDS profile's original). One place for the rule; tests import it by name
(``pythonpath = test`` in setup.cfg). ``HAND_MESH_SHARED_DIR`` overrides it."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: ../shared beside the checkout (CI lays a read-only copy there).
SHARED_DIR = Path(os.environ.get("HAND_MESH_SHARED_DIR", REPO_ROOT.parent / "shared"))
#: The real STB sample: one stereo pair of B1Counting and its 1500 label frames.
STB_DIR = SHARED_DIR / "realdata" / "stb"
#: Its label file.
STB_LABELS = STB_DIR / "labels" / "B1Counting_BB.mat"
