"""Procedural articulated hand model, named poses, joint orders and maps, optional MANO.

Main entry points: :class:`~hand_mesh_core.hand.model.HandModel` (``procedural()``,
``from_mano()``), :func:`~hand_mesh_core.hand.poses.named_pose`,
:func:`~hand_mesh_core.hand.poses.sample_pose`, :func:`~hand_mesh_core.hand.limits.clamp_pose`,
:func:`~hand_mesh_core.hand.joints.to_canonical`. Submodules are imported lazily by callers
(open3d is only needed to build the procedural template).
"""
from hand_mesh_core.hand.config import HandModelConfig
from hand_mesh_core.hand.joints import (BONES, JOINT_NAMES, PARENTS, from_canonical,
                                        to_canonical)
from hand_mesh_core.hand.limits import clamp_pose, pose_within_limits
from hand_mesh_core.hand.model import HandModel, HandOutput
from hand_mesh_core.hand.poses import POSE_NAMES, named_pose, sample_pose

__all__ = ["HandModel", "HandOutput", "HandModelConfig", "JOINT_NAMES", "PARENTS", "BONES",
           "to_canonical", "from_canonical", "clamp_pose", "pose_within_limits", "named_pose",
           "sample_pose", "POSE_NAMES"]
