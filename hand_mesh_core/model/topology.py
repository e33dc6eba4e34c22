"""What the network needs from the hand model: vertex count, faces, joint regressor, template."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["HandTopology", "NUM_JOINTS"]

#: Joints of the canonical 21-joint skeleton (wrist, then 4 per finger; hand/joints.py).
NUM_JOINTS = 21


@dataclass(frozen=True)
class HandTopology:
    """The mesh topology a network is built for.

    Attributes:
        faces: (F, 3) int64 triangle indices (right-hand winding).
        joint_regressor: (21, V) float32, rows sum to 1: ``joints = joint_regressor @ vertices``.
        template_vertices: (V, 3) float32 template in the hand model's canonical frame, metres
            (only its shape in x, y is used, as the initial (u, v) prior).
        topology_hash: ``HandModel.topology_hash()``, stored in checkpoints.
    """

    faces: torch.Tensor
    joint_regressor: torch.Tensor
    template_vertices: torch.Tensor
    topology_hash: str

    def __post_init__(self) -> None:
        v = self.template_vertices
        if v.dim() != 2 or v.shape[1] != 3:
            raise ValueError(f"template_vertices must be (V, 3), got {tuple(v.shape)}")
        if self.joint_regressor.shape != (NUM_JOINTS, v.shape[0]):
            raise ValueError(f"joint_regressor must be ({NUM_JOINTS}, {v.shape[0]}), got "
                             f"{tuple(self.joint_regressor.shape)}")
        f = self.faces
        if f.dim() != 2 or f.shape[1] != 3 or f.dtype != torch.int64:
            raise ValueError(f"faces must be (F, 3) int64, got {tuple(f.shape)} {f.dtype}")
        if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
            raise ValueError(f"faces index outside [0, {v.shape[0]})")
        if not isinstance(self.topology_hash, str) or not self.topology_hash:
            raise TypeError("topology_hash must be a non-empty str")

    @property
    def num_vertices(self) -> int:
        """V."""
        return int(self.template_vertices.shape[0])

    @classmethod
    def from_hand_model(cls, hand_model: Any) -> "HandTopology":
        """Take the topology of a ``hand_mesh_core.hand.model.HandModel``."""
        return cls(faces=hand_model.faces.detach().cpu().long(),
                   joint_regressor=hand_model.joint_regressor.detach().cpu().float(),
                   template_vertices=hand_model.template_vertices.detach().cpu().float(),
                   topology_hash=str(hand_model.topology_hash()))

    @classmethod
    def default(cls) -> "HandTopology":
        """The topology of the default procedural hand model (built once, then cached)."""
        return _default_topology()


@functools.lru_cache(maxsize=1)
def _default_topology() -> HandTopology:
    from hand_mesh_core.hand.model import HandModel

    return HandTopology.from_hand_model(HandModel.procedural())
