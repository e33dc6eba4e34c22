"""Shared test fixtures: seeding and the location of ../shared."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
#: ../shared beside the checkout (CI lays a read-only copy there).
SHARED_DIR = Path(os.environ.get("HAND_MESH_SHARED_DIR", REPO_ROOT.parent / "shared"))
STB_DIR = SHARED_DIR / "realdata" / "stb"


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def stb_dir() -> Path:
    """The real STB sample (one stereo pair + 1500 label frames); skip if absent."""
    if not (STB_DIR / "labels" / "B1Counting_BB.mat").is_file():
        pytest.skip(f"STB sample not found at {STB_DIR}")
    return STB_DIR
