"""Differentiable kinematics of the 21-joint hand: rotations, forward kinematics, skinning."""
from __future__ import annotations

import torch

from hand_mesh_core.hand.joints import ARTICULATED_JOINTS, NUM_JOINTS, PARENTS

__all__ = ["axis_angle_to_matrix", "forward_kinematics", "linear_blend_skinning"]

#: Below this angle (rad) Rodrigues' coefficients use their Taylor series (no 0/0).
_SMALL_ANGLE_RAD = 1e-4

# joints grouped by depth in the tree (all parents of a level are in earlier levels)
_LEVELS: tuple[tuple[int, ...], ...] = tuple(
    tuple(j for j in range(1, NUM_JOINTS) if (j - 1) % 4 == d) for d in range(4))
_POSE_INDEX = {j: k for k, j in enumerate(ARTICULATED_JOINTS)}


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, smooth (and twice differentiable) at zero.

    Args:
        axis_angle: (..., 3) rotation vectors, radians.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < _SMALL_ANGLE_RAD ** 2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(
        axis_angle.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def forward_kinematics(rest_joints: torch.Tensor, pose: torch.Tensor,
                       joint_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the skeleton in the hand frame (wrist fixed at its rest position, no global motion).

    Args:
        rest_joints: (B, 21, 3) rest joints, canonical order, metres, hand frame.
        pose: (B, 15, 3) axis-angle per articulated joint, radians, in the joint's anatomical
            frame (see :mod:`hand_mesh_core.hand.anatomy`), pose order.
        joint_frames: (15, 3, 3) rest anatomical frames (columns = axes in the hand frame).

    Returns:
        rotations (B, 21, 3, 3): world rotation of each joint's frame relative to rest (tips
        inherit their parent's); positions (B, 21, 3): posed joints, metres, hand frame.
    """
    local = axis_angle_to_matrix(pose)
    local = joint_frames @ local @ joint_frames.transpose(-1, -2)
    batch = rest_joints.shape[0]
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device).expand(batch, 3, 3)
    rots: list[torch.Tensor | None] = [None] * NUM_JOINTS
    pos: list[torch.Tensor | None] = [None] * NUM_JOINTS
    rots[0], pos[0] = eye, rest_joints[:, 0]
    for level in _LEVELS:
        parents = [PARENTS[j] for j in level]
        r_par = torch.stack([rots[p] for p in parents], dim=1)  # (B, 5, 3, 3)
        p_par = torch.stack([pos[p] for p in parents], dim=1)
        offset = rest_joints[:, list(level)] - rest_joints[:, parents]
        p_new = p_par + (r_par @ offset[..., None])[..., 0]
        if level[0] in _POSE_INDEX:
            r_new = r_par @ local[:, [_POSE_INDEX[j] for j in level]]
        else:
            r_new = r_par
        for i, j in enumerate(level):
            rots[j], pos[j] = r_new[:, i], p_new[:, i]
    return torch.stack(rots, dim=1), torch.stack(pos, dim=1)


def linear_blend_skinning(rest_vertices: torch.Tensor, rest_joints: torch.Tensor,
                          rotations: torch.Tensor, positions: torch.Tensor,
                          weights: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        rest_vertices: (B, V, 3) rest vertices, metres. rest_joints: (B, J, 3).
        rotations: (B, J, 3, 3), positions: (B, J, 3): posed joint frames
            (:func:`forward_kinematics`).
        weights: (V, J) skinning weights, rows summing to 1.

    Returns:
        (B, V, 3) posed vertices: sum_j w_vj (R_j (v - J_j^rest) + J_j^posed).
    """
    trans = positions - (rotations @ rest_joints[..., None])[..., 0]  # (B, J, 3)
    mats = torch.cat([rotations, trans[..., None]], dim=-1).flatten(-2)  # (B, J, 12)
    blended = (weights @ mats).unflatten(-1, (3, 4))  # (B, V, 3, 4)
    return (blended[..., :3] @ rest_vertices[..., None])[..., 0] + blended[..., 3]
