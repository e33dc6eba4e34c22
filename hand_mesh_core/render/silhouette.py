"""Soft, differentiable silhouette (SoftRas-style).

Each face ``j`` near pixel ``p`` contributes ``D_j(p) = sigmoid(delta_j * d_j(p)^2 / s^2)``, with
``d_j`` the screen distance from the pixel centre to the projected triangle's boundary (px),
``delta_j = +1`` inside and ``-1`` outside, and ``s = soft_scale_px``. Faces farther than
``soft_band_px`` are ignored. The contributions are aggregated as a probabilistic union,
``mask = 1 - prod_j (1 - D_j)``, evaluated stably as ``1 - exp(-sum_j softplus(delta_j d_j^2 /
s^2))`` (Liu et al., "Soft Rasterizer", ICCV 2019, eq. 2 and 4, with distances in px instead
of NDC). Gradients reach the projected vertices, hence the 3D vertices, also from pixels
*outside* the mesh, which is what the mask loss needs.

As in SoftRas, a pixel centre lying exactly on an edge shared by two faces of a single-layer
surface reads 0.75, not 1; a closed mesh (front and back layers) is above 0.9 there.

With ``hard_mask`` given, only pixels within ``soft_band_px`` of the hard silhouette are
evaluated: pixels deeper inside are 1 and pixels farther outside are 0 (their exact values
differ from 1 or 0 by less than the cut-off, ``sigmoid(-(band / s)^2)``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from hand_mesh_core.geometry.projection import project
from hand_mesh_core.render.config import RenderConfig
from hand_mesh_core.render.rasterize import _batched_K, _valid_faces, bbox_pairs, check_inputs

__all__ = ["soft_silhouette", "band_region"]

_DEFAULT = RenderConfig()


def _integral(m: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` bool -> ``(B, H + 1, W + 1)`` int32 summed-area table."""
    batch, h, w = m.shape
    out = torch.zeros(batch, h + 1, w + 1, dtype=torch.int32, device=m.device)
    out[:, 1:, 1:] = m.to(torch.int32).cumsum(1).cumsum(2)
    return out


def band_region(hard_mask: torch.Tensor, band_px: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels near the boundary of a binary mask.

    Args:
        hard_mask: ``(B, H, W)`` bool.
        band_px: half-width of the band, px.

    Returns:
        ``near`` ``(B, H, W)`` bool, pixels whose square window of half-width ``ceil(band_px)``
        holds both a covered and an uncovered pixel (pixels outside the image count as
        uncovered); ``deep`` ``(B, H, W)`` bool, pixels whose window is entirely covered.
    """
    r = int(math.ceil(band_px))
    _, h, w = hard_mask.shape
    s = _integral(hard_mask)
    ys = torch.arange(h, device=hard_mask.device)
    xs = torch.arange(w, device=hard_mask.device)
    y0, y1 = (ys - r).clamp(0, h), (ys + r + 1).clamp(0, h)
    x0, x1 = (xs - r).clamp(0, w), (xs + r + 1).clamp(0, w)
    count = (s[:, y1][:, :, x1] - s[:, y0][:, :, x1] - s[:, y1][:, :, x0]
             + s[:, y0][:, :, x0])
    full = (2 * r + 1) ** 2
    deep = count == full
    near = (count > 0) & ~deep
    return near, deep


def _box_has_any(region: torch.Tensor, tri_batch: torch.Tensor, uv_tri: torch.Tensor,
                 pad_px: float) -> torch.Tensor:
    """``(N,)`` bool: the padded bounding box of each triangle contains a ``region`` pixel.

    Args:
        region: ``(B, H, W)`` bool.
        tri_batch: ``(N,)`` batch index of each triangle.
        uv_tri: ``(N, 3, 2)`` projected corners, px.
    """
    batch, h, w = region.shape
    integral = _integral(region)
    lo = uv_tri.amin(1) - pad_px
    hi = uv_tri.amax(1) + pad_px
    x0 = torch.ceil(lo[:, 0]).clamp(0, w).long()
    y0 = torch.ceil(lo[:, 1]).clamp(0, h).long()
    x1 = (torch.floor(hi[:, 0]) + 1).clamp(0, w).long()
    y1 = (torch.floor(hi[:, 1]) + 1).clamp(0, h).long()
    x1 = torch.maximum(x1, x0)
    y1 = torch.maximum(y1, y0)
    flat = integral.reshape(batch, -1)
    stride = w + 1
    base = tri_batch

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return flat[base, y * stride + x]

    total = at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)
    return total > 0


def _segment_dist2(px: torch.Tensor, py: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor,
                   bx: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    """Squared distance from points ``p`` to segments ``ab`` (all ``(N,)`` components).

    The autograd reference of :class:`_SignedDist2` (kept for the tests).
    """
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    len2 = abx * abx + aby * aby
    t = ((apx * abx + apy * aby) / len2.clamp_min(torch.finfo(px.dtype).tiny)).clamp(0.0, 1.0)
    qx, qy = apx - t * abx, apy - t * aby
    return qx * qx + qy * qy


#: Rows of the (ax, ay, bx, by, cx, cy) corner table holding each edge's start and end:
#: edges (a, b), (b, c), (c, a).
_START_X, _START_Y = [0, 2, 4], [1, 3, 5]
_END_X, _END_Y = [2, 4, 0], [3, 5, 1]


class _SignedDist2(torch.autograd.Function):
    """``+d^2`` inside the triangle, ``-d^2`` outside, ``d`` the distance from the pixel centre
    to the triangle's boundary (px), with an analytic backward.

    With ``q = p - (s + t (e - s))`` the vector from the closest point of the closest edge
    ``(s, e)`` to ``p`` (``t`` clamped to [0, 1]), ``d d^2 / d s = -2 q (1 - t)`` and
    ``d d^2 / d e = -2 q t`` (the derivative through ``t`` vanishes at the optimum or is 0 where
    ``t`` is clamped). Replaces ~40 autograd nodes per call with one.
    """

    @staticmethod
    def forward(ctx, corners: torch.Tensor, px: torch.Tensor, py: torch.Tensor
                ) -> torch.Tensor:
        """``corners``: ``(6, P)`` rows ax, ay, bx, by, cx, cy; ``px``, ``py``: ``(P,)``."""
        sx, sy = corners[_START_X], corners[_START_Y]
        ex, ey = corners[_END_X] - sx, corners[_END_Y] - sy
        qx, qy = px - sx, py - sy
        # Edge functions (twice the signed sub-triangle areas) with the same sign as the area
        # on every edge <=> the pixel centre is inside or on the triangle.
        w = ex * qy - ey * qx
        len2 = ex * ex + ey * ey
        t = ((qx * ex + qy * ey) / len2.clamp_min(torch.finfo(px.dtype).tiny)).clamp_(0.0, 1.0)
        qx = qx - t * ex
        qy = qy - t * ey
        d2, edge = (qx * qx + qy * qy).min(0, keepdim=True)
        area = ex[0] * (corners[5] - corners[1]) - ey[0] * (corners[4] - corners[0])
        inside = (area != 0) & ((w * area >= 0).all(0))
        ctx.save_for_backward(edge, t.gather(0, edge), qx.gather(0, edge), qy.gather(0, edge),
                              inside)
        d2 = d2.squeeze(0)
        return torch.where(inside, d2, -d2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        edge, t, qx, qy, inside = ctx.saved_tensors
        k = -2.0 * torch.where(inside, grad, -grad)
        onehot = torch.zeros(3, edge.shape[1], dtype=grad.dtype, device=grad.device)
        onehot.scatter_(0, edge, 1.0)
        w_start = onehot * (1.0 - t)
        w_end = onehot * t
        corner = k * (w_start + w_end.roll(1, 0))  # corner i starts edge i and ends edge i - 1
        return torch.stack([corner * qx, corner * qy], 1).reshape(6, -1), None, None


def soft_silhouette(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                    image_size: tuple[int, int], hard_mask: torch.Tensor | None = None,
                    config: RenderConfig = _DEFAULT) -> torch.Tensor:
    """Soft silhouette of meshes, differentiable w.r.t. the vertices.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)`` metres, camera optical frame.
        faces: ``(F, 3)`` integer vertex indices.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the image.
        image_size: ``(H, W)`` px.
        hard_mask: optional ``(B, H, W)`` bool coverage from the rasteriser; restricts the work
            to a band around its boundary (see the module docstring).
        config: ``soft_scale_px``, ``soft_band_px``, ``near_m``.

    Returns:
        ``(B, H, W)`` in [0, 1], same dtype as ``vertices``.
    """
    vertices, faces, (h, w) = check_inputs(vertices, faces, image_size)
    batch = vertices.shape[0]
    if hard_mask is not None and hard_mask.shape != (batch, h, w):
        raise ValueError(f"hard_mask must have shape ({batch}, {h}, {w}), got "
                         f"{tuple(hard_mask.shape)}")
    Kb = _batched_K(K, batch, vertices)
    nf = faces.shape[0]
    if nf == 0:
        return vertices.new_zeros(batch, h, w)
    uv = project(vertices, Kb, min_depth_m=config.near_m)
    # Work inside the region of interest: the hard mask's bounding box grown by the band.
    oy, ox, rh, rw = 0, 0, h, w
    if hard_mask is not None:
        r = int(math.ceil(config.soft_band_px)) + 1
        rows = torch.nonzero(hard_mask.any(2).any(0)).squeeze(1)
        cols = torch.nonzero(hard_mask.any(1).any(0)).squeeze(1)
        if rows.numel() == 0:
            return vertices.new_zeros(batch, h, w)
        oy, ox = max(int(rows[0]) - r, 0), max(int(cols[0]) - r, 0)
        rh = min(int(rows[-1]) + r + 1, h) - oy
        rw = min(int(cols[-1]) + r + 1, w) - ox
        hard_mask = hard_mask[:, oy:oy + rh, ox:ox + rw]
        uv = uv - torch.tensor([ox, oy], dtype=uv.dtype, device=uv.device)
    n = batch * rh * rw
    uv_tri_all = uv[:, faces].reshape(batch * nf, 3, 2)
    with torch.no_grad():
        valid = _valid_faces(vertices[..., 2].detach(), faces, config.near_m).reshape(-1)
        near = deep = None
        if hard_mask is not None:
            near, deep = band_region(hard_mask, config.soft_band_px)
            tri_batch = torch.arange(batch, device=vertices.device).repeat_interleave(nf)
            valid = valid & _box_has_any(near, tri_batch, uv_tri_all.detach(),
                                         config.soft_band_px)
        tri, px, py = bbox_pairs(uv_tri_all.detach(), valid, (rh, rw), config.soft_band_px)
        pix = (torch.div(tri, nf, rounding_mode="floor") * rh + py) * rw + px
        if near is not None:
            keep = torch.nonzero(near.reshape(-1).index_select(0, pix)).squeeze(1)
            tri, px, py, pix = (x.index_select(0, keep) for x in (tri, px, py, pix))
    # Corner coordinates as 6 rows (ax, ay, bx, by, cx, cy) so every op is on flat (P,)
    # tensors; gathered as rows of 6 (dim 0), whose backward (index_add) is fast.
    comp = uv_tri_all.reshape(-1, 6).index_select(0, tri).t()
    x = _SignedDist2.apply(comp, px.to(uv.dtype), py.to(uv.dtype)) / (config.soft_scale_px ** 2)
    log_outside = vertices.new_zeros(n).index_add(0, pix, -F.softplus(x))
    soft = (1.0 - torch.exp(log_outside)).reshape(batch, rh, rw)
    if deep is not None:
        soft = torch.where(deep, torch.ones_like(soft), soft)
    if (rh, rw) != (h, w):
        soft = F.pad(soft, (ox, w - ox - rw, oy, h - oy - rh))
    return soft
