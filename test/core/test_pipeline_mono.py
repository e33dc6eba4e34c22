"""HandMeshPipeline's monocular path (z-head networks): the left image alone, both hands."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.checkpoint import save_checkpoint
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.decode import CropBatch
from hand_mesh_core.model.network import HandMeshNet, with_z_head
from hand_mesh_core.model.topology import HandTopology
from hand_mesh_core.pipeline import HandMeshPipeline, KnownHandednessEstimator, load_estimator

V = 24
CFG = NetworkConfig(input_size=32, stem_width=4, stage_widths=(4, 8), head_channels=4,
                    feature_dim=16)


def _topology() -> HandTopology:
    g = torch.Generator().manual_seed(0)
    faces = torch.stack([torch.arange(V - 2), torch.arange(1, V - 1), torch.arange(2, V)], 1)
    return HandTopology(faces, torch.softmax(torch.randn(21, V, generator=g), 1),
                        torch.randn(V, 3, generator=g) * 0.05, "pipeline-mono-test")


def _randomise_heads(net: HandMeshNet) -> HandMeshNet:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for head in (net.uv_head, net.z_head):
            if head is not None:
                head.weight.normal_(std=0.02, generator=g)
                head.bias.normal_(std=0.02, generator=g)
    return net.eval()


@pytest.fixture
def stereo_net() -> HandMeshNet:
    torch.manual_seed(0)
    return _randomise_heads(HandMeshNet(CFG, _topology()))


@pytest.fixture
def mono_net(stereo_net) -> HandMeshNet:
    return _randomise_heads(with_z_head(stereo_net))


@pytest.fixture
def pair():
    cam = StereoCamera().scaled(0.25).replace(cx=70.25)  # off-centre: cx -> W - 1 - cx shows
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8)
    right = np.roll(left, -30, axis=1)
    return left, right, cam


CROP = StereoCrop(CropTransform(45.3, 30.1, 52.7, 52.7, 32, 32), 24.6)


def test_auto_mode_and_validation(stereo_net, mono_net):
    assert HandMeshPipeline(mono_net).monocular is True
    assert HandMeshPipeline(stereo_net).monocular is False
    assert HandMeshPipeline(mono_net, monocular=False).monocular is False
    with pytest.raises(ValueError, match="monocular=True needs a z-head network"):
        HandMeshPipeline(stereo_net, monocular=True)
    with pytest.raises(TypeError, match="monocular must be True, False or None"):
        HandMeshPipeline(mono_net, monocular="yes")


def test_right_hand_runs_forward_mono_on_the_left_crop(mono_net, pair):
    left, right, cam = pair
    res = HandMeshPipeline(mono_net).predict_crop(left, right, cam, CROP)
    # naive reference: forward_mono on the left window of the left image
    lc = torch.from_numpy(CROP.left.apply(left).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        ref = mono_net.forward_mono(lc, CropBatch.from_crops([CROP]), cam.K_tensor())
    np.testing.assert_allclose(res.vertices_m, ref.vertices[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(res.joints_m, ref.joints[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(res.uv_left, ref.uv_left[0].numpy(), atol=1e-4)
    assert math.isnan(res.confidence) and res.handedness == "right"
    assert res.roi_left == pytest.approx((45.3, 30.1, 52.7, 52.7))
    assert res.vertices_m.dtype == np.float32 and res.faces.dtype == np.int32
    # monocular=False: the binocular forward of the same network, with a left-right confidence
    both = HandMeshPipeline(mono_net, monocular=False).predict_crop(left, right, cam, CROP)
    assert 0.0 < both.confidence < 1.0


@pytest.mark.parametrize("handedness", ["right", "left"])
def test_right_image_is_never_read(mono_net, stereo_net, pair, handedness):
    left, right, cam = pair
    garbage = np.random.default_rng(9).integers(0, 255, right.shape, dtype=np.uint8)
    pipe = HandMeshPipeline(mono_net, handedness=handedness)
    a = pipe.predict_crop(left, right, cam, CROP)
    for other in (np.zeros_like(right), garbage):
        b = pipe.predict_crop(left, other, cam, CROP)
        np.testing.assert_array_equal(a.vertices_m, b.vertices_m)
        np.testing.assert_array_equal(a.joints_m, b.joints_m)
    # external ROI: the left window comes from the box alone, so predict() agrees too
    roi = (40.0, 30.0, 50.0, 50.0)
    np.testing.assert_array_equal(pipe.predict(left, right, cam, roi=roi).vertices_m,
                                  pipe.predict(left, garbage, cam, roi=roi).vertices_m)
    # the test can fail: the binocular pipeline does read the right image
    stereo = HandMeshPipeline(stereo_net, handedness=handedness)
    diff = (stereo.predict_crop(left, right, cam, CROP).vertices_m
            - stereo.predict_crop(left, garbage, cam, CROP).vertices_m)
    assert np.abs(diff).max() > 1e-4


def test_left_hand_is_the_mirror_of_the_right_hand(mono_net, pair):
    """A left hand in the flipped left image (camera cx' = W - 1 - cx, window mirrored) gives
    the right-hand result mirrored by x -> -x (one camera: no baseline involved)."""
    left, right, cam = pair
    res_r = HandMeshPipeline(mono_net).predict_crop(left, right, cam, CROP)
    w = cam.width
    c = CROP.left
    m_crop = StereoCrop(CropTransform(w - 1 - c.x0 - c.width, c.y0, c.width, c.height, 32, 32),
                        CROP.shift_px)
    m_cam = cam.replace(cx=w - 1 - cam.cx)
    m_left = left[:, ::-1].copy()
    res_l = HandMeshPipeline(mono_net, handedness="left").predict_crop(m_left, right, m_cam,
                                                                       m_crop)
    flip = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(res_l.vertices_m * flip, res_r.vertices_m, atol=1e-6)
    np.testing.assert_allclose(res_l.joints_m * flip, res_r.joints_m, atol=1e-6)
    np.testing.assert_array_equal(res_l.faces, res_r.faces[:, ::-1])
    uv = project(torch.from_numpy(res_l.vertices_m)[None].double(),
                 m_cam.K_tensor(torch.float64))[0].numpy()
    np.testing.assert_allclose(res_l.uv_left, uv, atol=1e-3)
    assert res_l.roi_left == pytest.approx((m_crop.left.x0, c.y0, c.width, c.height))
    # not mirroring gives another answer (the test can fail)
    res_w = HandMeshPipeline(mono_net).predict_crop(m_left, right, m_cam, m_crop)
    assert np.abs(res_w.joints_m * flip - res_r.joints_m).max() > 1e-3


def test_known_handedness_twin_keeps_the_mode(mono_net):
    pipe = HandMeshPipeline(mono_net, monocular=False)
    twin = KnownHandednessEstimator(pipe, []).pipelines["left"]
    assert twin.monocular is False and twin.handedness == "left"
    assert KnownHandednessEstimator(HandMeshPipeline(mono_net), []).pipelines[
        "left"].monocular is True


def test_load_estimator_picks_the_mode_from_the_checkpoint(tmp_path):
    topo = HandTopology.default()  # load_estimator checks the default hand model
    stereo = HandMeshNet(CFG, topo)
    s_path = save_checkpoint(tmp_path / "s.safetensors", stereo)
    m_path = save_checkpoint(tmp_path / "m.safetensors", with_z_head(stereo))
    assert load_estimator(s_path).monocular is False
    assert load_estimator(m_path).monocular is True
    assert load_estimator(m_path, monocular=False).monocular is False
    with pytest.raises(ValueError, match="monocular=True needs a z-head network"):
        load_estimator(s_path, monocular=True)
