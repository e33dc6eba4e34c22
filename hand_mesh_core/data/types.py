"""Typed samples shared by every data source (synthetic, STB, FreiHAND, rosbag2)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["StereoSample", "HANDEDNESS_CHOICES"]

#: Allowed values of every ``handedness`` argument in hand_mesh.
HANDEDNESS_CHOICES = ("left", "right")


@dataclass
class StereoSample:
    """One rectified stereo pair with optional labels.

    Attributes:
        left: left image (H, W, 3) uint8 RGB.
        right: right image (H, W, 3) uint8 RGB.
        camera: the rectified pair (intrinsics of these full images, baseline).
        handedness: "left" or "right".
        joints_m: (21, 3) float32 joints in metres, left optical frame, canonical order
            (see ``hand_mesh_core.hand.joints``), or None when unlabelled.
        vertices_m: (V, 3) float32 mesh vertices in metres, left optical frame, or None.
        mask_left: (H, W) bool hand mask of the left image, or None.
        mask_right: (H, W) bool hand mask of the right image, or None.
        stamp_ns: acquisition time in ns (0 when unknown).
        source: free-text provenance, e.g. "stb/B1Counting/0" or "synth/target_lab/17".
    """

    left: np.ndarray
    right: np.ndarray
    camera: StereoCamera
    handedness: str = "right"
    joints_m: np.ndarray | None = None
    vertices_m: np.ndarray | None = None
    mask_left: np.ndarray | None = None
    mask_right: np.ndarray | None = None
    stamp_ns: int = 0
    source: str = ""
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        expected = (self.camera.height, self.camera.width)
        for name in ("left", "right"):
            img = getattr(self, name)
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"{name} image must be (H, W, 3) uint8, got "
                                 f"{img.shape} {img.dtype}")
            if img.shape[:2] != expected:
                raise ValueError(f"{name} image is {img.shape[1]}x{img.shape[0]} but the camera "
                                 f"is {self.camera.width}x{self.camera.height}")
        if self.handedness not in HANDEDNESS_CHOICES:
            raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, "
                             f"got {self.handedness!r}")
        if self.joints_m is not None and self.joints_m.shape != (21, 3):
            raise ValueError(f"joints_m must be (21, 3), got {self.joints_m.shape}")
        for name in ("mask_left", "mask_right"):
            m = getattr(self, name)
            if m is not None and m.shape != expected:
                raise ValueError(f"{name} must be {expected}, got {m.shape}")
