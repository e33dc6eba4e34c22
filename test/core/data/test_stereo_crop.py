"""Stereo crops: round trips full -> crop -> full -> 3D, crop intrinsics, image content."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.config import StereoCropConfig
from hand_mesh_core.data.roi import HandRoi
from hand_mesh_core.data.stereo_crop import (
    crop_stereo_pair, crop_stereo_sample, stereo_crop_from_box, stereo_crop_from_depth,
    stereo_crop_from_roi, triangulate_crops,
)
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import StereoCrop
from hand_mesh_core.geometry.projection import project

CAM = StereoCamera()   # the STB Bumblebee pair, 640x480


def _hand_points(n=21, seed=0):
    g = torch.Generator().manual_seed(seed)
    centre = torch.tensor([0.10, 0.0, 0.67], dtype=torch.float64)
    return centre + 0.08 * (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5)


def _uv(points, camera, view):
    p = points.clone()
    if view == "right":
        p[..., 0] -= camera.baseline_m
    return project(p, camera.K_tensor(torch.float64))


def _crop_for(points, camera, out=128):
    uv = _uv(points, camera, "left")
    lo, hi = uv.min(0).values, uv.max(0).values
    box = (float(lo[0]) - 10, float(lo[1]) - 10, float(hi[0] - lo[0]) + 20,
           float(hi[1] - lo[1]) + 20)
    shift = camera.fx_baseline / float(points[:, 2].mean())
    return stereo_crop_from_box(box, shift, StereoCropConfig(out_size_px=out))


def test_round_trip_to_subpixel_and_metres():
    pts = _hand_points()
    crop = _crop_for(pts, CAM)
    uv_l, uv_r = _uv(pts, CAM, "left"), _uv(pts, CAM, "right")
    c_l, c_r = crop.left.to_crop(uv_l), crop.right.to_crop(uv_r)
    assert (c_l >= 0).all() and (c_l < 128).all() and (c_r >= 0).all() and (c_r < 128).all()
    np.testing.assert_allclose(crop.left.to_full(c_l), uv_l, atol=1e-9)
    np.testing.assert_allclose(crop.right.to_full(c_r), uv_r, atol=1e-9)
    rec = triangulate_crops(c_l, c_r, crop, CAM)
    np.testing.assert_allclose(rec, pts, atol=1e-9)
    # Crop disparity -> full disparity -> depth (StereoCrop.disparity).
    disp = crop.disparity(c_l[:, 0], c_r[:, 0])
    np.testing.assert_allclose(CAM.fx_baseline / disp, pts[:, 2], rtol=1e-9)


def test_crop_intrinsics_project_directly():
    pts = _hand_points(seed=1)
    crop = _crop_for(pts, CAM, out=96)
    s = crop_stereo_pair(np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640, 3), np.uint8),
                         CAM, crop, joints_m=pts.numpy())
    np.testing.assert_allclose(s.joints_uv_left, crop.left.to_crop(_uv(pts, CAM, "left")),
                               atol=1e-3)
    np.testing.assert_allclose(s.joints_uv_right, crop.right.to_crop(_uv(pts, CAM, "right")),
                               atol=1e-3)
    # The two crops differ only in cx, by shift * scale.
    diff = s.K_right - s.K_left
    assert diff[0, 2] == pytest.approx(crop.shift_px * crop.left.scale_x)
    diff[0, 2] = 0
    np.testing.assert_allclose(diff, 0, atol=1e-12)
    assert s.K_left[0, 0] == pytest.approx(CAM.fx * 96 / crop.left.width)


def test_image_content_lands_at_the_mapped_pixel():
    pts = _hand_points(n=3, seed=2)
    crop = _crop_for(pts, CAM, out=128)
    left = np.zeros((480, 640, 3), np.uint8)
    right = np.zeros((480, 640, 3), np.uint8)
    for img, view in ((left, "left"), (right, "right")):
        u, v = _uv(pts, CAM, view)[0].round().numpy().astype(int)
        img[v - 2:v + 3, u - 2:u + 3] = 255          # a 5x5 dot centred on an integer pixel
        img[..., 1] = 0
    mask = left[..., 0] > 0
    s = crop_stereo_pair(left, right, CAM, crop, mask_left=mask, mask_right=right[..., 0] > 0)
    for img, tr, view in ((s.left, crop.left, "left"), (s.right, crop.right, "right")):
        w = img[..., 0].astype(np.float64)
        ys, xs = np.mgrid[:128, :128]
        centroid = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()
        expected = tr.to_crop(_uv(pts, CAM, view)[0].round()).numpy()
        np.testing.assert_allclose(centroid, expected, atol=0.1)
    assert s.mask_left.dtype == bool and s.mask_left.sum() > 0
    assert s.left.shape == (128, 128, 3)


def test_builders_and_sample():
    roi = HandRoi((100.0, 50.0, 200.0, 200.0), 150.0, CAM.fx_baseline / 150.0, 3.0, "skin",
                  True)
    crop = stereo_crop_from_roi(roi, StereoCropConfig(out_size_px=64))
    assert (crop.left.x0, crop.left.y0, crop.left.width) == (100.0, 50.0, 200.0)
    assert crop.shift_px == 150.0 and crop.right.x0 == -50.0
    # Crop pixel 0 is centred half a crop pixel (200 / 64 / 2 full px) inside the window edge.
    half = 0.5 * 200 / 64
    assert crop.left.to_crop(torch.tensor([100.0 + half, 50.0 + half], dtype=torch.float64)
                             ).tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    small = stereo_crop_from_box((10, 10, 20, 30), 5.0, StereoCropConfig(min_side_px=64))
    assert small.left.width == 64 and small.left.to_crop(torch.tensor([20.0, 25.0])).tolist() \
        == pytest.approx([127.5, 127.5])
    d = stereo_crop_from_depth((320.0, 240.0), 100.0, 0.5, CAM)
    assert d.shift_px == pytest.approx(CAM.fx_baseline / 0.5)
    assert d.left.to_crop(torch.tensor([320.0, 240.0])).tolist() == pytest.approx([127.5, 127.5])
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    sample = StereoSample(img, img, CAM, joints_m=_hand_points().numpy().astype(np.float32))
    out = crop_stereo_sample(sample, crop)
    assert out.joints_uv_left.shape == (21, 2) and out.mask_left is None


def test_validation():
    with pytest.raises(ValueError, match="positive size"):
        stereo_crop_from_box((0, 0, 0, 10), 1.0)
    with pytest.raises(ValueError, match="shift_px"):
        stereo_crop_from_box((0, 0, 10, 10), -1.0)
    with pytest.raises(ValueError, match="depth_m"):
        stereo_crop_from_depth((0, 0), 10, 0.0, CAM)
    with pytest.raises(TypeError, match="HandRoi"):
        stereo_crop_from_roi((0, 0, 10, 10))
    with pytest.raises(TypeError, match="StereoCropConfig"):
        stereo_crop_from_box((0, 0, 10, 10), 1.0, {"out_size_px": 3})
    with pytest.raises(ConfigError, match="> 0"):
        StereoCropConfig(out_size_px=0)
    crop = stereo_crop_from_box((0, 0, 10, 10), 1.0)
    img = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(TypeError, match="StereoCrop"):
        crop_stereo_pair(img, img, CAM, (0, 0, 10, 10))
    with pytest.raises(ValueError, match="camera size"):
        crop_stereo_pair(img[:10], img, CAM, crop)
    with pytest.raises(ValueError, match="mask_left"):
        crop_stereo_pair(img, img, CAM, crop, mask_left=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        crop_stereo_pair(img, img, CAM, crop, joints_m=np.zeros((21, 2)))
    with pytest.raises(TypeError, match="StereoSample"):
        crop_stereo_sample("x", crop)
    assert isinstance(crop, StereoCrop)
