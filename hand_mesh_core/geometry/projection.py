"""Pinhole projection, disparity and stereo triangulation (torch, batched, differentiable).

Conventions: ROS optical frame (x right, y down, z forward), metres; pixel coordinates ``(u, v)``
with the centre of the top-left pixel at ``(0, 0)`` (OpenCV and ROS). Intrinsics are given as
``K`` of shape ``(3, 3)`` or ``(B, 3, 3)``, broadcast over the point dimension.

Invalid depth or disparity (<= 0) maps to 0: "0 means no measurement", as in ROS depth images.
"""
from __future__ import annotations

import torch

__all__ = [
    "MIN_DEPTH_M", "MIN_DISPARITY_PX", "project", "unproject", "depth_to_disparity",
    "disparity_to_depth", "triangulate",
]

#: Smallest depth treated as in front of the camera (1 mm): avoids division by ~0 in project().
MIN_DEPTH_M = 1e-3
#: Smallest |u_l - u_r| used by triangulate(): 1e-3 px corresponds to ~100 km at fx*B = 100 px*m.
MIN_DISPARITY_PX = 1e-3


def _split_K(K: torch.Tensor, ndim: int) -> tuple[torch.Tensor, ...]:
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"K must have shape (3, 3) or (B, 3, 3), got {tuple(K.shape)}")
    # (..., 3, 3) -> entries shaped (..., 1) to broadcast over N.
    extra = ndim - (K.dim() - 2)
    if extra < 0:
        raise ValueError(f"K has more batch dims ({K.dim() - 2}) than the points")
    k = K.reshape(K.shape[:-2] + (1,) * extra + (3, 3))
    return k[..., 0, 0], k[..., 1, 1], k[..., 0, 2], k[..., 1, 2]


def project(points: torch.Tensor, K: torch.Tensor, min_depth_m: float = MIN_DEPTH_M
            ) -> torch.Tensor:
    """Project camera-frame points to pixels.

    Args:
        points: ``(..., N, 3)`` in metres, camera optical frame.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics.
        min_depth_m: z is clamped to at least this before dividing.

    Returns:
        ``(..., N, 2)`` pixel coordinates ``(u, v)``.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., N, 3), got {tuple(points.shape)}")
    fx, fy, cx, cy = _split_K(K.to(points), points.dim() - 1)
    z = points[..., 2].clamp_min(min_depth_m)
    u = fx * points[..., 0] / z + cx
    v = fy * points[..., 1] / z + cy
    return torch.stack([u, v], dim=-1)


def unproject(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Lift pixels with known depth to camera-frame points.

    Args:
        uv: ``(..., N, 2)`` pixel coordinates.
        depth: ``(..., N)`` z in metres.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics.

    Returns:
        ``(..., N, 3)`` points in metres.
    """
    if uv.shape[-1] != 2:
        raise ValueError(f"uv must have shape (..., N, 2), got {tuple(uv.shape)}")
    if depth.shape != uv.shape[:-1]:
        raise ValueError(f"depth must have shape {tuple(uv.shape[:-1])}, got {tuple(depth.shape)}")
    fx, fy, cx, cy = _split_K(K.to(uv), uv.dim() - 1)
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


def depth_to_disparity(depth: torch.Tensor, fx: float | torch.Tensor,
                       baseline_m: float | torch.Tensor) -> torch.Tensor:
    """``disparity = fx * B / depth`` in px; 0 where depth <= 0 or is not finite.

    Args:
        depth: any shape, metres.
        fx, baseline_m: scalars or tensors broadcastable to ``depth``.
    """
    valid = torch.isfinite(depth) & (depth > 0)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    return torch.where(valid, fx * baseline_m / safe, torch.zeros_like(depth))


def disparity_to_depth(disparity: torch.Tensor, fx: float | torch.Tensor,
                       baseline_m: float | torch.Tensor) -> torch.Tensor:
    """``depth = fx * B / disparity`` in metres; 0 where disparity <= 0 or is not finite."""
    return depth_to_disparity(disparity, fx, baseline_m)


def triangulate(uv_left: torch.Tensor, uv_right: torch.Tensor, K: torch.Tensor,
                baseline_m: float | torch.Tensor, min_disparity_px: float = MIN_DISPARITY_PX
                ) -> torch.Tensor:
    """Rectified stereo triangulation, ``z = fx * B / |u_l - u_r|``, in the left frame.

    Args:
        uv_left: ``(..., N, 2)`` full-image pixels in the left view.
        uv_right: ``(..., N, 2)`` full-image pixels in the right view.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics shared by both views.
        baseline_m: scalar, or a tensor broadcastable to ``(..., N)`` (e.g. ``(B, 1)``).
        min_disparity_px: |disparity| is clamped to at least this.

    Returns:
        ``(..., N, 3)`` points in metres, left optical frame. ``v`` is taken from the left view.
    """
    if uv_left.shape != uv_right.shape:
        raise ValueError(f"uv_left {tuple(uv_left.shape)} and uv_right {tuple(uv_right.shape)} "
                         "must have the same shape")
    fx = _split_K(K.to(uv_left), uv_left.dim() - 1)[0]
    disparity = (uv_left[..., 0] - uv_right[..., 0]).abs().clamp_min(min_disparity_px)
    depth = fx * baseline_m / disparity
    return unproject(uv_left, depth, K)
