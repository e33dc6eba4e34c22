"""Small numpy mesh helpers of the generator: vertex normals, rigid fits, the forearm.

The forearm is a skin-coloured distractor attached at the wrist: a tapered elliptic cylinder in
the hand's rest frame (wrist at the origin, fingers along +y, see ``hand/anatomy.py``), moved
with the hand's rigid palm transform.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["vertex_normals", "rigid_fit", "WristSection", "wrist_section", "forearm_mesh"]

#: Rings and segments of the forearm mesh (16 x 24 quads: smooth at 640x480).
FOREARM_RINGS = 16
FOREARM_SEGMENTS = 24
#: The forearm starts this far inside the hand (towards the fingers) so no gap shows at the
#: wrist, metres.
FOREARM_OVERLAP_M = 0.012
#: Hand vertices within this band above the wrist joint (along the fingers) define the wrist
#: cross-section, metres.
WRIST_BAND_M = (0.0, 0.015)
#: Norms below this are treated as zero when normalising.
EPS = 1e-12


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) float32 of a triangle mesh.

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) int indices, counter-clockwise seen from outside.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for k in range(3):
        for c in range(3):
            out[:, c] += np.bincount(f[:, k], weights=fn[:, c], minlength=len(v))
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), EPS)).astype(np.float32)


def rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation R (3, 3) and translation t (3,) with ``dst ~ src @ R.T + t``.

    Kabsch/Umeyama without scale. Args are (N, 3) with N >= 3 non-collinear points.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"src and dst must be (N >= 3, 3) of the same shape, got {src.shape} "
                         f"and {dst.shape}")
    ms, md = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - ms).T @ (dst - md))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, md - ms @ r.T


@dataclass
class WristSection:
    """Elliptic wrist cross-section in the rest frame: centre (x, z), semi-axes (x, z), m."""

    center_xz: np.ndarray
    radii_xz: np.ndarray


def wrist_section(rest_vertices: np.ndarray) -> WristSection:
    """Estimate the wrist cross-section from the rest-pose hand vertices (wrist at origin)."""
    v = np.asarray(rest_vertices, np.float64)
    band = v[(v[:, 1] >= WRIST_BAND_M[0]) & (v[:, 1] <= WRIST_BAND_M[1])]
    if len(band) < 3:
        raise ValueError("no hand vertices near the wrist: is the wrist at the origin, fingers "
                         "along +y (see hand/anatomy.py)?")
    lo, hi = band[:, [0, 2]].min(0), band[:, [0, 2]].max(0)
    return WristSection(center_xz=(lo + hi) / 2, radii_xz=(hi - lo) / 2)


def forearm_mesh(section: WristSection, length_m: float, taper: float, flexion_rad: float,
                 deviation_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """A tapered elliptic cylinder from the wrist towards the elbow, in the rest frame.

    Args:
        section: the wrist cross-section.
        length_m: wrist-to-elbow length.
        taper: elbow radius / wrist radius.
        flexion_rad: wrist flexion (rotation of the forearm axis about x).
        deviation_rad: radial/ulnar deviation (rotation about z).

    Returns:
        ``(vertices (V, 3) float32, faces (F, 3) int64)``, closed at the elbow end, outward
        counter-clockwise faces.
    """
    if not (length_m > 0 and taper > 0):
        raise ValueError(f"length_m and taper must be > 0, got {length_m} and {taper}")
    s = np.linspace(0.0, 1.0, FOREARM_RINGS)
    y = FOREARM_OVERLAP_M - s * (length_m + FOREARM_OVERLAP_M)
    scale = 1.0 + (taper - 1.0) * s
    ang = np.linspace(0.0, 2 * np.pi, FOREARM_SEGMENTS, endpoint=False)
    x = section.center_xz[0] + section.radii_xz[0] * scale[:, None] * np.cos(ang)[None]
    z = section.center_xz[1] + section.radii_xz[1] * scale[:, None] * np.sin(ang)[None]
    verts = np.stack([x, np.broadcast_to(y[:, None], x.shape), z], -1).reshape(-1, 3)
    cap = np.array([[section.center_xz[0], y[-1], section.center_xz[1]]])
    verts = np.concatenate([verts, cap])
    cf, sf = np.cos(flexion_rad), np.sin(flexion_rad)
    cd, sd = np.cos(deviation_rad), np.sin(deviation_rad)
    rx = np.array([[1, 0, 0], [0, cf, -sf], [0, sf, cf]])
    rz = np.array([[cd, -sd, 0], [sd, cd, 0], [0, 0, 1]])
    verts = verts @ (rz @ rx).T
    faces = []
    n = FOREARM_SEGMENTS
    for i in range(FOREARM_RINGS - 1):
        for j in range(n):
            a, b = i * n + j, i * n + (j + 1) % n
            c, d = a + n, b + n
            faces += [(a, c, b), (b, c, d)]
    centre = len(verts) - 1
    last = (FOREARM_RINGS - 1) * n
    faces += [(last + j, centre, last + (j + 1) % n) for j in range(n)]
    faces = np.asarray(faces, np.int64)
    # Orient outwards: the normal of the first face must point away from the axis.
    v = verts
    fn = np.cross(v[faces[0, 1]] - v[faces[0, 0]], v[faces[0, 2]] - v[faces[0, 0]])
    axis_pt = (rz @ rx) @ np.array([section.center_xz[0], y[0], section.center_xz[1]])
    if fn @ (v[faces[0, 0]] - axis_pt) < 0:
        faces = faces[:, [0, 2, 1]]
    return verts.astype(np.float32), faces
