"""Fixtures: a toy labelled stereo dataset on a small grid-mesh "hand" (no hand model needed)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.topology import HandTopology

#: Grid of the toy mesh (rows x cols vertices) and its size in metres.
GRID = (6, 5)
SIZE_M = (0.18, 0.10)


def toy_topology() -> HandTopology:
    rows, cols = GRID
    ys, xs = np.meshgrid(np.linspace(-0.5, 0.5, rows) * SIZE_M[0],
                         np.linspace(-0.5, 0.5, cols) * SIZE_M[1], indexing="ij")
    verts = np.stack([xs, ys, 0.01 * np.cos(xs * 30)], -1).reshape(-1, 3)
    faces = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            i = r * cols + c
            faces += [[i, i + cols, i + 1], [i + 1, i + cols, i + cols + 1]]
    g = torch.Generator().manual_seed(0)
    reg = torch.softmax(torch.randn(21, rows * cols, generator=g) * 3, dim=1)
    return HandTopology(torch.tensor(faces), reg, torch.tensor(verts, dtype=torch.float32),
                        "toy-grid")


def toy_camera() -> StereoCamera:
    return StereoCamera().scaled(0.25)


def _rot(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(-0.4, 0.4, 3)
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


#: Per-face colours: a fixed random texture attached to the surface (same in both views).
FACE_RGB = np.random.default_rng(42).integers(60, 256, (200, 3))


def _draw(camera: StereoCamera, verts: np.ndarray, faces: np.ndarray, offset: float
          ) -> tuple[np.ndarray, np.ndarray]:
    p = verts - np.array([offset, 0, 0])
    uv = np.stack([camera.fx * p[:, 0] / p[:, 2] + camera.cx,
                   camera.fy * p[:, 1] / p[:, 2] + camera.cy], 1)
    img = np.full((camera.height, camera.width, 3), 30, np.uint8)
    mask = np.zeros((camera.height, camera.width), np.uint8)
    for k, f in enumerate(faces):
        tri = np.round(uv[f] * 16).astype(np.int32)
        colour = tuple(int(c) for c in FACE_RGB[k % len(FACE_RGB)])
        cv2.fillConvexPoly(img, tri, colour, lineType=cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(mask, tri, 1, shift=4)
    return img, mask.astype(bool)


def toy_samples(n: int, topology: HandTopology, seed: int = 0,
                depth_range_m: tuple[float, float] = (0.45, 0.7)) -> list[StereoSample]:
    cam = toy_camera()
    rng = np.random.default_rng(seed)
    faces = topology.faces.numpy()
    out = []
    for i in range(n):
        v = topology.template_vertices.numpy().astype(np.float64) @ _rot(rng).T
        v += np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.04, 0.04),
                       rng.uniform(*depth_range_m)])
        left, ml = _draw(cam, v, faces, 0.0)
        right, mr = _draw(cam, v, faces, cam.baseline_m)
        joints = (topology.joint_regressor.double().numpy() @ v).astype(np.float32)
        out.append(StereoSample(left, right, cam, "right", joints, v.astype(np.float32), ml, mr,
                                source=f"toy/{i}"))
    return out


@pytest.fixture
def topology() -> HandTopology:
    return toy_topology()


@pytest.fixture
def samples_factory():
    """``samples_factory(n, topology, seed=0)`` -> list of toy StereoSample."""
    return toy_samples


@pytest.fixture
def tiny_network() -> NetworkConfig:
    return NetworkConfig(input_size=32, stem_width=8, stage_widths=(8, 16, 32), head_channels=8,
                         feature_dim=64, uv_range_px=16.0)


@pytest.fixture(autouse=True)
def _one_thread():
    """The CI machine is small and shared: one intra-op thread keeps timings stable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
