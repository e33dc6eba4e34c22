"""Shared test fixtures: seeding and the location of ../shared."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from shared_data import STB_DIR, STB_LABELS


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def stb_dir() -> Path:
    """The real STB sample (one stereo pair + 1500 label frames); skip if absent."""
    if not STB_LABELS.is_file():
        pytest.skip(f"STB sample not found at {STB_DIR}")
    return STB_DIR
