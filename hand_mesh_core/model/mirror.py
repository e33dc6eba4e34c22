"""Left hands through a right-hand network: mirror the rectified stereo pair.

The network is trained on RIGHT hands only. A left hand is the mirror image of a right hand, so a
left-hand pair is turned into a right-hand pair of the mirrored world ``x -> -x``, the network
runs on that, and its output is mapped back.

Derivation (ROS optical frames, pixel centres at integers, rectified pair with baseline ``B``:
the right camera R is the left camera L moved by ``+B`` along x, ``p_R = p_L - (B, 0, 0)``).

1. Flipping an image horizontally, ``u' = W - 1 - u``, turns a pinhole camera C with principal
   point ``cx`` into the camera C' of the MIRRORED point ``(-x, y, z)`` with ``cx' = W - 1 - cx``:
   ``u' = W - 1 - (fx x / z + cx) = fx (-x) / z + (W - 1 - cx)``. Coordinates in C' are
   ``x_C' = -x_C``; ``fx, fy, cy`` and the rows are unchanged.
2. In the mirrored world the flipped views sit at ``x_L' = -x_L`` and ``x_R' = -x_R = x_L' + B``,
   i.e. ``p_L' = p_R' - (B, 0, 0)``: the flipped RIGHT view R' is the new LEFT camera, and the
   flipped LEFT view L' is the new RIGHT camera, ``B`` to its right (same baseline, same sign
   convention, still rectified). So the mirrored pair is ``(flip(right), flip(left))`` with
   ``cx' = W - 1 - cx``: a right hand if the original showed a left one.
3. A point ``p' = (x', y', z')`` in the new-left frame R' is ``p_R = (-x', y', z')`` in the
   original right frame and ``p_L = p_R + (B, 0, 0) = (B - x', y', z')`` in the original left
   frame. :func:`mirror_points` is this map; it is its own inverse (``B - (B - x) = x``), so it
   also maps left-frame labels of the original pair to the mirrored pair.
4. A crop window ``[x0, x0 + w]`` (continuous, pixel-edge coordinates) of one view becomes
   ``[W - 1 - x0 - w, W - 1 - x0]`` in the flipped view, and crop pixel ``j`` of the flipped
   window samples ``W - 1 -`` (the full coordinate of crop pixel ``out - 1 - j`` of the original
   window): the mirrored crop is exactly the flipped crop. The new-left window is the flipped
   original RIGHT window, and the shift (disparity) is unchanged (:func:`mirror_stereo_crop`).
5. Faces: mirroring reverses the winding (``HandModel.faces_for("left")``); joints are linear in
   the vertices, so the joint regressor commutes with the mirror.
"""
from __future__ import annotations

import numpy as np
import torch

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop

__all__ = ["mirror_camera", "mirror_stereo_images", "mirror_stereo_crop", "mirror_points",
           "mirror_faces", "mirror_sample", "OTHER_HAND"]

#: The hand seen after mirroring.
OTHER_HAND = {"left": "right", "right": "left"}


def mirror_camera(camera: StereoCamera) -> StereoCamera:
    """The camera of the mirrored pair: ``cx' = W - 1 - cx``, everything else unchanged.

    Raises:
        TypeError: ``camera`` is not a :class:`StereoCamera`.
    """
    if not isinstance(camera, StereoCamera):
        raise TypeError(f"camera must be a StereoCamera, got {type(camera).__name__}")
    return camera.replace(cx=camera.width - 1 - camera.cx)


def mirror_stereo_images(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(flip(right), flip(left))``: the mirrored pair's (left, right) images.

    Works for any (H, W) or (H, W, C) arrays (images, masks, depth maps).

    Raises:
        ValueError: the two arrays differ in shape or have fewer than 2 dimensions.
    """
    left, right = np.asarray(left), np.asarray(right)
    if left.shape != right.shape or left.ndim < 2:
        raise ValueError(f"left and right must be (H, W[, C]) arrays of one shape, got "
                         f"{left.shape} and {right.shape}")
    return (np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]))


def mirror_stereo_crop(crop: StereoCrop, width: int) -> StereoCrop:
    """The crop of the mirrored pair that samples exactly the flipped original crops.

    Its left window is the flipped original RIGHT window, ``x0' = W - 1 - (x0_r + w)``; the
    shift (expected disparity) is unchanged. Applying it twice gives back ``crop``.

    Args:
        crop: a stereo crop of the original pair (full-image px).
        width: image width ``W``, px.

    Raises:
        TypeError: ``crop`` is not a StereoCrop.
        ValueError: ``width`` < 1.
    """
    if not isinstance(crop, StereoCrop):
        raise TypeError(f"crop must be a StereoCrop, got {type(crop).__name__}")
    if not width >= 1:
        raise ValueError(f"width must be >= 1 px, got {width}")
    r = crop.right
    return StereoCrop(CropTransform(width - 1 - (r.x0 + r.width), r.y0, r.width, r.height,
                                    r.out_width, r.out_height), crop.shift_px)


def mirror_points(points_m: np.ndarray | torch.Tensor, baseline_m: float
                  ) -> np.ndarray | torch.Tensor:
    """``(x, y, z) -> (B - x, y, z)``: left-frame points of one pair <-> of the mirrored pair.

    Args:
        points_m: (..., 3) metres, left optical frame of either pair (numpy or torch).
        baseline_m: the pair's baseline ``B``, metres.

    Returns:
        Same type, shape and dtype, left optical frame of the other pair.

    Raises:
        ValueError: last dimension is not 3.
    """
    if points_m.shape[-1] != 3:
        raise ValueError(f"points_m must have shape (..., 3), got {tuple(points_m.shape)}")
    out = points_m.clone() if isinstance(points_m, torch.Tensor) else np.array(points_m)
    out[..., 0] = baseline_m - points_m[..., 0]
    return out


def mirror_faces(faces: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Reverse the winding of (F, 3) faces: ``[a, b, c] -> [c, b, a]``.

    The same oriented triangles as ``HandModel.faces_for("left")`` (``[a, c, b]``, a cyclic
    rotation of each row), and the order the ROS node has always published."""
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    out = faces.flip(1) if isinstance(faces, torch.Tensor) else faces[:, ::-1]
    return out.contiguous() if isinstance(out, torch.Tensor) else np.ascontiguousarray(out)


def mirror_sample(sample: StereoSample) -> StereoSample:
    """The mirrored pair of ``sample``: images and masks flipped and swapped, camera
    ``cx' = W - 1 - cx``, labels through :func:`mirror_points`, handedness swapped.

    ``extras`` are not carried over (their frames are unknown).

    Raises:
        TypeError: ``sample`` is not a StereoSample.
    """
    if not isinstance(sample, StereoSample):
        raise TypeError(f"sample must be a StereoSample, got {type(sample).__name__}")
    b = sample.camera.baseline_m
    left, right = mirror_stereo_images(sample.left, sample.right)
    ml = mr = None
    if sample.mask_left is not None and sample.mask_right is not None:
        ml, mr = mirror_stereo_images(sample.mask_left, sample.mask_right)
    elif sample.mask_left is not None or sample.mask_right is not None:
        # One mask only: it belongs to the other view after the swap.
        if sample.mask_right is not None:
            ml = np.ascontiguousarray(sample.mask_right[:, ::-1])
        else:
            mr = np.ascontiguousarray(sample.mask_left[:, ::-1])
    joints = None if sample.joints_m is None else mirror_points(sample.joints_m, b)
    verts = None if sample.vertices_m is None else mirror_points(sample.vertices_m, b)
    return StereoSample(left, right, mirror_camera(sample.camera),
                        OTHER_HAND[sample.handedness], joints, verts, ml, mr, sample.stamp_ns,
                        f"{sample.source}/mirrored" if sample.source else "mirrored")
