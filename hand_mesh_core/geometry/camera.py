"""The rectified stereo camera.

Frames: ROS camera optical frames, x right, y down, z forward, metres. The left optical frame is
the reference frame of every output of hand_mesh. After rectification the right camera is the left
one moved by ``baseline_m`` along +x, so a point seen at ``p_left`` has ``p_right = p_left - (B, 0,
0)`` and the disparity ``u_left - u_right = fx * B / z`` is positive.

ROS convention (sensor_msgs/CameraInfo): for rectified images the intrinsics are the left 3x3 of
P, and the right camera's P has ``P[0, 3] = Tx = -fx * B``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from hand_mesh_core.config.base import ConfigBase, setting

__all__ = ["StereoCamera", "RectificationError", "RECTIFIED_REL_TOL"]

#: Relative tolerance when checking that two CameraInfos describe one rectified pair. Drivers
#: print P with ~7 significant digits; 1e-4 accepts rounding and rejects real differences.
RECTIFIED_REL_TOL = 1e-4


class RectificationError(ValueError):
    """Left and right camera parameters do not describe a rectified stereo pair."""


def _matrix(values: Sequence[float] | np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size != shape[0] * shape[1]:
        raise ValueError(f"{name} must have {shape[0] * shape[1]} values (row-major "
                         f"{shape[0]}x{shape[1]}), got {arr.size}")
    arr = arr.reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr


def _close(a: float, b: float, rel_tol: float) -> bool:
    return abs(a - b) <= rel_tol * max(abs(a), abs(b), 1.0)


@dataclass(frozen=True)
class StereoCamera(ConfigBase):
    """A rectified stereo pair: shared intrinsics, image size and baseline.

    Shipped presets live in ``config/cameras/*.yaml`` and load with :meth:`from_yaml`.
    """

    fx: float = setting(822.79041, "focal length along x", unit="px", gt=0.0)
    fy: float = setting(822.79041, "focal length along y", unit="px", gt=0.0)
    cx: float = setting(318.47345, "principal point x", unit="px")
    cy: float = setting(250.31296, "principal point y", unit="px")
    baseline_m: float = setting(0.120054, "distance between the optical centres", unit="m",
                                gt=0.0)
    width: int = setting(640, "image width", unit="px", gt=0)
    height: int = setting(480, "image height", unit="px", gt=0)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_camera_info(
        cls,
        p_left: Sequence[float] | np.ndarray,
        p_right: Sequence[float] | np.ndarray,
        size_left: tuple[int, int],
        size_right: tuple[int, int],
        rel_tol: float = RECTIFIED_REL_TOL,
    ) -> "StereoCamera":
        """Build from the projection matrices of two ROS CameraInfo messages.

        Args:
            p_left: left ``P``, 12 values row-major (3x4), ``P[0, 3] == 0``.
            p_right: right ``P``, 12 values, ``P[0, 3] = Tx = -fx * baseline_m``.
            size_left: ``(width, height)`` of the left image, px.
            size_right: ``(width, height)`` of the right image, px.
            rel_tol: relative tolerance for "equal" intrinsics.

        Raises:
            ValueError: wrong number of values, NaN/inf, non-positive focal or baseline.
            RectificationError: the pair is not rectified (different fx, fy, cy or size, or a
                vertical offset).
        """
        pl = _matrix(p_left, (3, 4), "left P")
        pr = _matrix(p_right, (3, 4), "right P")
        fx, fy, cx, cy = pl[0, 0], pl[1, 1], pl[0, 2], pl[1, 2]
        if fx <= 0 or fy <= 0:
            raise ValueError(f"focal length must be > 0 px, got fx={fx}, fy={fy}")
        if tuple(size_left) != tuple(size_right):
            raise RectificationError(
                f"left and right image sizes differ: {tuple(size_left)} vs {tuple(size_right)}")
        for name, a, b in (("fx", fx, pr[0, 0]), ("fy", fy, pr[1, 1]), ("cy", cy, pr[1, 2])):
            if not _close(a, b, rel_tol):
                raise RectificationError(
                    f"not a rectified pair: {name} differs (left {a}, right {b})")
        if abs(pr[1, 3]) > rel_tol * fy or abs(pl[1, 3]) > rel_tol * fy:
            raise RectificationError(
                f"not a rectified pair: vertical offset Ty (left {pl[1, 3]}, right {pr[1, 3]})")
        baseline_m = -(pr[0, 3] - pl[0, 3]) / fx
        if not baseline_m > 0:
            raise ValueError(
                f"baseline must be > 0 m, got {baseline_m} from right P[0,3]={pr[0, 3]} "
                "(expected Tx = -fx * baseline; are left and right swapped?)")
        return cls(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy),
                   baseline_m=float(baseline_m), width=int(size_left[0]),
                   height=int(size_left[1]))

    # ------------------------------------------------------------------ matrices
    @property
    def K(self) -> np.ndarray:
        """Intrinsic matrix (3, 3), float64, shared by both views."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def K_tensor(self, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """Intrinsic matrix as a tensor (3, 3)."""
        return torch.tensor(self.K, dtype=dtype, device=device)

    def P(self, view: str = "left") -> np.ndarray:
        """ROS projection matrix (3, 4) of ``view`` in {"left", "right"}."""
        if view not in ("left", "right"):
            raise ValueError(f"view must be one of ['left', 'right'], got {view!r}")
        p = np.zeros((3, 4))
        p[:, :3] = self.K
        if view == "right":
            p[0, 3] = -self.fx * self.baseline_m
        return p

    @property
    def T_left_right(self) -> np.ndarray:
        """Pose of the right optical frame in the left one (4, 4): ``p_left = T @ p_right``."""
        t = np.eye(4)
        t[0, 3] = self.baseline_m
        return t

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in px."""
        return (self.width, self.height)

    @property
    def fx_baseline(self) -> float:
        """``fx * baseline_m`` (px * m): disparity = fx_baseline / depth."""
        return self.fx * self.baseline_m

    def scaled(self, factor: float) -> "StereoCamera":
        """The camera after resizing both images by ``factor`` (pixel-centre convention)."""
        if not factor > 0:
            raise ValueError(f"scale factor must be > 0, got {factor}")
        return self.replace(fx=self.fx * factor, fy=self.fy * factor,
                            cx=(self.cx + 0.5) * factor - 0.5, cy=(self.cy + 0.5) * factor - 0.5,
                            width=max(1, round(self.width * factor)),
                            height=max(1, round(self.height * factor)))
