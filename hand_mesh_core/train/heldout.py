"""Held-out errors of a network on labelled pairs cut with their ground-truth crops.

This measures the network alone (no ROI finder): every pair is cropped around its labels with
the training margin and no jitter, exactly as in pretraining, and the predicted absolute joints
(metres, left optical frame) are compared with the labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hand_mesh_core.geometry.projection import project
from hand_mesh_core.hand.joints import WRIST
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.train.batch import CroppedDataset, collate_cropped
from hand_mesh_core.train.crop_cache import CropCache, CropCacheDataset

__all__ = ["HeldoutMetrics", "evaluate_heldout", "M_TO_MM"]

#: Millimetres per metre.
M_TO_MM = 1000.0


@dataclass(frozen=True)
class HeldoutMetrics:
    """Errors over N held-out pairs.

    Attributes:
        mean_joint_err_mm: mean over pairs and joints of the absolute 3D joint error, mm.
        median_joint_err_mm: median over pairs of the per-pair mean joint error, mm.
        mean_vertex_err_mm: mean absolute 3D vertex error, mm.
        root_rel_joint_err_mm: mean joint error after moving both wrists to the origin, mm.
        uv_err_px: mean 2D vertex error of the left branch, crop px.
        num_samples: N.
        per_sample_joint_err_mm: (N,) per-pair mean joint error, mm.
    """

    mean_joint_err_mm: float
    median_joint_err_mm: float
    mean_vertex_err_mm: float
    root_rel_joint_err_mm: float
    uv_err_px: float
    num_samples: int
    per_sample_joint_err_mm: torch.Tensor

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        """Scalar metrics as ``{prefix + name: value}`` (for a checkpoint sidecar)."""
        names = ("mean_joint_err_mm", "median_joint_err_mm", "mean_vertex_err_mm",
                 "root_rel_joint_err_mm", "uv_err_px", "num_samples")
        return {prefix + n: float(getattr(self, n)) for n in names}


def evaluate_heldout(model: HandMeshNet, samples: Any, batch_size: int = 32,
                     margin_frac: float = 0.15) -> HeldoutMetrics:
    """Evaluate ``model`` (in eval mode, no gradient) on labelled pairs.

    Args:
        model: the network (its device is used).
        samples: sequence of labelled :class:`~hand_mesh_core.data.types.StereoSample`, or a
            :class:`~hand_mesh_core.train.crop_cache.CropCache`.
        batch_size: pairs per forward pass, > 0.
        margin_frac: crop margin around the labels (the training margin).

    Returns:
        :class:`HeldoutMetrics`.

    Raises:
        TypeError: model is not a HandMeshNet.
        ValueError: no samples, batch_size <= 0, or a pair without vertex and joint labels.
    """
    if not isinstance(model, HandMeshNet):
        raise TypeError(f"model must be a HandMeshNet, got {type(model).__name__}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    if len(samples) == 0:
        raise ValueError("evaluate_heldout needs at least one labelled pair")
    size = model.config.input_size
    ds: Any = (CropCacheDataset(samples, size, margin_frac) if isinstance(samples, CropCache)
               else CroppedDataset(samples, size, margin_frac=margin_frac))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    joint, vert, rel, uv = [], [], [], []
    with torch.no_grad():
        for k in range(0, len(ds), batch_size):
            b = collate_cropped([ds[i] for i in range(k, min(k + batch_size, len(ds)))])
            if b.joints_m is None or b.vertices_m is None:
                raise ValueError("evaluate_heldout needs vertices_m and joints_m in every pair")
            b = b.to(device)
            out = model(b.left, b.right, b.crops, b.K, b.baseline_m)
            pj, gj = out.joints.float(), b.joints_m
            joint.append((pj - gj).norm(dim=-1).mean(1).cpu())
            vert.append((out.vertices.float() - b.vertices_m).norm(dim=-1).mean(1).cpu())
            rel.append(((pj - pj[:, WRIST:WRIST + 1]) - (gj - gj[:, WRIST:WRIST + 1]))
                       .norm(dim=-1).mean(1).cpu())
            gt_uv = b.crops.to_crop(project(b.vertices_m, b.K), "left")
            uv.append((out.uv_left_crop.float() - gt_uv).norm(dim=-1).mean(1).cpu())
    model.train(was_training)
    j = torch.cat(joint) * M_TO_MM
    return HeldoutMetrics(
        mean_joint_err_mm=float(j.mean()), median_joint_err_mm=float(j.median()),
        mean_vertex_err_mm=float(torch.cat(vert).mean() * M_TO_MM),
        root_rel_joint_err_mm=float(torch.cat(rel).mean() * M_TO_MM),
        uv_err_px=float(torch.cat(uv).mean()), num_samples=int(j.numel()),
        per_sample_joint_err_mm=j)
