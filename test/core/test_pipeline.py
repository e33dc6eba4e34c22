"""HandMeshPipeline: external ROI -> crop -> network -> HandMeshResult; load_estimator errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.checkpoint import CheckpointError
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.model.topology import HandTopology
from hand_mesh_core.pipeline import (HandMeshEstimator, HandMeshPipeline, HandMeshResult,
                                     KnownHandednessEstimator, default_model_path,
                                     load_estimator)

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
    # reversed winding: the triangles of HandModel.faces_for("left") ([a, c, b]), rotated
    np.testing.assert_array_equal(res_l.faces, res_r.faces[:, ::-1])
    assert res_l.handedness == "left"
    assert res_l.roi_left == pytest.approx((40, 30, 50, 50))


def _mirror_inline(left, right, cam, crop):
    """Test reference, written out: flip both images and swap them, cx' = W - 1 - cx, and the
    crop whose left window is the flipped right window."""
    w = cam.width
    r = crop.right
    mcrop = StereoCrop(CropTransform(w - 1 - r.x0 - r.width, r.y0, r.width, r.height,
                                     r.out_width, r.out_height), crop.shift_px)
    return (right[:, ::-1].copy(), left[:, ::-1].copy(), cam.replace(cx=w - 1 - cam.cx),
            mcrop)


def _unmirror(points, baseline_m):
    out = np.array(points, dtype=np.float64)
    out[:, 0] = baseline_m - out[:, 0]
    return out


def test_left_hand_is_the_exact_mirror_of_the_right_hand(net, pair):
    """The network sees the same (right-hand) crops: outputs are exact mirrors."""
    left, right, cam = pair
    cam = cam.replace(cx=70.25)  # off-centre, so that a missing cx -> W - 1 - cx shows
    torch.nn.init.normal_(net.uv_head.weight, std=0.02, generator=torch.Generator().manual_seed(1))
    crop = StereoCrop(CropTransform(45.3, 30.1, 52.7, 52.7, 32, 32), 24.6)
    res_r = HandMeshPipeline(net).predict_crop(left, right, cam, crop)
    m_left, m_right, m_cam, m_crop = _mirror_inline(left, right, cam, crop)
    pipe_l = HandMeshPipeline(net, handedness="left")
    res_l = pipe_l.predict_crop(m_left, m_right, m_cam, m_crop)
    b = cam.baseline_m
    np.testing.assert_allclose(_unmirror(res_l.joints_m, b), res_r.joints_m, atol=1e-6)
    np.testing.assert_allclose(_unmirror(res_l.vertices_m, b), res_r.vertices_m, atol=1e-6)
    assert res_l.confidence == pytest.approx(res_r.confidence, abs=1e-6)
    assert res_l.vertices_m.dtype == np.float32 and res_l.uv_left.dtype == np.float32
    # uv_left: the returned vertices in the (mirrored) pair's left image, which is the
    # flipped right image of the original pair
    uv = project(torch.from_numpy(res_l.vertices_m)[None].double(), m_cam.K_tensor(
        torch.float64))[0].numpy()
    np.testing.assert_allclose(res_l.uv_left, uv, atol=1e-3)
    assert res_l.roi_left == pytest.approx((m_crop.left.x0, m_crop.left.y0, m_crop.left.width,
                                            m_crop.left.height))
    # the same pair without mirroring gives another answer (the test can fail)
    res_w = HandMeshPipeline(net).predict_crop(m_left, m_right, m_cam, m_crop)
    assert np.abs(_unmirror(res_w.joints_m, b) - res_r.joints_m).max() > 1e-3


def test_left_hand_on_a_mirrored_synthetic_sample():
    """Shipped network: a source_studio right hand vs the same scene mirrored into a left-hand
    pair (external ROI, mirrored too): mirrored results, same error; not mirroring is worse."""
    if not default_model_path().is_file():
        pytest.skip("no default checkpoint installed")
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import SynthGenerator

    s = SynthGenerator(load_domain("source_studio")).generate(0, 0)
    width = 600  # cut to an off-centre principal point (cx 319.5 of 600 px); hand inside
    cam = s.camera.replace(width=width)
    left, right = s.left[:, :width].copy(), s.right[:, :width].copy()
    pipe_r = load_estimator(None)
    crop = pipe_r.crop_for(left, right, cam)
    assert crop is not None
    res_r = pipe_r.predict(left, right, cam, roi=(crop.left.x0, crop.left.y0, crop.left.width,
                                                  crop.left.height))
    m_left, m_right, m_cam, m_crop = _mirror_inline(left, right, cam, crop)
    m_roi = (m_crop.left.x0, m_crop.left.y0, m_crop.left.width, m_crop.left.height)
    res_l = load_estimator(None, handedness="left").predict(m_left, m_right, m_cam, roi=m_roi)
    b = cam.baseline_m
    np.testing.assert_allclose(_unmirror(res_l.joints_m, b), res_r.joints_m, atol=1e-3)
    truth_l = _unmirror(s.joints_m, b)
    err_r = np.linalg.norm(res_r.joints_m - s.joints_m, axis=1).mean()
    err_l = np.linalg.norm(res_l.joints_m - truth_l, axis=1).mean()
    assert err_l == pytest.approx(err_r, abs=1e-3)
    res_w = pipe_r.predict(m_left, m_right, m_cam, roi=m_roi)
    err_w = np.linalg.norm(res_w.joints_m - truth_l, axis=1).mean()
    assert err_w > err_l + 0.01, (err_w, err_l)


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


def test_known_handedness_estimator(net, pair):
    from hand_mesh_core.data.types import StereoSample

    left, right, cam = pair
    torch.nn.init.normal_(net.uv_head.weight, std=0.02, generator=torch.Generator().manual_seed(2))
    samples = [StereoSample(left, right, cam, "right"),
               StereoSample(left[::-1].copy(), right[::-1].copy(), cam, "left")]
    est = KnownHandednessEstimator(HandMeshPipeline(net, handedness="left"), samples)
    assert isinstance(est, HandMeshEstimator)
    roi = (40.0, 30.0, 50.0, 50.0)
    for s in samples:
        got = est.predict(s.left, s.right, s.camera, roi=roi)
        want = HandMeshPipeline(net, handedness=s.handedness).predict(s.left, s.right, s.camera,
                                                                      roi=roi)
        assert got.handedness == s.handedness
        np.testing.assert_array_equal(got.joints_m, want.joints_m)
    # the two sides really differ on these inputs
    other = HandMeshPipeline(net).predict(samples[1].left, samples[1].right, cam, roi=roi)
    assert np.abs(other.joints_m - est.predict(samples[1].left, samples[1].right, cam,
                                               roi=roi).joints_m).max() > 1e-3
    with pytest.raises(ValueError, match="only runs the pairs it was built with"):
        est.predict(left.copy(), right, cam, roi=roi)
    with pytest.raises(TypeError, match="HandMeshPipeline"):
        KnownHandednessEstimator(object(), samples)
