"""Crops keep absolute geometry: round trips and crop intrinsics."""
import numpy as np
import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.projection import project, triangulate


def test_to_crop_to_full_round_trip():
    c = CropTransform(100.3, 50.7, 200.0, 180.0, 128, 96)
    uv = torch.rand(10, 2, dtype=torch.float64) * 640
    assert torch.allclose(c.to_full(c.to_crop(uv)), uv, atol=1e-9)


def test_pixel_centre_convention():
    # a 2x downscale of the window [0, 4) maps crop pixel 0 to full-image pixel 0.5
    c = CropTransform(-0.5, -0.5, 4.0, 4.0, 2, 2)
    assert torch.allclose(c.to_full(torch.tensor([[0.0, 0.0]], dtype=torch.float64)),
                          torch.tensor([[0.5, 0.5]], dtype=torch.float64))


def test_square_is_centred():
    c = CropTransform.square(300.0, 200.0, 100.0, 64)
    centre = c.to_crop(torch.tensor([[300.0, 200.0]], dtype=torch.float64))
    assert torch.allclose(centre, torch.tensor([[31.5, 31.5]], dtype=torch.float64))


def test_crop_K_projects_like_the_transform():
    cam = StereoCamera()
    c = CropTransform.square(400.0, 260.0, 170.0, 128)
    pts = torch.tensor([[0.1, 0.02, 0.65], [0.12, 0.0, 0.7]], dtype=torch.float64)
    via_full = c.to_crop(project(pts, cam.K_tensor(torch.float64)))
    via_crop = project(pts, torch.as_tensor(c.crop_K(cam.K)))
    assert torch.allclose(via_full, via_crop, atol=1e-9)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        c.crop_K(np.eye(4))


def test_apply_matches_transform():
    img = np.zeros((60, 80), np.float32)
    img[30, 40] = 1.0
    c = CropTransform(20.0, 10.0, 40.0, 40.0, 80, 80)  # 2x upsampling
    out = c.apply(img)
    peak = np.unravel_index(np.argmax(out), out.shape)
    expect = c.to_crop(torch.tensor([[40.0, 30.0]], dtype=torch.float64))[0]
    assert abs(peak[1] - expect[0].item()) <= 1 and abs(peak[0] - expect[1].item()) <= 1


def test_stereo_crop_sub_pixel_round_trip_to_metres():
    cam = StereoCamera()
    K = cam.K_tensor(torch.float64)
    pts = torch.tensor([[0.08, 0.03, 0.6], [0.1, -0.02, 0.66], [0.05, 0.0, 0.7]],
                       dtype=torch.float64)
    uv_l = project(pts, K)
    uv_r = project(pts - torch.tensor([cam.baseline_m, 0.0, 0.0], dtype=torch.float64), K)
    sc = StereoCrop(CropTransform.square(uv_l[:, 0].mean().item(), uv_l[:, 1].mean().item(),
                                         150.0, 128), shift_px=140.0)
    cl, cr = sc.left.to_crop(uv_l), sc.right.to_crop(uv_r)
    # the hand sits at a similar place in both crops when the shift ~ disparity
    assert (cl[:, 0] - cr[:, 0]).abs().max() < 30
    assert torch.allclose(sc.disparity(cl[:, 0], cr[:, 0]), uv_l[:, 0] - uv_r[:, 0], atol=1e-9)
    back = triangulate(sc.left.to_full(cl), sc.right.to_full(cr), K, cam.baseline_m)
    assert torch.allclose(back, pts, atol=1e-9)


@pytest.mark.parametrize("args, pattern", [
    ((0, 0, 0, 10, 8, 8), "positive size"),
    ((0, 0, 10, 10, 0, 8), "output must have positive size"),
    ((float("nan"), 0, 10, 10, 8, 8), "finite"),
])
def test_validation(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        CropTransform(*args)
