"""Differentiable interpolation over rasterised faces (depth and vertex attributes).

The rasteriser only says *which* face is visible at a pixel. Here the pixel's ray is intersected
with that face's plane in torch, so depth and the perspective-correct barycentrics are smooth
functions of the vertex positions and gradients reach the vertices (like nvdiffrast's
``interpolate``). For the pixel centre ``(u, v)`` the ray is ``d = K^-1 (u, v, 1)`` (``d_z = 1``)
and, with the face normal ``n = (v1 - v0) x (v2 - v0)``,

    depth = <n, v0> / <n, d>,   p = depth * d,   b_1 = <p - v0, (v2 - v0) x n> / |n|^2,
    b_2 = <p - v0, n x (v1 - v0)> / |n|^2,   b_0 = 1 - b_1 - b_2,

which equals interpolating ``1 / z`` linearly in screen space. ``n``, ``<n, v0>`` and the two
barycentric gradient vectors depend only on the face: they are computed once per face and
gathered per pixel (a few multiply-adds per pixel instead of three cross products).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hand_mesh_core.render.rasterize import _batched_K, check_inputs

__all__ = ["Interpolated", "interpolate", "interpolate_checked", "ray_face_intersection",
           "PARALLEL_EPS"]

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
    bary = torch.where(ok.unsqueeze(-1), bary, 0.0)
    return depth, bary, ok


def _face_tables(vertices: torch.Tensor, faces: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-face plane and barycentric tables (differentiable, ``B * F`` rows).

    Returns:
        ``plane`` ``(B * F, 4)``: normal ``n = (v1 - v0) x (v2 - v0)`` and ``<n, v0>``;
        ``bary`` ``(B * F, 9)``: ``v0``, ``(v2 - v0) x n / |n|^2``, ``n x (v1 - v0) / |n|^2``
        (so ``b1 = <p - v0, .>`` and ``b2`` likewise for a point p on the plane);
        ``norm`` ``(B * F,)`` detached ``|n|`` (0 for degenerate faces).
    """
    tri = vertices[:, faces]  # (B, F, 3, 3)
    v0, v1, v2 = tri.unbind(-2)
    e1, e2 = v1 - v0, v2 - v0
    n = torch.linalg.cross(e1, e2, dim=-1)
    nn2 = (n * n).sum(-1, keepdim=True)
    inv = 1.0 / torch.where(nn2 > 0, nn2, 1.0)
    plane = torch.cat([n, (n * v0).sum(-1, keepdim=True)], -1).flatten(0, 1)
    bary = torch.cat([v0, torch.linalg.cross(e2, n, dim=-1) * inv,
                      torch.linalg.cross(n, e1, dim=-1) * inv], -1).flatten(0, 1)
    return plane, bary, nn2.detach().sqrt().flatten()


def interpolate(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                face_ids: torch.Tensor, attributes: torch.Tensor | None = None,
                fallback_depth_m: torch.Tensor | None = None,
                pixel_index: torch.Tensor | None = None) -> Interpolated:
    """Depth, barycentrics and attributes at the pixel centres, differentiable in ``vertices``.

    The ray through each covered pixel centre is intersected with its face's plane (see the
    module docstring). The per-face quantities (normal, ``<n, v0>``, barycentric gradients) are
    computed once per face and gathered per pixel, so a pixel costs a few multiply-adds.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)`` metres, camera optical frame (as rasterised).
        faces: ``(F, 3)`` integer vertex indices.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the rendered image.
        face_ids: ``(B, H, W)`` int64 from :func:`~hand_mesh_core.render.rasterize.rasterize`.
        attributes: optional ``(B, V, C)`` or ``(V, C)`` per-vertex values.
        fallback_depth_m: optional ``(B, H, W)`` depth used (detached) where the ray grazes the
            face (see :data:`PARALLEL_EPS`); 0 otherwise.
        pixel_index: optional ``(N,)`` int64 ascending flat indices of the pixels with
            ``face_ids >= 0`` (``Fragments.pixel_index``); found with ``nonzero`` if None.

    Returns:
        :class:`Interpolated`.

    Raises:
        ValueError: shapes do not match.
    """
    batch_in = vertices.shape[0] if vertices.dim() == 3 else 1
    if face_ids.dim() != 3 or face_ids.shape[0] != batch_in:
        raise ValueError(f"face_ids must have shape ({batch_in}, H, W), got "
                         f"{tuple(face_ids.shape)}")
    vertices, faces, _ = check_inputs(vertices, faces, tuple(face_ids.shape[1:]))
    batch, nv = vertices.shape[:2]
    if attributes is not None:
        if attributes.dim() == 2:
            attributes = attributes.unsqueeze(0).expand(batch, -1, -1)
        if attributes.dim() != 3 or attributes.shape[:2] != (batch, nv):
            raise ValueError(f"attributes must have shape ({batch}, {nv}, C) or ({nv}, C), got "
                             f"{tuple(attributes.shape)}")
    return interpolate_checked(vertices, faces, _batched_K(K, batch, vertices), face_ids,
                               attributes, fallback_depth_m, pixel_index)


def interpolate_checked(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                        face_ids: torch.Tensor, attributes: torch.Tensor | None = None,
                        fallback_depth_m: torch.Tensor | None = None,
                        pixel_index: torch.Tensor | None = None) -> Interpolated:
    """:func:`interpolate` without input validation: ``(B, V, 3)`` vertices, int64 ``(F, 3)``
    faces, ``(B, 3, 3)`` K, ``(B, V, C)`` attributes or None."""
    batch, h, w = face_ids.shape
    nv, nf = vertices.shape[1], faces.shape[0]
    hw = h * w
    flat_ids = face_ids.reshape(-1)
    sel = (torch.nonzero(flat_ids >= 0).squeeze(1) if pixel_index is None else pixel_index)
    fid = flat_ids.index_select(0, sel)
    if batch > 1:
        b = torch.div(sel, hw, rounding_mode="floor")
        rem = sel - b * hw
        fid = fid + b * nf
    else:
        b, rem = None, sel
    row = torch.div(rem, w, rounding_mode="floor")
    y = row.to(vertices.dtype)
    x = (rem - row * w).to(vertices.dtype)
    # (fx, fy, cx, cy, skew) of each pixel's image.
    kpar = torch.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 0, 1]], 0)
    fx, fy, cx, cy, skew = (kpar.index_select(1, b) if b is not None else kpar[:, :1]).unbind(0)
    yn = (y - cy) / fy
    xn = (x - cx - skew * yn) / fx
    plane_t, bary_t, norm_t = _face_tables(vertices, faces)
    plane = plane_t.index_select(0, fid)
    denom = plane[:, 0] * xn + plane[:, 1] * yn + plane[:, 2]
    with torch.no_grad():
        ray_len = torch.sqrt(xn * xn + yn * yn + 1.0)
        norm = norm_t.index_select(0, fid)
        ok = (denom.abs() > PARALLEL_EPS * norm * ray_len) & (norm > 0)
    hit = torch.where(ok, plane[:, 3] / torch.where(ok, denom, 1.0), 0.0)
    tab = bary_t.index_select(0, fid)
    px, py, pz = hit * xn - tab[:, 0], hit * yn - tab[:, 1], hit - tab[:, 2]
    b1 = px * tab[:, 3] + py * tab[:, 4] + pz * tab[:, 5]
    b2 = px * tab[:, 6] + py * tab[:, 7] + pz * tab[:, 8]
    bary = torch.stack([1.0 - b1 - b2, b1, b2], -1)
    bary = torch.where(ok.unsqueeze(-1), bary, 0.0)
    depth = hit
    if fallback_depth_m is not None:
        depth = torch.where(ok, hit, fallback_depth_m.reshape(-1).index_select(0, sel).detach()
                            .to(hit))
    n = batch * hw
    depth_map = vertices.new_zeros(n).index_copy(0, sel, depth).reshape(batch, h, w)
    bary_map = vertices.new_zeros(n, 3).index_copy(0, sel, bary).reshape(batch, h, w, 3)
    attr_map = None
    if attributes is not None:
        c = attributes.shape[-1]
        vi = faces.index_select(0, fid - b * nf if b is not None else fid)
        if b is not None:
            vi = vi + (b * nv).unsqueeze(-1)
        flat_a = attributes.reshape(batch * nv, c)
        a = flat_a.index_select(0, vi.reshape(-1)).reshape(-1, 3, c)
        vals = (bary.unsqueeze(-1).to(a.dtype) * a).sum(1)
        attr_map = a.new_zeros(n, c).index_copy(0, sel, vals).reshape(batch, h, w, c)
    return Interpolated(depth_m=depth_map, bary=bary_map, attributes=attr_map, pixel_index=sel)
