"""Silhouette loss: rendered soft mask vs skin mask, ``|M - M~|^2`` (Chen et al., ICCV 2021)."""
from __future__ import annotations

import torch
from torch import nn

from hand_mesh_core.losses._reduce import check_reduction, check_tensor, reduce

__all__ = ["mask_loss", "MaskLoss"]


def mask_loss(soft_mask: torch.Tensor, target_mask: torch.Tensor,
              reduction: str = "mean") -> torch.Tensor:
    """Squared difference between a rendered soft mask and a target mask.

    Args:
        soft_mask: ``(B, H, W)`` in [0, 1], e.g. ``RenderOutput.soft_mask``.
        target_mask: ``(B, H, W)`` bool or float in [0, 1] (skin mask of the same view and
            crop).
        reduction: "none" -> ``(B, H, W)``, "sum", or "mean" (over all pixels).
    """
    check_reduction(reduction)
    check_tensor(soft_mask, "soft_mask", 3)
    if not isinstance(target_mask, torch.Tensor):
        raise TypeError(f"target_mask must be a torch.Tensor, got {type(target_mask).__name__}")
    if target_mask.shape != soft_mask.shape:
        raise ValueError(f"target_mask {tuple(target_mask.shape)} must have the shape of "
                         f"soft_mask {tuple(soft_mask.shape)}")
    diff = soft_mask - target_mask.to(soft_mask.dtype)
    return reduce(diff * diff, reduction)


class MaskLoss(nn.Module):
    """Module form of :func:`mask_loss`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, soft_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        """See :func:`mask_loss`."""
        return mask_loss(soft_mask, target_mask, self.reduction)
