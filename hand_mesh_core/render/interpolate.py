"""Differentiable interpolation over rasterised faces (depth and vertex attributes).

The rasteriser only says *which* face is visible at a pixel. Here the pixel's ray is intersected
with that face's plane in torch, so depth and the perspective-correct barycentrics are smooth
functions of the vertex positions and gradients reach the vertices (like nvdiffrast's
``interpolate``). For the pixel centre ``(u, v)`` the ray is ``d = K^-1 (u, v, 1)`` (``d_z = 1``)
and, with the face normal ``n = (v1 - v0) x (v2 - v0)``,

    depth = <n, v0> / <n, d>,   p = depth * d,   b_0 = <(v1 - p) x (v2 - p), n> / |n|^2, ...

which equals interpolating ``1 / z`` linearly in screen space.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hand_mesh_core.render.rasterize import _batched_K, check_inputs

__all__ = ["Interpolated", "interpolate", "ray_face_intersection", "PARALLEL_EPS"]

#: |<n, d>| / (|n| |d|) below this means the ray grazes the face plane: its depth is taken from
#: the (non-differentiable) rasteriser instead of dividing by ~0. cos(89.99 deg) ~ 1.7e-4.
PARALLEL_EPS = 1e-6


@dataclass(frozen=True)
class Interpolated:
    """Per-pixel values on the visible surface.

    Attributes:
        depth_m: ``(B, H, W)`` z of the visible surface, metres, camera frame; 0 where no face.
        bary: ``(B, H, W, 3)`` perspective-correct barycentrics; 0 where no face.
        attributes: ``(B, H, W, C)`` interpolated vertex attributes (0 where no face), or None.
        pixel_index: ``(N,)`` int64 flat index into ``B * H * W`` of the covered pixels.
    """

    depth_m: torch.Tensor
    bary: torch.Tensor
    attributes: torch.Tensor | None
    pixel_index: torch.Tensor


def ray_face_intersection(tri: torch.Tensor, rays: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Intersect rays from the origin with the planes of triangles.

    Args:
        tri: ``(N, 3, 3)`` triangle corners, metres, camera frame.
        rays: ``(N, 3)`` ray directions with ``z = 1``.

    Returns:
        ``depth`` ``(N,)`` (z of the hit), ``bary`` ``(N, 3)`` barycentrics of the hit (they may
        be outside [0, 1] if the ray misses the triangle), ``ok`` ``(N,)`` bool, False where the
        ray is parallel to the plane or the face is degenerate (depth and bary are 0 there).
    """
    v0, v1, v2 = tri[:, 0], tri[:, 1], tri[:, 2]
    n = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    nn2 = (n * n).sum(-1)
    denom = (n * rays).sum(-1)
    ok = denom.abs() > PARALLEL_EPS * torch.sqrt(nn2 * (rays * rays).sum(-1))
    ok = ok & (nn2 > 0)
    safe_denom = torch.where(ok, denom, torch.ones_like(denom))
    safe_nn2 = torch.where(ok, nn2, torch.ones_like(nn2))
    depth = torch.where(ok, (n * v0).sum(-1) / safe_denom, torch.zeros_like(denom))
    p = depth.unsqueeze(-1) * rays
    b0 = (torch.linalg.cross(v1 - p, v2 - p, dim=-1) * n).sum(-1) / safe_nn2
    b1 = (torch.linalg.cross(v2 - p, v0 - p, dim=-1) * n).sum(-1) / safe_nn2
    bary = torch.stack([b0, b1, 1.0 - b0 - b1], -1)
    bary = torch.where(ok.unsqueeze(-1), bary, torch.zeros_like(bary))
    return depth, bary, ok


def interpolate(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                face_ids: torch.Tensor, attributes: torch.Tensor | None = None,
                fallback_depth_m: torch.Tensor | None = None) -> Interpolated:
    """Depth, barycentrics and attributes at the pixel centres, differentiable in ``vertices``.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)`` metres, camera optical frame (as rasterised).
        faces: ``(F, 3)`` integer vertex indices.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the rendered image.
        face_ids: ``(B, H, W)`` int64 from :func:`~hand_mesh_core.render.rasterize.rasterize`.
        attributes: optional ``(B, V, C)`` or ``(V, C)`` per-vertex values.
        fallback_depth_m: optional ``(B, H, W)`` depth used (detached) where the ray grazes the
            face (see :data:`PARALLEL_EPS`); 0 otherwise.

    Returns:
        :class:`Interpolated`.

    Raises:
        ValueError: shapes do not match.
    """
    batch_in = vertices.shape[0] if vertices.dim() == 3 else 1
    if face_ids.dim() != 3 or face_ids.shape[0] != batch_in:
        raise ValueError(f"face_ids must have shape ({batch_in}, H, W), got "
                         f"{tuple(face_ids.shape)}")
    vertices, faces, (h, w) = check_inputs(vertices, faces, tuple(face_ids.shape[1:]))
    batch, nv = vertices.shape[:2]
    if attributes is not None:
        if attributes.dim() == 2:
            attributes = attributes.unsqueeze(0).expand(batch, -1, -1)
        if attributes.dim() != 3 or attributes.shape[:2] != (batch, nv):
            raise ValueError(f"attributes must have shape ({batch}, {nv}, C) or ({nv}, C), got "
                             f"{tuple(attributes.shape)}")
    Kb = _batched_K(K, batch, vertices)
    flat_ids = face_ids.reshape(-1)
    sel = torch.nonzero(flat_ids >= 0).squeeze(1)
    hw = h * w
    b = torch.div(sel, hw, rounding_mode="floor")
    rem = sel - b * hw
    row = torch.div(rem, w, rounding_mode="floor")
    y = row.to(vertices.dtype)
    x = (rem - row * w).to(vertices.dtype)
    vi = faces.index_select(0, flat_ids.index_select(0, sel))  # (N, 3)
    flat_v = vertices.reshape(batch * nv, 3)
    tri = flat_v.index_select(0, (vi + (b * nv).unsqueeze(-1)).reshape(-1)).reshape(-1, 3, 3)
    # (fx, fy, cx, cy, skew) of each pixel's image.
    kpar = torch.stack([Kb[:, 0, 0], Kb[:, 1, 1], Kb[:, 0, 2], Kb[:, 1, 2], Kb[:, 0, 1]], 0)
    fx, fy, cx, cy, skew = (kpar.index_select(1, b) if batch > 1 else kpar[:, :1]).unbind(0)
    yn = (y - cy) / fy
    xn = (x - cx - skew * yn) / fx
    rays = torch.stack([xn, yn, torch.ones_like(xn)], -1)
    depth, bary, ok = ray_face_intersection(tri, rays)
    if fallback_depth_m is not None:
        depth = torch.where(ok, depth, fallback_depth_m.reshape(-1)[sel].detach().to(depth))
    n = batch * hw
    packed = torch.cat([depth.unsqueeze(-1), bary], -1)
    packed = vertices.new_zeros(n, 4).index_put((sel,), packed).reshape(batch, h, w, 4)
    depth_map, bary_map = packed[..., 0], packed[..., 1:]
    attr_map = None
    if attributes is not None:
        c = attributes.shape[-1]
        flat_a = attributes.reshape(batch * nv, c)
        a = flat_a.index_select(0, (vi + (b * nv).unsqueeze(-1)).reshape(-1)).reshape(-1, 3, c)
        vals = (bary.unsqueeze(-1).to(a.dtype) * a).sum(1)
        attr_map = a.new_zeros(n, c).index_put((sel,), vals).reshape(batch, h, w, c)
    return Interpolated(depth_m=depth_map, bary=bary_map, attributes=attr_map, pixel_index=sel)
