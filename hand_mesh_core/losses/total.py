"""The weighted self-supervised objective of the binocular model (Chen et al., ICCV 2021).

Per branch ``k`` in {left, right} (each branch predicts a mesh in its own camera's frame and is
rendered in its own crop): photo-consistency, edge length (vs the pseudo label), Laplacian and
silhouette terms; across branches: Chamfer and normal consistency. A term whose weight is 0 is
not computed (for ablations) and reads 0 in the record.

Normalisation (per batch item, then averaged over the batch): photo, laplacian and mask are
means over pixels / vertices, edge and normal are sums over edges / faces (as in the paper's
formulas), Chamfer is the per-item symmetric mean. Branch terms are summed over both branches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hand_mesh_core.config.base import ConfigBase, setting
from hand_mesh_core.losses.chamfer import stereo_chamfer_loss
from hand_mesh_core.losses.edge import edge_length_loss
from hand_mesh_core.losses.laplacian import laplacian_loss
from hand_mesh_core.losses.mask import mask_loss
from hand_mesh_core.losses.normal import normal_consistency_loss
from hand_mesh_core.losses.photo import PHOTO_ALPHA, SSIM_WINDOW, photo_consistency_loss

__all__ = ["LossWeights", "LossConfig", "Branch", "StereoWarp", "LossTerms",
           "self_supervised_loss", "SelfSupervisedLoss", "TERM_NAMES"]

#: The terms, in the order of :class:`LossWeights` and :class:`LossTerms`.
TERM_NAMES = ("photo", "edge", "laplacian", "mask", "chamfer", "normal")


@dataclass(frozen=True)
class LossWeights(ConfigBase):
    """Weights of the self-supervised terms; defaults from Chen et al., ICCV 2021. 0 = off."""

    photo: float = setting(100.0, "photo-consistency weight", ge=0.0)
    edge: float = setting(1.0, "edge-length weight", ge=0.0)
    laplacian: float = setting(10.0, "Laplacian smoothness weight", ge=0.0)
    mask: float = setting(0.1, "silhouette weight", ge=0.0)
    chamfer: float = setting(0.001, "left-right Chamfer weight", ge=0.0)
    normal: float = setting(0.001, "left-right normal-consistency weight", ge=0.0)


@dataclass(frozen=True)
class LossConfig(ConfigBase):
    """Weights plus the photometric settings."""

    weights: LossWeights = setting(default_factory=LossWeights, doc="term weights")
    photo_alpha: float = setting(PHOTO_ALPHA, "SSIM share of the photometric error (Godard "
                                 "et al., CVPR 2017)", ge=0.0, le=1.0)
    ssim_window: int = setting(SSIM_WINDOW, "SSIM window", unit="px", ge=1)

    def validate(self) -> None:
        from hand_mesh_core.config.base import ConfigError

        if self.ssim_window % 2 == 0:
            raise ConfigError(f"LossConfig.ssim_window = {self.ssim_window}: must be odd")


@dataclass(frozen=True)
class Branch:
    """What one branch predicted and sees.

    Attributes:
        vertices_m: ``(B, V, 3)`` predicted mesh, metres, this branch's camera frame.
        image: ``(B, C, H, W)`` this view's crop, values in [0, 1].
        skin_mask: ``(B, H, W)`` this view's skin mask (crop).
        depth_m: ``(B, H, W)`` rendered depth of ``vertices_m`` in this crop, 0 outside
            (``RenderOutput.depth_m``); needed when the photo term is on.
        soft_mask: ``(B, H, W)`` rendered soft silhouette (``RenderOutput.soft_mask``); needed
            when the mask term is on.
        pseudo_vertices_m: ``(B, V, 3)`` pseudo label (pretrained prediction), same frame;
            needed when the edge term is on.
    """

    vertices_m: torch.Tensor
    image: torch.Tensor
    skin_mask: torch.Tensor
    depth_m: torch.Tensor | None = None
    soft_mask: torch.Tensor | None = None
    pseudo_vertices_m: torch.Tensor | None = None


@dataclass(frozen=True)
class StereoWarp:
    """Geometry linking the two crops (scalars or ``(B,)`` tensors).

    Attributes:
        fx_px: full-image focal length, px.
        baseline_m: stereo baseline, m.
        shift_px: ``StereoCrop.shift_px`` (0 for full images), full-image px.
        scale_x: ``CropTransform.scale_x`` (1 for full images).
    """

    fx_px: float | torch.Tensor
    baseline_m: float | torch.Tensor
    shift_px: float | torch.Tensor = 0.0
    scale_x: float | torch.Tensor = 1.0


@dataclass(frozen=True)
class LossTerms:
    """Every unweighted term (0-dim tensors; 0 when switched off) and the weighted total."""

    photo: torch.Tensor
    edge: torch.Tensor
    laplacian: torch.Tensor
    mask: torch.Tensor
    chamfer: torch.Tensor
    normal: torch.Tensor
    total: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Plain floats for logging."""
        return {name: float(getattr(self, name).detach()) for name in TERM_NAMES + ("total",)}


def _need(value: torch.Tensor | None, what: str, term: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"the {term} term is on but Branch.{what} is None; pass it or set "
                         f"LossWeights.{term} = 0")
    return value


def self_supervised_loss(left: Branch, right: Branch, faces: np.ndarray | torch.Tensor,
                         warp: StereoWarp, config: LossConfig = LossConfig()) -> LossTerms:
    """The weighted sum of the six self-supervised terms.

    Args:
        left: the left branch (left camera frame, left crop).
        right: the right branch (right camera frame, right crop).
        faces: ``(F, 3)`` mesh faces.
        warp: crop and stereo geometry for the photo term.
        config: weights and photometric settings.

    Returns:
        :class:`LossTerms`.

    Raises:
        ValueError: a needed input of an enabled term is missing, or shapes do not match.
    """
    w = config.weights
    ref = left.vertices_m
    batch = ref.shape[0]
    zero = ref.new_zeros(())
    terms = dict.fromkeys(TERM_NAMES, zero)
    if w.photo > 0:
        total = zero
        for view, this, other in (("left", left, right), ("right", right, left)):
            total = total + photo_consistency_loss(
                other.image, this.image, _need(this.depth_m, "depth_m", "photo"),
                this.skin_mask, warp.fx_px, warp.baseline_m, warp.shift_px, warp.scale_x,
                target_view=view, alpha=config.photo_alpha, window_size=config.ssim_window)
        terms["photo"] = total
    if w.edge > 0:
        terms["edge"] = sum(
            edge_length_loss(b.vertices_m, _need(b.pseudo_vertices_m, "pseudo_vertices_m",
                                                 "edge"), faces, reduction="sum") / batch
            for b in (left, right))
    if w.laplacian > 0:
        terms["laplacian"] = sum(laplacian_loss(b.vertices_m, faces) for b in (left, right))
    if w.mask > 0:
        terms["mask"] = sum(mask_loss(_need(b.soft_mask, "soft_mask", "mask"), b.skin_mask)
                            for b in (left, right))
    if w.chamfer > 0:
        terms["chamfer"] = stereo_chamfer_loss(left.vertices_m, right.vertices_m,
                                               warp.baseline_m)
    if w.normal > 0:
        terms["normal"] = normal_consistency_loss(left.vertices_m, right.vertices_m, faces,
                                                  reduction="sum") / batch
    total = sum(getattr(w, name) * terms[name] for name in TERM_NAMES)
    return LossTerms(total=total, **terms)


class SelfSupervisedLoss(nn.Module):
    """Module form of :func:`self_supervised_loss` holding the faces and the config."""

    def __init__(self, faces: np.ndarray | torch.Tensor, config: LossConfig | None = None
                 ) -> None:
        super().__init__()
        self.faces = faces
        self.config = config or LossConfig()

    def forward(self, left: Branch, right: Branch, warp: StereoWarp) -> LossTerms:
        """See :func:`self_supervised_loss`."""
        return self_supervised_loss(left, right, self.faces, warp, self.config)
