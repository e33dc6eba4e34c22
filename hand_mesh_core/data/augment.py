"""Augmentations for pretraining: colour jitter, blur, in-plane rotation (torch, batched).

Images are ``(B, C, H, W)`` float tensors in ``[0, 1]``; pixels have their centres at integer
coordinates (OpenCV/ROS convention).

Stereo consistency:

* Colour and blur parameters are drawn once per *pair* and applied to both views
  (:func:`augment_stereo_photometric`, :class:`StereoPhotometricAugment`): the photometric
  self-supervision compares the views, so they must stay alike.
* In-plane rotation is **monocular only** (:func:`rotate_mono`, :class:`MonoAugment`). Rotating
  both images of a rectified pair by the same angle rotates the baseline out of the image rows
  (it becomes ``B (cos a, sin a, 0)``): the pair is no longer rectified, disparity along rows is
  no longer ``fx B / z``, and the stereo crops and triangulation would be wrong. So stereo
  samples are never rotated; pretraining on monocular data (FreiHAND) uses rotation.

Rotation about the crop centre ``c`` is exact in 3D: it equals rolling the camera about its
optical axis (``p' = Rz(a) p``) while moving the principal point to ``c + R(a) (pp - c)``; the
focal lengths stay. :func:`rotate_mono` returns the rotated image, pixels, joints and ``K``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hand_mesh_core.data.config import AugmentConfig

__all__ = ["PhotometricParams", "sample_photometric_params", "adjust_color", "gaussian_blur",
           "augment_stereo_photometric", "rotation_z", "rotate_mono", "RotatedMono",
           "StereoPhotometricAugment", "MonoAugment", "LUMA_WEIGHTS", "SQUARE_PIXEL_REL_TOL"]

#: Rec. 601 luma weights (R, G, B), as in torchvision/kornia grayscale.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Gaussian kernels are cut at this many sigmas (>99.7 % of the mass).
BLUR_TRUNCATE_SIGMAS = 3.0
#: rotate_mono needs square pixels: |fx - fy| <= this * fx (else a pixel rotation is not a
#: camera roll). Drivers print K with ~7 digits; real non-square pixels differ by far more.
SQUARE_PIXEL_REL_TOL = 1e-3
# RGB <-> YIQ (NTSC); a hue shift is a rotation of the (I, Q) chroma plane.
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"{name} must be (B, 3, H, W) float in [0, 1], got "
                         f"{tuple(images.shape)} {images.dtype}")


@dataclass(frozen=True)
class PhotometricParams:
    """Per-sample colour and blur parameters, each ``(B,)``.

    Attributes:
        brightness: multiplicative factor (1 = unchanged).
        contrast: factor about the image's mean luma (1 = unchanged).
        saturation: factor about each pixel's luma (1 = unchanged).
        hue_rad: rotation of the YIQ chroma plane, radians (0 = unchanged).
        blur_sigma_px: Gaussian blur sigma, px (0 = no blur).
    """

    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    hue_rad: torch.Tensor
    blur_sigma_px: torch.Tensor

    @classmethod
    def identity(cls, batch: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> "PhotometricParams":
        """Parameters that change nothing."""
        one = torch.ones(batch, dtype=dtype, device=device)
        return cls(one, one.clone(), one.clone(), 0 * one, 0 * one)


def sample_photometric_params(batch: int, config: AugmentConfig | None = None,
                              generator: torch.Generator | None = None,
                              dtype: torch.dtype = torch.float32) -> PhotometricParams:
    """Draw colour and blur parameters for ``batch`` samples (uniform in the config ranges)."""
    config = AugmentConfig() if config is None else config
    if not isinstance(config, AugmentConfig):
        raise TypeError(f"config must be an AugmentConfig, got {type(config).__name__}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(batch, generator=generator, dtype=dtype)

    hue = math.radians(config.hue_deg)
    blur_on = torch.rand(batch, generator=generator, dtype=dtype) < config.blur_prob
    sigma = u(*config.blur_sigma_px) * blur_on
    return PhotometricParams(u(1 - config.brightness, 1 + config.brightness),
                             u(1 - config.contrast, 1 + config.contrast),
                             u(1 - config.saturation, 1 + config.saturation),
                             u(-hue, hue), sigma)


def _luma(images: torch.Tensor) -> torch.Tensor:
    w = images.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True)


def adjust_color(images: torch.Tensor, params: PhotometricParams) -> torch.Tensor:
    """Brightness, contrast, saturation, then hue; clamped to ``[0, 1]`` after each step.

    Args:
        images: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
        params: per-sample parameters (blur is not applied here).

    Returns:
        ``(B, 3, H, W)``.
    """
    _check_images(images)
    b = images.shape[0]
    for name in ("brightness", "contrast", "saturation", "hue_rad"):
        if getattr(params, name).shape != (b,):
            raise ValueError(f"params.{name} must be ({b},), got "
                             f"{tuple(getattr(params, name).shape)}")

    def v(t: torch.Tensor) -> torch.Tensor:
        return t.to(images).view(b, 1, 1, 1)

    x = (images * v(params.brightness)).clamp(0, 1)
    mean = _luma(x).mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * v(params.contrast) + mean).clamp(0, 1)
    gray = _luma(x)
    x = ((x - gray) * v(params.saturation) + gray).clamp(0, 1)
    m = x.new_tensor(_RGB2YIQ)
    yiq = torch.einsum("ij,bjhw->bihw", m, x)
    cos, sin = v(torch.cos(params.hue_rad)), v(torch.sin(params.hue_rad))
    i = yiq[:, 1:2] * cos - yiq[:, 2:3] * sin
    q = yiq[:, 1:2] * sin + yiq[:, 2:3] * cos
    yiq = torch.cat([yiq[:, :1], i, q], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), yiq).clamp(0, 1)


def gaussian_blur(images: torch.Tensor, sigma_px: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma (0 = unchanged); reflect borders.

    Args:
        images: ``(B, C, H, W)``.
        sigma_px: ``(B,)`` sigmas, px, >= 0.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, w = images.shape
    if sigma_px.shape != (b,) or (sigma_px < 0).any():
        raise ValueError(f"sigma_px must be ({b},) and >= 0, got {sigma_px.tolist()}")
    smax = float(sigma_px.max())
    if smax == 0:
        return images
    radius = max(1, math.ceil(BLUR_TRUNCATE_SIGMAS * smax))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    s = sigma_px.to(images).clamp_min(1e-6).view(b, 1)
    k = torch.exp(-0.5 * (x / s) ** 2)
    k = k / k.sum(dim=1, keepdim=True)
    delta = (x == 0).to(images).expand(b, -1)
    k = torch.where((sigma_px > 0).view(b, 1), k, delta)            # (B, K)
    kernel = k.repeat_interleave(c, dim=0)                            # (B*C, K)
    y = images.reshape(1, b * c, h, w)
    y = F.pad(y, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, kernel.view(b * c, 1, 1, -1), groups=b * c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel.view(b * c, 1, -1, 1), groups=b * c)
    return y.view(b, c, h, w)


def augment_stereo_photometric(left: torch.Tensor, right: torch.Tensor,
                               params: PhotometricParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the same colour jitter and blur to both views of each pair.

    Args:
        left, right: ``(B, 3, H, W)`` in ``[0, 1]``.
        params: one set of parameters per pair.
    """
    _check_images(left, "left")
    _check_images(right, "right")
    if left.shape[0] != right.shape[0]:
        raise ValueError(f"left and right batch sizes differ: {left.shape[0]} vs "
                         f"{right.shape[0]}")
    out = []
    for img in (left, right):
        out.append(gaussian_blur(adjust_color(img, params), params.blur_sigma_px))
    return out[0], out[1]


def rotation_z(angle_rad: torch.Tensor) -> torch.Tensor:
    """Rotations about the optical axis ``(B,) -> (B, 3, 3)``; positive turns +x towards +y
    (clockwise in the image, whose y points down)."""
    c, s = torch.cos(angle_rad), torch.sin(angle_rad)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=-1).view(*angle_rad.shape, 3, 3)


@dataclass(frozen=True)
class RotatedMono:
    """Result of :func:`rotate_mono`.

    Attributes:
        image: ``(B, C, H, W)`` rotated about the image centre (zeros outside).
        K: ``(B, 3, 3)`` intrinsics of the rotated image.
        uv: ``(B, N, 2)`` rotated pixels, or None.
        joints_m: ``(B, N, 3)`` joints rotated about the optical axis, metres, or None.
        R: ``(B, 3, 3)`` the rotation applied to 3D points.
    """

    image: torch.Tensor
    K: torch.Tensor
    uv: torch.Tensor | None
    joints_m: torch.Tensor | None
    R: torch.Tensor


def rotate_mono(image: torch.Tensor, angle_rad: torch.Tensor, K: torch.Tensor,
                uv: torch.Tensor | None = None, joints_m: torch.Tensor | None = None,
                mode: str = "bilinear") -> RotatedMono:
    """Rotate a monocular crop about its centre, with labels and intrinsics to match.

    Exact for square pixels (``fx == fy``): ``project(R p, K') == R2 (project(p, K) - c) + c``
    with ``c = ((W-1)/2, (H-1)/2)``.

    Args:
        image: ``(B, C, H, W)`` (images or masks).
        angle_rad: ``(B,)`` angles, radians.
        K: ``(B, 3, 3)`` or ``(3, 3)`` intrinsics of the crop.
        uv: optional ``(B, N, 2)`` pixels.
        joints_m: optional ``(B, N, 3)`` points, m, camera frame.
        mode: "bilinear" (images) or "nearest" (masks).
    """
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be one of ['bilinear', 'nearest'], got {mode!r}")
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    b, _, h, w = image.shape
    if angle_rad.shape != (b,):
        raise ValueError(f"angle_rad must be ({b},), got {tuple(angle_rad.shape)}")
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be (3, 3) or (B, 3, 3), got {tuple(K.shape)}")
    K = K.to(angle_rad.dtype).expand(b, 3, 3)
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    if ((fx - fy).abs() > SQUARE_PIXEL_REL_TOL * fx.abs()).any():
        raise ValueError(f"rotate_mono needs square pixels (fx == fy), got fx={fx.tolist()}, "
                         f"fy={fy.tolist()}")
    R = rotation_z(angle_rad)
    R2 = R[:, :2, :2]
    c = angle_rad.new_tensor([(w - 1) / 2, (h - 1) / 2])
    # Output pixel x' samples the source at R2^T (x' - c) + c.
    ys, xs = torch.meshgrid(torch.arange(h, dtype=angle_rad.dtype, device=angle_rad.device),
                            torch.arange(w, dtype=angle_rad.dtype, device=angle_rad.device),
                            indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).view(1, h * w, 2) - c
    src = torch.einsum("bji,bnj->bni", R2, grid) + c                   # R2^T applied
    norm = angle_rad.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
    src = (src * norm - 1).view(b, h, w, 2)
    out = F.grid_sample(image.to(angle_rad.dtype), src, mode=mode, padding_mode="zeros",
                        align_corners=True).to(image.dtype)
    pp = K[:, :2, 2]
    K_new = K.clone()
    K_new[:, :2, 2] = torch.einsum("bij,bj->bi", R2, pp - c) + c
    uv_new = None
    if uv is not None:
        if uv.shape[0] != b or uv.shape[-1] != 2:
            raise ValueError(f"uv must be ({b}, N, 2), got {tuple(uv.shape)}")
        uv_new = torch.einsum("bij,bnj->bni", R2.to(uv), uv - c.to(uv)) + c.to(uv)
    joints_new = None
    if joints_m is not None:
        if joints_m.shape[0] != b or joints_m.shape[-1] != 3:
            raise ValueError(f"joints_m must be ({b}, N, 3), got {tuple(joints_m.shape)}")
        joints_new = torch.einsum("bij,bnj->bni", R.to(joints_m), joints_m)
    return RotatedMono(out, K_new, uv_new, joints_new, R)


class StereoPhotometricAugment(nn.Module):
    """Draws one set of colour/blur parameters per pair and applies it to both views.

    Args:
        config: ranges (rotation is ignored: stereo pairs are never rotated).
        generator: optional RNG for reproducibility.
    """

    def __init__(self, config: AugmentConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = AugmentConfig() if config is None else config
        self.generator = generator

    def forward(self, left: torch.Tensor, right: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        params = sample_photometric_params(left.shape[0], self.config, self.generator)
        return augment_stereo_photometric(left, right, params)


class MonoAugment(nn.Module):
    """Colour jitter, blur and in-plane rotation for monocular pretraining samples.

    Args:
        config: ranges.
        generator: optional RNG for reproducibility.
    """

    def __init__(self, config: AugmentConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = AugmentConfig() if config is None else config
        self.generator = generator

    def forward(self, image: torch.Tensor, K: torch.Tensor, uv: torch.Tensor | None = None,
                joints_m: torch.Tensor | None = None) -> RotatedMono:
        b = image.shape[0]
        params = sample_photometric_params(b, self.config, self.generator, image.dtype)
        image = gaussian_blur(adjust_color(image, params), params.blur_sigma_px)
        r = math.radians(self.config.rotation_deg)
        angle = (2 * torch.rand(b, generator=self.generator, dtype=torch.float64) - 1) * r
        return rotate_mono(image, angle.to(image.dtype), K, uv, joints_m)
