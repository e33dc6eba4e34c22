"""HandMeshPipeline: external ROI -> crop -> network -> HandMeshResult; load_estimator errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.checkpoint import CheckpointError
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.model.topology import HandTopology
from hand_mesh_core.pipeline import (HandMeshEstimator, HandMeshPipeline, HandMeshResult,
                                     default_model_path, load_estimator)

V = 24


@pytest.fixture
def net() -> HandMeshNet:
    g = torch.Generator().manual_seed(0)
    faces = torch.stack([torch.arange(V - 2), torch.arange(1, V - 1), torch.arange(2, V)], 1)
    topo = HandTopology(faces, torch.softmax(torch.randn(21, V, generator=g), 1),
                        torch.randn(V, 3, generator=g) * 0.05, "pipeline-test")
    cfg = NetworkConfig(input_size=32, stem_width=4, stage_widths=(4, 8), head_channels=4,
                        feature_dim=16)
    return HandMeshNet(cfg, topo)


@pytest.fixture
def pair():
    cam = StereoCamera().scaled(0.25)
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8)
    right = np.roll(left, -30, axis=1)
    return left, right, cam


def test_predict_with_external_roi(net, pair):
    left, right, cam = pair
    pipe = HandMeshPipeline(net)
    assert isinstance(pipe, HandMeshEstimator)
    roi = (40.0, 30.0, 50.0, 50.0)
    res = pipe.predict(left, right, cam, roi=roi)
    assert isinstance(res, HandMeshResult)
    assert res.vertices_m.shape == (V, 3) and res.vertices_m.dtype == np.float32
    assert res.joints_m.shape == (21, 3) and res.uv_left.shape == (V, 2)
    assert res.faces.shape == (V - 2, 3) and res.faces.dtype == np.int32
    assert 0.0 < res.confidence < 1.0 and res.handedness == "right"
    assert res.roi_left == pytest.approx(roi)
    # uv_left is the projection of the returned vertices (same frame, same camera).
    uv = project(torch.from_numpy(res.vertices_m)[None], cam.K_tensor())[0].numpy()
    np.testing.assert_allclose(uv, res.uv_left, atol=1e-3)
    # Untrained network: the template prior sits in the middle of the ROI.
    centre = res.uv_left.min(0) / 2 + res.uv_left.max(0) / 2
    np.testing.assert_allclose(centre, [roi[0] + 25 - 0.5, roi[1] + 25 - 0.5], atol=0.5)


def test_left_hand_flips_winding(net, pair):
    left, right, cam = pair
    res_r = HandMeshPipeline(net).predict(left, right, cam, roi=(40, 30, 50, 50))
    res_l = HandMeshPipeline(net, handedness="left").predict(left, right, cam,
                                                             roi=(40, 30, 50, 50))
    np.testing.assert_array_equal(res_l.faces, res_r.faces[:, ::-1])
    assert res_l.handedness == "left"


def test_validation(net, pair, tmp_path):
    left, right, cam = pair
    pipe = HandMeshPipeline(net)
    with pytest.raises(ValueError, match="uint8"):
        pipe.predict(left.astype(np.float32), right, cam, roi=(0, 0, 10, 10))
    with pytest.raises(ValueError, match="but the camera is"):
        pipe.predict(left[:10], right[:10], cam, roi=(0, 0, 10, 10))
    with pytest.raises(TypeError, match="StereoCamera"):
        pipe.predict(left, right, "cam", roi=(0, 0, 10, 10))
    with pytest.raises(ValueError, match="handedness must be one of"):
        HandMeshPipeline(net, handedness="both")
    with pytest.raises(TypeError, match="HandMeshNet"):
        HandMeshPipeline(torch.nn.Linear(1, 1))
    with pytest.raises(CheckpointError, match="refused"):
        load_estimator(tmp_path / "model.pth")
    with pytest.raises(FileNotFoundError):
        load_estimator(tmp_path / "missing.safetensors")


def test_default_model_missing_is_clear():
    if default_model_path().is_file():
        pytest.skip("a default checkpoint is installed")
    with pytest.raises(FileNotFoundError, match="not installed"):
        load_estimator(None)


def test_shipped_checkpoint_matches_the_hand_model():
    """The shipped weights load (hash, topology of the current hand model, config) and run."""
    if not default_model_path().is_file():
        pytest.skip("no default checkpoint installed")
    from hand_mesh_core.model.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(default_model_path())
    assert info.metrics and info.training_data
    pipe = load_estimator(None)
    cam = StereoCamera()
    rng = np.random.default_rng(1)
    left = rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8)
    res = pipe.predict(left, left, cam, roi=(250.0, 170.0, 150.0, 150.0))
    assert res.vertices_m.shape == (info.num_vertices, 3)
    assert np.isfinite(res.vertices_m).all() and 0.0 <= res.confidence <= 1.0
