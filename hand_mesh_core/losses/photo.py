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
(:func:`crop_disparity_offset`). SSIM is :func:`ssim_map`: kornia's definition (Gaussian window,
sigma 1.5, reflect padding, ``kornia.metrics.ssim``) with the five local moments filtered by one
pair of separable depthwise convolutions on the stacked ``(x, y, x^2, y^2, xy)`` channels.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from hand_mesh_core.geometry.projection import depth_to_disparity
from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["PHOTO_ALPHA", "SSIM_WINDOW", "SSIM_SIGMA_PX", "SSIM_K1", "SSIM_K2", "SSIM_EPS",
           "VIEWS", "crop_disparity_offset", "warp_horizontal", "ssim_map", "photometric_error",
           "photo_consistency_loss", "PhotoConsistencyLoss"]

#: SSIM weight of the photometric error: Godard et al., CVPR 2017, eq. 2.
PHOTO_ALPHA = 0.85
#: SSIM window (px): Godard et al., CVPR 2017 (3x3 blocks).
SSIM_WINDOW = 3
#: Standard deviation of SSIM's Gaussian window, px: Wang et al., "Image Quality Assessment: From
#: Error Visibility to Structural Similarity", TIP 2004 (and ``kornia.metrics.ssim``).
SSIM_SIGMA_PX = 1.5
#: SSIM stabilisers ``c1 = (K1 L)^2``, ``c2 = (K2 L)^2`` (L: dynamic range): Wang et al., 2004.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Added to SSIM's denominator: ``kornia.metrics.ssim``'s default, kept so both maps agree.
SSIM_EPS = 1e-12
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
    return _warp(source, offset, valid, 0, 0)


def _warp(source: torch.Tensor, offset: torch.Tensor, valid: torch.Tensor | None, x0: int,
          y0: int) -> torch.Tensor:
    """:func:`warp_horizontal` for the window of ``offset`` (``(B, h, w)``) at ``(x0, y0)``."""
    _, _, h, w = source.shape
    rh, rw = offset.shape[1:]
    u = torch.arange(x0, x0 + rw, dtype=offset.dtype, device=offset.device)
    v = torch.arange(y0, y0 + rh, dtype=offset.dtype, device=offset.device)
    # align_corners=False: pixel centre i <-> normalised (2 i + 1) / size - 1.
    gx = (2.0 * (u + offset) + 1.0) / w - 1.0
    gy = ((2.0 * v + 1.0) / h - 1.0).reshape(1, rh, 1).expand_as(gx)
    grid = torch.stack([gx, gy], -1).to(source.dtype)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    if valid is not None:
        out = out * valid.unsqueeze(1).to(out.dtype)
    return out


@functools.lru_cache(maxsize=16)
def _gaussian_taps(window_size: int) -> tuple[float, ...]:
    """Normalised Gaussian taps, sigma :data:`SSIM_SIGMA_PX` (as ``kornia.filters``)."""
    offset = torch.arange(window_size, dtype=torch.float64) - window_size // 2
    taps = torch.exp(-offset ** 2 / (2.0 * SSIM_SIGMA_PX ** 2))
    return tuple((taps / taps.sum()).tolist())


def _blur_valid(padded: torch.Tensor, taps: tuple[float, ...], h: int, w: int) -> torch.Tensor:
    """Separable symmetric filter, "valid" part: ``(..., h + 2r, w + 2r)`` -> ``(..., h, w)``.

    Shifted slices times scalar taps: for the 3-5 taps of SSIM on crop-sized images this is
    several times faster on CPU than depthwise ``conv2d`` (oneDNN or native).
    """
    r = len(taps) // 2
    rows = padded[..., r:r + w] * taps[r]
    for j in range(r):
        rows.add_(padded[..., j:j + w], alpha=taps[j])
        rows.add_(padded[..., 2 * r - j:2 * r - j + w], alpha=taps[j])
    out = rows[..., r:r + h, :] * taps[r]
    for j in range(r):
        out.add_(rows[..., j:j + h, :], alpha=taps[j])
        out.add_(rows[..., 2 * r - j:2 * r - j + h, :], alpha=taps[j])
    return out


def _blur(x: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """Gaussian filter with reflect padding, same size (kornia's ``filter2d_separable``)."""
    r = len(taps) // 2
    if r == 0:
        return x * taps[0]
    return _blur_valid(F.pad(x, (r, r, r, r), mode="reflect"), taps, x.shape[-2], x.shape[-1])


def _blur_adjoint(g: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """Adjoint of :func:`_blur`: full correlation (symmetric taps), then fold the reflection."""
    r = len(taps) // 2
    if r == 0:
        return g * taps[0]
    h, w = g.shape[-2:]
    full = _blur_valid(F.pad(g, (2 * r,) * 4), taps, h + 2 * r, w + 2 * r)
    return torch.ops.aten.reflection_pad2d_backward(full, g, [r, r, r, r])


class _SSIM(torch.autograd.Function):
    """SSIM map with an analytic backward (one adjoint blur of 3-4 stacked gradient maps).

    With ``A1 = 2 mu1 mu2 + c1``, ``A2 = 2 s12 + c2``, ``B1 = mu1^2 + mu2^2 + c1``,
    ``B2 = s11 + s22 + c2``, ``D = B1 B2 + eps`` and ``S = A1 A2 / D``, the derivatives with
    respect to the filtered moments are ``dS/dmu1 = 2 (mu2 (A2 - A1) + mu1 S (B1 - B2)) / D``,
    ``dS/dE[x^2] = -S B1 / D``, ``dS/dE[xy] = 2 A1 / D``; then
    ``dL/dx = blur^T(g_mu1) + 2 x blur^T(g_xx) + y blur^T(g_xy)`` (and symmetrically for y).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, taps: tuple[float, ...], c1: float,
                c2: float, eps: float) -> torch.Tensor:
        c = x.shape[1]
        mu1, mu2, e11, e22, e12 = _blur(torch.cat([x, y, x * x, y * y, x * y], 1),
                                        taps).split(c, 1)
        mu12 = mu1 * mu2
        mu11 = mu1 * mu1
        mu22 = mu2 * mu2
        a1 = 2.0 * mu12 + c1
        a2 = 2.0 * (e12 - mu12) + c2
        b1 = mu11 + mu22 + c1
        b2 = (e11 - mu11) + (e22 - mu22) + c2
        d = b1 * b2 + eps
        s = a1 * a2 / d
        ctx.save_for_backward(x, y, mu1, mu2, a1, a2, b1, b2, d, s)
        ctx.taps = taps
        return s

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, y, mu1, mu2, a1, a2, b1, b2, d, s = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[:2]
        c = x.shape[1]
        gd = grad / d
        t_a = (a2 - a1) * gd
        t_b = s * (b1 - b2) * gd
        parts = [-s * b1 * gd, 2.0 * a1 * gd]  # d/dE[x^2] (= d/dE[y^2]), d/dE[xy]
        if need_x:
            parts.append(2.0 * (mu2 * t_a + mu1 * t_b))
        if need_y:
            parts.append(2.0 * (mu1 * t_a + mu2 * t_b))
        back = _blur_adjoint(torch.cat(parts, 1), ctx.taps).split(c, 1)
        gx = back[0] * (2.0 * x) + back[1] * y + back[2] if need_x else None
        gy = back[0] * (2.0 * y) + back[1] * x + back[-1] if need_y else None
        return gx, gy, None, None, None, None


def ssim_map(img1: torch.Tensor, img2: torch.Tensor, window_size: int = SSIM_WINDOW,
             max_val: float = 1.0, eps: float = SSIM_EPS) -> torch.Tensor:
    """Structural similarity map, equal to ``kornia.metrics.ssim(img1, img2, window_size,
    max_val, eps)`` ("same" padding) up to rounding, and several times faster on CPU.

    The five local moments (means of ``x``, ``y``, ``x^2``, ``y^2``, ``xy``) are filtered in one
    pass over the stacked ``(B, 5C, H, W)`` tensor (reflect padding, separable Gaussian as
    shifted slices), and the backward is analytic (see :class:`_SSIM`): one adjoint filtering
    of the stacked moment gradients instead of autograd through five filterings. Differentiable
    once (no double backward).

    Args:
        img1: ``(B, C, H, W)`` image, values in ``[0, max_val]``.
        img2: ``(B, C, H, W)`` image (same shape; the dtypes are promoted).
        window_size: odd Gaussian window side, px (sigma :data:`SSIM_SIGMA_PX`); needs
            ``H, W > window_size // 2`` (reflect padding).
        max_val: dynamic range L of the images.
        eps: added to the denominator (:data:`SSIM_EPS`).

    Returns:
        ``(B, C, H, W)`` SSIM per pixel and channel, in [-1, 1].

    Raises:
        TypeError: not floating-point tensors.
        ValueError: shapes differ, bad ``window_size`` or image too small for it.
    """
    check_tensor(img1, "img1", 4)
    check_tensor(img2, "img2", 4)
    if img1.shape != img2.shape:
        raise ValueError(f"img1 {tuple(img1.shape)} and img2 {tuple(img2.shape)} must have the "
                         "same shape")
    if not isinstance(window_size, int) or window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd int, got {window_size!r}")
    r = window_size // 2
    h, w = img1.shape[-2:]
    if r >= h or r >= w:
        raise ValueError(f"images of {h}x{w} px are too small for window_size {window_size}: "
                         f"need height and width > {r}")
    dtype = torch.promote_types(img1.dtype, img2.dtype)
    c1 = (SSIM_K1 * max_val) ** 2
    c2 = (SSIM_K2 * max_val) ** 2
    return _SSIM.apply(img1.to(dtype), img2.to(dtype), _gaussian_taps(window_size), c1, c2, eps)


def _check_error_inputs(warped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                        alpha: float, window_size: int) -> None:
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
    if not isinstance(window_size, int) or window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd int, got {window_size!r}")


def _error_map(x: torch.Tensor, y: torch.Tensor, alpha: float, window_size: int,
               max_val: float) -> torch.Tensor:
    """``(B, H, W)`` error of masked images ``x``, ``y`` (``(B, C, H, W)``)."""
    l1 = (x - y).abs()
    if alpha > 0:
        err = alpha / 2.0 * (1.0 - ssim_map(x, y, window_size, max_val=max_val)) + (
            1.0 - alpha) * l1
    else:
        err = l1
    return err.mean(1)


@functools.lru_cache(maxsize=32)
def _background_error(alpha: float, window_size: int, max_val: float, dtype: torch.dtype
                      ) -> float:
    """The error where both masked images are 0 in the whole window (same arithmetic)."""
    side = 2 * (window_size // 2) + 1
    zero = torch.zeros(1, 1, side, side, dtype=dtype)
    return float(_error_map(zero, zero, alpha, window_size, max_val)[0, 0, 0])


def _mask_box(mask: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the mask's bounding box over the batch, grown by ``margin``
    and clipped to the image; the whole image if the mask is empty."""
    _, h, w = mask.shape
    covered = (mask if mask.dtype == torch.bool else mask != 0).any(0)
    idx = torch.nonzero(torch.cat([covered.any(1), covered.any(0)])).squeeze(1).tolist()
    rows = [i for i in idx if i < h]
    cols = [i - h for i in idx if i >= h]
    if not rows:
        return 0, h, 0, w
    return (max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h),
            max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w))


def _paste(err: torch.Tensor, box: tuple[int, int, int, int], size: tuple[int, int],
           value: float) -> torch.Tensor:
    """Embed a ``(B, h, w)`` window at ``box`` into a ``size`` map filled with ``value``."""
    y0, y1, x0, x1 = box
    h, w = size
    if (y0, y1, x0, x1) == (0, h, 0, w):
        return err
    return F.pad(err, (x0, w - x1, y0, h - y1), value=value)


def photometric_error(warped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      alpha: float = PHOTO_ALPHA, window_size: int = SSIM_WINDOW,
                      max_val: float = 1.0) -> torch.Tensor:
    """Per-pixel ``alpha / 2 (1 - SSIM) + (1 - alpha) |.|`` of the masked images.

    Both images are 0 outside ``mask``, so the error is only computed in the mask's bounding
    box grown by two SSIM radii (where a window can see the mask, plus the reflect padding's
    reach); elsewhere it is the constant error of two black windows (``alpha / 2 (1 - SSIM(0,
    0))``, not exactly 0 because of :data:`SSIM_EPS`).

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
    _check_error_inputs(warped, target, mask, alpha, window_size)
    h, w = target.shape[-2:]
    y0, y1, x0, x1 = box = _mask_box(mask, 2 * (window_size // 2))
    m = mask[:, y0:y1, x0:x1].unsqueeze(1).to(target.dtype)
    err = _error_map(warped[..., y0:y1, x0:x1] * m, target[..., y0:y1, x0:x1] * m, alpha,
                     window_size, max_val)
    return _paste(err, box, (h, w), _background_error(alpha, window_size, max_val, err.dtype))


def photo_consistency_loss(source: torch.Tensor, target: torch.Tensor, depth_m: torch.Tensor,
                           target_mask: torch.Tensor, fx_px: float | torch.Tensor,
                           baseline_m: float | torch.Tensor,
                           shift_px: float | torch.Tensor = 0.0,
                           scale_x: float | torch.Tensor = 1.0, target_view: str = "right",
                           alpha: float = PHOTO_ALPHA, window_size: int = SSIM_WINDOW,
                           reduction: str = "mean") -> torch.Tensor:
    """Photo-consistency of one branch (see the module docstring).

    Equal to ``photometric_error(warp_horizontal(source, *crop_disparity_offset(...)), target,
    target_mask)`` reduced, but the warp and the error are only evaluated in the mask's
    bounding box (see :func:`photometric_error`).

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
    check_tensor(source, "source", 4)
    check_tensor(depth_m, "depth_m", 3)
    if depth_m.shape != (source.shape[0],) + tuple(source.shape[2:]):
        raise ValueError(f"depth_m must have shape (B, H, W) = "
                         f"{(source.shape[0],) + tuple(source.shape[2:])}, got "
                         f"{tuple(depth_m.shape)}")
    _check_error_inputs(source, target, target_mask, alpha, window_size)
    h, w = target.shape[-2:]
    y0, y1, x0, x1 = box = _mask_box(target_mask, 2 * (window_size // 2))
    offset, valid = crop_disparity_offset(depth_m[:, y0:y1, x0:x1], fx_px, baseline_m,
                                          shift_px, scale_x, target_view)
    warped = _warp(source, offset, valid, x0, y0)
    m = target_mask[:, y0:y1, x0:x1].unsqueeze(1).to(target.dtype)
    err = _error_map(warped * m, target[..., y0:y1, x0:x1] * m, alpha, window_size, 1.0)
    err = _paste(err, box, (h, w), _background_error(alpha, window_size, 1.0, err.dtype))
    return reduce(err, reduction)


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
