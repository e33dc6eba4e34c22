"""Fit the confidence map of a trained network on held-out labelled pairs."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from hand_mesh_core.model.confidence import ConfidenceFit, fit_confidence
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.train.batch import CroppedDataset, collate_cropped

__all__ = ["calibrate_confidence", "DEFAULT_THRESHOLD_MM"]

#: "Good hand" threshold of the calibration: 20 mm mean absolute joint error, the lower end of
#: the STB PCK range (20-50 mm).
DEFAULT_THRESHOLD_MM = 20.0
_M_TO_MM = 1000.0


def calibrate_confidence(model: HandMeshNet, samples: Sequence[Any],
                         threshold_mm: float = DEFAULT_THRESHOLD_MM, batch_size: int = 16,
                         margin_frac: float = 0.15, apply: bool = True) -> ConfidenceFit:
    """Fit ``model.confidence_coef`` to "mean joint error < threshold" on labelled pairs.

    Args:
        model: the trained network.
        samples: held-out labelled StereoSamples (joints_m required).
        threshold_mm: error threshold, mm.
        batch_size: pairs per forward pass.
        margin_frac: crop margin around the labels.
        apply: store the fitted coefficients in the model.

    Raises:
        ValueError: fewer than 2 samples or missing joint labels.
    """
    if len(samples) < 2:
        raise ValueError("calibration needs at least 2 labelled pairs")
    ds = CroppedDataset(samples, model.config.input_size, margin_frac=margin_frac)
    device = next(model.parameters()).device
    feats, errs = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for k in range(0, len(ds), batch_size):
            b = collate_cropped([ds[i] for i in range(k, min(k + batch_size, len(ds)))])
            if b.joints_m is None:
                raise ValueError("calibration needs joints_m labels in every sample")
            b = b.to(device)
            out = model(b.left, b.right, b.crops, b.K, b.baseline_m)
            feats.append(out.consistency.cpu())
            errs.append(((out.joints - b.joints_m).norm(dim=-1).mean(1) * _M_TO_MM).cpu())
    model.train(was_training)
    fit = fit_confidence(torch.cat(feats), torch.cat(errs), threshold_mm)
    if apply:
        model.confidence_coef.copy_(fit.coef.to(model.confidence_coef))
    return fit
