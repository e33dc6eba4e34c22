"""Ray casting with open3d's ``RaycastingScene`` (Embree, CPU): primary visibility and shadows.

Rays of a view start at the optical centre of that camera (left: the origin; right: ``(B, 0, 0)``
in the left frame) with direction ``((u - cx) / fx, (v - cy) / fy, 1)``. Because the direction has
unit z, the hit parameter ``t_hit`` *is* the depth z in metres. Every quantity is in the left
optical frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import open3d as o3d

from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["VIEWS", "MISS", "Hits", "build_scene", "view_rays", "camera_center", "cast",
           "occluded", "occluded_batch"]

#: The two views of a rectified pair.
VIEWS = ("left", "right")
#: Geometry/primitive id of a ray that hits nothing (open3d's INVALID_ID, as int64 -1).
MISS = -1
#: Offset of shadow-ray origins along the surface normal, metres (0.1 mm: far above float32
#: rounding at 1 m, far below any hand feature).
SHADOW_EPS_M = 1e-4


@dataclass
class Hits:
    """Result of casting N rays.

    Attributes:
        t: (N,) float32 hit parameter (= depth in metres for :func:`view_rays`), inf on a miss.
        geometry: (N,) int64 index of the mesh in :func:`build_scene` order, MISS on a miss.
        triangle: (N,) int64 triangle index within that mesh, MISS on a miss.
        bary: (N, 3) float32 barycentric weights of the triangle's 3 vertices.
    """

    t: np.ndarray
    geometry: np.ndarray
    triangle: np.ndarray
    bary: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """(N,) bool, True where something was hit."""
        return self.geometry != MISS


def build_scene(meshes: Sequence[tuple[np.ndarray, np.ndarray]]) -> o3d.t.geometry.RaycastingScene:
    """A scene of triangle meshes; geometry ids are their positions in ``meshes``.

    Args:
        meshes: ``(vertices (V, 3) metres, faces (F, 3) int)`` pairs, left optical frame.
    """
    scene = o3d.t.geometry.RaycastingScene()
    for k, (vertices, faces) in enumerate(meshes):
        v = np.ascontiguousarray(vertices, np.float32)
        f = np.ascontiguousarray(faces, np.uint32)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"mesh {k}: vertices must be (V, 3) and faces (F, 3), got "
                             f"{v.shape} and {f.shape}")
        gid = scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
        if gid != k:  # pragma: no cover - open3d numbers geometries from 0
            raise RuntimeError(f"unexpected geometry id {gid} for mesh {k}")
    return scene


def camera_center(camera: StereoCamera, view: str) -> np.ndarray:
    """(3,) optical centre of ``view`` in the left optical frame, metres."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
    return np.array([camera.baseline_m if view == "right" else 0.0, 0.0, 0.0])


def view_rays(camera: StereoCamera, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Origin (3,) and per-pixel directions (H, W, 3) with unit z, float32, left frame."""
    origin = camera_center(camera, view)
    u = (np.arange(camera.width, dtype=np.float64) - camera.cx) / camera.fx
    v = (np.arange(camera.height, dtype=np.float64) - camera.cy) / camera.fy
    d = np.empty((camera.height, camera.width, 3), np.float32)
    d[..., 0] = u[None, :]
    d[..., 1] = v[:, None]
    d[..., 2] = 1.0
    return origin.astype(np.float32), d


def _rays(origins: np.ndarray, dirs: np.ndarray) -> o3d.core.Tensor:
    """(N, 6) float32 open3d rays from origins (3,) or (N, 3) and directions (N, 3)."""
    rays = np.empty((len(dirs), 6), np.float32)
    rays[:, :3] = origins
    rays[:, 3:] = dirs
    return o3d.core.Tensor(rays)


def cast(scene: o3d.t.geometry.RaycastingScene, origins: np.ndarray, dirs: np.ndarray,
         nthreads: int = 0) -> Hits:
    """Closest hits of rays ``origins + t * dirs``.

    Args:
        scene: from :func:`build_scene`.
        origins: (3,) or (N, 3) ray origins, metres.
        dirs: (N, 3) directions (any length; ``t`` is in units of their length).
        nthreads: open3d threads, 0 = all cores.
    """
    dirs = np.asarray(dirs, np.float32).reshape(-1, 3)
    out = scene.cast_rays(_rays(origins, dirs), nthreads=nthreads)
    geometry = out["geometry_ids"].numpy().astype(np.int64)
    missed = geometry == o3d.t.geometry.RaycastingScene.INVALID_ID
    geometry[missed] = MISS
    triangle = out["primitive_ids"].numpy().astype(np.int64)
    triangle[missed] = MISS
    uv = out["primitive_uvs"].numpy()
    bary = np.empty((len(uv), 3), np.float32)
    np.subtract(np.float32(1.0), uv[:, 0], out=bary[:, 0])
    bary[:, 0] -= uv[:, 1]
    bary[:, 1:] = uv
    return Hits(t=out["t_hit"].numpy(), geometry=geometry, triangle=triangle, bary=bary)


def occluded(scene: o3d.t.geometry.RaycastingScene, points: np.ndarray, normals: np.ndarray,
             to_light: np.ndarray, nthreads: int = 0) -> np.ndarray:
    """Whether each surface point is in the shadow of a directional light.

    Args:
        points: (N, 3) surface points, metres.
        normals: (N, 3) unit normals there (the ray starts ``SHADOW_EPS_M`` above the surface).
        to_light: (3,) unit direction towards the light.

    Returns:
        (N,) bool, True where the scene blocks the light.
    """
    return occluded_batch(scene, [(points, normals, to_light)], nthreads)[0]


def occluded_batch(scene: o3d.t.geometry.RaycastingScene,
                   queries: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   nthreads: int = 0) -> list[np.ndarray]:
    """:func:`occluded` for several groups of points (each with its own light) in one open3d
    call: the same answer per ray (each ray is traced on its own), one call's overhead.

    Args:
        queries: ``(points (N_k, 3), normals (N_k, 3), to_light (3,))`` per group, as for
            :func:`occluded`; each group's ray origins are rounded to float32 from the
            group's own dtype.

    Returns:
        (N_k,) bool per group, True where the scene blocks the light.
    """
    starts, dirs, sizes = [], [], []
    for points, normals, to_light in queries:
        start = (points + SHADOW_EPS_M * normals).astype(np.float32).reshape(-1, 3)
        starts.append(start)
        dirs.append(np.broadcast_to(np.asarray(to_light, np.float32), start.shape))
        sizes.append(len(start))
    total = sum(sizes)
    if total == 0:
        return [np.zeros(0, bool) for _ in sizes]
    rays = np.empty((total, 6), np.float32)
    np.concatenate(starts, out=rays[:, :3])
    np.concatenate(dirs, out=rays[:, 3:])
    blocked = scene.test_occlusions(o3d.core.Tensor(rays), nthreads=nthreads).numpy()
    return np.split(blocked.astype(bool), np.cumsum(sizes)[:-1])
