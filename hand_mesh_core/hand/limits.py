"""Anatomical limits of the pose parameters.

A pose is (..., 15, 3): per articulated joint (pose order, see
:data:`~hand_mesh_core.hand.joints.ARTICULATED_JOINTS`) an axis-angle vector in the joint's
anatomical frame, whose components are (flexion, twist, abduction) in radians (axes in
:mod:`hand_mesh_core.hand.anatomy`). The limits bound each component independently.

Sources. Flexion/extension ranges: American Academy of Orthopaedic Surgeons, "Joint Motion:
Method of Measuring and Recording", 1965 (finger MCP flexion 90 deg, PIP 100 deg, DIP 90 deg /
extension 10 deg; thumb MCP flexion 50 deg, IP flexion 80 deg / extension 20 deg), with the
PIP range widened to 110 deg as measured by Hume et al., "Functional range of motion of the
joints of the hand", J. Hand Surg. 15A(2):240-243, 1990. Finger abduction (MCP +-20 deg) as in
Cobos et al., "Efficient human hand kinematics for manipulation tasks", IROS 2008. Twist and the
abduction of hinge joints (PIP, DIP, IP) are not anatomical degrees of freedom: they get a small
tolerance (+-5 deg; MCP +-10 deg) so fitted or noisy poses are not forced exactly onto a hinge.
The thumb CMC is a saddle joint modelled as a ball joint: its ranges are widened to cover
opposition (flexion -20..60 deg, pronation twist -20..40 deg, abduction -30..30 deg).
"""
from __future__ import annotations

import math

import torch

from hand_mesh_core.hand.joints import ARTICULATED_JOINTS

__all__ = ["JOINT_LIMITS_DEG", "joint_limits", "clamp_pose", "pose_within_limits",
           "check_pose"]

_FINGER_DEG = (
    ((-30.0, 90.0), (-10.0, 10.0), (-20.0, 20.0)),  # MCP
    ((-5.0, 110.0), (-5.0, 5.0), (-5.0, 5.0)),      # PIP
    ((-10.0, 90.0), (-5.0, 5.0), (-5.0, 5.0)),      # DIP
)
_THUMB_DEG = (
    ((-20.0, 60.0), (-20.0, 40.0), (-30.0, 30.0)),  # CMC
    ((-10.0, 50.0), (-10.0, 10.0), (-15.0, 15.0)),  # MCP
    ((-20.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),      # IP
)
#: JOINT_LIMITS_DEG[k][c] = (low, high) of component c (flexion, twist, abduction) of pose
#: joint k, degrees.
JOINT_LIMITS_DEG: tuple[tuple[tuple[float, float], ...], ...] = _THUMB_DEG + _FINGER_DEG * 4
if len(JOINT_LIMITS_DEG) != len(ARTICULATED_JOINTS):  # pragma: no cover - module invariant
    raise RuntimeError("JOINT_LIMITS_DEG must have one row per articulated joint")


def joint_limits(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The limits as tensors.

    Returns:
        low, high: (15, 3) radians.
    """
    lim = torch.tensor(JOINT_LIMITS_DEG, dtype=torch.float64) * (math.pi / 180.0)
    return lim[..., 0].to(dtype=dtype, device=device), lim[..., 1].to(dtype=dtype, device=device)


def check_pose(pose: torch.Tensor, name: str = "pose") -> None:
    """Raise if ``pose`` is not a floating (..., 15, 3) tensor.

    Raises:
        TypeError: not a tensor or not floating point. ValueError: wrong shape.
    """
    if not isinstance(pose, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pose).__name__}")
    if not pose.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {pose.dtype}")
    if pose.ndim < 2 or tuple(pose.shape[-2:]) != (len(ARTICULATED_JOINTS), 3):
        raise ValueError(f"{name} must be (..., {len(ARTICULATED_JOINTS)}, 3), got "
                         f"{tuple(pose.shape)}")


def clamp_pose(pose: torch.Tensor) -> torch.Tensor:
    """Clamp every component of a pose into its anatomical range.

    Args:
        pose: (..., 15, 3) radians (flexion, twist, abduction per joint).

    Returns:
        (..., 15, 3) clamped copy (differentiable inside the range).
    """
    check_pose(pose)
    low, high = joint_limits(pose.dtype, pose.device)
    return torch.maximum(torch.minimum(pose, high), low)


def pose_within_limits(pose: torch.Tensor, tol_rad: float = 1e-6) -> torch.Tensor:
    """Whether each pose respects every limit.

    Args:
        pose: (..., 15, 3) radians.
        tol_rad: tolerance, radians (>= 0).

    Returns:
        (...) bool tensor.
    """
    check_pose(pose)
    if not tol_rad >= 0.0:
        raise ValueError(f"tol_rad must be >= 0, got {tol_rad}")
    low, high = joint_limits(pose.dtype, pose.device)
    ok = (pose >= low - tol_rad) & (pose <= high + tol_rad)
    return ok.flatten(-2).all(-1)
