"""Skin-colour masks (OpenCV): a YCrCb box, an adaptive CrCb Gaussian, morphology, components.

1. Box: ``Y >= y_min``, ``Cr`` and ``Cb`` inside the ranges of Chai & Ngan, "Face segmentation
   using skin-color map in videophone applications", IEEE TCSVT 1999 (Cr 133-173, Cb 77-127).
2. Adaptive (optional): a Gaussian in (Cr, Cb) is fitted to the box pixels that survive the
   morphological clean-up (speckle on a textured background does not), and pixels within
   ``adaptive_max_mahalanobis`` of it are skin. This adapts to the subject and the lighting.
   For a stereo pair the model is fitted on both views together (:func:`skin_masks_stereo`), so
   the two masks are consistent.
3. Opening (speckle), closing (small gaps), then components smaller than ``min_area_px`` go.

All images are (H, W, 3) uint8 RGB; masks are (H, W) bool.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hand_mesh_core.data.config import SkinConfig

__all__ = ["SkinModel", "skin_box_mask", "clean_mask", "fit_skin_model", "skin_mask",
           "skin_masks_stereo", "SkinSegmenter"]

#: Floor of the fitted CrCb variance, in (Cr/Cb units)^2: keeps the Gaussian invertible when
#: the skin pixels are almost one colour (e.g. synthetic flat shading).
MIN_CHROMA_VAR = 4.0


def _check_image(image: np.ndarray, name: str = "image") -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")


@dataclass(frozen=True)
class SkinModel:
    """A Gaussian skin-colour model in (Cr, Cb).

    Attributes:
        mean: (2,) mean (Cr, Cb), 0-255 units.
        cov: (2, 2) covariance, (0-255 units)^2.
    """

    mean: np.ndarray
    cov: np.ndarray

    def mahalanobis(self, ycrcb: np.ndarray) -> np.ndarray:
        """Mahalanobis distance (H, W) of every pixel of a (H, W, 3) YCrCb image."""
        d = ycrcb[..., 1:3].astype(np.float64) - self.mean
        inv = np.linalg.inv(self.cov)
        return np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", d, inv, d), 0.0))


def skin_box_mask(image: np.ndarray, config: SkinConfig | None = None) -> np.ndarray:
    """Pixels inside the YCrCb skin box. (H, W, 3) uint8 RGB -> (H, W) bool."""
    _check_image(image)
    config = SkinConfig.resolve(config)
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    lo = (config.y_min, config.cr_range[0], config.cb_range[0])
    hi = (255, config.cr_range[1], config.cb_range[1])
    return cv2.inRange(ycrcb, lo, hi) > 0


def clean_mask(mask: np.ndarray, open_px: int, close_px: int, min_area_px: int) -> np.ndarray:
    """Opening, closing, then drop 8-connected components smaller than ``min_area_px``.

    Args:
        mask: (H, W) bool.
        open_px, close_px: elliptic kernel diameters, px (1 = no-op).
        min_area_px: smallest component kept, px.

    Returns:
        (H, W) bool.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    if open_px < 1 or close_px < 1 or min_area_px < 0:
        raise ValueError(f"kernels must be >= 1 px and min_area_px >= 0, got open_px={open_px}, "
                         f"close_px={close_px}, min_area_px={min_area_px}")
    m = mask.astype(np.uint8)
    if open_px > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_px, open_px)))
    if close_px > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE,
                             cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_px, close_px)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area_px
    return keep[labels]


def fit_skin_model(images: list[np.ndarray], masks: list[np.ndarray]) -> SkinModel | None:
    """Fit the (Cr, Cb) Gaussian to the masked pixels of one or more RGB images.

    Returns:
        The model, or None when the masks select fewer than 2 pixels.
    """
    if len(images) != len(masks):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks")
    samples = []
    for image, mask in zip(images, masks):
        _check_image(image)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        samples.append(cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[mask][:, 1:3])
    chroma = np.concatenate(samples).astype(np.float64)
    if len(chroma) < 2:
        return None
    cov = np.cov(chroma, rowvar=False) + MIN_CHROMA_VAR * np.eye(2)
    return SkinModel(chroma.mean(axis=0), cov)


def _cleaned(mask: np.ndarray, config: SkinConfig) -> np.ndarray:
    return clean_mask(mask, config.open_kernel_px, config.close_kernel_px, config.min_area_px)


def _apply_model(image: np.ndarray, model: SkinModel, config: SkinConfig) -> np.ndarray:
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    mask = (model.mahalanobis(ycrcb) <= config.adaptive_max_mahalanobis)
    if config.adaptive_within_box:
        return mask & skin_box_mask(image, config)
    return mask & (ycrcb[..., 0] >= config.y_min)


def skin_masks_stereo(left: np.ndarray, right: np.ndarray, config: SkinConfig | None = None,
                      model: SkinModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Skin masks of a stereo pair with one colour model for both views.

    Args:
        left, right: (H, W, 3) uint8 RGB.
        config: settings.
        model: a colour model to use instead of calibrating on this pair.

    Returns:
        (mask_left, mask_right), each (H, W) bool.
    """
    images = [left, right]
    return tuple(_masks(images, config, model))  # type: ignore[return-value]


def skin_mask(image: np.ndarray, config: SkinConfig | None = None,
              model: SkinModel | None = None) -> np.ndarray:
    """Skin mask of one RGB image (H, W, 3) uint8 -> (H, W) bool (see the module doc)."""
    return _masks([image], config, model)[0]


def _masks(images: list[np.ndarray], config: SkinConfig | None,
           model: SkinModel | None) -> list[np.ndarray]:
    config = SkinConfig.resolve(config)
    for i, image in enumerate(images):
        _check_image(image, f"image {i}")
    if model is not None and not isinstance(model, SkinModel):
        raise TypeError(f"model must be a SkinModel or None, got {type(model).__name__}")
    if model is None and config.adaptive:
        box = [_cleaned(skin_box_mask(im, config), config) for im in images]
        if sum(int(b.sum()) for b in box) >= config.adaptive_min_pixels:
            model = fit_skin_model(images, box)
        else:
            return box
    if model is None:
        return [_cleaned(skin_box_mask(im, config), config) for im in images]
    return [_cleaned(_apply_model(im, model, config), config) for im in images]


class SkinSegmenter:
    """Skin masks with a colour model that can be calibrated once and reused (video).

    Args:
        config: settings.
    """

    def __init__(self, config: SkinConfig | None = None) -> None:
        self.config = SkinConfig.resolve(config)
        self.model: SkinModel | None = None

    def calibrate(self, images: list[np.ndarray], masks: list[np.ndarray]) -> SkinModel | None:
        """Fit and keep the colour model from known hand pixels (e.g. a previous frame)."""
        self.model = fit_skin_model(images, masks)
        return self.model

    def __call__(self, left: np.ndarray, right: np.ndarray | None = None
                 ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Mask of one image, or the (left, right) masks of a pair."""
        if right is None:
            return skin_mask(left, self.config, self.model)
        return skin_masks_stereo(left, right, self.config, self.model)
