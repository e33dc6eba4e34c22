"""Monocular samples (FreiHAND and other single-view data) for pretraining.

A :class:`MonoSample` is deliberately not a :class:`~hand_mesh_core.data.types.StereoSample`
with ``right=None``: code that needs a pair must not receive half of one. Pretraining on
monocular data uses the model's monocular branch (one view, its intrinsics, 3D labels in that
camera's frame); the binocular model and the stereo losses only ever see ``StereoSample``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hand_mesh_core.data.types import HANDEDNESS_CHOICES

__all__ = ["MonoSample"]


@dataclass
class MonoSample:
    """One image with its intrinsics and optional labels.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        K: (3, 3) float64 intrinsics of ``image``.
        handedness: "left" or "right".
        joints_m: (21, 3) float32 joints, metres, camera optical frame, canonical order, or None.
        vertices_m: (V, 3) float32 mesh vertices, metres, camera frame, or None.
        mask: (H, W) bool hand mask, or None.
        source: provenance, e.g. "freihand/training/gs/17".
        extras: anything else (e.g. MANO parameters, fit residuals).
    """

    image: np.ndarray
    K: np.ndarray
    handedness: str = "right"
    joints_m: np.ndarray | None = None
    vertices_m: np.ndarray | None = None
    mask: np.ndarray | None = None
    source: str = ""
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 \
                or img.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {getattr(img, 'shape', None)} "
                             f"{getattr(img, 'dtype', None)}")
        self.K = np.asarray(self.K, dtype=np.float64)
        if self.K.shape != (3, 3):
            raise ValueError(f"K must be (3, 3), got {self.K.shape}")
        if self.handedness not in HANDEDNESS_CHOICES:
            raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, "
                             f"got {self.handedness!r}")
        if self.joints_m is not None and self.joints_m.shape != (21, 3):
            raise ValueError(f"joints_m must be (21, 3), got {self.joints_m.shape}")
        if self.vertices_m is not None and (self.vertices_m.ndim != 2
                                            or self.vertices_m.shape[1] != 3):
            raise ValueError(f"vertices_m must be (V, 3), got {self.vertices_m.shape}")
        if self.mask is not None and self.mask.shape != img.shape[:2]:
            raise ValueError(f"mask must be {img.shape[:2]}, got {self.mask.shape}")
