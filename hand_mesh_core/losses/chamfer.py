"""Symmetric squared Chamfer distance between the left- and right-branch meshes.

Both meshes are compared in the left optical frame: the right branch predicts its mesh in the
right camera's frame, and ``p_left = p_right + (baseline_m, 0, 0)`` (Chen et al., ICCV 2021).
"""
from __future__ import annotations

import torch
from torch import nn

from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["chamfer_distance", "stereo_chamfer_loss", "ChamferLoss"]


def chamfer_distance(points_a: torch.Tensor, points_b: torch.Tensor,
                     reduction: str = "mean") -> torch.Tensor:
    """``mean_a min_b |a - b|^2 + mean_b min_a |a - b|^2`` per batch item.

    Args:
        points_a: ``(B, N, 3)``, metres.
        points_b: ``(B, M, 3)``, metres, same frame.
        reduction: "none" -> ``(B,)``, "sum" or "mean" over the batch.

    Returns:
        m^2.
    """
    check_reduction(reduction)
    check_tensor(points_a, "points_a", 3, 3)
    check_tensor(points_b, "points_b", 3, 3)
    if points_a.shape[0] != points_b.shape[0]:
        raise ValueError(f"batch sizes differ: {points_a.shape[0]} vs {points_b.shape[0]}")
    if points_a.shape[1] == 0 or points_b.shape[1] == 0:
        raise ValueError("point sets must not be empty")
    diff = points_a.unsqueeze(2) - points_b.unsqueeze(1)  # (B, N, M, 3)
    d2 = (diff * diff).sum(-1)
    per = d2.amin(2).mean(1) + d2.amin(1).mean(1)
    return reduce(per, reduction)


def stereo_chamfer_loss(vertices_left: torch.Tensor, vertices_right: torch.Tensor,
                        baseline_m: float | torch.Tensor, reduction: str = "mean"
                        ) -> torch.Tensor:
    """Chamfer distance between the two branches, in the left frame.

    Args:
        vertices_left: ``(B, V, 3)`` left-branch mesh, metres, left optical frame.
        vertices_right: ``(B, V, 3)`` right-branch mesh, metres, right optical frame.
        baseline_m: scalar or ``(B,)`` stereo baseline, > 0.
        reduction: see :func:`chamfer_distance`.
    """
    check_tensor(vertices_right, "vertices_right", 3, 3)
    b = torch.as_tensor(baseline_m, dtype=vertices_right.dtype, device=vertices_right.device)
    if b.dim() > 1 or (b.dim() == 1 and b.shape[0] != vertices_right.shape[0]):
        raise ValueError(f"baseline_m must be a scalar or ({vertices_right.shape[0]},), got "
                         f"shape {tuple(b.shape)}")
    offset = torch.zeros(3, dtype=b.dtype, device=b.device)
    offset[0] = 1.0
    shift = b.reshape(-1, 1, 1) * offset
    return chamfer_distance(vertices_left, vertices_right + shift, reduction)


class ChamferLoss(nn.Module):
    """Module form of :func:`stereo_chamfer_loss`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, vertices_left: torch.Tensor, vertices_right: torch.Tensor,
                baseline_m: float | torch.Tensor) -> torch.Tensor:
        """See :func:`stereo_chamfer_loss`."""
        return stereo_chamfer_loss(vertices_left, vertices_right, baseline_m, self.reduction)
