"""Edge-length loss: keep the mesh's edge lengths close to the pseudo-label mesh's.

``L_edge = sum_i (|e_i| - |e~_i|)^2`` over the unique edges ``e_i`` of the mesh, with ``e~_i``
the same edge of the pseudo-label mesh (the pretrained model's prediction, detached) (Chen et
al., "Self-supervised Transfer Learning for Hand Mesh Recovery from Binocular Images", ICCV 2021).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hand_mesh_core.geometry.mesh import mesh_topology
from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["edge_length_loss", "EdgeLengthLoss"]


def edge_length_loss(vertices: torch.Tensor, pseudo_vertices: torch.Tensor,
                     faces: np.ndarray | torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared edge-length differences to a pseudo-label mesh.

    Args:
        vertices: ``(B, V, 3)`` predicted vertices, metres (any frame).
        pseudo_vertices: ``(B, V, 3)`` pseudo-label vertices, metres (detached here).
        faces: ``(F, 3)`` integer vertex indices shared by both meshes.
        reduction: "none" -> ``(B, E)`` per edge, "sum", or "mean" (over all ``B * E``).

    Returns:
        The loss, m^2.

    Raises:
        ValueError: shapes differ or are not ``(B, V, 3)``; bad reduction.
        TypeError: non-float inputs.
    """
    check_reduction(reduction)
    check_tensor(vertices, "vertices", 3, 3)
    check_tensor(pseudo_vertices, "pseudo_vertices", 3, 3)
    if vertices.shape != pseudo_vertices.shape:
        raise ValueError(f"vertices {tuple(vertices.shape)} and pseudo_vertices "
                         f"{tuple(pseudo_vertices.shape)} must have the same shape")
    edges = mesh_topology(faces, vertices.shape[1]).edges.to(vertices.device)
    target = pseudo_vertices.detach().to(vertices.dtype)

    def lengths(v: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(v[:, edges[:, 0]] - v[:, edges[:, 1]], dim=-1)

    return reduce((lengths(vertices) - lengths(target)) ** 2, reduction)


class EdgeLengthLoss(nn.Module):
    """Module form of :func:`edge_length_loss`."""

    def __init__(self, faces: np.ndarray | torch.Tensor, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.faces = faces
        self.reduction = reduction

    def forward(self, vertices: torch.Tensor, pseudo_vertices: torch.Tensor) -> torch.Tensor:
        """See :func:`edge_length_loss`."""
        return edge_length_loss(vertices, pseudo_vertices, self.faces, self.reduction)
