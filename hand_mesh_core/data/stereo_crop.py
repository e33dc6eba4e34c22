"""Square stereo crops around the hand, keeping absolute geometry.

The left window is the ROI's square (at least ``min_side_px``); the right window has the same
rows and size and sits ``shift_px`` to the left, where ``shift_px`` is the hand's expected
disparity (from the ROI's stereo match, or ``fx * B / depth`` for a depth prior). Both windows
are resampled to ``out_size_px``. The pure geometry is
:class:`hand_mesh_core.geometry.crop.StereoCrop`; this module builds it from ROIs, cuts the
images, masks and labels, and gives the crop intrinsics.

Intrinsics of the crops: ``K_left = A_left @ K`` and ``K_right = A_right @ K`` (``A`` the
full->crop affine). They differ only in ``cx`` (by ``shift_px * scale``). A point ``p`` in the
left optical frame projects to ``K_left p`` in the left crop and to ``K_right (p - (B, 0, 0))``
in the right crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hand_mesh_core.data.config import StereoCropConfig
from hand_mesh_core.data.roi import Box, HandRoi
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.projection import project, triangulate

__all__ = ["StereoCropSample", "stereo_crop_from_box", "stereo_crop_from_roi",
           "stereo_crop_from_depth", "crop_stereo_pair", "crop_stereo_sample",
           "triangulate_crops"]


@dataclass(frozen=True)
class StereoCropSample:
    """Network-sized crops of a rectified pair.

    Attributes:
        left, right: (S, S, 3) uint8 RGB crops.
        crop: the full-image <-> crop geometry of both views.
        K_left, K_right: (3, 3) float64 intrinsics of the left and right crops.
        baseline_m: the pair's baseline, m.
        camera: the full-image camera.
        mask_left, mask_right: (S, S) bool cropped masks, or None.
        joints_m: (21, 3) float32 joints, m, left optical frame (unchanged by cropping), or None.
        joints_uv_left, joints_uv_right: (21, 2) float32 joint pixels in the crops, or None.
    """

    left: np.ndarray
    right: np.ndarray
    crop: StereoCrop
    K_left: np.ndarray
    K_right: np.ndarray
    baseline_m: float
    camera: StereoCamera
    mask_left: np.ndarray | None = None
    mask_right: np.ndarray | None = None
    joints_m: np.ndarray | None = None
    joints_uv_left: np.ndarray | None = None
    joints_uv_right: np.ndarray | None = None


def stereo_crop_from_box(box: Box, shift_px: float, config: StereoCropConfig | None = None
                         ) -> StereoCrop:
    """Square stereo crop centred on a left box.

    Args:
        box: ``(x0, y0, w, h)`` in the left image, px (top-left edge, pixel coordinates: the
            CropTransform convention).
        shift_px: right window offset (expected disparity), px, >= 0.
        config: output size and minimum window side.
    """
    config = StereoCropConfig.resolve(config)
    if len(box) != 4 or not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"box must be finite (x0, y0, width, height) with positive size, "
                         f"got {box!r}")
    if not (np.isfinite(shift_px) and shift_px >= 0):
        raise ValueError(f"shift_px must be a finite disparity >= 0, got {shift_px}")
    x0, y0, w, h = (float(v) for v in box)
    side = max(w, h, config.min_side_px)
    cu, cv = x0 + w / 2, y0 + h / 2   # centre, pixel coordinates (box edges: see roi.py)
    left = CropTransform.square(cu, cv, side, config.out_size_px)
    return StereoCrop(left, float(shift_px))


def stereo_crop_from_roi(roi: HandRoi, config: StereoCropConfig | None = None) -> StereoCrop:
    """Stereo crop of a :class:`HandRoi`: its square window, shifted by its disparity."""
    if not isinstance(roi, HandRoi):
        raise TypeError(f"roi must be a HandRoi, got {type(roi).__name__}")
    return stereo_crop_from_box(roi.left, roi.disparity_px, config)


def stereo_crop_from_depth(center_uv: tuple[float, float], side_px: float, depth_m: float,
                           camera: StereoCamera, config: StereoCropConfig | None = None
                           ) -> StereoCrop:
    """Stereo crop from a depth prior: ``shift_px = fx * B / depth_m``.

    Args:
        center_uv: window centre in the left image, pixel coordinates.
        side_px: window side, px.
        depth_m: expected hand depth, m, > 0.
        camera: the pair.
        config: output size and minimum side.
    """
    if not (np.isfinite(depth_m) and depth_m > 0):
        raise ValueError(f"depth_m must be > 0, got {depth_m}")
    u, v = center_uv
    box = (u - side_px / 2, v - side_px / 2, side_px, side_px)
    return stereo_crop_from_box(box, camera.fx_baseline / depth_m, config)


def _project_joints(joints_m: np.ndarray, K: np.ndarray, baseline_m: float = 0.0) -> np.ndarray:
    p = torch.as_tensor(joints_m, dtype=torch.float64).clone()
    p[:, 0] -= baseline_m
    return project(p, torch.as_tensor(K)).numpy().astype(np.float32)


def crop_stereo_pair(left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                     crop: StereoCrop, mask_left: np.ndarray | None = None,
                     mask_right: np.ndarray | None = None,
                     joints_m: np.ndarray | None = None) -> StereoCropSample:
    """Cut a rectified pair (and its masks and joints) with a :class:`StereoCrop`.

    Images are resampled bilinearly and masks with nearest neighbour; pixels outside the full
    image are black / False.

    Args:
        left, right: (H, W, 3) uint8 RGB, the camera's size.
        camera: the full-image pair.
        crop: the stereo crop.
        mask_left, mask_right: optional (H, W) bool masks.
        joints_m: optional (21, 3) joints, m, left optical frame.
    """
    import cv2

    if not isinstance(crop, StereoCrop):
        raise TypeError(f"crop must be a StereoCrop, got {type(crop).__name__}")
    expected = (camera.height, camera.width, 3)
    for name, img in (("left", left), ("right", right)):
        if not isinstance(img, np.ndarray) or img.shape != expected or img.dtype != np.uint8:
            raise ValueError(f"{name} must be {expected} uint8 (the camera size), got "
                             f"{getattr(img, 'shape', None)} {getattr(img, 'dtype', None)}")
    K = camera.K
    out = {}
    for name, mask, tr in (("mask_left", mask_left, crop.left),
                           ("mask_right", mask_right, crop.right)):
        if mask is None:
            out[name] = None
            continue
        if mask.shape != expected[:2]:
            raise ValueError(f"{name} must be {expected[:2]}, got {mask.shape}")
        out[name] = tr.apply(mask.astype(np.uint8), cv2.INTER_NEAREST) > 0
    K_left, K_right = crop.left.crop_K(K), crop.right.crop_K(K)
    uv_l = uv_r = None
    if joints_m is not None:
        joints_m = np.asarray(joints_m, np.float32)
        if joints_m.ndim != 2 or joints_m.shape[1] != 3:
            raise ValueError(f"joints_m must be (N, 3), got {joints_m.shape}")
        uv_l = _project_joints(joints_m, K_left)
        uv_r = _project_joints(joints_m, K_right, camera.baseline_m)
    return StereoCropSample(crop.left.apply(left), crop.right.apply(right), crop, K_left,
                            K_right, camera.baseline_m, camera, out["mask_left"],
                            out["mask_right"], joints_m, uv_l, uv_r)


def crop_stereo_sample(sample: StereoSample, crop: StereoCrop) -> StereoCropSample:
    """:func:`crop_stereo_pair` on a :class:`StereoSample` (images, masks and joints)."""
    if not isinstance(sample, StereoSample):
        raise TypeError(f"sample must be a StereoSample, got {type(sample).__name__}")
    return crop_stereo_pair(sample.left, sample.right, sample.camera, crop, sample.mask_left,
                            sample.mask_right, sample.joints_m)


def triangulate_crops(uv_left_crop: torch.Tensor, uv_right_crop: torch.Tensor,
                      crop: StereoCrop, camera: StereoCamera) -> torch.Tensor:
    """Points in metres (left optical frame) from matched crop pixels.

    Args:
        uv_left_crop, uv_right_crop: ``(..., N, 2)`` pixels in the left and right crops.
        crop: the stereo crop they come from.
        camera: the full-image pair.

    Returns:
        ``(..., N, 3)`` points, m, left optical frame (differentiable).
    """
    uv_l = crop.left.to_full(uv_left_crop)
    uv_r = crop.right.to_full(uv_right_crop)
    return triangulate(uv_l, uv_r, camera.K_tensor(uv_l.dtype, uv_l.device), camera.baseline_m)
