"""Crop batches and the crop-(u, v) -> absolute mesh path."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.decode import CropBatch, decode_mono, decode_stereo


def _mesh(b: int, v: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(b, v, 3, generator=g, dtype=dtype) * 0.05
    pts[..., 2] += 0.4 + 0.5 * torch.rand(b, 1, generator=g, dtype=dtype)
    return pts


def test_crop_batch_matches_crop_transform(crops_factory):
    crops = crops_factory(3, 64)
    cb = CropBatch.from_crops(crops, dtype=torch.float64)
    uv = torch.rand(3, 7, 2, dtype=torch.float64) * 64
    full_l = cb.to_full(uv, "left")
    full_r = cb.to_full(uv, "right")
    for i, c in enumerate(crops):
        torch.testing.assert_close(full_l[i], c.left.to_full(uv[i]))
        torch.testing.assert_close(full_r[i], c.right.to_full(uv[i]))
        torch.testing.assert_close(cb.crop_K(torch.eye(3, dtype=torch.float64) * 0 + torch.tensor(
            [[800.0, 0, 320], [0, 810, 240], [0, 0, 1]], dtype=torch.float64), "right")[i],
            torch.as_tensor(c.right.crop_K([[800.0, 0, 320], [0, 810, 240], [0, 0, 1]])))
    torch.testing.assert_close(cb.to_crop(full_r, "right"), uv)
    torch.testing.assert_close(cb.to_crop(full_l, "left"), uv)


def test_single_view_crops_have_zero_shift(crops_factory):
    crops = crops_factory(2, 64)
    cb = CropBatch.from_crops([c.left for c in crops])
    assert torch.all(cb.shift_px == 0)
    assert len(cb) == 2


def test_decode_stereo_recovers_known_mesh(crops_factory, camera):
    crops = crops_factory(2, 128)
    cb = CropBatch.from_crops(crops, dtype=torch.float64)
    K = camera.K_tensor(torch.float64)
    pts = _mesh(2, 50)
    right = pts - torch.tensor([camera.baseline_m, 0.0, 0.0], dtype=torch.float64)
    uv_lc = cb.to_crop(project(pts, K), "left")
    uv_rc = cb.to_crop(project(right, K), "right")
    dec = decode_stereo(uv_lc, uv_rc, cb, K, camera.baseline_m)
    torch.testing.assert_close(dec.vertices_left, pts, atol=1e-9, rtol=0)
    torch.testing.assert_close(dec.vertices_right, right, atol=1e-9, rtol=0)
    torch.testing.assert_close(dec.depth_m, pts[..., 2], atol=1e-9, rtol=0)
    # Per-sample baselines and intrinsics broadcast the same way.
    dec2 = decode_stereo(uv_lc, uv_rc, cb, K.expand(2, 3, 3),
                         torch.full((2,), camera.baseline_m, dtype=torch.float64))
    torch.testing.assert_close(dec2.vertices_left, pts, atol=1e-9, rtol=0)


def test_decode_stereo_wrong_baseline_scales_depth(crops_factory, camera):
    cb = CropBatch.from_crops(crops_factory(1, 128), dtype=torch.float64)
    K = camera.K_tensor(torch.float64)
    pts = _mesh(1, 10)
    right = pts - torch.tensor([camera.baseline_m, 0.0, 0.0], dtype=torch.float64)
    uv_lc = cb.to_crop(project(pts, K), "left")
    uv_rc = cb.to_crop(project(right, K), "right")
    dec = decode_stereo(uv_lc, uv_rc, cb, K, 2 * camera.baseline_m)
    torch.testing.assert_close(dec.depth_m, 2 * pts[..., 2])


def test_decode_mono_roundtrip(crops_factory, camera):
    cb = CropBatch.from_crops(crops_factory(2, 96), dtype=torch.float64)
    K = camera.K_tensor(torch.float64)
    pts = _mesh(2, 20)
    right = pts - torch.tensor([camera.baseline_m, 0.0, 0.0], dtype=torch.float64)
    p, uv = decode_mono(cb.to_crop(project(right, K), "right"), right[..., 2], cb, K, "right")
    torch.testing.assert_close(p, right)
    torch.testing.assert_close(uv, project(right, K))


def test_decode_stereo_gradcheck(crops_factory, camera):
    cb = CropBatch.from_crops(crops_factory(1, 64), dtype=torch.float64)
    K = camera.K_tensor(torch.float64)
    pts = _mesh(1, 4)
    uv_l = cb.to_crop(project(pts, K), "left").requires_grad_(True)
    uv_r = cb.to_crop(project(pts - torch.tensor([camera.baseline_m, 0.0, 0.0],
                                                 dtype=torch.float64), K), "right")
    uv_r.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: decode_stereo(a, b, cb, K, camera.baseline_m).vertices_right, (uv_l, uv_r))


def test_validation_errors(crops_factory, camera):
    cb = CropBatch.from_crops(crops_factory(2, 64))
    K = camera.K_tensor()
    uv = torch.zeros(2, 5, 2)
    with pytest.raises(ValueError, match="view must be one of"):
        cb.to_full(uv, "middle")
    with pytest.raises(ValueError, match="must not be empty"):
        CropBatch.from_crops([])
    with pytest.raises(TypeError, match="StereoCrop or CropTransform"):
        CropBatch.from_crops([(0, 0, 1, 1)])
    with pytest.raises(ValueError, match=r"uv_left_crop must have shape \(2, V, 2\)"):
        decode_stereo(torch.zeros(3, 5, 2), uv, cb, K, 0.1)
    with pytest.raises(ValueError, match="must match"):
        decode_stereo(uv, torch.zeros(2, 6, 2), cb, K, 0.1)
    with pytest.raises(ValueError, match="baseline_m must be > 0"):
        decode_stereo(uv, uv, cb, K, 0.0)
    with pytest.raises(ValueError, match="depth_m must have shape"):
        decode_mono(uv, torch.ones(2, 4), cb, K)


def test_bound_depth_spread_matches_naive_and_blocks_outlier_gradients():
    from hand_mesh_core.model.decode import bound_depth_spread

    g = torch.Generator().manual_seed(3)
    depth = (0.6 + 0.05 * torch.randn(2, 9, generator=g, dtype=torch.float64))
    depth[0, 2], depth[1, 7] = 17.0, 0.01  # one far and one near outlier
    depth.requires_grad_(True)
    out = bound_depth_spread(depth, 0.2)
    for b in range(2):  # naive reference: sorted middle value, then a scalar clamp per vertex
        med = sorted(depth[b].tolist())[4]
        for v in range(9):
            want = min(max(depth[b, v].item(), max(med - 0.2, 1e-3)), med + 0.2)
            assert out[b, v].item() == pytest.approx(want, abs=1e-12)
    out.sum().backward()
    assert depth.grad[0, 2] == 0 and depth.grad[1, 7] == 0  # clamped: no depth gradient
    inside = torch.ones_like(depth, dtype=torch.bool)
    inside[0, 2] = inside[1, 7] = False
    assert bool((depth.grad[inside] == 1).all())  # the median is detached
    with pytest.raises(ValueError, match="must be > 0"):
        bound_depth_spread(depth, 0.0)


def test_decode_stereo_depth_bound(crops_factory, camera):
    crops = crops_factory(2, 128)
    cb = CropBatch.from_crops(crops, dtype=torch.float64)
    K = camera.K_tensor(torch.float64)
    pts = _mesh(2, 50)
    right = pts - torch.tensor([camera.baseline_m, 0.0, 0.0], dtype=torch.float64)
    uv_lc = cb.to_crop(project(pts, K), "left")
    uv_rc = cb.to_crop(project(right, K), "right")
    same = cb.to_crop(cb.to_full(uv_lc, "left"), "right")  # zero disparity
    uv_rc[0, 5] = same[0, 5] - torch.tensor([1e-4, 0.0], dtype=torch.float64)  # "infinity"
    free = decode_stereo(uv_lc, uv_rc, cb, K, camera.baseline_m)
    bound = decode_stereo(uv_lc, uv_rc, cb, K, camera.baseline_m, max_depth_from_median_m=0.2)
    assert free.depth_m[0, 5] > 100.0
    med = float(free.depth_m[0].median())
    assert float(bound.depth_m[0, 5]) == pytest.approx(med + 0.2)
    # The vertex stays on its left ray, and the rest of the mesh is untouched.
    torch.testing.assert_close(project(bound.vertices_left, K), free.uv_left)
    keep = torch.ones(2, 50, dtype=torch.bool)
    keep[0, 5] = False
    torch.testing.assert_close(bound.vertices_left[keep], pts[keep], atol=1e-9, rtol=0)
