"""Mirroring a rectified pair (left hands through the right-hand network): closed forms."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.mesh import face_normals, uv_sphere
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.mirror import (mirror_camera, mirror_faces, mirror_points,
                                         mirror_sample, mirror_stereo_crop,
                                         mirror_stereo_images)

#: Off-centre principal point: a missing cx -> W - 1 - cx would show.
CAM = StereoCamera(fx=500.0, fy=510.0, cx=70.3, cy=41.7, baseline_m=0.08, width=128, height=96)


def _points(n: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-0.05, 0.1, n), rng.uniform(-0.05, 0.05, n),
                            rng.uniform(0.4, 0.8, n)])


def _uv(points: np.ndarray, camera: StereoCamera, view: str) -> np.ndarray:
    """Naive pinhole projection into ``view`` (the right camera is at +B along x)."""
    x = points[:, 0] - (camera.baseline_m if view == "right" else 0.0)
    return np.column_stack([camera.fx * x / points[:, 2] + camera.cx,
                            camera.fy * points[:, 1] / points[:, 2] + camera.cy])


def test_mirror_camera():
    m = mirror_camera(CAM)
    assert m.cx == pytest.approx(CAM.width - 1 - CAM.cx)
    same = ("fx", "fy", "cy", "baseline_m", "size")
    assert [getattr(m, k) for k in same] == [getattr(CAM, k) for k in same]
    assert mirror_camera(m) == CAM
    with pytest.raises(TypeError, match="StereoCamera"):
        mirror_camera("camera")


def test_mirrored_points_project_to_the_flipped_swapped_views():
    """New left view = flipped right view, new right view = flipped left view (derivation 1-3)."""
    p = _points()
    pm = mirror_points(p, CAM.baseline_m)
    cm = mirror_camera(CAM)
    w1 = CAM.width - 1
    ul, ur = _uv(p, CAM, "left"), _uv(p, CAM, "right")
    ml, mr = _uv(pm, cm, "left"), _uv(pm, cm, "right")
    np.testing.assert_allclose(ml[:, 0], w1 - ur[:, 0], atol=1e-9)
    np.testing.assert_allclose(mr[:, 0], w1 - ul[:, 0], atol=1e-9)
    np.testing.assert_allclose(ml[:, 1], ur[:, 1], atol=1e-9)
    np.testing.assert_allclose(mr[:, 1], ul[:, 1], atol=1e-9)
    # disparity (positive) is kept: same depth in both pairs
    np.testing.assert_allclose(ml[:, 0] - mr[:, 0], ul[:, 0] - ur[:, 0], atol=1e-9)


def test_mirror_points_numpy_and_torch():
    p = _points(7, seed=1)
    pm = mirror_points(p, 0.1)
    np.testing.assert_allclose(pm, np.column_stack([0.1 - p[:, 0], p[:, 1], p[:, 2]]))
    np.testing.assert_allclose(mirror_points(pm, 0.1), p, atol=1e-15)  # an involution
    assert not np.shares_memory(pm, p)
    t = torch.from_numpy(p).float()[None]
    tm = mirror_points(t, 0.1)
    assert isinstance(tm, torch.Tensor) and tm.dtype == torch.float32 and tm.shape == t.shape
    np.testing.assert_allclose(tm[0].numpy(), pm, atol=1e-6)
    assert t[0, 0, 0] == pytest.approx(p[0, 0])  # input untouched
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        mirror_points(np.zeros((4, 2)), 0.1)


def test_mirror_stereo_images():
    rng = np.random.default_rng(2)
    left = rng.integers(0, 255, (6, 9, 3), dtype=np.uint8)
    right = rng.integers(0, 255, (6, 9, 3), dtype=np.uint8)
    ml, mr = mirror_stereo_images(left, right)
    for r in range(6):
        for c in range(9):
            np.testing.assert_array_equal(ml[r, c], right[r, 8 - c])
            np.testing.assert_array_equal(mr[r, c], left[r, 8 - c])
    assert ml.flags.c_contiguous and mr.flags.c_contiguous
    bl, br = mirror_stereo_images(left[..., 0] > 100, right[..., 0] > 100)  # masks too
    np.testing.assert_array_equal(bl, (right[..., 0] > 100)[:, ::-1])
    with pytest.raises(ValueError, match="one shape"):
        mirror_stereo_images(left, right[:5])
    with pytest.raises(ValueError, match="one shape"):
        mirror_stereo_images(np.zeros(3), np.zeros(3))


def test_mirrored_crop_samples_the_flipped_crop():
    """Crops of the mirrored pair == flipped original crops, swapped (derivation 4)."""
    yy, xx = np.mgrid[0:CAM.height, 0:CAM.width].astype(np.float32)
    left = np.sin(xx / 7.0) + np.cos(yy / 5.0) + xx / 50.0
    right = np.cos(xx / 6.0) * np.sin(yy / 9.0) - yy / 40.0
    crop = StereoCrop(CropTransform(30.3, 20.7, 41.3, 41.3, 32, 32), 13.6)
    mcrop = mirror_stereo_crop(crop, CAM.width)
    assert mcrop.shift_px == crop.shift_px
    ml, mr = mirror_stereo_images(left, right)
    np.testing.assert_allclose(mcrop.left.apply(ml), crop.right.apply(right)[:, ::-1],
                               atol=0.02)
    np.testing.assert_allclose(mcrop.right.apply(mr), crop.left.apply(left)[:, ::-1],
                               atol=0.02)
    # continuous check: crop pixel j of the mirrored left crop sits at W - 1 - (crop pixel
    # out - 1 - j of the original right crop)
    j = torch.arange(32, dtype=torch.float64)
    uv = torch.stack([j, j], -1)
    full_m = mcrop.left.to_full(uv)
    full_o = crop.right.to_full(torch.stack([31 - j, j], -1))
    np.testing.assert_allclose(full_m[:, 0], CAM.width - 1 - full_o[:, 0], atol=1e-9)
    back = mirror_stereo_crop(mcrop, CAM.width)
    assert back.left.x0 == pytest.approx(crop.left.x0) and back.shift_px == crop.shift_px
    with pytest.raises(TypeError, match="StereoCrop"):
        mirror_stereo_crop(crop.left, CAM.width)
    with pytest.raises(ValueError, match="width"):
        mirror_stereo_crop(crop, 0)


def test_mirror_faces_keeps_outward_normals():
    v, f = uv_sphere(0.05, 6, 8, (0.02, 0.0, 0.5), dtype=torch.float64)
    centre = torch.tensor([0.02, 0.0, 0.5], dtype=torch.float64)
    outward = ((face_normals(v[None], f)[0] * (v[f].mean(1) - centre)).sum(-1) > 0).all()
    assert bool(outward)
    vm = mirror_points(v, 0.1)
    cm = mirror_points(centre[None], 0.1)[0]
    fm = mirror_faces(f)
    np.testing.assert_array_equal(fm.numpy(), f.numpy()[:, ::-1])
    # the same oriented triangles as HandModel.faces_for("left") ([a, c, b]): a cyclic rotation
    np.testing.assert_array_equal(np.roll(fm.numpy(), 1, axis=1), f.numpy()[:, [0, 2, 1]])
    assert bool(((face_normals(vm[None], fm)[0] * (vm[fm].mean(1) - cm)).sum(-1) > 0).all())
    # without reversing the winding the mirrored sphere would point inwards
    assert bool(((face_normals(vm[None], f)[0] * (vm[f].mean(1) - cm)).sum(-1) < 0).all())
    np.testing.assert_array_equal(mirror_faces(f.numpy()), fm.numpy())
    with pytest.raises(ValueError, match=r"\(F, 3\)"):
        mirror_faces(np.zeros((3, 4), np.int64))


def _sample(masks: str = "both") -> StereoSample:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (CAM.height, CAM.width, 3), dtype=np.uint8)
    ml = img[..., 0] > 128
    mr = img[..., 1] > 128
    return StereoSample(img, img[:, ::-1].copy(), CAM, "left", _points(21).astype(np.float32),
                        _points(30, 4).astype(np.float32),
                        ml if masks in ("both", "left") else None,
                        mr if masks in ("both", "right") else None, 5, "src")


def test_mirror_sample():
    s = _sample()
    m = mirror_sample(s)
    assert m.handedness == "right" and m.camera == mirror_camera(CAM) and m.stamp_ns == 5
    assert m.source == "src/mirrored"
    np.testing.assert_array_equal(m.left, s.right[:, ::-1])
    np.testing.assert_array_equal(m.right, s.left[:, ::-1])
    np.testing.assert_array_equal(m.mask_left, s.mask_right[:, ::-1])
    np.testing.assert_array_equal(m.mask_right, s.mask_left[:, ::-1])
    np.testing.assert_allclose(m.joints_m[:, 0], CAM.baseline_m - s.joints_m[:, 0], atol=1e-7)
    np.testing.assert_array_equal(m.vertices_m[:, 1:], s.vertices_m[:, 1:])
    # labels of the mirrored sample project where the mirrored images put them
    np.testing.assert_allclose(_uv(m.joints_m.astype(np.float64), m.camera, "left")[:, 0],
                               CAM.width - 1 - _uv(s.joints_m.astype(np.float64), CAM,
                                                   "right")[:, 0], atol=1e-3)
    back = mirror_sample(m)
    np.testing.assert_array_equal(back.left, s.left)
    np.testing.assert_allclose(back.joints_m, s.joints_m, atol=1e-6)
    assert back.handedness == "left" and back.camera.cx == pytest.approx(CAM.cx)
    only_left = mirror_sample(_sample("left"))
    assert only_left.mask_left is None
    np.testing.assert_array_equal(only_left.mask_right, s.mask_left[:, ::-1])
    only_right = mirror_sample(_sample("right"))
    assert only_right.mask_right is None
    np.testing.assert_array_equal(only_right.mask_left, s.mask_right[:, ::-1])
    unlabelled = mirror_sample(StereoSample(s.left, s.right, CAM))
    assert unlabelled.joints_m is None and unlabelled.vertices_m is None
    assert unlabelled.source == "mirrored" and unlabelled.handedness == "left"
    with pytest.raises(TypeError, match="StereoSample"):
        mirror_sample(s.left)


def test_torch_projection_agrees_with_naive():
    """The pipeline recomputes uv_left with geometry.projection.project: same as _uv."""
    p = _points(5, seed=6)
    uv = project(torch.from_numpy(p)[None], CAM.K_tensor(torch.float64))[0].numpy()
    np.testing.assert_allclose(uv, _uv(p, CAM, "left"), atol=1e-9)
