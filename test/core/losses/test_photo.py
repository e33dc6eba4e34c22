"""Photo-consistency: crop disparity, warping, SSIM+L1, and the textured-plane key test."""
from __future__ import annotations

import math

import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.mesh import grid_plane
from hand_mesh_core.losses.photo import (
    PHOTO_ALPHA, PhotoConsistencyLoss, crop_disparity_offset, photo_consistency_loss,
    photometric_error, ssim_map, warp_horizontal,
)
from hand_mesh_core.render.config import RenderConfig
from hand_mesh_core.render.renderer import render_mesh, to_right_frame

F64 = torch.float64
CAM = StereoCamera()
DEPTH_M = 0.6
PLANE_HALF_M = 0.04
#: Texture wavelengths on the plane (m): ~6-8 crop px at 0.6 m, smooth for bilinear sampling.
WAVE_X_M, WAVE_Y_M = 0.011, 0.013


def _texture(x, y):
    """Procedural RGB texture of the plane at left-frame (x, y) metres; (3, ...) in [0, 1]."""
    chans = []
    for k in range(3):
        phase = 1.3 * k
        t = (0.5 + 0.2 * torch.sin(2 * math.pi * x / WAVE_X_M + phase)
             + 0.2 * torch.cos(2 * math.pi * (y / WAVE_Y_M + 0.3 * x / WAVE_X_M) - phase))
        chans.append(t)
    return torch.stack(chans)


def _view_image(crop: CropTransform, view: str) -> torch.Tensor:
    """Analytic (1, 3, H, W) image of the textured plane at DEPTH_M in one crop."""
    h, w = crop.out_height, crop.out_width
    v, u = torch.meshgrid(torch.arange(h, dtype=F64), torch.arange(w, dtype=F64), indexing="ij")
    full = crop.to_full(torch.stack([u, v], -1))
    x = (full[..., 0] - CAM.cx) / CAM.fx * DEPTH_M
    y = (full[..., 1] - CAM.cy) / CAM.fy * DEPTH_M
    if view == "right":
        x = x + CAM.baseline_m  # right-frame point -> left frame
    on_plane = (x.abs() <= PLANE_HALF_M) & (y.abs() <= PLANE_HALF_M)
    background = 0.3 + 0.1 * torch.sin(u / 3.0) * torch.cos(v / 5.0)
    img = torch.where(on_plane, _texture(x, y), background)
    return img.unsqueeze(0)


@pytest.fixture(scope="module")
def stereo_scene():
    crop = StereoCrop(CropTransform.square(CAM.cx + 30.0, CAM.cy - 10.0, 256, 128),
                      shift_px=150.0)
    K = {view: torch.tensor(c.crop_K(CAM.K), dtype=F64)
         for view, c in (("left", crop.left), ("right", crop.right))}
    return crop, K, _view_image(crop.left, "left"), _view_image(crop.right, "right")


def _plane(depth_m):
    # Plane centred on the left optical axis, textured in the left frame.
    return grid_plane(2 * PLANE_HALF_M, 2 * PLANE_HALF_M, 4, 4, depth_m, dtype=F64)


def _branch_loss(scene, error_m, view):
    crop, K, left_img, right_img = scene
    v, f = _plane(DEPTH_M)
    v_true_cam = v if view == "left" else to_right_frame(v, CAM.baseline_m)
    cfg = RenderConfig(soft_mask=False, normals=False)
    mask = render_mesh(v_true_cam, f, K[view], (128, 128), cfg).mask
    assert mask.sum() > 1000
    moved = v + torch.tensor([0.0, 0.0, error_m], dtype=F64)
    v_cam = moved if view == "left" else to_right_frame(moved, CAM.baseline_m)
    depth = render_mesh(v_cam, f, K[view], (128, 128), cfg).depth_m
    source, target = (right_img, left_img) if view == "left" else (left_img, right_img)
    return photo_consistency_loss(source, target, depth, mask, CAM.fx, CAM.baseline_m,
                                  crop.shift_px, crop.left.scale_x, target_view=view).item()


@pytest.mark.parametrize("view", ["right", "left"])
def test_key_textured_plane_loss_minimal_at_true_depth(stereo_scene, view, capsys):
    errors_mm = (10.0, 7.5, 5.0, 2.5, 0.0)
    losses = [_branch_loss(stereo_scene, e * 1e-3, view) for e in errors_mm]
    with capsys.disabled():
        print(f"\n[photo key test, {view} view] depth error mm -> loss: "
              + ", ".join(f"{e:g}: {v:.5f}" for e, v in zip(errors_mm, losses)))
    assert losses[-1] < 2e-3  # near zero at the truth (bilinear resampling error only)
    assert losses[0] > 10 * losses[-1]  # a 1 cm error is clearly worse
    assert all(a > b for a, b in zip(losses, losses[1:]))  # monotone towards the truth
    # Overshooting the truth is penalised too.
    assert _branch_loss(stereo_scene, -5e-3, view) > 5 * losses[-1]


def test_crop_offset_matches_stereo_crop_geometry():
    crop = StereoCrop(CropTransform(100.3, 50.0, 200.0, 160.0, 128, 96), shift_px=120.0)
    depth = torch.tensor([[[0.5, 0.7], [0.0, 0.9]]], dtype=F64)
    offset, valid = crop_disparity_offset(depth, CAM.fx, CAM.baseline_m, crop.shift_px,
                                          crop.left.scale_x)
    assert valid.tolist() == [[[True, True], [False, True]]]
    # A point at depth z seen at full-image u_r in the right image is at u_l = u_r + fx B / z.
    u_r = torch.tensor([300.0], dtype=F64)
    for z in (0.5, 0.7, 0.9):
        u_l = u_r + CAM.fx_baseline / z
        pl = crop.left.to_crop(torch.stack([u_l, torch.zeros(1, dtype=F64)], -1))[0, 0]
        pr = crop.right.to_crop(torch.stack([u_r, torch.zeros(1, dtype=F64)], -1))[0, 0]
        got = offset[depth == z]
        torch.testing.assert_close(got, (pl - pr).reshape(1))
        torch.testing.assert_close(crop.disparity(pl, pr), u_l[0] - u_r[0])
    assert offset[0, 1, 0] == 0
    left_off, _ = crop_disparity_offset(depth, CAM.fx, CAM.baseline_m, crop.shift_px,
                                        crop.left.scale_x, target_view="left")
    torch.testing.assert_close(left_off, -offset)
    # Per-item parameters.
    two = depth.repeat(2, 1, 1)
    off2, _ = crop_disparity_offset(two, torch.tensor([CAM.fx, 2 * CAM.fx], dtype=F64),
                                    CAM.baseline_m)
    torch.testing.assert_close(off2[1, valid[0]], 2 * off2[0, valid[0]])


def test_warp_integer_shift_is_a_translation_with_zero_fill():
    img = torch.rand(2, 3, 5, 7, dtype=F64)
    out = warp_horizontal(img, torch.full((2, 5, 7), 2.0, dtype=F64))
    torch.testing.assert_close(out[..., :5], img[..., 2:])
    assert (out[..., 5:] == 0).all()
    half = warp_horizontal(img, torch.full((2, 5, 7), 0.5, dtype=F64))
    torch.testing.assert_close(half[..., :6], (img[..., :6] + img[..., 1:]) / 2)
    valid = torch.zeros(2, 5, 7, dtype=torch.bool)
    valid[:, 1:3, 2:4] = True
    masked = warp_horizontal(img, torch.zeros(2, 5, 7, dtype=F64), valid)
    assert (masked[~valid.unsqueeze(1).expand_as(masked)] == 0).all()
    torch.testing.assert_close(masked[:, :, 1:3, 2:4], img[:, :, 1:3, 2:4])


def test_photometric_error_zero_for_identical_and_l1_only_branch():
    img = torch.rand(1, 3, 9, 9, dtype=F64)
    mask = torch.ones(1, 9, 9, dtype=torch.bool)
    # kornia's SSIM of two identical images is 1 - O(1e-5), not exactly 1.
    assert photometric_error(img, img, mask).abs().max() < 1e-4
    other = img + 0.1
    torch.testing.assert_close(photometric_error(other, img, mask, alpha=0.0),
                               torch.full((1, 9, 9), 0.1, dtype=F64))
    # Outside the mask both images are zeroed: no error there (beyond the SSIM window).
    mask[:, :, :4] = False
    err = photometric_error(img.flip(-1), img, mask)
    assert err[:, :, :2].abs().max() < 1e-4
    assert err[:, :, 5:].mean() > 100 * err[:, :, :2].abs().max()


def test_gradcheck_depth_and_images():
    torch.manual_seed(0)
    src = torch.rand(1, 2, 6, 8, dtype=F64, requires_grad=True)
    tgt = torch.rand(1, 2, 6, 8, dtype=F64, requires_grad=True)
    depth = (0.6 + 0.05 * torch.rand(1, 6, 8, dtype=F64)).requires_grad_(True)
    mask = torch.ones(1, 6, 8, dtype=torch.bool)

    def fn(s, t, d):
        # fx B / d - shift ~ 0.5 .. 1.4 px (non-integer: bilinear weights are smooth there).
        return photo_consistency_loss(s, t, d, mask, 10.0, 0.06, 0.13, 1.0, reduction="none")

    assert torch.autograd.gradcheck(fn, (src, tgt, depth))


def test_module_reductions_and_errors(stereo_scene):
    crop, K, left_img, right_img = stereo_scene
    depth = torch.full((1, 128, 128), DEPTH_M, dtype=F64)
    mask = torch.ones(1, 128, 128, dtype=torch.bool)
    args = (left_img, right_img, depth, mask, CAM.fx, CAM.baseline_m, crop.shift_px,
            crop.left.scale_x)
    per_pixel = PhotoConsistencyLoss(reduction="none")(*args)
    assert per_pixel.shape == (1, 128, 128)
    torch.testing.assert_close(PhotoConsistencyLoss()(*args), per_pixel.mean())
    torch.testing.assert_close(PhotoConsistencyLoss(reduction="sum")(*args), per_pixel.sum())
    with pytest.raises(ValueError, match="reduction must be one of"):
        PhotoConsistencyLoss(reduction="max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        photo_consistency_loss(*args, reduction="max")
    with pytest.raises(ValueError, match="target_view must be one of"):
        photo_consistency_loss(*args, target_view="center")
    with pytest.raises(ValueError, match="depth_m must have shape"):
        photo_consistency_loss(left_img, right_img, depth[:, :64], mask, CAM.fx, 0.1)
    with pytest.raises(ValueError, match="mask must be"):
        photo_consistency_loss(left_img, right_img, depth, mask[:, :64], CAM.fx, 0.1)
    with pytest.raises(ValueError, match="same shape"):
        photometric_error(left_img, right_img[:, :2], mask)
    with pytest.raises(ValueError, match="alpha"):
        photometric_error(left_img, right_img, mask, alpha=1.5)
    with pytest.raises(ValueError, match="window_size"):
        photometric_error(left_img, right_img, mask, window_size=4)
    with pytest.raises(ValueError, match="fx_px must be"):
        crop_disparity_offset(depth, torch.ones(3), 0.1)
    with pytest.raises(ValueError, match="offset must have shape"):
        warp_horizontal(left_img, depth[:, :3])
    with pytest.raises(ValueError, match="4-D"):
        warp_horizontal(left_img[0], depth)
    with pytest.raises(TypeError, match="floating"):
        warp_horizontal((left_img * 255).to(torch.uint8), depth)


def _pair(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=dtype)
    return a, (0.7 * a + 0.3 * torch.rand(shape, generator=g, dtype=dtype))


@pytest.mark.parametrize("shape, window, max_val", [((2, 3, 17, 23), 3, 1.0),
                                                    ((1, 2, 9, 12), 5, 1.0),
                                                    ((1, 1, 8, 8), 7, 2.0),
                                                    ((1, 3, 6, 5), 1, 1.0)])
def test_ssim_map_matches_kornia(shape, window, max_val):
    kornia = pytest.importorskip("kornia")
    a, b = _pair(shape, F64, 3)
    a, b = a * max_val, b * max_val
    ref = kornia.metrics.ssim(a, b, window, max_val=max_val)
    torch.testing.assert_close(ssim_map(a, b, window, max_val), ref, atol=1e-6, rtol=0)
    # float32: as close to the float64 map as kornia's own float32 map is (cancellation in
    # E[x^2] - mu^2 bounds both).
    mine32 = ssim_map(a.float(), b.float(), window, max_val).double()
    theirs32 = kornia.metrics.ssim(a.float(), b.float(), window, max_val=max_val).double()
    assert (mine32 - ref).abs().max() <= max(2 * (theirs32 - ref).abs().max(), 1e-6)


def test_ssim_map_gradcheck_and_one_sided_gradient():
    a, b = _pair((1, 2, 4, 5), F64, 4)
    a.requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, y: ssim_map(x, y, 5), (a, b))
    assert torch.autograd.gradcheck(lambda x: ssim_map(x, b.detach()), (a,))
    assert torch.autograd.gradcheck(lambda y: ssim_map(a.detach(), y), (b,))


def test_ssim_map_errors():
    a, b = _pair((1, 3, 8, 8), F64, 5)
    with pytest.raises(ValueError, match="same shape"):
        ssim_map(a, b[:, :2])
    with pytest.raises(ValueError, match="window_size"):
        ssim_map(a, b, 4)
    with pytest.raises(ValueError, match="too small"):
        ssim_map(a[..., :2, :], b[..., :2, :], 5)
    with pytest.raises(TypeError, match="floating"):
        ssim_map(a.long(), b)
    with pytest.raises(ValueError, match="4-D"):
        ssim_map(a[0], b[0])


def _full_error(warped, target, mask):
    """The photometric error evaluated on the whole image (no bounding-box shortcut)."""
    m = mask.unsqueeze(1).to(target.dtype)
    x, y = warped * m, target * m
    return (PHOTO_ALPHA / 2 * (1 - ssim_map(x, y)) + (1 - PHOTO_ALPHA) * (x - y).abs()).mean(1)


@pytest.mark.parametrize("box", [(10, 20, 15, 30), (0, 3, 40, 50), (5, 6, 7, 8), None])
def test_error_in_mask_box_equals_full_image_error(box):
    x, y = _pair((2, 3, 40, 50), F64, 6)
    mask = torch.zeros(2, 40, 50, dtype=torch.bool)
    if box is not None:
        y0, y1, x0, x1 = box
        mask[1, y0:y1, x0:x1] = True  # one item only: the box is the union over the batch
    torch.testing.assert_close(photometric_error(x, y, mask), _full_error(x, y, mask),
                               atol=1e-15, rtol=0)
    torch.testing.assert_close(photometric_error(x, y, mask.double()), _full_error(x, y, mask),
                               atol=1e-15, rtol=0)


@pytest.mark.parametrize("view", ["right", "left"])
def test_loss_equals_warp_then_error(view):
    src, tgt = _pair((1, 3, 40, 50), F64, 7)
    g = torch.Generator().manual_seed(8)
    depth = torch.zeros(1, 40, 50, dtype=F64)
    depth[:, 5:25, 10:35] = 0.6 + 0.01 * torch.rand(1, 20, 25, generator=g, dtype=F64)
    mask = torch.zeros(1, 40, 50, dtype=torch.bool)
    mask[:, 8:22, 12:31] = True
    d = depth.clone().requires_grad_(True)
    loss = photo_consistency_loss(src, tgt, d, mask, 100.0, 0.1, 3.0, 1.0, view,
                                  reduction="none")
    d_ref = depth.clone().requires_grad_(True)
    offset, valid = crop_disparity_offset(d_ref, 100.0, 0.1, 3.0, 1.0, view)
    ref = _full_error(warp_horizontal(src, offset, valid), tgt, mask)
    torch.testing.assert_close(loss, ref, atol=1e-15, rtol=0)
    loss.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(d.grad, d_ref.grad, atol=1e-12, rtol=0)
    assert d.grad.abs().sum() > 0
