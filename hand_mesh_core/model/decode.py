"""From crop-pixel predictions to absolute 3D meshes (batched, differentiable).

Each branch predicts per-vertex ``(u, v)`` in CROP pixels. The crops of a batch are described by
:class:`CropBatch` (the tensor form of a list of
:class:`~hand_mesh_core.geometry.crop.StereoCrop`);
crop pixels map back to full-image pixels exactly as ``CropTransform.to_full`` does, the
per-vertex depth is ``z = fx * B / |u_l - u_r|`` (rectified stereo), and the mesh is unprojected in
the left optical frame. The right-branch mesh uses its own ``(u_r, v_r)`` with the same depth,
unprojected in the RIGHT optical frame (``p_left = p_right + (B, 0, 0)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.projection import (MIN_DEPTH_M, MIN_DISPARITY_PX, triangulate,
                                                unproject)

__all__ = ["CropBatch", "StereoDecoded", "decode_stereo", "decode_mono", "bound_depth_spread",
           "VIEWS"]

#: The two views of a rectified pair.
VIEWS = ("left", "right")


@dataclass(frozen=True)
class CropBatch:
    """Tensor form of B stereo crops: the affine maps of ``CropTransform.affine()``.

    A full-image pixel ``(u, v)`` of view ``k`` maps to crop pixel
    ``(scale_x * u + offset_x_k, scale_y * v + offset_y)``; taken from the crops' own
    ``affine()`` so it follows :mod:`hand_mesh_core.geometry.crop` exactly.

    Attributes:
        scale_x, scale_y: (B,) crop px per full-image px.
        offset_x_left, offset_x_right: (B,) crop px, x offsets of the left / right crop.
        offset_y: (B,) crop px, shared by both views (same rows).
        shift_px: (B,) full-image px by which the right window sits left of the left one.
    """

    scale_x: torch.Tensor
    scale_y: torch.Tensor
    offset_x_left: torch.Tensor
    offset_x_right: torch.Tensor
    offset_y: torch.Tensor
    shift_px: torch.Tensor

    @classmethod
    def from_crops(cls, crops: Sequence[StereoCrop] | Sequence[CropTransform],
                   dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> "CropBatch":
        """Stack StereoCrops (or single-view CropTransforms: right = left, shift 0).

        Raises:
            TypeError: an element is neither a StereoCrop nor a CropTransform.
            ValueError: empty sequence.
        """
        if len(crops) == 0:
            raise ValueError("crops must not be empty")
        rows = []
        for c in crops:
            if isinstance(c, StereoCrop):
                a_l, a_r, shift = c.left.affine(), c.right.affine(), c.shift_px
            elif isinstance(c, CropTransform):
                a_l, a_r, shift = c.affine(), c.affine(), 0.0
            else:
                raise TypeError("crops must be StereoCrop or CropTransform, got "
                                f"{type(c).__name__}")
            rows.append([a_l[0, 0], a_l[1, 1], a_l[0, 2], a_r[0, 2], a_l[1, 2], shift])
        t = torch.tensor(rows, dtype=torch.float64).to(dtype=dtype, device=device)
        return cls(*t.unbind(1))

    def __len__(self) -> int:
        return int(self.scale_x.shape[0])

    def _fields(self) -> tuple[torch.Tensor, ...]:
        return (self.scale_x, self.scale_y, self.offset_x_left, self.offset_x_right,
                self.offset_y, self.shift_px)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
           ) -> "CropBatch":
        """A copy on another device / dtype."""
        return CropBatch(*(t.to(device=device, dtype=dtype) for t in self._fields()))

    def __getitem__(self, index: slice | torch.Tensor) -> "CropBatch":
        """A sub-batch."""
        return CropBatch(*(t[index] for t in self._fields()))

    def _offset_x(self, view: str) -> torch.Tensor:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
        return self.offset_x_left if view == "left" else self.offset_x_right

    def to_full(self, uv_crop: torch.Tensor, view: str = "left") -> torch.Tensor:
        """Crop px (B, N, 2) -> full-image px (B, N, 2) of ``view``."""
        ox = self._offset_x(view)[:, None]
        u = (uv_crop[..., 0] - ox) / self.scale_x[:, None]
        v = (uv_crop[..., 1] - self.offset_y[:, None]) / self.scale_y[:, None]
        return torch.stack([u, v], dim=-1)

    def to_crop(self, uv: torch.Tensor, view: str = "left") -> torch.Tensor:
        """Full-image px (B, N, 2) of ``view`` -> crop px (B, N, 2)."""
        ox = self._offset_x(view)[:, None]
        u = uv[..., 0] * self.scale_x[:, None] + ox
        v = uv[..., 1] * self.scale_y[:, None] + self.offset_y[:, None]
        return torch.stack([u, v], dim=-1)

    def crop_K(self, K: torch.Tensor, view: str = "left") -> torch.Tensor:
        """Crop intrinsics (B, 3, 3) from full-image ``K`` (3, 3) or (B, 3, 3)."""
        ox = self._offset_x(view)
        K = K.to(self.scale_x).expand(len(self), 3, 3).clone()
        sx, sy = self.scale_x, self.scale_y
        K[:, 0, 0] = K[:, 0, 0] * sx
        K[:, 1, 1] = K[:, 1, 1] * sy
        K[:, 0, 2] = K[:, 0, 2] * sx + ox
        K[:, 1, 2] = K[:, 1, 2] * sy + self.offset_y
        return K


@dataclass(frozen=True)
class StereoDecoded:
    """Absolute meshes decoded from both branches.

    Attributes:
        vertices_left: (B, V, 3) metres, left optical frame.
        vertices_right: (B, V, 3) metres, RIGHT optical frame (right-branch (u, v), same depth).
        uv_left: (B, V, 2) full-image px, left view.
        uv_right: (B, V, 2) full-image px, right view.
        depth_m: (B, V) per-vertex z, metres.
    """

    vertices_left: torch.Tensor
    vertices_right: torch.Tensor
    uv_left: torch.Tensor
    uv_right: torch.Tensor
    depth_m: torch.Tensor


def _check_uv(name: str, uv: torch.Tensor, batch: int) -> None:
    if uv.dim() != 3 or uv.shape[-1] != 2 or uv.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({batch}, V, 2), got {tuple(uv.shape)}")


def _baseline(baseline_m: float | torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    b = torch.as_tensor(baseline_m, dtype=ref.dtype, device=ref.device)
    if b.dim() == 1:
        b = b[:, None]
    if not bool((b > 0).all()):
        raise ValueError(f"baseline_m must be > 0, got {b.flatten().tolist()}")
    return b


def bound_depth_spread(depth_m: torch.Tensor, max_from_median_m: float) -> torch.Tensor:
    """Clamp per-vertex depths to the hand's median depth +- ``max_from_median_m``.

    One hand spans at most about its length in depth, so a vertex far from the others comes
    from a bad disparity (two branch predictions that disagree), not from the hand; left alone
    it can put a vertex metres away and drag the joints with it. The median is detached: the
    bound moves no vertex, and clamped vertices get no depth gradient.

    Args:
        depth_m: (B, V) per-vertex depth, metres.
        max_from_median_m: half-width of the allowed band, metres (> 0).

    Returns:
        (B, V) clamped depth.
    """
    if not max_from_median_m > 0:
        raise ValueError(f"max_from_median_m must be > 0, got {max_from_median_m}")
    median = depth_m.detach().median(dim=1, keepdim=True).values
    lo = (median - max_from_median_m).clamp_min(MIN_DEPTH_M)
    return torch.maximum(torch.minimum(depth_m, median + max_from_median_m), lo)


def decode_stereo(uv_left_crop: torch.Tensor, uv_right_crop: torch.Tensor, crops: CropBatch,
                  K: torch.Tensor, baseline_m: float | torch.Tensor,
                  min_disparity_px: float = MIN_DISPARITY_PX,
                  max_depth_from_median_m: float = 0.0) -> StereoDecoded:
    """Triangulate per-vertex crop predictions of the two branches.

    Args:
        uv_left_crop: (B, V, 2) left-crop px.
        uv_right_crop: (B, V, 2) right-crop px.
        crops: the B stereo crops.
        K: full-image intrinsics (3, 3) or (B, 3, 3).
        baseline_m: scalar or (B,) metres, > 0.
        min_disparity_px: |disparity| is clamped to at least this.
        max_depth_from_median_m: > 0: per-vertex depth is clamped to the median depth +- this
            (:func:`bound_depth_spread`); 0: no bound.

    Returns:
        :class:`StereoDecoded`.

    Raises:
        ValueError: shape mismatch or non-positive baseline.
    """
    _check_uv("uv_left_crop", uv_left_crop, len(crops))
    _check_uv("uv_right_crop", uv_right_crop, len(crops))
    if uv_left_crop.shape != uv_right_crop.shape:
        raise ValueError(f"uv_left_crop {tuple(uv_left_crop.shape)} and uv_right_crop "
                         f"{tuple(uv_right_crop.shape)} must match")
    b = _baseline(baseline_m, uv_left_crop)
    uv_l = crops.to_full(uv_left_crop, "left")
    uv_r = crops.to_full(uv_right_crop, "right")
    K = K.to(uv_l)
    pts_l = triangulate(uv_l, uv_r, K, b, min_disparity_px)
    depth = pts_l[..., 2]
    if max_depth_from_median_m > 0:
        depth = bound_depth_spread(depth, max_depth_from_median_m)
        pts_l = unproject(uv_l, depth, K)
    pts_r = unproject(uv_r, depth, K)
    return StereoDecoded(pts_l, pts_r, uv_l, uv_r, depth)


def decode_mono(uv_crop: torch.Tensor, depth_m: torch.Tensor, crops: CropBatch, K: torch.Tensor,
                view: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """Unproject one branch's crop predictions with its own per-vertex depth.

    Args:
        uv_crop: (B, V, 2) crop px of ``view``.
        depth_m: (B, V) z in metres.
        crops: the B crops.
        K: full-image intrinsics (3, 3) or (B, 3, 3).
        view: "left" or "right": the frame of the returned points.

    Returns:
        ``(points (B, V, 3) metres in the view's optical frame, uv (B, V, 2) full px)``.
    """
    _check_uv("uv_crop", uv_crop, len(crops))
    if depth_m.shape != uv_crop.shape[:-1]:
        raise ValueError(f"depth_m must have shape {tuple(uv_crop.shape[:-1])}, got "
                         f"{tuple(depth_m.shape)}")
    uv = crops.to_full(uv_crop, view)
    return unproject(uv, depth_m, K.to(uv)), uv
