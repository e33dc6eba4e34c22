"""Rasterisation: which triangle is visible at each pixel centre (not differentiable).

Two interchangeable backends, split like nvdiffrast (rasterise here, then interpolate in torch):

* ``"torch"``: vectorised bounding-box rasteriser. Every (triangle, pixel-in-its-bounding-box)
  pair is tested with edge functions, the nearest hit per pixel wins (z-buffer with
  ``scatter_reduce``, ties broken by the smaller face id). Runs on CPU and CUDA.
* ``"open3d"``: ``open3d.t.geometry.RaycastingScene``, one ray through each pixel centre (CPU).

Conventions: vertices in the camera optical frame (x right, y down, z forward), metres; pixel
``(u, v)`` centres at integers, ``u`` along the width. A pixel is covered when its centre lies in
the projected triangle (edges included). Triangles with a vertex at ``z < near_m`` are not drawn
(no clipping: a hand is always well in front of the camera). No back-face culling.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hand_mesh_core.geometry.projection import project
from hand_mesh_core.render.config import RASTER_BACKENDS, RenderConfig

__all__ = ["Fragments", "rasterize", "rasterize_projected", "resolve_backend", "check_inputs"]

_DEFAULT = RenderConfig()


@dataclass(frozen=True)
class Fragments:
    """The visible surface at each pixel centre (no gradients).

    Attributes:
        face_ids: ``(B, H, W)`` int64 index of the visible face, -1 where no face covers the pixel.
        bary: ``(B, H, W, 3)`` perspective-correct barycentrics of the pixel centre in its face
            (0 where ``face_ids == -1``).
        depth_m: ``(B, H, W)`` z of the visible surface, metres, 0 where ``face_ids == -1``.
    """

    face_ids: torch.Tensor
    bary: torch.Tensor
    depth_m: torch.Tensor

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


@torch.no_grad()
def _rasterize_torch(uv: torch.Tensor, z: torch.Tensor, faces: torch.Tensor,
                     size: tuple[int, int], near_m: float) -> Fragments:
    batch, f = z.shape[0], faces.shape[0]
    h, w = size
    if f == 0:
        return _empty(batch, size, uv)
    valid = _valid_faces(z, faces, near_m)
    uv_tri = uv[:, faces].reshape(batch * f, 3, 2)
    z_tri = z[:, faces].reshape(batch * f, 3)
    a, b, c = uv_tri[:, 0], uv_tri[:, 1], uv_tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    valid = valid.reshape(-1) & (area != 0) & torch.isfinite(area)
    tri, px, py = bbox_pairs(uv_tri, valid, size)
    if tri.numel() == 0:
        return _empty(batch, size, uv)
    # Edge functions w_i (twice the signed area of the sub-triangle opposite corner i), by
    # component to keep every op on flat (P,) tensors.
    comp = uv_tri.reshape(-1, 6).t().contiguous().index_select(1, tri)
    ax, ay, bx, by, cx, cy = comp.unbind(0)
    pxf, pyf = px.to(uv.dtype), py.to(uv.dtype)
    w0 = (cx - bx) * (pyf - by) - (cy - by) * (pxf - bx)
    w1 = (ax - cx) * (pyf - cy) - (ay - cy) * (pxf - cx)
    w2 = (bx - ax) * (pyf - ay) - (by - ay) * (pxf - ax)
    ar = area.index_select(0, tri)
    inside = (w0 * ar >= 0) & (w1 * ar >= 0) & (w2 * ar >= 0)
    sel = torch.nonzero(inside).squeeze(1)
    tri, px, py, ar = (x.index_select(0, sel) for x in (tri, px, py, ar))
    wgt = torch.stack([w0.index_select(0, sel), w1.index_select(0, sel),
                       w2.index_select(0, sel)], -1)
    lam = wgt / ar.unsqueeze(-1)
    inv_z = (lam / z_tri.index_select(0, tri)).sum(-1)
    depth = 1.0 / inv_z
    bidx = torch.div(tri, f, rounding_mode="floor")
    pix = (bidx * h + py) * w + px
    n = batch * h * w
    zbuf = torch.full((n,), float("inf"), dtype=depth.dtype, device=depth.device)
    zbuf.scatter_reduce_(0, pix, depth, reduce="amin")
    front = torch.nonzero(depth <= zbuf.index_select(0, pix)).squeeze(1)
    pix_f = pix.index_select(0, front)
    face_f = (tri - bidx * f).index_select(0, front)
    ids = torch.full((n,), f, dtype=torch.int64, device=depth.device)
    ids.scatter_reduce_(0, pix_f, face_f, reduce="amin")
    win = torch.nonzero(ids.index_select(0, pix_f) == face_f).squeeze(1)
    win = front.index_select(0, win)
    ids = torch.where(ids == f, torch.full_like(ids, -1), ids)
    pix_w = pix.index_select(0, win)
    persp = (lam.index_select(0, win) / z_tri.index_select(0, tri.index_select(0, win))
             / inv_z.index_select(0, win).unsqueeze(-1))
    bary = torch.zeros((n, 3), dtype=uv.dtype, device=uv.device).index_copy_(0, pix_w, persp)
    zout = torch.zeros((n,), dtype=uv.dtype, device=uv.device).index_copy_(
        0, pix_w, depth.index_select(0, win))
    return Fragments(face_ids=ids.reshape(batch, h, w), bary=bary.reshape(batch, h, w, 3),
                     depth_m=zout.reshape(batch, h, w))


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
                      size: tuple[int, int], near_m: float) -> Fragments:
    import open3d as o3d

    batch = vertices.shape[0]
    out = _empty(batch, size, vertices)
    if faces.shape[0] == 0:
        return out
    valid = _valid_faces(vertices[..., 2], faces, near_m)
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
        faces: ``(F, 3)`` integer vertex indices.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the image to render (full or crop, e.g.
            ``CropTransform.crop_K``).
        image_size: ``(H, W)`` px.
        backend: one of :data:`RASTER_BACKENDS`.
        config: ``near_m`` and the ``auto`` threshold.

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
    vertices = vertices.detach()
    uv = project(vertices, Kb, min_depth_m=config.near_m)
    pairs = 0
    if backend == "auto" and vertices.device.type == "cpu":
        pairs = _count_pairs(uv, vertices[..., 2], faces, size, config.near_m)
    chosen = resolve_backend(backend, vertices.device, pairs, config)
    if chosen == "open3d":
        return _rasterize_open3d(vertices, faces, Kb, size, config.near_m)
    return _rasterize_torch(uv, vertices[..., 2], faces, size, config.near_m)


def _count_pairs(uv: torch.Tensor, z: torch.Tensor, faces: torch.Tensor, size: tuple[int, int],
                 near_m: float) -> int:
    """Number of (triangle, pixel) candidates of :func:`_rasterize_torch`."""
    if faces.shape[0] == 0:
        return 0
    h, w = size
    valid = _valid_faces(z, faces, near_m).reshape(-1)
    t = uv[:, faces].reshape(-1, 3, 2)
    lo = torch.ceil(t.amin(1)).clamp_min(0)
    hi = torch.floor(t.amax(1))
    hi = torch.minimum(hi, torch.tensor([w - 1, h - 1], dtype=hi.dtype, device=hi.device))
    span = (hi - lo + 1).clamp_min(0)
    return int(torch.where(valid, span[:, 0] * span[:, 1], torch.zeros_like(span[:, 0])).sum())


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
    return _rasterize_torch(uv.detach(), depth_m.detach(), faces, size, config.near_m)
