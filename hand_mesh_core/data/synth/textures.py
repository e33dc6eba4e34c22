"""Procedural textures: solid (3D) value noise attached to the surface, and 2D noise images.

The skin texture is a *solid* texture: a function of the surface point's position on the hand in
its rest pose (the "texture coordinate", interpolated with the barycentrics of a ray hit). A
surface point therefore has the same albedo in the left and the right view and in every pose,
which is what a photometric stereo loss needs to lock onto.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["SolidNoise", "noise_image", "smoothstep"]

#: Side of the periodic random lattice of :class:`SolidNoise` (cells per axis, a power of 2 so
#: that wrapping is a bit mask). 32^3 floats is 128 KiB; each octave is rotated randomly so the
#: period (32 cells) is not visible.
LATTICE_SIZE = 32
#: Octaves of :func:`noise_image` with larger cells (px) are drawn at a reduced resolution with
#: cells of this size, then resized bilinearly (8 samples per cell: the bilinear error of a
#: bicubic curve is below 1 % of its range).
NOISE_CELL_PX_MAX = 8.0
#: Corners of a lattice cell.
CELL_CORNERS = 8


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1`` (either order), elementwise."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass
class SolidNoise:
    """Periodic 3D value noise with a random rotation per octave.

    Attributes:
        lattice: (L, L, L) float32 random values in [-1, 1].
        rotations: (O, 3, 3) one rotation per octave.
    """

    lattice: np.ndarray
    rotations: np.ndarray
    #: The 8 corner values of every lattice cell, (L^3, 8) float32, row ``(i * L + j) * L + k``
    #: for the cell with lower corner (i, j, k), columns in the order (dx, dy, dz) = (0, 0, 0),
    #: (0, 0, 1), (0, 1, 0), ..., (1, 1, 1), wrapping at the far faces: one row gather per point
    #: instead of 8 gathers (derived from ``lattice``, built on first use).
    _corners: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def corners(self) -> np.ndarray:
        """The (L^3, 8) float32 corner table of the lattice cells (see ``_corners``).

        Raises:
            ValueError: ``lattice`` is not (L, L, L) with L = LATTICE_SIZE.
        """
        if self._corners is None:
            size = LATTICE_SIZE
            if np.shape(self.lattice) != (size,) * 3:
                raise ValueError(f"lattice must be {(size,) * 3}, got {np.shape(self.lattice)}")
            padded = np.pad(np.asarray(self.lattice, np.float32), ((0, 1),) * 3, mode="wrap")
            table = np.empty((size, size, size, CELL_CORNERS), np.float32)
            for k, (dx, dy, dz) in enumerate(np.ndindex(2, 2, 2)):
                table[..., k] = padded[dx:dx + size, dy:dy + size, dz:dz + size]
            self._corners = table.reshape(size ** 3, CELL_CORNERS)
        return self._corners

    @classmethod
    def random(cls, rng: np.random.Generator, octaves: int = 4) -> "SolidNoise":
        """A fresh noise function drawn from ``rng``."""
        if octaves < 1:
            raise ValueError(f"octaves must be >= 1, got {octaves}")
        lattice = rng.uniform(-1.0, 1.0, size=(LATTICE_SIZE,) * 3).astype(np.float32)
        rotations = np.stack([_random_rotation(rng) for _ in range(octaves)])
        return cls(lattice, rotations)

    def octave(self, points: np.ndarray, frequency: float, index: int = 0) -> np.ndarray:
        """One octave of smooth value noise.

        Args:
            points: (N, 3) positions (e.g. metres in the rest pose).
            frequency: lattice cells per unit of ``points``.
            index: which octave rotation to use.

        Returns:
            (N,) float32 in [-1, 1], smooth (C1) in ``points``.
        """
        # rotated, scaled coordinates as (3, N): each axis is a contiguous row
        rot = (self.rotations[index % len(self.rotations)] * frequency).astype(np.float32)
        p = rot @ np.asarray(points, np.float32).T
        base = np.floor(p)
        f = np.subtract(p, base, out=p)
        # w1 = f * f * (3 - 2 f), the same float32 operations, in place
        w1 = f * 2.0
        np.subtract(3.0, w1, out=w1)
        w1 *= f * f
        # Row of the cell in the corner table: its 8 corners in one gather (no modulo per
        # corner).
        i0 = base.astype(np.int32) & (LATTICE_SIZE - 1)
        idx = (i0[0] * LATTICE_SIZE + i0[1]) * LATTICE_SIZE + i0[2]
        corners = self.corners().take(idx, axis=0)  # (N, 8)
        acc = []
        for k in range(0, CELL_CORNERS, 2):  # lerp along z: corners (k, k + 1)
            c0 = corners[:, k]
            c1 = corners[:, k + 1] - c0
            c1 *= w1[2]
            c1 += c0
            acc.append(c1)
        lo = acc[0] + (acc[1] - acc[0]) * w1[1]
        hi = acc[2] + (acc[3] - acc[2]) * w1[1]
        return lo + (hi - lo) * w1[0]

    def fractal(self, points: np.ndarray, frequency: float, octaves: int = 3,
                gain: float = 0.5) -> np.ndarray:
        """Sum of ``octaves`` octaves (frequency doubling, amplitude ``gain``), in [-1, 1]."""
        total = np.zeros(len(points), np.float32)
        amp, norm = 1.0, 0.0
        for k in range(octaves):
            total += amp * self.octave(points, frequency * 2.0 ** k, k)
            norm += amp
            amp *= gain
        return total / norm


def _octave_image(rng: np.random.Generator, height: int, width: int, cell_px: float
                  ) -> np.ndarray:
    """One octave of 2D value noise: a random grid with cells of ``cell_px`` px, bicubically
    upsampled, at a random sub-cell offset; (height, width) float32 in about [-1, 1].

    Cells larger than ``NOISE_CELL_PX_MAX`` are drawn at a reduced resolution (cells of that
    size) and bilinearly resized: a bicubic resize of a tiny grid into a large image is slow in
    OpenCV, and the octave is smooth at that scale anyway."""
    factor = max(1.0, cell_px / NOISE_CELL_PX_MAX)
    h, w = int(np.ceil(height / factor)), int(np.ceil(width / factor))
    size = cell_px / factor
    gh = max(2, int(np.ceil(h / size)) + 2)
    gw = max(2, int(np.ceil(w / size)) + 2)
    # rng.uniform(-1, 1) is -1 + 2 * rng.random(), in float64: the same numbers, in place
    grid = rng.random((gh, gw))
    grid *= 2.0
    grid -= 1.0
    grid = grid.astype(np.float32)
    up = cv2.resize(grid, (int(gw * size), int(gh * size)), interpolation=cv2.INTER_CUBIC)
    oy = int(rng.integers(0, max(1, up.shape[0] - h + 1)))
    ox = int(rng.integers(0, max(1, up.shape[1] - w + 1)))
    patch = up[oy:oy + h, ox:ox + w]
    if patch.shape != (h, w):  # tiny sizes: pad by reflection
        patch = cv2.copyMakeBorder(patch, 0, h - patch.shape[0], 0, w - patch.shape[1],
                                   cv2.BORDER_REFLECT)
    if factor > 1.0:
        patch = cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR)
    return patch


def noise_image(rng: np.random.Generator, height: int, width: int, feature_px: float,
                octaves: int = 4, gain: float = 0.55) -> np.ndarray:
    """2D fractal value noise from bicubically upsampled random grids.

    Args:
        rng: random generator.
        height, width: output size in px.
        feature_px: size of the coarsest features in px (> 0).
        octaves: number of octaves, each half the feature size of the previous one.
        gain: amplitude ratio between octaves.

    Returns:
        (height, width) float32, zero mean, roughly unit range.
    """
    if feature_px <= 0:
        raise ValueError(f"feature_px must be > 0, got {feature_px}")
    out = np.zeros((height, width), np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        octave = _octave_image(rng, height, width, feature_px / 2.0 ** k)
        octave *= np.float32(amp)  # a fresh array (or a view of one): scaled in place
        out += octave
        norm += amp
        amp *= gain
    out *= np.float32(1.0 / norm)
    return out
