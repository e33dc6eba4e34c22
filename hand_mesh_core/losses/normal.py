"""Normal-consistency loss between the left- and right-branch meshes.

``L_normal = sum_f sum_{(i, j) in f} |<(v_i^l - v_j^l) / |v_i^l - v_j^l|, n_f^r>|``: the edges
of the left mesh should be perpendicular to the right mesh's unit face normals (Chen et al.,
ICCV 2021). A translation does not change normals, so the right mesh may be given in the right
camera's frame.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hand_mesh_core.geometry.mesh import NORMAL_EPS, face_normals
from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["normal_consistency_loss", "NormalConsistencyLoss"]


def normal_consistency_loss(vertices_left: torch.Tensor, vertices_right: torch.Tensor,
                            faces: np.ndarray | torch.Tensor, reduction: str = "mean"
                            ) -> torch.Tensor:
    """|cos| between the left mesh's face edges and the right mesh's face normals.

    Args:
        vertices_left: ``(B, V, 3)`` metres.
        vertices_right: ``(B, V, 3)`` metres (left or right frame).
        faces: ``(F, 3)`` integer vertex indices shared by both meshes.
        reduction: "none" -> ``(B, F, 3)`` (edges v0v1, v1v2, v2v0 of each face), "sum" (the
            paper's sum), or "mean".

    Returns:
        Unitless.
    """
    check_reduction(reduction)
    check_tensor(vertices_left, "vertices_left", 3, 3)
    check_tensor(vertices_right, "vertices_right", 3, 3)
    if vertices_left.shape != vertices_right.shape:
        raise ValueError(f"vertices_left {tuple(vertices_left.shape)} and vertices_right "
                         f"{tuple(vertices_right.shape)} must have the same shape")
    n = face_normals(vertices_right, faces)  # (B, F, 3), unit
    f = torch.as_tensor(np.asarray(faces) if not isinstance(faces, torch.Tensor) else faces,
                        device=vertices_left.device).long()
    v = [vertices_left[:, f[:, k]] for k in range(3)]
    e = torch.stack([v[0] - v[1], v[1] - v[2], v[2] - v[0]], 2)  # (B, F, 3 edges, 3)
    sq = (e * e).sum(-1, keepdim=True)
    ok = sq > NORMAL_EPS ** 2
    e_unit = torch.where(ok, e / torch.sqrt(torch.where(ok, sq, torch.ones_like(sq))),
                         torch.zeros_like(e))
    cos = (e_unit * n.unsqueeze(2)).sum(-1)
    return reduce(cos.abs(), reduction)


class NormalConsistencyLoss(nn.Module):
    """Module form of :func:`normal_consistency_loss`."""

    def __init__(self, faces: np.ndarray | torch.Tensor, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.faces = faces
        self.reduction = reduction

    def forward(self, vertices_left: torch.Tensor, vertices_right: torch.Tensor) -> torch.Tensor:
        """See :func:`normal_consistency_loss`."""
        return normal_consistency_loss(vertices_left, vertices_right, self.faces,
                                       self.reduction)
