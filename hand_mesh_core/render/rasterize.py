"""Rasterisation: which triangle is visible at each pixel centre (not differentiable).

Two interchangeable backends, split like nvdiffrast (rasterise here, then interpolate in torch):

* ``"torch"``: vectorised scanline rasteriser. Per triangle, ``q_i = lambda_i / z_i``
  (screen-space barycentric over vertex depth) is affine in the pixel position, so a triangle
  is a 3x3 table; ``q_i >= 0`` is the inside test and ``sum q_i = 1 / depth``. For each
  (triangle, row of its bounding box) the span of inside columns is solved from the three
  ``q_i``, so only covered (triangle, pixel) pairs are enumerated (about a quarter of the box
  pixels for the hand). The nearest hit per pixel wins: one ``scatter_reduce(amin)`` of int64
  keys packing the float32 depth bits (monotone for positive floats) above the triangle index,
  so depth ties (to float32 precision) go to the smaller face id. The z-buffer spans only the
  union of the triangles' bounding boxes; the outputs are written into the full-size images
  there. Runs on CPU and CUDA. A pixel centre within ~1e-6 px of an edge may fall on either
  side (float rounding), as with any edge-function rasteriser.
* ``"open3d"``: ``open3d.t.geometry.RaycastingScene``, one ray through each pixel centre (CPU).

Conventions: vertices in the camera optical frame (x right, y down, z forward), metres; pixel
``(u, v)`` centres at integers, ``u`` along the width. A pixel is covered when its centre lies in
the projected triangle (edges included). Triangles with a vertex at ``z < near_m`` are not drawn
(no clipping: a hand is always well in front of the camera). With
``RenderConfig.cull_back_faces`` (default) faces seen from behind (clockwise on screen: the
faces are counter-clockwise seen from outside) are skipped by both backends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hand_mesh_core.geometry.projection import project
from hand_mesh_core.render.config import RASTER_BACKENDS, RenderConfig

__all__ = ["Fragments", "rasterize", "rasterize_projected", "resolve_backend", "check_inputs",
           "drawable_faces", "RasterSetup", "raster_setup", "rasterize_setup", "bbox_pairs",
           "rasterize_checked"]

_DEFAULT = RenderConfig()


@dataclass(frozen=True)
class Fragments:
    """The visible surface at each pixel centre (no gradients).

    Attributes:
        face_ids: ``(B, H, W)`` int64 index of the visible face, -1 where no face covers the pixel.
        bary: ``(B, H, W, 3)`` perspective-correct barycentrics of the pixel centre in its face
            (0 where ``face_ids == -1``); None only from ``rasterize_setup(...,
            barycentrics=False)``.
        depth_m: ``(B, H, W)`` z of the visible surface, metres, 0 where ``face_ids == -1``.
        pixel_index: ``(N,)`` int64 ascending flat indices into ``B * H * W`` of the covered
            pixels, or None (not known: find them with ``nonzero``).
    """

    face_ids: torch.Tensor
    bary: torch.Tensor | None
    depth_m: torch.Tensor
    pixel_index: torch.Tensor | None = None

    @property
    def mask(self) -> torch.Tensor:
        """``(B, H, W)`` bool: a face covers the pixel."""
        return self.face_ids >= 0


def check_inputs(vertices: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int]
                 ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Validate and normalise renderer inputs.

    Returns:
        ``vertices`` as ``(B, V, 3)``, ``faces`` as an int64 ``(F, 3)`` tensor on the vertices'
        device, and ``(H, W)``.
    """
    if not isinstance(vertices, torch.Tensor):
        raise TypeError(f"vertices must be a torch.Tensor, got {type(vertices).__name__}")
    if not vertices.is_floating_point():
        raise TypeError(f"vertices must be floating point, got {vertices.dtype}")
    if vertices.dim() == 2:
        vertices = vertices.unsqueeze(0)
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (B, V, 3) or (V, 3), got "
                         f"{tuple(vertices.shape)}")
    faces = torch.as_tensor(faces, device=vertices.device)
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise TypeError(f"faces must be an integer tensor, got {faces.dtype}")
    faces = faces.long()
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[1]):
        raise ValueError(f"faces must index vertices in [0, {vertices.shape[1]}), got range "
                         f"[{int(faces.min())}, {int(faces.max())}]")
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(s, (int, np.integer)) and s > 0 for s in image_size)):
        raise ValueError(f"image_size must be (height, width) with positive ints, got "
                         f"{image_size!r}")
    return vertices, faces, (int(image_size[0]), int(image_size[1]))


def _batched_K(K: torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
    K = torch.as_tensor(K).to(dtype=like.dtype, device=like.device)
    if K.shape == (3, 3):
        return K.expand(batch, 3, 3)
    if K.dim() == 3 and K.shape[1:] == (3, 3) and K.shape[0] in (1, batch):
        return K.expand(batch, 3, 3)
    raise ValueError(f"K must have shape (3, 3) or ({batch}, 3, 3), got {tuple(K.shape)}")


def resolve_backend(backend: str, device: torch.device, num_pairs: int,
                    config: RenderConfig = _DEFAULT) -> str:
    """The concrete backend ("torch" or "open3d") for ``backend`` in :data:`RASTER_BACKENDS`.

    Args:
        backend: the requested backend.
        device: where the vertices are.
        num_pairs: (triangle, pixel) candidates the torch rasteriser would test.
        config: ``max_torch_pairs``.
    """
    if backend not in RASTER_BACKENDS:
        raise ValueError(f"backend must be one of {list(RASTER_BACKENDS)}, got {backend!r}")
    if backend == "open3d" and device.type != "cpu":
        raise ValueError(f"backend 'open3d' needs CPU tensors, got device {device}; "
                         "use 'torch' or 'auto'")
    if backend != "auto":
        return backend
    if device.type != "cpu" or num_pairs <= config.max_torch_pairs:
        return "torch"
    return "open3d"


def _valid_faces(z: torch.Tensor, faces: torch.Tensor, near_m: float) -> torch.Tensor:
    """``(B, F)`` bool: all three vertices finite and at ``z >= near_m``."""
    zf = z[:, faces]  # (B, F, 3)
    return (torch.isfinite(zf) & (zf >= near_m)).all(-1)


def _screen_area(uv_tri: torch.Tensor) -> torch.Tensor:
    """``(...,)`` twice the signed area of projected triangles ``(..., 3, 2)``, px^2.

    Negative for triangles counter-clockwise from the camera's side (u right, v down): with all
    three depths positive its sign is the sign of ``det(v0, v1, v2) = <n, v0>``.
    """
    a, b, c = uv_tri.unbind(-2)
    return ((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
            - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))


def drawable_faces(uv: torch.Tensor, z: torch.Tensor, faces: torch.Tensor, near_m: float,
                   cull_back_faces: bool) -> torch.Tensor:
    """``(B, F)`` bool: faces the rasterisers draw.

    A face is drawn when its three vertices are finite and at ``z >= near_m``, its projection
    is not degenerate, and (with ``cull_back_faces``) it faces the camera.

    Args:
        uv: ``(B, V, 2)`` projected vertices, px.
        z: ``(B, V)`` their depth, metres.
        faces: ``(F, 3)`` int64.
        near_m: near plane, metres.
        cull_back_faces: drop faces seen from behind.
    """
    area = _screen_area(uv[:, faces])
    ok = _valid_faces(z, faces, near_m) & (area != 0) & torch.isfinite(area)
    if cull_back_faces:
        ok = ok & (area < 0)
    return ok


def _empty(batch: int, size: tuple[int, int], like: torch.Tensor) -> Fragments:
    h, w = size
    return Fragments(
        face_ids=torch.full((batch, h, w), -1, dtype=torch.int64, device=like.device),
        bary=torch.zeros((batch, h, w, 3), dtype=like.dtype, device=like.device),
        depth_m=torch.zeros((batch, h, w), dtype=like.dtype, device=like.device))


def bbox_pairs(uv_tri: torch.Tensor, valid: torch.Tensor, size: tuple[int, int],
               pad_px: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Enumerate (triangle, pixel) pairs whose pixel centre lies in the triangle's bounding box.

    Args:
        uv_tri: ``(N, 3, 2)`` projected corners of N triangles, px.
        valid: ``(N,)`` bool, triangles to consider.
        size: ``(H, W)``.
        pad_px: grow each box by this much on every side.

    Returns:
        ``tri`` ``(P,)`` int64 triangle index, ``px`` ``(P,)`` and ``py`` ``(P,)`` int64 pixel.
    """
    h, w = size
    lo = uv_tri.amin(1) - pad_px
    hi = uv_tri.amax(1) + pad_px
    x0 = torch.ceil(lo[:, 0]).clamp(0, w).long()
    y0 = torch.ceil(lo[:, 1]).clamp(0, h).long()
    x1 = torch.floor(hi[:, 0]).clamp(-1, w - 1).long()
    y1 = torch.floor(hi[:, 1]).clamp(-1, h - 1).long()
    bw = (x1 - x0 + 1).clamp_min(0)
    bh = (y1 - y0 + 1).clamp_min(0)
    count = torch.where(valid, bw * bh, torch.zeros_like(bw))
    total = int(count.sum())
    dev = uv_tri.device
    if total == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=dev)
        return empty, empty, empty
    tri = torch.repeat_interleave(torch.arange(count.shape[0], device=dev), count,
                                  output_size=total)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(total, device=dev) - start.index_select(0, tri)
    bwt = bw.index_select(0, tri)
    row = torch.div(local, bwt, rounding_mode="floor")
    px = x0.index_select(0, tri) + (local - row * bwt)
    py = y0.index_select(0, tri) + row
    return tri, px, py


#: z-buffer key of a pixel without a fragment (larger than every packed key).
_NO_HIT = torch.iinfo(torch.int64).max
#: A z-buffer key is ``float32_bits(depth) << _INDEX_BITS | triangle index``.
_INDEX_BITS = 32


@dataclass(frozen=True)
class RasterSetup:
    """The triangles the torch rasteriser draws, ready for pixel enumeration.

    Attributes:
        batch: B. num_faces: F. size: ``(H, W)``.
        face: ``(N,)`` int64 ``b * F + f`` of the N drawn triangles, ascending.
        coef: ``(N, 3, 3)`` rows ``(A, B, C)``: ``q_i = A_i col + B_i row + C_i`` at the pixel
            ``(x0 + col, y0 + row)``, with ``q_i = lambda_i / z_i`` (1 / m).
        origin: ``(N, 2)`` int64 ``(x0, y0)``, first pixel of each triangle's bounding box.
        extent: ``(N, 2)`` int64 ``(bw, bh)``, its size (>= 1).
        num_pairs: ``sum(bw * bh)``, the pixels in the boxes.
        num_rows: ``sum(bh)``, the (triangle, row) pairs.
        region: ``(x0, y0, w, h)`` union of the boxes (empty when N = 0).
    """

    batch: int
    num_faces: int
    size: tuple[int, int]
    face: torch.Tensor
    coef: torch.Tensor
    origin: torch.Tensor
    extent: torch.Tensor
    num_pairs: int
    num_rows: int
    region: tuple[int, int, int, int]


def raster_setup(uv: torch.Tensor, z: torch.Tensor, faces: torch.Tensor, size: tuple[int, int],
                 near_m: float, cull_back_faces: bool) -> RasterSetup:
    """Cull, clip to the image and tabulate triangles for :func:`rasterize_setup`.

    Args:
        uv: ``(B, V, 2)`` projected vertices, px (detached).
        z: ``(B, V)`` depths, metres (detached).
        faces: ``(F, 3)`` int64.
        size: ``(H, W)``.
        near_m, cull_back_faces: see :func:`drawable_faces` (same selection, plus a bounding
            box that meets the image).
    """
    batch, f = z.shape[0], faces.shape[0]
    h, w = size
    pts = torch.cat([uv, z.unsqueeze(-1)], -1)[:, faces].reshape(batch * f, 3, 3)
    uvt, zt = pts[..., :2], pts[..., 2]
    area = _screen_area(uvt)
    # Element-wise over the 3 corners (reductions over a size-3 dim are slow on CPU).
    c0, c1, c2 = uvt.unbind(1)
    lo = torch.ceil(torch.minimum(torch.minimum(c0, c1), c2)).clamp_min(0.0)
    hi = torch.minimum(torch.floor(torch.maximum(torch.maximum(c0, c1), c2)),
                       torch.tensor([w - 1.0, h - 1.0], dtype=uv.dtype, device=uv.device))
    z0, z1, z2 = zt.unbind(1)
    span = hi - lo
    ok = ((torch.minimum(torch.minimum(z0, z1), z2) >= near_m) & torch.isfinite(z0 + z1 + z2)
          & (span[:, 0] >= 0) & (span[:, 1] >= 0) & torch.isfinite(area))
    ok = ok & ((area < 0) if cull_back_faces else (area != 0))
    face = torch.nonzero(ok).squeeze(1)
    if face.shape[0] == 0:
        empty = torch.zeros(0, 2, dtype=torch.int64, device=uv.device)
        return RasterSetup(batch, f, size, face, uv.new_zeros(0, 3, 3), empty, empty, 0, 0,
                           (0, 0, 0, 0))
    t = pts.index_select(0, face)
    lo = lo.index_select(0, face)
    hi = hi.index_select(0, face)
    # Edge function of corner i: w_i(p) = e_i x (p - t_{i+1}), e_i = t_{i+2} - t_{i+1}; divided
    # by (area z_i) it is q_i, affine in p. Evaluated relative to the box origin.
    nxt = t[..., :2].roll(-1, 1)
    e = t[..., :2].roll(-2, 1) - nxt
    ob = lo.unsqueeze(1) - nxt
    w_origin = e[..., 0] * ob[..., 1] - e[..., 1] * ob[..., 0]
    scale = (area.index_select(0, face).unsqueeze(1) * t[..., 2]).reciprocal()
    coef = torch.stack([-e[..., 1], e[..., 0], w_origin], 1) * scale.unsqueeze(1)
    origin = lo.long()
    extent = (hi - lo).long() + 1
    stats = torch.cat([(extent[:, 0] * extent[:, 1]).sum().reshape(1),
                       extent[:, 1].sum().reshape(1), origin.amin(0),
                       (origin + extent).amax(0)]).tolist()
    total, rows, rx0, ry0, rx1, ry1 = stats
    return RasterSetup(batch, f, size, face, coef, origin, extent, total, rows,
                       (rx0, ry0, rx1 - rx0, ry1 - ry0))


def _affine_q(coef_t: torch.Tensor, col: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """``(3, P)`` q at local pixels ``(col, row)`` (``(P,)``) from ``(9, P)`` coefficients."""
    return torch.addcmul(torch.addcmul(coef_t[6:9], coef_t[0:3], col), coef_t[3:6], row)


@torch.no_grad()
def rasterize_setup(setup: RasterSetup, barycentrics: bool = True) -> Fragments:
    """Rasterise tabulated triangles (the torch backend's core), scanline by scanline.

    1. (triangle, row) pairs: the span of columns where all three ``q_i >= 0`` (each ``q_i`` is
       affine in the column), so only covered pixels are enumerated, not whole boxes.
    2. (triangle, pixel) pairs in the spans: ``1 / depth = sum_i q_i``, packed with the
       triangle index into an int64 key, ``scatter_reduce(amin)`` into the region's z-buffer.
    3. Covered pixels: ``q`` of the winning triangle gives depth and barycentrics.

    Args:
        setup: from :func:`raster_setup`.
        barycentrics: False skips step 3's barycentrics (``Fragments.bary`` is then None) and
            takes ``depth_m`` from the z-buffer (float32 precision): what
            :func:`~hand_mesh_core.render.renderer.render_mesh` needs, as it recomputes both
            differentiably.

    Returns:
        :class:`Fragments`, full image size.
    """
    batch, f = setup.batch, setup.num_faces
    h, w = setup.size
    dtype, dev = setup.coef.dtype, setup.coef.device
    out = _empty(batch, setup.size, setup.coef)
    n = setup.face.shape[0]
    if n == 0 or setup.num_pairs == 0:
        return out
    rx0, ry0, rw, rh = setup.region
    coef_t = setup.coef.reshape(n, 9).t().contiguous()  # rows A0..2, B0..2, C0..2
    # 1. Rows.
    bh = setup.extent[:, 1]
    num_rows = setup.num_rows
    tri = torch.repeat_interleave(torch.arange(n, device=dev), bh, output_size=num_rows)
    row = torch.arange(num_rows, device=dev) - (torch.cumsum(bh, 0) - bh).index_select(0, tri)
    rowf = row.to(dtype)
    ct = coef_t.index_select(1, tri)
    slope = ct[0:3]
    q_row = torch.addcmul(ct[6:9], ct[3:6], rowf)  # q at column 0 of the row
    cross = -q_row / torch.where(slope == 0, 1.0, slope)
    flat_ok = q_row >= 0  # slope == 0: the whole row, or nothing
    inf = float("inf")
    lo = torch.where(slope > 0, cross, torch.where((slope < 0) | flat_ok, -inf, inf)).amax(0)
    hi = torch.where(slope < 0, cross, torch.where((slope > 0) | flat_ok, inf, -inf)).amin(0)
    # Per triangle: z-buffer index of its box's first pixel, and the box width.
    b = torch.div(setup.face, f, rounding_mode="floor") if batch > 1 else 0
    tri_int = torch.stack([(b * rh + setup.origin[:, 1] - ry0) * rw + setup.origin[:, 0] - rx0,
                           setup.extent[:, 0]], 1).index_select(0, tri)
    c_lo = torch.ceil(lo.clamp(-1.0, float(w))).long().clamp_min(0)
    c_hi = torch.minimum(torch.floor(hi.clamp(-1.0, float(w))).long(), tri_int[:, 1] - 1)
    count = (c_hi - c_lo + 1).clamp_min(0)
    num_pairs = int(count.sum())
    if num_pairs == 0:
        return out
    # z-buffer index of the row's first candidate pixel, minus the row's first pair index.
    col0 = c_lo - (torch.cumsum(count, 0) - count)
    zrow = tri_int[:, 0] + row * rw + col0
    inv_z_row = q_row[0] + q_row[1] + q_row[2]
    dinv_z = slope[0] + slope[1] + slope[2]
    # 2. Pixels.
    rr = torch.repeat_interleave(torch.arange(num_rows, device=dev), count,
                                 output_size=num_pairs)
    ar = torch.arange(num_pairs, device=dev)
    col = (col0.index_select(0, rr) + ar).to(dtype)
    inv_z = torch.addcmul(inv_z_row.index_select(0, rr), dinv_z.index_select(0, rr), col)
    depth = inv_z.reciprocal().float()
    key = (depth.view(torch.int32).long() << _INDEX_BITS) | tri.index_select(0, rr)
    zbuf = torch.full((batch * rh * rw,), _NO_HIT, dtype=torch.int64, device=dev)
    zbuf.scatter_reduce_(0, zrow.index_select(0, rr) + ar, key, reduce="amin")
    # 3. Winners: q of the nearest triangle at each covered pixel.
    hit = torch.nonzero(zbuf != _NO_HIT).squeeze(1)
    key = zbuf.index_select(0, hit)
    k = key & ((1 << _INDEX_BITS) - 1)
    hb = torch.div(hit, rh * rw, rounding_mode="floor")
    rem = hit - hb * (rh * rw)
    y = torch.div(rem, rw, rounding_mode="floor") + ry0
    x = rem - (y - ry0) * rw + rx0
    pix = (hb * h + y) * w + x
    out.face_ids.view(-1).index_copy_(0, pix, setup.face.index_select(0, k) - hb * f)
    if not barycentrics:
        depth = (key >> _INDEX_BITS).to(torch.int32).view(torch.float32).to(dtype)
        out.depth_m.view(-1).index_copy_(0, pix, depth)
        return Fragments(out.face_ids, None, out.depth_m, pix)
    org = setup.origin.index_select(0, k)
    q = _affine_q(coef_t.index_select(1, k), (x - org[:, 0]).to(dtype),
                  (y - org[:, 1]).to(dtype))
    inv_z = q.sum(0)
    out.depth_m.view(-1).index_copy_(0, pix, inv_z.reciprocal())
    out.bary.view(-1, 3).index_copy_(0, pix, (q / inv_z).t())
    return Fragments(out.face_ids, out.bary, out.depth_m, pix)


def _pixel_rays(K: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 6)`` float32 rays (origin 0, direction with z = 1) through pixel centres."""
    h, w = size
    fx, fy, cx, cy = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    skew = float(K[0, 1])
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                       indexing="ij")
    y = (v - cy) / fy
    x = (u - cx - skew * y) / fx
    rays = np.zeros((h, w, 6), dtype=np.float32)
    rays[..., 3] = x
    rays[..., 4] = y
    rays[..., 5] = 1.0
    return rays


@torch.no_grad()
def _rasterize_open3d(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                      size: tuple[int, int], valid: torch.Tensor) -> Fragments:
    """``valid``: ``(B, F)`` bool, the faces to draw (:func:`drawable_faces`)."""
    import open3d as o3d

    batch = vertices.shape[0]
    out = _empty(batch, size, vertices)
    if faces.shape[0] == 0:
        return out
    faces_np = faces.cpu().numpy()
    for i in range(batch):
        keep = torch.nonzero(valid[i]).squeeze(1).cpu().numpy()
        if keep.size == 0:
            continue
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(vertices[i].detach().cpu().numpy(),
                                                 dtype=np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(faces_np[keep], dtype=np.uint32)))
        ans = scene.cast_rays(o3d.core.Tensor(_pixel_rays(K[i].cpu(), size)))
        prim = ans["primitive_ids"].numpy().astype(np.int64)
        hit = prim != np.iinfo(np.uint32).max
        ids = np.full(prim.shape, -1, dtype=np.int64)
        ids[hit] = keep[prim[hit]]
        uvs = ans["primitive_uvs"].numpy()
        # Open3D: hit point = (1 - u - v) * v0 + u * v1 + v * v2 (3D, so perspective-correct).
        bary = np.stack([1.0 - uvs[..., 0] - uvs[..., 1], uvs[..., 0], uvs[..., 1]], -1)
        bary[~hit] = 0.0
        depth = np.where(hit, ans["t_hit"].numpy(), 0.0)
        out.face_ids[i] = torch.from_numpy(ids)
        out.bary[i] = torch.from_numpy(bary).to(out.bary.dtype)
        out.depth_m[i] = torch.from_numpy(depth).to(out.depth_m.dtype)
    return out


def rasterize(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
              image_size: tuple[int, int], backend: str = "auto",
              config: RenderConfig = _DEFAULT) -> Fragments:
    """Rasterise meshes given in a camera's frame.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)`` metres, camera optical frame (for the right camera
            of a stereo pair pass ``p_left - (baseline_m, 0, 0)``).
        faces: ``(F, 3)`` integer vertex indices, counter-clockwise seen from outside.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the image to render (full or crop, e.g.
            ``CropTransform.crop_K``).
        image_size: ``(H, W)`` px.
        backend: one of :data:`RASTER_BACKENDS`.
        config: ``near_m``, ``cull_back_faces`` and the ``auto`` threshold.

    Returns:
        :class:`Fragments` (detached).

    Raises:
        ValueError: bad shapes, face indices, image size, backend, or open3d with CUDA tensors.
        TypeError: non-float vertices or non-integer faces.
    """
    vertices, faces, size = check_inputs(vertices, faces, image_size)
    Kb = _batched_K(K, vertices.shape[0], vertices)
    if backend not in RASTER_BACKENDS:
        raise ValueError(f"backend must be one of {list(RASTER_BACKENDS)}, got {backend!r}")
    return rasterize_checked(vertices, faces, Kb, size, backend, config)


def rasterize_checked(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                      size: tuple[int, int], backend: str, config: RenderConfig,
                      barycentrics: bool = True) -> Fragments:
    """:func:`rasterize` without input validation: ``(B, V, 3)`` vertices, int64 faces,
    ``(B, 3, 3)`` K. ``barycentrics``: see :func:`rasterize_setup` (the open3d backend always
    computes them)."""
    vertices = vertices.detach()
    uv = project(vertices, K, min_depth_m=config.near_m)
    z = vertices[..., 2]
    if resolve_backend(backend, vertices.device, 0, config) == "open3d":
        return _rasterize_open3d(vertices, faces, K, size, drawable_faces(
            uv, z, faces, config.near_m, config.cull_back_faces))
    setup = raster_setup(uv, z, faces, size, config.near_m, config.cull_back_faces)
    if resolve_backend(backend, vertices.device, setup.num_pairs, config) == "open3d":
        return _rasterize_open3d(vertices, faces, K, size, drawable_faces(
            uv, z, faces, config.near_m, config.cull_back_faces))
    return rasterize_setup(setup, barycentrics)


def rasterize_projected(uv: torch.Tensor, depth_m: torch.Tensor, faces: torch.Tensor,
                        image_size: tuple[int, int], config: RenderConfig = _DEFAULT
                        ) -> Fragments:
    """Rasterise pre-projected vertices (torch backend).

    Args:
        uv: ``(B, V, 2)`` pixel coordinates of the vertices.
        depth_m: ``(B, V)`` their z, metres (used for the z-buffer and perspective-correct
            barycentrics).
        faces: ``(F, 3)`` integer vertex indices.
        image_size: ``(H, W)``.
        config: ``near_m`` and ``cull_back_faces``.

    Returns:
        :class:`Fragments` (detached).
    """
    if not isinstance(uv, torch.Tensor) or uv.dim() != 3 or uv.shape[-1] != 2:
        raise ValueError(f"uv must be a (B, V, 2) tensor, got "
                         f"{tuple(getattr(uv, 'shape', ()))}")
    if not isinstance(depth_m, torch.Tensor) or depth_m.shape != uv.shape[:-1]:
        raise ValueError(f"depth_m must have shape {tuple(uv.shape[:-1])}, got "
                         f"{tuple(getattr(depth_m, 'shape', ()))}")
    pts = torch.cat([uv, depth_m.unsqueeze(-1)], -1)
    _, faces, size = check_inputs(pts, faces, image_size)
    return rasterize_setup(raster_setup(uv.detach(), depth_m.detach(), faces, size,
                                        config.near_m, config.cull_back_faces))
