"""Uniform Laplacian smoothness loss.

``L_lap = mean_i |v_i - (1 / |N(i)|) sum_{j in N(i)} v_j|`` (Euclidean norm, uniform weights;
Chen et al., ICCV 2021). Vertices in no face contribute 0.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hand_mesh_core.geometry.mesh import mesh_topology
from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["laplacian_loss", "laplacian_delta", "LaplacianLoss"]


def laplacian_delta(vertices: torch.Tensor, faces: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``v_i - mean of its neighbours``, ``(B, V, 3)`` metres (0 for isolated vertices)."""
    check_tensor(vertices, "vertices", 3, 3)
    topo = mesh_topology(faces, vertices.shape[1])
    e = topo.edges.to(vertices.device)
    deg = topo.degree.to(device=vertices.device, dtype=vertices.dtype)
    acc = torch.zeros_like(vertices)
    acc = acc.index_add(1, e[:, 0], vertices[:, e[:, 1]])
    acc = acc.index_add(1, e[:, 1], vertices[:, e[:, 0]])
    has = (deg > 0).unsqueeze(-1)
    mean_nb = acc / deg.clamp_min(1.0).unsqueeze(-1)
    return torch.where(has, vertices - mean_nb, torch.zeros_like(vertices))


def laplacian_loss(vertices: torch.Tensor, faces: np.ndarray | torch.Tensor,
                   reduction: str = "mean") -> torch.Tensor:
    """Norm of the uniform Laplacian at every vertex.

    Args:
        vertices: ``(B, V, 3)`` metres.
        faces: ``(F, 3)`` integer vertex indices.
        reduction: "none" -> ``(B, V)``, "sum", or "mean" (over ``B * V``: the paper's mean).

    Returns:
        The loss, metres.
    """
    check_reduction(reduction)
    delta = laplacian_delta(vertices, faces)
    return reduce(torch.linalg.vector_norm(delta, dim=-1), reduction)


class LaplacianLoss(nn.Module):
    """Module form of :func:`laplacian_loss`."""

    def __init__(self, faces: np.ndarray | torch.Tensor, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.faces = faces
        self.reduction = reduction

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        """See :func:`laplacian_loss`."""
        return laplacian_loss(vertices, self.faces, self.reduction)
