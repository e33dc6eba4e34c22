"""The six self-supervised losses (one file each) and their weighted total."""
from hand_mesh_core.losses.chamfer import ChamferLoss, chamfer_distance, stereo_chamfer_loss
from hand_mesh_core.losses.edge import EdgeLengthLoss, edge_length_loss
from hand_mesh_core.losses.laplacian import LaplacianLoss, laplacian_loss
from hand_mesh_core.losses.mask import MaskLoss, mask_loss
from hand_mesh_core.losses.normal import NormalConsistencyLoss, normal_consistency_loss
from hand_mesh_core.losses.photo import PhotoConsistencyLoss, photo_consistency_loss
from hand_mesh_core.losses.total import (
    Branch, LossConfig, LossTerms, LossWeights, SelfSupervisedLoss, StereoWarp,
    self_supervised_loss,
)

__all__ = [
    "ChamferLoss", "chamfer_distance", "stereo_chamfer_loss", "EdgeLengthLoss",
    "edge_length_loss", "LaplacianLoss", "laplacian_loss", "MaskLoss", "mask_loss",
    "NormalConsistencyLoss", "normal_consistency_loss", "PhotoConsistencyLoss",
    "photo_consistency_loss", "Branch", "LossConfig", "LossTerms", "LossWeights",
    "SelfSupervisedLoss", "StereoWarp", "self_supervised_loss",
]
