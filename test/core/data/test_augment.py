"""Augmentations: colour jitter, blur, monocular rotation (exact labels), stereo consistency."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.augment import (
    MonoAugment, PhotometricParams, StereoPhotometricAugment, adjust_color,
    augment_stereo_photometric, gaussian_blur, rotate_mono, rotation_z,
    sample_photometric_params,
)
from hand_mesh_core.data.config import AugmentConfig
from hand_mesh_core.geometry.projection import project


def _images(b=2, h=12, w=16, seed=0, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)


def _params(b, **kw):
    p = PhotometricParams.identity(b, torch.float64)
    vals = {f: getattr(p, f) for f in ("brightness", "contrast", "saturation", "hue_rad",
                                       "blur_sigma_px")}
    vals.update({k: torch.full((b,), float(v), dtype=torch.float64) for k, v in kw.items()})
    return PhotometricParams(**vals)


def test_identity_and_single_factors_match_references():
    x = _images()
    torch.testing.assert_close(adjust_color(x, _params(2)), x)
    torch.testing.assert_close(adjust_color(x, _params(2, brightness=1.2)),
                               (x * 1.2).clamp(0, 1))
    # Contrast about the mean luma (naive per-image loop).
    out = adjust_color(x, _params(2, contrast=0.5))
    for i in range(2):
        y = 0.299 * x[i, 0] + 0.587 * x[i, 1] + 0.114 * x[i, 2]
        torch.testing.assert_close(out[i], ((x[i] - y.mean()) * 0.5 + y.mean()).clamp(0, 1))
    # Saturation 0 -> grey = luma in every channel.
    grey = adjust_color(x, _params(2, saturation=0.0))
    y = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for ch in range(3):
        torch.testing.assert_close(grey[:, ch], y)


def test_hue_rotation_keeps_luma_and_cycles():
    x = _images(lo=0.4, hi=0.6)                       # no clipping
    third = adjust_color(x, _params(2, hue_rad=2 * math.pi / 3))
    y = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]  # noqa: E731
    torch.testing.assert_close(y(third), y(x), atol=1e-3, rtol=0)   # YIQ Y ~ Rec.601 luma
    assert (third - x).abs().max() > 0.01
    back = adjust_color(adjust_color(third, _params(2, hue_rad=2 * math.pi / 3)),
                        _params(2, hue_rad=2 * math.pi / 3))
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    g = torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64)            # grey: no chroma
    torch.testing.assert_close(adjust_color(g, _params(1, hue_rad=1.0, saturation=2.0)), g)


def test_gaussian_blur_matches_opencv():
    x = _images(b=2, h=20, w=24)
    sigma = torch.tensor([1.2, 0.0], dtype=torch.float64)
    out = gaussian_blur(x, sigma)
    torch.testing.assert_close(out[1], x[1])                          # sigma 0: unchanged
    radius = math.ceil(3.0 * 1.2)
    img = x[0].permute(1, 2, 0).numpy()
    ref = cv2.GaussianBlur(img, (2 * radius + 1, 2 * radius + 1), 1.2,
                           borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), ref, atol=1e-6)
    with pytest.raises(ValueError, match=">= 0"):
        gaussian_blur(x, torch.tensor([-1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gaussian_blur(x[0], sigma)


def test_stereo_pairs_get_identical_parameters():
    left = _images(b=3, seed=1)
    params = sample_photometric_params(3, AugmentConfig(blur_prob=1.0),
                                       torch.Generator().manual_seed(3), dtype=torch.float64)
    out_l, out_r = augment_stereo_photometric(left, left.clone(), params)
    torch.testing.assert_close(out_l, out_r)          # same view in -> same view out
    assert not torch.allclose(out_l, left)
    # The module draws one parameter set per pair: equal views stay equal.
    aug = StereoPhotometricAugment(generator=torch.Generator().manual_seed(4))
    a, b = aug(left.float(), left.float().clone())
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="batch sizes differ"):
        augment_stereo_photometric(left, left[:2], _params(3))


def test_sampled_params_are_in_range_and_seeded():
    cfg = AugmentConfig(brightness=0.2, hue_deg=5.0, blur_prob=0.5)
    a = sample_photometric_params(1000, cfg, torch.Generator().manual_seed(0))
    b = sample_photometric_params(1000, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.brightness, b.brightness)
    assert a.brightness.min() >= 0.8 and a.brightness.max() <= 1.2
    assert a.hue_rad.abs().max() <= math.radians(5.0)
    frac = (a.blur_sigma_px > 0).float().mean()
    assert 0.4 < frac < 0.6
    with pytest.raises(TypeError, match="AugmentConfig"):
        sample_photometric_params(2, {"brightness": 0.1})
    with pytest.raises(ValueError, match="batch"):
        sample_photometric_params(0)
    with pytest.raises(ConfigError):
        AugmentConfig(brightness=1.5)


def _mono_setup(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[300.0, 0, 70.0], [0, 300.0, 55.0], [0, 0, 1]], dtype=torch.float64)
    joints = torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64) \
        + 0.06 * (torch.rand(b, 21, 3, generator=g, dtype=torch.float64) - 0.5)
    return K, joints


def test_rotation_keeps_labels_exact():
    K, joints = _mono_setup()
    angle = torch.tensor([0.4, -1.1], dtype=torch.float64)
    uv = project(joints, K)
    img = torch.zeros(2, 3, 128, 128, dtype=torch.float64)
    r = rotate_mono(img, angle, K, uv, joints)
    torch.testing.assert_close(project(r.joints_m, r.K), r.uv, atol=1e-9, rtol=0)
    torch.testing.assert_close(r.joints_m.norm(dim=-1), joints.norm(dim=-1))   # rigid
    torch.testing.assert_close(r.joints_m[..., 2], joints[..., 2])           # about the axis
    torch.testing.assert_close(r.K[:, 0, 0], K[0, 0].expand(2))
    zero = rotate_mono(img, torch.zeros(2, dtype=torch.float64), K, uv, joints)
    torch.testing.assert_close(zero.uv, uv)
    torch.testing.assert_close(zero.K, K.expand(2, 3, 3))
    torch.testing.assert_close(rotation_z(angle) @ rotation_z(-angle),
                               torch.eye(3, dtype=torch.float64).expand(2, 3, 3))


def test_rotation_moves_image_content_with_the_labels():
    K, _ = _mono_setup(b=1)
    img = torch.zeros(1, 1, 65, 81, dtype=torch.float64)
    u, v = 60, 20
    img[0, 0, v - 1:v + 2, u - 1:u + 2] = 1.0
    angle = torch.tensor([0.7], dtype=torch.float64)
    r = rotate_mono(img, angle, K, uv=torch.tensor([[[float(u), float(v)]]], dtype=torch.float64))
    w = r.image[0, 0]
    ys, xs = torch.meshgrid(torch.arange(65.0, dtype=torch.float64),
                            torch.arange(81.0, dtype=torch.float64), indexing="ij")
    centroid = torch.stack([(w * xs).sum(), (w * ys).sum()]) / w.sum()
    torch.testing.assert_close(centroid, r.uv[0, 0], atol=0.05, rtol=0)
    mask = rotate_mono(img, angle, K, mode="nearest").image
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_rotation_gradcheck():
    K, joints = _mono_setup(b=1)
    joints = joints[:, :4]
    uv = project(joints, K)

    def f(angle, uv, joints):
        r = rotate_mono(torch.zeros(1, 1, 8, 8, dtype=torch.float64), angle, K, uv, joints)
        return r.uv, r.joints_m, r.K

    angle = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (angle, uv.requires_grad_(), joints.requires_grad_()))
    img = torch.rand(1, 1, 6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(
        lambda im: rotate_mono(im, torch.tensor([0.3], dtype=torch.float64), K).image,
        (img.requires_grad_(),))


def test_rotation_validation():
    K, joints = _mono_setup(b=1)
    img = torch.zeros(1, 3, 8, 8)
    a = torch.zeros(1)
    with pytest.raises(ValueError, match="mode"):
        rotate_mono(img, a, K, mode="cubic")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        rotate_mono(img[0], a, K)
    with pytest.raises(ValueError, match="angle_rad"):
        rotate_mono(img, torch.zeros(2), K)
    with pytest.raises(ValueError, match="K must be"):
        rotate_mono(img, a, torch.eye(2))
    K2 = K.clone()
    K2[1, 1] = 330.0
    with pytest.raises(ValueError, match="square pixels"):
        rotate_mono(img, a, K2)
    with pytest.raises(ValueError, match="uv"):
        rotate_mono(img, a, K, uv=torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="joints_m"):
        rotate_mono(img, a, K, joints_m=torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        adjust_color(torch.zeros(1, 1, 4, 4), _params(1))
    with pytest.raises(TypeError, match="torch.Tensor"):
        adjust_color(np.zeros((1, 3, 4, 4)), _params(1))
    with pytest.raises(ValueError, match="params.brightness"):
        adjust_color(torch.zeros(2, 3, 4, 4), _params(1))


def test_mono_augment_module():
    K, joints = _mono_setup()
    uv = project(joints, K)
    aug = MonoAugment(AugmentConfig(rotation_deg=45.0), generator=torch.Generator().manual_seed(0))
    img = _images(b=2, h=110, w=140)
    r = aug(img, K, uv, joints)
    assert r.image.shape == img.shape
    torch.testing.assert_close(project(r.joints_m, r.K), r.uv, atol=1e-9, rtol=0)
    angles = torch.atan2(r.R[:, 1, 0], r.R[:, 0, 0]).abs()
    assert (angles <= math.radians(45.0) + 1e-9).all() and (angles > 0).all()
