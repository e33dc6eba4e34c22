"""Fixtures: a small fabricated hand topology, crops and a camera (no hand model needed)."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.topology import HandTopology

#: Vertices of the fabricated test topology.
TEST_V = 30


def make_topology(num_vertices: int = TEST_V, seed: int = 0, tag: str = "test") -> HandTopology:
    g = torch.Generator().manual_seed(seed)
    faces = torch.stack([torch.arange(num_vertices - 2), torch.arange(1, num_vertices - 1),
                         torch.arange(2, num_vertices)], dim=1)
    reg = torch.softmax(torch.randn(21, num_vertices, generator=g), dim=1)
    template = torch.randn(num_vertices, 3, generator=g) * 0.05
    return HandTopology(faces, reg, template, f"{tag}-{num_vertices}-{seed}")


@pytest.fixture
def topology() -> HandTopology:
    return make_topology()


@pytest.fixture
def tiny_config() -> NetworkConfig:
    return NetworkConfig(input_size=32, stem_width=4, stage_widths=(4, 8), head_channels=4,
                         feature_dim=16)


@pytest.fixture
def camera() -> StereoCamera:
    return StereoCamera()


def make_crops(n: int, size: int, seed: int = 0) -> list[StereoCrop]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        cu, cv = (200 + 200 * torch.rand(2, generator=g)).tolist()
        side = float(150 + 100 * torch.rand(1, generator=g))
        shift = float(100 + 60 * torch.rand(1, generator=g))
        out.append(StereoCrop(CropTransform.square(cu, cv, side, size), shift))
    return out


@pytest.fixture
def crops_factory():
    """``crops_factory(n, size, seed=0)`` -> n StereoCrops."""
    return make_crops


@pytest.fixture
def topology_factory():
    """``topology_factory(num_vertices, seed, tag)`` -> HandTopology."""
    return make_topology
