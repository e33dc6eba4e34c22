"""Photo-consistency loss: warp one view into the other with the rendered depth, compare.

For the right branch: the right-view mesh is rendered to a depth map ``depth_r``, which becomes
the disparity ``d = fx * B / depth_r``; the left image is sampled at ``u_left = u_right + d`` to
synthesise the right view (hand region only, background 0), and compared with the real right
image inside the right skin mask ``M_r``:

    L = alpha / 2 * (1 - SSIM(W * M_r, I_r * M_r)) + (1 - alpha) * |W * M_r - I_r * M_r|

with ``alpha = 0.85`` and a 3x3 SSIM window (Godard et al., "Unsupervised Monocular Depth
Estimation with Left-Right Consistency", CVPR 2017, eq. 2; used by Chen et al., ICCV 2021).
The left branch is symmetric (warp the right image into the left view with ``depth_l``).

Crops: images are usually crops of a :class:`~hand_mesh_core.geometry.crop.StereoCrop` (same
rows and scale, right window shifted left by ``shift_px`` full-image px). Then
``u_left_crop = u_right_crop + (fx_full * B / depth - shift_px) * scale_x``
(:func:`crop_disparity_offset`). SSIM is kornia's (Gaussian window, sigma 1.5, reflect padding).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from hand_mesh_core.geometry.projection import depth_to_disparity
from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["PHOTO_ALPHA", "SSIM_WINDOW", "VIEWS", "crop_disparity_offset", "warp_horizontal",
           "photometric_error", "photo_consistency_loss", "PhotoConsistencyLoss"]

#: SSIM weight of the photometric error: Godard et al., CVPR 2017, eq. 2.
PHOTO_ALPHA = 0.85
#: SSIM window (px): Godard et al., CVPR 2017 (3x3 blocks).
SSIM_WINDOW = 3
#: The view a warp synthesises: "right" (left image -> right view) or "left".
VIEWS = ("left", "right")


def _per_batch(x: float | torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    """Scalar or ``(B,)`` -> tensor broadcastable to ``(B, H, W)``."""
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        return t
    if t.dim() == 1 and t.shape[0] == like.shape[0]:
        return t.reshape(-1, 1, 1)
    raise ValueError(f"{name} must be a scalar or a ({like.shape[0]},) tensor, got shape "
                     f"{tuple(t.shape)}")


def crop_disparity_offset(depth_m: torch.Tensor, fx_px: float | torch.Tensor,
                          baseline_m: float | torch.Tensor, shift_px: float | torch.Tensor = 0.0,
                          scale_x: float | torch.Tensor = 1.0, target_view: str = "right"
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal offset, in crop px, from a target-view pixel to its source-view pixel.

    ``u_source_crop = u_target_crop + offset``; for ``target_view="right"`` the source is the
    left image and ``offset = (fx * B / depth - shift_px) * scale_x``; for ``"left"`` it is the
    negative.

    Args:
        depth_m: ``(B, H, W)`` target-view depth, metres (0 = no surface).
        fx_px: full-image focal length (px), scalar or ``(B,)``.
        baseline_m: stereo baseline (m), scalar or ``(B,)``.
        shift_px: ``StereoCrop.shift_px`` (full-image px; 0 for full images), scalar or ``(B,)``.
        scale_x: ``CropTransform.scale_x`` (crop px per full px; 1 for full images).
        target_view: one of :data:`VIEWS`.

    Returns:
        ``offset`` ``(B, H, W)`` px and ``valid`` ``(B, H, W)`` bool (depth > 0).
    """
    if target_view not in VIEWS:
        raise ValueError(f"target_view must be one of {list(VIEWS)}, got {target_view!r}")
    check_tensor(depth_m, "depth_m", 3)
    fx = _per_batch(fx_px, depth_m, "fx_px")
    base = _per_batch(baseline_m, depth_m, "baseline_m")
    shift = _per_batch(shift_px, depth_m, "shift_px")
    scale = _per_batch(scale_x, depth_m, "scale_x")
    valid = depth_m > 0
    disp = depth_to_disparity(depth_m, fx, base)
    offset = torch.where(valid, (disp - shift) * scale, torch.zeros_like(disp))
    return (offset if target_view == "right" else -offset), valid


def warp_horizontal(source: torch.Tensor, offset: torch.Tensor,
                    valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sample ``source`` at ``(u + offset, v)`` (bilinear, zeros outside the image).

    Args:
        source: ``(B, C, H, W)`` image.
        offset: ``(B, H, W)`` px, from :func:`crop_disparity_offset`.
        valid: optional ``(B, H, W)`` bool; the result is 0 where False (background).

    Returns:
        ``(B, C, H, W)``, differentiable w.r.t. ``source`` and ``offset``.
    """
    check_tensor(source, "source", 4)
    check_tensor(offset, "offset", 3)
    b, _, h, w = source.shape
    if offset.shape != (b, h, w):
        raise ValueError(f"offset must have shape {(b, h, w)}, got {tuple(offset.shape)}")
    u = torch.arange(w, dtype=offset.dtype, device=offset.device)
    v = torch.arange(h, dtype=offset.dtype, device=offset.device)
    # align_corners=False: pixel centre i <-> normalised (2 i + 1) / size - 1.
    gx = (2.0 * (u + offset) + 1.0) / w - 1.0
    gy = ((2.0 * v + 1.0) / h - 1.0).reshape(1, h, 1).expand(b, h, w)
    grid = torch.stack([gx, gy], -1).to(source.dtype)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    if valid is not None:
        out = out * valid.unsqueeze(1).to(out.dtype)
    return out


@contextlib.contextmanager
def _native_conv(device: torch.device) -> Iterator[None]:
    """Use ATen's convolution instead of oneDNN's on CPU for the enclosed ops."""
    if device.type != "cpu" or not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


def photometric_error(warped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      alpha: float = PHOTO_ALPHA, window_size: int = SSIM_WINDOW,
                      max_val: float = 1.0) -> torch.Tensor:
    """Per-pixel ``alpha / 2 (1 - SSIM) + (1 - alpha) |.|`` of the masked images.

    Args:
        warped: ``(B, C, H, W)`` synthesised view.
        target: ``(B, C, H, W)`` real view.
        mask: ``(B, H, W)`` bool or float skin mask of the target view.
        alpha: SSIM weight in [0, 1].
        window_size: odd SSIM window, px.
        max_val: the images' dynamic range (1 for [0, 1] floats).

    Returns:
        ``(B, H, W)`` error, averaged over channels.
    """
    check_tensor(warped, "warped", 4)
    check_tensor(target, "target", 4)
    if warped.shape != target.shape:
        raise ValueError(f"warped {tuple(warped.shape)} and target {tuple(target.shape)} "
                         "must have the same shape")
    b, _, h, w = target.shape
    if not isinstance(mask, torch.Tensor) or mask.shape != (b, h, w):
        raise ValueError(f"mask must be a ({b}, {h}, {w}) tensor, got "
                         f"{tuple(getattr(mask, 'shape', ()))}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd int, got {window_size}")
    m = mask.unsqueeze(1).to(target.dtype)
    x, y = warped * m, target * m
    l1 = (x - y).abs()
    if alpha > 0:
        # oneDNN's convolution is 2-3x slower than ATen's native one for kornia's five
        # depthwise 3x3 filters on crop-sized CPU images (measured fwd+bwd, 3x128x128).
        with _native_conv(x.device):
            ssim = kornia.metrics.ssim(x, y, window_size, max_val=max_val)
        err = alpha / 2.0 * (1.0 - ssim) + (1.0 - alpha) * l1
    else:
        err = l1
    return err.mean(1)


def photo_consistency_loss(source: torch.Tensor, target: torch.Tensor, depth_m: torch.Tensor,
                           target_mask: torch.Tensor, fx_px: float | torch.Tensor,
                           baseline_m: float | torch.Tensor,
                           shift_px: float | torch.Tensor = 0.0,
                           scale_x: float | torch.Tensor = 1.0, target_view: str = "right",
                           alpha: float = PHOTO_ALPHA, window_size: int = SSIM_WINDOW,
                           reduction: str = "mean") -> torch.Tensor:
    """Photo-consistency of one branch (see the module docstring).

    Args:
        source: ``(B, C, H, W)`` the other view's image (left image for ``target_view="right"``),
            values in [0, 1].
        target: ``(B, C, H, W)`` this view's image.
        depth_m: ``(B, H, W)`` this view's rendered depth, metres, 0 outside the mesh.
        target_mask: ``(B, H, W)`` this view's skin mask.
        fx_px, baseline_m, shift_px, scale_x, target_view: see :func:`crop_disparity_offset`.
        alpha, window_size: see :func:`photometric_error`.
        reduction: "none" -> ``(B, H, W)`` per pixel, "sum", or "mean" over all pixels.
    """
    check_reduction(reduction)
    check_tensor(depth_m, "depth_m", 3)
    if depth_m.shape != (source.shape[0],) + tuple(source.shape[2:]):
        raise ValueError(f"depth_m must have shape (B, H, W) = "
                         f"{(source.shape[0],) + tuple(source.shape[2:])}, got "
                         f"{tuple(depth_m.shape)}")
    offset, valid = crop_disparity_offset(depth_m, fx_px, baseline_m, shift_px, scale_x,
                                          target_view)
    warped = warp_horizontal(source, offset, valid)
    return reduce(photometric_error(warped, target, target_mask, alpha, window_size), reduction)


class PhotoConsistencyLoss(nn.Module):
    """Module form of :func:`photo_consistency_loss` with fixed ``alpha``, window, reduction."""

    def __init__(self, alpha: float = PHOTO_ALPHA, window_size: int = SSIM_WINDOW,
                 reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.alpha = alpha
        self.window_size = window_size
        self.reduction = reduction

    def forward(self, source: torch.Tensor, target: torch.Tensor, depth_m: torch.Tensor,
                target_mask: torch.Tensor, fx_px: float | torch.Tensor,
                baseline_m: float | torch.Tensor, shift_px: float | torch.Tensor = 0.0,
                scale_x: float | torch.Tensor = 1.0, target_view: str = "right"
                ) -> torch.Tensor:
        """See :func:`photo_consistency_loss`."""
        return photo_consistency_loss(source, target, depth_m, target_mask, fx_px, baseline_m,
                                      shift_px, scale_x, target_view, self.alpha,
                                      self.window_size, self.reduction)
