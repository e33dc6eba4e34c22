"""Per-hand confidence from left-right consistency, with a logistic calibration.

Two consistency features per hand (both 0 for a perfect, un-occluded prediction):

- ``photo``: mean absolute difference of the normalised crop colours sampled at the left and
  right predicted vertex pixels (a wrong mesh lands on different surfaces in the two views);
- ``disparity_px``: mean per-vertex disagreement of the two branches in full-image px: the
  vertical offset ``v_l - v_r`` (zero in a rectified pair) and, for the z-head, the difference
  between the (u) disparity and ``fx * B / z``.

``confidence = sigmoid(c0 + c1 * photo + c2 * disparity_px)``; :func:`fit_confidence` fits
``c`` by logistic regression to "absolute error < threshold" on held-out data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ConsistencyFeatures", "consistency_features", "confidence_from_features",
           "fit_confidence", "ConfidenceFit", "DEFAULT_CONFIDENCE_COEF", "NUM_FEATURES"]

#: Features used by the logistic map (photo, disparity_px).
NUM_FEATURES = 2
#: Uncalibrated coefficients (c0, c_photo, c_disparity) used until :func:`fit_confidence` runs:
#: ~0.95 at zero residual, 0.5 at a 0.75 normalised-colour residual or a 6 px disagreement.
DEFAULT_CONFIDENCE_COEF = (3.0, -4.0, -0.5)
#: L2 penalty of the logistic fit (keeps it finite on separable data).
FIT_L2 = 1e-3
#: LBFGS iterations of the logistic fit (convex problem: converges in a few tens).
FIT_MAX_ITER = 200


@dataclass(frozen=True)
class ConsistencyFeatures:
    """Left-right consistency of one batch of predictions.

    Attributes:
        photo: (B,) mean |colour_l - colour_r| over vertices and channels (normalised units).
        disparity_px: (B,) mean per-vertex disagreement, full-image px.
    """

    photo: torch.Tensor
    disparity_px: torch.Tensor

    def stacked(self) -> torch.Tensor:
        """(B, 2) features in the order of the coefficients."""
        return torch.stack([self.photo, self.disparity_px], dim=-1)


def _sample(images: torch.Tensor, uv_crop: torch.Tensor) -> torch.Tensor:
    """Bilinear colours (B, V, C) of images (B, C, H, W) at crop px (B, V, 2)."""
    h, w = images.shape[-2:]
    grid = torch.stack([(uv_crop[..., 0] + 0.5) / w * 2 - 1,
                        (uv_crop[..., 1] + 0.5) / h * 2 - 1], dim=-1)[:, :, None]
    out = F.grid_sample(images, grid.to(images), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out[..., 0].transpose(1, 2)


def consistency_features(left: torch.Tensor, right: torch.Tensor, uv_left_crop: torch.Tensor,
                         uv_right_crop: torch.Tensor, uv_left: torch.Tensor,
                         uv_right: torch.Tensor,
                         disparity_from_depth_px: torch.Tensor | None = None
                         ) -> ConsistencyFeatures:
    """Compute the consistency features (no gradient).

    Args:
        left, right: (B, C, H, W) crops (any fixed normalisation).
        uv_left_crop, uv_right_crop: (B, V, 2) crop px of each branch.
        uv_left, uv_right: (B, V, 2) full-image px of each branch.
        disparity_from_depth_px: (B, V) ``fx * B / z`` of a depth head, or None (stereo mode:
            the disparity IS the depth, only the vertical term remains).

    Returns:
        :class:`ConsistencyFeatures`.
    """
    if left.shape != right.shape or left.dim() != 4:
        raise ValueError(f"left and right must be equal (B, C, H, W), got {tuple(left.shape)} "
                         f"and {tuple(right.shape)}")
    with torch.no_grad():
        photo = (_sample(left, uv_left_crop) - _sample(right, uv_right_crop)).abs()
        photo = photo.mean(dim=(1, 2))
        dv = uv_left[..., 1] - uv_right[..., 1]
        du = torch.zeros_like(dv)
        if disparity_from_depth_px is not None:
            du = (uv_left[..., 0] - uv_right[..., 0]) - disparity_from_depth_px
        disp = torch.sqrt(du * du + dv * dv).mean(dim=1)
    return ConsistencyFeatures(photo, disp)


def confidence_from_features(features: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Logistic map: features (B, 2), coef (3,) -> confidence (B,) in (0, 1)."""
    if features.dim() != 2 or features.shape[1] != NUM_FEATURES:
        raise ValueError(f"features must be (B, {NUM_FEATURES}), got {tuple(features.shape)}")
    if coef.shape != (NUM_FEATURES + 1,):
        raise ValueError(f"coef must be ({NUM_FEATURES + 1},), got {tuple(coef.shape)}")
    coef = coef.to(features)
    return torch.sigmoid(coef[0] + features @ coef[1:])


@dataclass(frozen=True)
class ConfidenceFit:
    """Result of :func:`fit_confidence`.

    Attributes:
        coef: (3,) float32 (c0, c_photo, c_disparity).
        threshold_mm: the error threshold defining a "good" hand.
        positive_rate: fraction of good hands in the fitting data.
        accuracy: fraction classified right at confidence 0.5.
        num_samples: N.
    """

    coef: torch.Tensor
    threshold_mm: float
    positive_rate: float
    accuracy: float
    num_samples: int


def fit_confidence(features: torch.Tensor, errors_mm: torch.Tensor, threshold_mm: float
                   ) -> ConfidenceFit:
    """Fit the logistic map to ``error < threshold`` on held-out predictions.

    Args:
        features: (N, 2) from :meth:`ConsistencyFeatures.stacked`.
        errors_mm: (N,) absolute mean joint (or vertex) error, mm.
        threshold_mm: > 0.

    Raises:
        ValueError: shapes, N < 2, or threshold <= 0.
    """
    if features.dim() != 2 or features.shape[1] != NUM_FEATURES:
        raise ValueError(f"features must be (N, {NUM_FEATURES}), got {tuple(features.shape)}")
    if errors_mm.shape != features.shape[:1]:
        raise ValueError(f"errors_mm must be ({features.shape[0]},), got "
                         f"{tuple(errors_mm.shape)}")
    if features.shape[0] < 2:
        raise ValueError("need at least 2 samples to fit the confidence")
    if not threshold_mm > 0:
        raise ValueError(f"threshold_mm must be > 0, got {threshold_mm}")
    x = features.detach().double()
    y = (errors_mm.detach().double() < threshold_mm).double()
    # Standardise for conditioning, fit, then fold the scaling back into the coefficients.
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mu) / sd
    w = torch.zeros(NUM_FEATURES + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=FIT_MAX_ITER, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = w[0] + xs @ w[1:]
        loss = F.binary_cross_entropy_with_logits(logits, y) + FIT_L2 * (w[1:] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w = w.detach()
    c = torch.empty_like(w)
    c[1:] = w[1:] / sd
    c[0] = w[0] - (w[1:] * mu / sd).sum()
    conf = confidence_from_features(x, c)
    acc = float(((conf >= 0.5).double() == y).double().mean())
    return ConfidenceFit(c.float(), float(threshold_mm), float(y.mean()), acc, int(x.shape[0]))
