"""Stereo crops around the hand and typed training batches.

Pretraining crops come from the ground truth: a square window around the projected vertices
(``margin_frac`` on each side), with random jitter of centre, size and the right window's shift
(so the network sees the hand off-centre, at varied scales and disparities, as it will behind a
real ROI). Unlabelled target data (adaptation) is cropped around the hand ROI
(``hand_mesh_core.data.roi``) or around a supplied box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.model.decode import CropBatch

__all__ = ["CropJitter", "gt_stereo_crop", "roi_stereo_crop", "CroppedSample", "TrainBatch",
           "collate_cropped", "CroppedDataset", "crop_images"]

#: Pixels of the full image whose depth counts as "the hand": median over the projected vertices.
_MEDIAN = 0.5


@dataclass(frozen=True)
class CropJitter:
    """Random perturbation of a ground-truth crop (all zero: no jitter).

    Attributes:
        center_frac: centre moves by up to this fraction of the side, each axis.
        scale_frac: side scales by a factor in [1 - s, 1 + s].
        shift_frac: the right window's shift moves by up to this fraction of the side.
    """

    center_frac: float = 0.0
    scale_frac: float = 0.0
    shift_frac: float = 0.0


def _project_np(points: np.ndarray, sample_camera: Any, offset_x_m: float = 0.0) -> np.ndarray:
    p = points.astype(np.float64) - np.array([offset_x_m, 0.0, 0.0])
    z = np.clip(p[:, 2], 1e-3, None)
    return np.stack([sample_camera.fx * p[:, 0] / z + sample_camera.cx,
                     sample_camera.fy * p[:, 1] / z + sample_camera.cy], axis=1)


def gt_stereo_crop(vertices_m: np.ndarray, camera: Any, out_size: int, margin_frac: float,
                   jitter: CropJitter = CropJitter(), rng: np.random.Generator | None = None
                   ) -> StereoCrop:
    """A square stereo crop around a labelled hand.

    Args:
        vertices_m: (V, 3) (or joints (21, 3)) metres, left optical frame.
        camera: the :class:`~hand_mesh_core.geometry.camera.StereoCamera`.
        out_size: crop side, px.
        margin_frac: margin added on each side, fraction of the hand's larger extent.
        jitter: random perturbation (needs ``rng``).
        rng: numpy generator for the jitter.

    Returns:
        The crop; its right window is shifted by the median vertex disparity (plus jitter).
    """
    if vertices_m.ndim != 2 or vertices_m.shape[1] != 3:
        raise ValueError(f"vertices_m must be (V, 3), got {vertices_m.shape}")
    uv = _project_np(vertices_m, camera)
    lo, hi = uv.min(0), uv.max(0)
    side = float((hi - lo).max()) * (1.0 + 2.0 * margin_frac)
    cu, cv = (lo + hi) / 2
    disparity = camera.fx_baseline / np.clip(vertices_m[:, 2], 1e-3, None)
    shift = float(np.quantile(disparity, _MEDIAN))
    if rng is not None:
        cu += rng.uniform(-1, 1) * jitter.center_frac * side
        cv += rng.uniform(-1, 1) * jitter.center_frac * side
        side *= 1.0 + rng.uniform(-1, 1) * jitter.scale_frac
        shift += rng.uniform(-1, 1) * jitter.shift_frac * side
    return StereoCrop(CropTransform.square(float(cu), float(cv), side, out_size), shift)


def roi_stereo_crop(box_left: Sequence[float], disparity_px: float, out_size: int) -> StereoCrop:
    """The stereo crop of a square ROI ``(x0, y0, side, side)`` (left image, px edge convention)
    whose right window sits ``disparity_px`` to the left."""
    x0, y0, w, h = (float(x) for x in box_left)
    side = max(w, h)
    return StereoCrop(CropTransform(x0 + (w - side) / 2, y0 + (h - side) / 2, side, side,
                                    out_size, out_size), float(disparity_px))


def crop_images(sample: StereoSample, crop: StereoCrop
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Resample the pair (and masks when present) into the crop: (S, S, 3) uint8 each,
    masks (S, S) float32 in [0, 1] or None."""
    import cv2

    left = crop.left.apply(sample.left)
    right = crop.right.apply(sample.right)
    masks = []
    for m, c in ((sample.mask_left, crop.left), (sample.mask_right, crop.right)):
        masks.append(None if m is None else
                     c.apply(m.astype(np.float32), interpolation=cv2.INTER_LINEAR))
    return left, right, masks[0], masks[1]


@dataclass(frozen=True)
class CroppedSample:
    """One sample cut to the network input.

    Attributes:
        left, right: (3, S, S) uint8 crops.
        mask_left, mask_right: (S, S) float32 crops of the masks, or None.
        crop: the stereo crop.
        K: (3, 3) float32 full-image intrinsics.
        baseline_m: stereo baseline, m.
        vertices_m: (V, 3) float32 labels, left frame, or None.
        joints_m: (21, 3) float32 labels, or None.
        index: position in the source dataset.
    """

    left: torch.Tensor
    right: torch.Tensor
    mask_left: torch.Tensor | None
    mask_right: torch.Tensor | None
    crop: StereoCrop
    K: torch.Tensor
    baseline_m: float
    vertices_m: torch.Tensor | None
    joints_m: torch.Tensor | None
    index: int


@dataclass(frozen=True)
class TrainBatch:
    """A collated batch of :class:`CroppedSample` (labels/masks None unless every item has them).

    Attributes:
        left, right: (B, 3, S, S) uint8.
        mask_left, mask_right: (B, S, S) float32 or None.
        crops: the B crops.
        K: (B, 3, 3) float32.
        baseline_m: (B,) float32.
        vertices_m: (B, V, 3) float32 or None.
        joints_m: (B, 21, 3) float32 or None.
        index: (B,) int64.
    """

    left: torch.Tensor
    right: torch.Tensor
    mask_left: torch.Tensor | None
    mask_right: torch.Tensor | None
    crops: CropBatch
    K: torch.Tensor
    baseline_m: torch.Tensor
    vertices_m: torch.Tensor | None
    joints_m: torch.Tensor | None
    index: torch.Tensor

    def to(self, device: torch.device | str) -> "TrainBatch":
        """Move every tensor to ``device``."""
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)
        return TrainBatch(mv(self.left), mv(self.right), mv(self.mask_left),
                          mv(self.mask_right), self.crops.to(device), mv(self.K),
                          mv(self.baseline_m), mv(self.vertices_m), mv(self.joints_m),
                          mv(self.index))


def collate_cropped(items: Sequence[CroppedSample]) -> TrainBatch:
    """Stack :class:`CroppedSample` items (a DataLoader ``collate_fn``)."""
    if not items:
        raise ValueError("cannot collate an empty batch")

    def stack(name: str) -> torch.Tensor | None:
        vals = [getattr(i, name) for i in items]
        return None if any(v is None for v in vals) else torch.stack(vals)

    return TrainBatch(
        left=torch.stack([i.left for i in items]), right=torch.stack([i.right for i in items]),
        mask_left=stack("mask_left"), mask_right=stack("mask_right"),
        crops=CropBatch.from_crops([i.crop for i in items]),
        K=torch.stack([i.K for i in items]),
        baseline_m=torch.tensor([i.baseline_m for i in items], dtype=torch.float32),
        vertices_m=stack("vertices_m"), joints_m=stack("joints_m"),
        index=torch.tensor([i.index for i in items], dtype=torch.int64))


class EpochSeededDataset(torch.utils.data.Dataset):
    """Base of the training datasets whose random crop jitter changes every epoch.

    The epoch lives in shared memory: DataLoader worker processes (forked or spawned,
    persistent) see the epoch set in the main process, so the jitter draw changes every epoch.
    Subclasses call ``super().__init__()`` and seed item ``i`` with ``(seed, i, self.epoch)``.
    """

    def __init__(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Change the jitter draw (call once per epoch, before iterating)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        """The current epoch (selects the jitter draw)."""
        return int(self._epoch)


class CroppedDataset(EpochSeededDataset):
    """Wraps a dataset of :class:`StereoSample` and cuts each to the network input.

    Args:
        samples: indexable dataset of StereoSample.
        out_size: crop side, px.
        crop_fn: ``crop_fn(sample, index, rng) -> StereoCrop``; default: the ground-truth crop
            (needs ``vertices_m`` or ``joints_m``) with ``margin_frac`` and ``jitter``.
        margin_frac, jitter: for the default crop.
        seed: jitter seed; item i uses a generator seeded with (seed, i, epoch).
    """

    def __init__(self, samples: Any, out_size: int,
                 crop_fn: Callable[..., StereoCrop] | None = None, margin_frac: float = 0.15,
                 jitter: CropJitter = CropJitter(), seed: int = 0) -> None:
        self.samples = samples
        self.out_size = out_size
        self.crop_fn = crop_fn
        self.margin_frac = margin_frac
        self.jitter = jitter
        self.seed = seed
        super().__init__()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> CroppedSample:
        s: StereoSample = self.samples[index]
        rng = np.random.default_rng((self.seed, int(index), self.epoch))
        if self.crop_fn is not None:
            crop = self.crop_fn(s, index, rng)
        else:
            pts = s.vertices_m if s.vertices_m is not None else s.joints_m
            if pts is None:
                raise ValueError(f"sample {index} ({s.source}) has no labels for a ground-truth "
                                 "crop; pass crop_fn (e.g. an ROI crop) for unlabelled data")
            crop = gt_stereo_crop(pts, s.camera, self.out_size, self.margin_frac, self.jitter,
                                  rng)
        left, right, ml, mr = crop_images(s, crop)

        def t(x: np.ndarray | None) -> torch.Tensor | None:
            return None if x is None else torch.from_numpy(np.ascontiguousarray(x)).float()
        return CroppedSample(
            left=torch.from_numpy(np.ascontiguousarray(left.transpose(2, 0, 1))),
            right=torch.from_numpy(np.ascontiguousarray(right.transpose(2, 0, 1))),
            mask_left=t(ml), mask_right=t(mr), crop=crop,
            K=torch.from_numpy(s.camera.K).float(), baseline_m=float(s.camera.baseline_m),
            vertices_m=t(s.vertices_m), joints_m=t(s.joints_m), index=int(index))
