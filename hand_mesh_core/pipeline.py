"""End-to-end inference API: a rectified stereo pair in, an absolute hand mesh out.

This is the one entry point that the CLI demo and the ROS node call. It never imports ROS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["HandMeshResult", "HandMeshEstimator"]


@dataclass(frozen=True)
class HandMeshResult:
    """One recovered hand, in the left optical frame.

    Attributes:
        vertices_m: (V, 3) float32 mesh vertices, metres, left optical frame.
        joints_m: (21, 3) float32 joints, metres, left optical frame, canonical order.
        faces: (F, 3) int32 triangle indices, counter-clockwise seen from outside.
        confidence: in [0, 1], from left-right consistency.
        handedness: "left" or "right".
        uv_left: (V, 2) float32 vertex pixels in the full left image.
        roi_left: (x0, y0, width, height) of the left crop in full-image px.
    """

    vertices_m: np.ndarray
    joints_m: np.ndarray
    faces: np.ndarray
    confidence: float
    handedness: str
    uv_left: np.ndarray
    roi_left: tuple[float, float, float, float]


@runtime_checkable
class HandMeshEstimator(Protocol):
    """Anything that turns a rectified pair into a hand mesh (the model, or a test double)."""

    def predict(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                roi: tuple[float, float, float, float] | None = None
                ) -> HandMeshResult | None:
        """Recover the hand.

        Args:
            left, right: (H, W, 3) uint8 RGB rectified images.
            camera: the pair's intrinsics and baseline (full-image).
            roi: optional (x0, y0, width, height) of the hand in the left image, px, from an
                external detector.

        Returns:
            The hand, or None when no hand is found.
        """
        ...
