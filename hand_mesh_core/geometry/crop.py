"""Crops and resizes that keep absolute geometry.

A crop is an axis-aligned window of the full image, resampled to ``(out_width, out_height)``.
Pixel convention (OpenCV/ROS): the centre of pixel ``i`` is at ``i``, and it covers
``[i - 0.5, i + 0.5)``. A window whose top-left *edge* is at ``(x0, y0)`` (in that same
continuous coordinate: the window over whole pixels 0..3 has ``x0 = -0.5``) with side
``(width, height)`` in full-image px maps crop pixel ``j`` to the full-image coordinate
``x0 + (j + 0.5) * width / out_width``.

The crop of a pinhole camera is again a pinhole camera (:meth:`CropTransform.crop_K`), so
``(u, v)`` predicted in a crop maps back to full-image pixels and, with disparity, to metres.

For a rectified stereo pair, :class:`StereoCrop` uses the same rows and scale in both images and
moves the right window left by ``shift_px`` (an expected disparity), so the hand appears at a
similar place in both crops. Full-image disparity is recovered with :meth:`StereoCrop.disparity`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CropTransform", "StereoCrop"]


@dataclass(frozen=True)
class CropTransform:
    """Full image -> crop affine map (scale then translate, no rotation).

    Attributes:
        x0, y0: top-left edge of the window in full-image px, pixel-centre convention (may lie
            outside the image).
        width, height: window size in full-image px, > 0.
        out_width, out_height: crop size in px, > 0.
    """

    x0: float
    y0: float
    width: float
    height: float
    out_width: int
    out_height: int

    def __post_init__(self) -> None:
        if not (self.width > 0 and self.height > 0):
            raise ValueError(
                f"crop window must have positive size, got {self.width}x{self.height}")
        if not (self.out_width > 0 and self.out_height > 0):
            raise ValueError(
                f"crop output must have positive size, got {self.out_width}x{self.out_height}")
        if not all(np.isfinite([self.x0, self.y0, self.width, self.height])):
            raise ValueError(f"crop window must be finite, got {self}")

    @classmethod
    def square(cls, center_u: float, center_v: float, side_px: float, out_size: int
               ) -> "CropTransform":
        """A square window of ``side_px`` centred on full-image pixel ``(center_u, center_v)``."""
        return cls(center_u - side_px / 2, center_v - side_px / 2, side_px, side_px,
                   out_size, out_size)

    @property
    def scale_x(self) -> float:
        """Crop px per full-image px along x."""
        return self.out_width / self.width

    @property
    def scale_y(self) -> float:
        """Crop px per full-image px along y."""
        return self.out_height / self.height

    def affine(self) -> np.ndarray:
        """(2, 3) matrix ``A`` with ``[u_c, v_c] = A @ [u, v, 1]`` (for ``cv2.warpAffine``)."""
        sx, sy = self.scale_x, self.scale_y
        return np.array([[sx, 0.0, -self.x0 * sx - 0.5],
                         [0.0, sy, -self.y0 * sy - 0.5]])

    def to_crop(self, uv: torch.Tensor) -> torch.Tensor:
        """Full-image pixels ``(..., 2)`` -> crop pixels ``(..., 2)``."""
        a = torch.as_tensor(self.affine(), dtype=uv.dtype, device=uv.device)
        return uv * a.diagonal() + a[:, 2]

    def to_full(self, uv_crop: torch.Tensor) -> torch.Tensor:
        """Crop pixels ``(..., 2)`` -> full-image pixels ``(..., 2)``."""
        a = torch.as_tensor(self.affine(), dtype=uv_crop.dtype, device=uv_crop.device)
        return (uv_crop - a[:, 2]) / a.diagonal()

    def crop_K(self, K: np.ndarray) -> np.ndarray:
        """Intrinsics (3, 3) of the crop, given the full-image ``K`` (3, 3)."""
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K must have shape (3, 3), got {K.shape}")
        a = np.vstack([self.affine(), [0.0, 0.0, 1.0]])
        return a @ K

    def apply(self, image: np.ndarray, interpolation: int | None = None,
              border_value: float = 0.0) -> np.ndarray:
        """Resample ``image`` (H, W) or (H, W, C) into the crop (out_height, out_width[, C]).

        Pixels outside the full image are ``border_value``. Uses ``cv2.warpAffine`` with
        bilinear interpolation by default (pass ``cv2.INTER_NEAREST`` for masks).
        """
        import cv2

        flags = cv2.INTER_LINEAR if interpolation is None else interpolation
        return cv2.warpAffine(image, self.affine(), (self.out_width, self.out_height),
                              flags=flags, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=border_value)


@dataclass(frozen=True)
class StereoCrop:
    """Left and right crops of a rectified pair: same rows and scale, right shifted by a disparity.

    Attributes:
        left: the left crop.
        shift_px: full-image px by which the right window sits left of the left window.
    """

    left: CropTransform
    shift_px: float

    @property
    def right(self) -> CropTransform:
        """The right crop: the left window moved by ``-shift_px`` along x."""
        lc = self.left
        return CropTransform(lc.x0 - self.shift_px, lc.y0, lc.width, lc.height,
                             lc.out_width, lc.out_height)

    def disparity(self, u_left_crop: torch.Tensor, u_right_crop: torch.Tensor) -> torch.Tensor:
        """Full-image disparity ``u_l - u_r`` (px) from crop x coordinates (any equal shapes)."""
        return (u_left_crop - u_right_crop) / self.left.scale_x + self.shift_px
