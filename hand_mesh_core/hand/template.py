"""Procedural right-hand template: implicit surface, mesh extraction and decimation.

The hand surface is the zero level set of a signed distance field: a tapered rounded box (palm)
smoothly united with one chain of round cones per finger (tapered tubes with a rounded tip; the
tip joint lies on the surface). The field is sampled on a regular grid and polygonised with
marching tetrahedra (Freudenthal split of each cube into 6 tetrahedra, consistent across cubes,
so the result is a closed 2-manifold), then decimated with open3d's quadric decimation to about
``HandModelConfig.target_vertices`` vertices. Everything is deterministic; results are cached
in memory per config.
"""
from __future__ import annotations

import functools
import heapq

import numpy as np

from hand_mesh_core.hand.anatomy import JOINT_RADII_M, MM, PALM, rest_joints
from hand_mesh_core.hand.joints import FINGER_JOINTS, TIP_JOINTS

__all__ = ["hand_sdf", "marching_tetrahedra", "procedural_mesh"]

#: Smooth-union blend radius between palm and fingers, m (rounds the finger webs).
FINGER_PALM_BLEND_M = 6.0 * MM
#: Smooth-union blend radius between palm and thumb, m (wider: the thenar eminence).
THUMB_PALM_BLEND_M = 10.0 * MM
#: Margin of the sampling grid around the skeleton, m (larger than any radius + blend).
GRID_MARGIN_M = 25.0 * MM
#: Finite-difference step of the palm field gradient, m.
_GRAD_STEP_M = 0.1 * MM
#: Lower bound of the palm field gradient norm (avoids division by zero at the centre).
_MIN_GRAD = 1e-3
#: Newton steps projecting a new vertex onto the implicit surface.
_PROJECT_ITERS = 3
#: Quadric decimation keeps this fraction of the target vertices; long edges are then split
#: (fingers decimate into long axial triangles that could not bend at the joints).
_DECIMATE_FRACTION = 0.5
#: SDF values closer to zero than this are nudged outwards so no vertex sits on a grid node.
_ZERO_EPS = 1e-9


def _round_cone(p: np.ndarray, a: np.ndarray, b: np.ndarray, r1: float, r2: float
                ) -> np.ndarray:
    """Exact SDF of a round cone (I. Quilez, "distance functions"). p: (N, 3) -> (N,)."""
    ba = b - a
    l2 = ba @ ba
    rr = r1 - r2
    a2 = l2 - rr * rr
    il2 = 1.0 / l2
    pa = p - a
    y = pa @ ba
    z = y - l2
    x2 = np.sum((pa * l2 - y[:, None] * ba) ** 2, axis=1)
    y2 = y * y * l2
    z2 = z * z * l2
    k = np.sign(rr) * rr * rr * x2
    d_mid = (np.sqrt(np.maximum(x2 * a2 * il2, 0.0)) + y * rr) * il2 - r1
    d_b = np.sqrt(x2 + z2) * il2 - r2
    d_a = np.sqrt(x2 + y2) * il2 - r1
    return np.where(np.sign(z) * a2 * z2 > k, d_b, np.where(np.sign(y) * a2 * y2 < k, d_a, d_mid))


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (blend radius k)."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _palm_field(p: np.ndarray) -> np.ndarray:
    """Implicit superellipsoid palm, tapered towards the wrist; < 0 inside (not a distance)."""
    c = np.asarray(PALM["centre_mm"]) * MM
    half = np.asarray(PALM["half_mm"]) * MM
    y0, y1 = PALM["taper_y0_mm"] * MM, PALM["taper_y1_mm"] * MM
    t = np.clip((p[:, 1] - y0) / (y1 - y0), 0.0, 1.0)
    taper = PALM["taper"] + (1.0 - PALM["taper"]) * t
    q = np.abs(p - c) / half
    q[:, 0] /= taper
    n, m = PALM["exponent_xy"], PALM["exponent_z"]
    f = (q[:, 0] ** n + q[:, 1] ** n) ** (m / n) + q[:, 2] ** m
    return (f ** (1.0 / m) - 1.0) * half[2]


def _palm_sdf(p: np.ndarray) -> np.ndarray:
    """First-order distance to the palm: field / |gradient| (central differences)."""
    f = _palm_field(p)
    grad = np.zeros_like(p)
    for i in range(3):
        step = np.zeros(3)
        step[i] = _GRAD_STEP_M
        grad[:, i] = (_palm_field(p + step) - _palm_field(p - step)) / (2.0 * _GRAD_STEP_M)
    return f / np.maximum(np.linalg.norm(grad, axis=1), _MIN_GRAD)


def hand_sdf(points: np.ndarray, joints: np.ndarray | None = None) -> np.ndarray:
    """Signed distance (approximately; exact away from the blends) to the rest hand surface.

    Args:
        points: (N, 3) query points, metres, canonical hand frame.
        joints: (21, 3) rest joints (default: :func:`~hand_mesh_core.hand.anatomy.rest_joints`).

    Returns:
        (N,) negative inside, positive outside, metres.
    """
    joints = rest_joints() if joints is None else joints
    palm = _palm_sdf(points)
    fingers = []
    for f, idx in enumerate(FINGER_JOINTS):
        d = np.full(len(points), np.inf)
        for s in range(3):
            a, b = joints[idx[s]], joints[idx[s + 1]]
            ra, rb = JOINT_RADII_M[idx[s]], JOINT_RADII_M[idx[s + 1]]
            if s == 2:  # the tip joint is on the surface: the end sphere ends there
                b = b - rb * (b - a) / np.linalg.norm(b - a)
            d = np.minimum(d, _round_cone(points, a, b, ra, rb))
        fingers.append(d)
    out = _smin(palm, np.minimum.reduce(fingers[1:]), FINGER_PALM_BLEND_M)
    return _smin(out, fingers[0], THUMB_PALM_BLEND_M)


# Freudenthal split of a cube (corner bit codes x=1, y=2, z=4) into 6 tetrahedra sharing the
# 0-7 diagonal: identical in every cube, so faces of neighbouring cubes match.
_TETS = np.array([[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7],
                  [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]])


def marching_tetrahedra(values: np.ndarray, origin: np.ndarray, spacing: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Polygonise the zero level set of a sampled scalar field.

    Args:
        values: (NX, NY, NZ) field samples, negative inside; every value on the grid boundary
            must be positive so the surface is closed.
        origin: (3,) position of sample (0, 0, 0), metres.
        spacing: grid step, metres.

    Returns:
        vertices (V, 3) float64 and faces (F, 3) int64, counter-clockwise seen from outside
        (normals towards increasing field values).
    """
    nx, ny, nz = values.shape
    vals = np.where(np.abs(values) < _ZERO_EPS, _ZERO_EPS, values).ravel()
    gid = np.arange(nx * ny * nz).reshape(nx, ny, nz)
    base = gid[:-1, :-1, :-1].ravel()
    offsets = np.array([((c & 1) * ny + ((c >> 1) & 1)) * nz + ((c >> 2) & 1)
                        for c in range(8)])
    tets = (base[:, None, None] + offsets[_TETS][None]).reshape(-1, 4)
    inside = vals[tets] < 0.0
    count = inside.sum(axis=1)
    keep = (count > 0) & (count < 4)
    tets, inside, count = tets[keep], inside[keep], count[keep]
    order = np.argsort(~inside, axis=1, kind="stable")
    t = np.take_along_axis(tets, order, axis=1)  # inside corners first
    edges, tri_in, tri_out = [], [], []
    one = count == 1
    three = count == 3
    two = count == 2
    # one corner inside: triangle on the edges from it to the three outside corners
    for sel, lone, others in ((one, 0, (1, 2, 3)), (three, 3, (0, 1, 2))):
        tt = t[sel]
        edges.append(np.stack([np.stack([tt[:, lone], tt[:, o]], axis=1) for o in others],
                              axis=1))
        tri_in.append(tt[:, :1] if lone == 0 else tt[:, :3])
        tri_out.append(tt[:, 1:] if lone == 0 else tt[:, 3:])
    tt = t[two]
    quad = np.stack([np.stack([tt[:, a], tt[:, b]], axis=1)
                     for a, b in ((0, 2), (0, 3), (1, 3), (1, 2))], axis=1)
    for tri in ((0, 1, 2), (0, 2, 3)):
        edges.append(quad[:, tri])
        tri_in.append(tt[:, :2])
        tri_out.append(tt[:, 2:])
    # mean inside/outside corner positions per triangle (to orient it)
    coords = np.stack(np.unravel_index(np.arange(nx * ny * nz), (nx, ny, nz)), axis=1)
    coords = origin + spacing * coords.astype(np.float64)
    c_in = np.concatenate([coords[x].mean(axis=1) for x in tri_in])
    c_out = np.concatenate([coords[x].mean(axis=1) for x in tri_out])
    edges = np.concatenate(edges)  # (F, 3, 2) grid ids
    lo, hi = np.minimum(edges[..., 0], edges[..., 1]), np.maximum(edges[..., 0], edges[..., 1])
    keys = lo * (nx * ny * nz) + hi
    uniq, faces = np.unique(keys.ravel(), return_inverse=True)
    faces = faces.reshape(-1, 3)
    a, b = uniq // (nx * ny * nz), uniq % (nx * ny * nz)
    va, vb = vals[a], vals[b]
    w = va / (va - vb)
    verts = coords[a] + w[:, None] * (coords[b] - coords[a])
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("fi,fi->f", normal, c_out - c_in) < 0.0
    faces[flip] = faces[flip][:, ::-1]
    return verts, faces.astype(np.int64)


def _project(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Move points onto the zero level set with a few Newton steps along the SDF gradient."""
    p = points.copy()
    for _ in range(_PROJECT_ITERS):
        d = hand_sdf(p, joints)
        grad = np.zeros_like(p)
        for i in range(3):
            step = np.zeros(3)
            step[i] = _GRAD_STEP_M
            grad[:, i] = (hand_sdf(p + step, joints) - hand_sdf(p - step, joints)) / (
                2.0 * _GRAD_STEP_M)
        g2 = np.maximum(np.sum(grad * grad, axis=1), _MIN_GRAD ** 2)
        p -= (d / g2)[:, None] * grad
    return p


def split_long_edges(vertices: np.ndarray, faces: np.ndarray, num_vertices: int,
                     joints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split the longest edge at its midpoint until the mesh has ``num_vertices`` vertices.

    Each split replaces the two triangles (a, b, c), (b, a, d) of edge ab by four, keeping the
    winding and the manifold property; the new vertices are finally projected onto the
    implicit surface.
    Ties are broken by vertex ids, so the result is deterministic.

    Args:
        vertices: (V, 3) closed manifold mesh, metres. faces: (F, 3) int.
        num_vertices: vertex count to reach (>= V).
        joints: rest joints of the implicit surface (default rest skeleton).

    Returns:
        vertices (num_vertices, 3), faces (F + 2 (num_vertices - V), 3).
    """
    joints = rest_joints() if joints is None else joints
    verts = [tuple(v) for v in vertices]
    tris = [list(map(int, f)) for f in faces]
    edge_faces: dict[tuple[int, int], list[int]] = {}
    for fi, t in enumerate(tris):
        for k in range(3):
            edge_faces.setdefault(tuple(sorted((t[k], t[(k + 1) % 3]))), []).append(fi)

    def length(e: tuple[int, int]) -> float:
        return float(np.linalg.norm(np.subtract(verts[e[0]], verts[e[1]])))

    heap = [(-length(e), e) for e in edge_faces]
    heapq.heapify(heap)
    while len(verts) < num_vertices:
        neg, e = heapq.heappop(heap)
        if e not in edge_faces or -neg != length(e):
            continue
        a, b = e
        m = len(verts)
        verts.append(tuple(0.5 * (np.asarray(verts[a]) + np.asarray(verts[b]))))
        for fi in edge_faces.pop(e):
            t = tris[fi]
            k = next(k for k in range(3) if t[k] not in (a, b))
            c = t[k]
            # rotate so the triangle reads (c, u, w) with u->w the split edge
            u, w = t[(k + 1) % 3], t[(k + 2) % 3]
            tris[fi] = [c, u, m]
            tris.append([c, m, w])
            new = len(tris) - 1
            ec = tuple(sorted((c, w)))
            edge_faces[ec] = [new if x == fi else x for x in edge_faces[ec]]
            for en, fl in ((tuple(sorted((u, m))), [fi]), (tuple(sorted((m, w))), [new]),
                           (tuple(sorted((c, m))), [fi, new])):
                edge_faces.setdefault(en, []).extend(fl)
                heapq.heappush(heap, (-length(en), en))
    out = np.asarray(verts)
    out[len(vertices):] = _project(out[len(vertices):], joints)
    return out, np.asarray(tris, dtype=np.int64)


@functools.lru_cache(maxsize=8)
def _procedural_mesh_cached(spacing_m: float, target_vertices: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    joints = rest_joints()
    lo = joints.min(axis=0) - GRID_MARGIN_M
    hi = joints.max(axis=0) + GRID_MARGIN_M
    palm_c, palm_h = np.asarray(PALM["centre_mm"]) * MM, np.asarray(PALM["half_mm"]) * MM
    lo = np.minimum(lo, palm_c - palm_h - GRID_MARGIN_M)
    hi = np.maximum(hi, palm_c + palm_h + GRID_MARGIN_M)
    n = np.ceil((hi - lo) / spacing_m).astype(int) + 1
    axes = [lo[i] + spacing_m * np.arange(n[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = hand_sdf(grid, joints).reshape(n)
    verts, faces = marching_tetrahedra(values, lo, spacing_m)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts),
                                     o3d.utility.Vector3iVector(faces.astype(np.int32)))
    # a closed genus-0 triangle mesh has F = 2 V - 4
    coarse = int(round(_DECIMATE_FRACTION * target_vertices))
    mesh = mesh.simplify_quadric_decimation(2 * coarse - 4)
    mesh.remove_unreferenced_vertices()
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.triangles, dtype=np.int64)
    v, f = split_long_edges(v, f, target_vertices, joints)
    # fingertip joints lie on the surface: put the nearest vertex exactly on each (as MANO's
    # fingertip vertices), so the joint regressor can reproduce the tips exactly
    for j in TIP_JOINTS:
        v[np.argmin(np.linalg.norm(v - joints[j], axis=1))] = joints[j]
    v.setflags(write=False)
    f.setflags(write=False)
    return v, f


def procedural_mesh(spacing_m: float = 0.002, target_vertices: int = 850
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The procedural right-hand mesh in the rest (flat) pose.

    Args:
        spacing_m: sampling step of the implicit surface, metres.
        target_vertices: approximate vertex count after decimation.

    Returns:
        vertices (V, 3) float64 metres, canonical hand frame; faces (F, 3) int64,
        counter-clockwise seen from outside. Read-only, cached.
    """
    return _procedural_mesh_cached(float(spacing_m), int(target_vertices))
