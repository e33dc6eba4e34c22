"""A compact on-disk cache of labelled stereo crops, for pretraining away from the generator.

The synthetic generator needs open3d; a training machine may not have it. A crop cache holds, per
labelled pair, a square "context" window of each view around the hand (JPEG, larger than the
training crop so that centre/scale/shift jitter stays inside it), the window, the camera and the
labels, all in ONE ``cache.npz`` (plain arrays, no pickle) + ``meta.json``. Reading it needs numpy,
OpenCV and torch only.

:class:`CropCacheDataset` cuts training crops from the context windows: the crop of item ``i`` at
epoch ``e`` is exactly the crop :class:`~hand_mesh_core.train.batch.CroppedDataset` would cut from
the full images (same :func:`~hand_mesh_core.train.batch.gt_stereo_crop`, same seeding), and its
pixels are resampled from the context window (one more bilinear resampling, JPEG loss).

Storage per pair: two JPEGs, the vertices as float16 offsets from their centroid (float32
centroid; ~0.06 mm quantisation for a hand within 0.1 m of its centroid), joints float32.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.train.batch import (CroppedSample, CropJitter, EpochSeededDataset,
                                        gt_stereo_crop)

__all__ = ["CropCacheSpec", "write_crop_cache", "merge_crop_caches", "CropCache",
           "CropCacheDataset",
           "CACHE_FILE", "META_FILE", "CACHE_FORMAT", "HANDEDNESS_CODES"]

#: Arrays of a cache folder.
CACHE_FILE = "cache.npz"
#: Provenance and settings of a cache folder.
META_FILE = "meta.json"
#: Identifies the folder layout (checked on load).
CACHE_FORMAT = "hand_mesh_crop_cache_v1"
#: uint8 code of each handedness in the cache.
HANDEDNESS_CODES = ("right", "left")
#: Camera fields stored per pair, in this order.
_CAMERA_FIELDS = ("fx", "fy", "cx", "cy", "baseline_m", "width", "height")


@dataclass(frozen=True)
class CropCacheSpec:
    """How the context windows are cut.

    Attributes:
        context_size: side of the stored JPEG windows, px.
        context_frac: context window side / the un-jittered training window side (which is the
            hand's larger projected extent times ``1 + 2 * margin_frac``). 1.45 covers the default
            jitter (centre 0.08, scale 0.1, shift 0.05 of the side): 1.1 * (1 + 2 * (0.08 +
            0.05)) = 1.39.
        margin_frac: margin of the un-jittered window (the training ``margin_frac``).
        jpeg_quality: OpenCV JPEG quality, 1..100 (90: 2900 source_studio pairs take 43 MB,
            small enough to travel to a training machine with the working tree).
    """

    context_size: int = 160
    context_frac: float = 1.45
    margin_frac: float = 0.15
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if not (isinstance(self.context_size, int) and self.context_size >= 16):
            raise ValueError(f"context_size must be an int >= 16, got {self.context_size!r}")
        if not self.context_frac >= 1.0:
            raise ValueError(f"context_frac must be >= 1, got {self.context_frac}")
        if not self.margin_frac >= 0.0:
            raise ValueError(f"margin_frac must be >= 0, got {self.margin_frac}")
        if not (isinstance(self.jpeg_quality, int) and 1 <= self.jpeg_quality <= 100):
            raise ValueError(f"jpeg_quality must be an int in [1, 100], got "
                             f"{self.jpeg_quality!r}")


def _encode(img: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]),
                           [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.reshape(-1)


def _decode(buf: np.ndarray) -> np.ndarray:
    import cv2

    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("corrupt JPEG in the crop cache")
    return np.ascontiguousarray(img[..., ::-1])


def write_crop_cache(samples: Iterable[Any], out_dir: str | Path,
                     spec: CropCacheSpec = CropCacheSpec(), provenance: str = "",
                     topology_hash: str = "") -> Path:
    """Write labelled stereo pairs as a crop cache.

    Args:
        samples: iterable of :class:`~hand_mesh_core.data.types.StereoSample` with
            ``vertices_m`` (V, 3) and ``joints_m`` (21, 3) (metres, left optical frame).
        out_dir: folder to create (``cache.npz`` + ``meta.json``).
        spec: window settings.
        provenance: free text stored in ``meta.json`` (domain, seed, count).
        topology_hash: the hand model's topology hash (stored, checked by nobody here).

    Returns:
        The folder.

    Raises:
        ValueError: no samples, a sample without labels, or vertex counts that differ.
    """
    out_dir = Path(out_dir)
    bufs: list[np.ndarray] = []
    offsets = [0]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "window", "camera", "centroid_m", "vertices_rel_m", "joints_m", "handedness")}
    for k, s in enumerate(samples):
        if s.vertices_m is None or s.joints_m is None:
            raise ValueError(f"sample {k} ({s.source}) has no vertex/joint labels")
        v = np.asarray(s.vertices_m, dtype=np.float64)
        if cols["vertices_rel_m"] and v.shape != cols["vertices_rel_m"][0].shape:
            raise ValueError(f"sample {k} has {v.shape[0]} vertices, the first had "
                             f"{cols['vertices_rel_m'][0].shape[0]}")
        base = gt_stereo_crop(v, s.camera, spec.context_size, spec.margin_frac)
        side = base.left.width * spec.context_frac
        cu, cv = base.left.x0 + base.left.width / 2, base.left.y0 + base.left.height / 2
        ctx = StereoCrop(CropTransform.square(cu, cv, side, spec.context_size), base.shift_px)
        for img, c in ((s.left, ctx.left), (s.right, ctx.right)):
            bufs.append(_encode(c.apply(img), spec.jpeg_quality))
            offsets.append(offsets[-1] + bufs[-1].size)
        centroid = v.mean(0)
        cam = s.camera
        cols["window"].append(np.array([ctx.left.x0, ctx.left.y0, side, ctx.shift_px]))
        cols["camera"].append(np.array([float(getattr(cam, f)) for f in _CAMERA_FIELDS]))
        cols["centroid_m"].append(centroid.astype(np.float32))
        cols["vertices_rel_m"].append((v - centroid).astype(np.float16))
        cols["joints_m"].append(np.asarray(s.joints_m, dtype=np.float32))
        cols["handedness"].append(np.uint8(HANDEDNESS_CODES.index(s.handedness)))
    if not bufs:
        raise ValueError("write_crop_cache needs at least one sample")
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / CACHE_FILE, jpeg=np.concatenate(bufs),
             jpeg_offsets=np.asarray(offsets, dtype=np.int64),
             **{k: np.stack(v) for k, v in cols.items()})
    meta = {"format": CACHE_FORMAT, "count": len(cols["window"]),
            "context_size": spec.context_size, "context_frac": spec.context_frac,
            "margin_frac": spec.margin_frac, "jpeg_quality": spec.jpeg_quality,
            "camera_fields": list(_CAMERA_FIELDS), "provenance": provenance,
            "topology_hash": topology_hash}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return out_dir


def merge_crop_caches(folders: list[str | Path], out_dir: str | Path) -> Path:
    """Concatenate crop caches (same window settings) into one folder, in the given order.

    Raises:
        ValueError: no folders, or the caches differ in window settings or vertex count.
    """
    if not folders:
        raise ValueError("merge_crop_caches needs at least one folder")
    caches = [CropCache(f) for f in folders]
    keys = ("context_size", "context_frac", "margin_frac", "jpeg_quality", "topology_hash")
    for c in caches[1:]:
        diff = [k for k in keys if c.meta.get(k) != caches[0].meta.get(k)]
        if diff or c._arrays["vertices_rel_m"].shape[1:] != \
                caches[0]._arrays["vertices_rel_m"].shape[1:]:
            raise ValueError(f"{c.path} differs from {caches[0].path} in {diff or 'vertices'}")
    arrays: dict[str, np.ndarray] = {}
    for k in caches[0]._arrays:
        if k == "jpeg_offsets":
            parts, base = [np.zeros(1, np.int64)], 0
            for c in caches:
                parts.append(c._arrays[k][1:] + base)
                base += int(c._arrays[k][-1])
            arrays[k] = np.concatenate(parts)
        else:
            arrays[k] = np.concatenate([c._arrays[k] for c in caches])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / CACHE_FILE, **arrays)
    meta = dict(caches[0].meta, count=int(arrays["window"].shape[0]),
                provenance="; ".join(c.provenance for c in caches))
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return out_dir


class CropCache:
    """A crop cache folder opened for reading (all arrays in memory; JPEGs decoded on access).

    Args:
        path: folder written by :func:`write_crop_cache`.

    Raises:
        FileNotFoundError: missing files.
        ValueError: not a crop cache (wrong format tag).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        for name in (CACHE_FILE, META_FILE):
            if not (self.path / name).is_file():
                raise FileNotFoundError(f"crop cache file not found: {self.path / name}")
        self.meta = json.loads((self.path / META_FILE).read_text())
        if self.meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{self.path}: not a crop cache (format "
                             f"{self.meta.get('format')!r}, expected {CACHE_FORMAT!r})")
        with np.load(self.path / CACHE_FILE, allow_pickle=False) as z:
            self._arrays = {k: z[k] for k in z.files}
        self.context_size = int(self.meta["context_size"])

    def __len__(self) -> int:
        return int(self._arrays["window"].shape[0])

    @property
    def provenance(self) -> str:
        """The provenance text given at writing."""
        return str(self.meta.get("provenance", ""))

    def camera(self, index: int) -> StereoCamera:
        """The stereo camera of pair ``index``."""
        c = self._arrays["camera"][index]
        fx, fy, cx, cy, bl, w, h = (float(x) for x in c)
        return StereoCamera(fx=fx, fy=fy, cx=cx, cy=cy, baseline_m=bl, width=int(w),
                            height=int(h))

    def context_crop(self, index: int) -> StereoCrop:
        """The stored window of pair ``index`` (full image -> context image)."""
        x0, y0, side, shift = (float(x) for x in self._arrays["window"][index])
        return StereoCrop(CropTransform(x0, y0, side, side, self.context_size,
                                        self.context_size), shift)

    def images(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The left and right context windows, (S, S, 3) uint8 RGB each."""
        off = self._arrays["jpeg_offsets"]
        jpeg = self._arrays["jpeg"]
        return (_decode(jpeg[off[2 * index]:off[2 * index + 1]]),
                _decode(jpeg[off[2 * index + 1]:off[2 * index + 2]]))

    def vertices_m(self, index: int) -> np.ndarray:
        """(V, 3) float32 metres, left optical frame."""
        return (self._arrays["centroid_m"][index].astype(np.float32)
                + self._arrays["vertices_rel_m"][index].astype(np.float32))

    def joints_m(self, index: int) -> np.ndarray:
        """(21, 3) float32 metres, left optical frame."""
        return self._arrays["joints_m"][index]

    def handedness(self, index: int) -> str:
        """"right" or "left"."""
        return HANDEDNESS_CODES[int(self._arrays["handedness"][index])]


def _resample(image: np.ndarray, src: CropTransform, dst: CropTransform) -> np.ndarray:
    """Image of crop ``src`` -> image of crop ``dst`` (both of the same full image)."""
    import cv2

    a_src = np.vstack([src.affine(), [0.0, 0.0, 1.0]])
    a_dst = np.vstack([dst.affine(), [0.0, 0.0, 1.0]])
    m = (a_src @ np.linalg.inv(a_dst))[:2]  # dst crop px -> src crop px
    return cv2.warpAffine(image, m, (dst.out_width, dst.out_height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class CropCacheDataset(EpochSeededDataset):
    """Training crops cut from a :class:`CropCache` (yields
    :class:`~hand_mesh_core.train.batch.CroppedSample`, like ``CroppedDataset``).

    Args:
        cache: the opened cache.
        out_size: training crop side, px.
        margin_frac: margin of the ground-truth crop (as ``CroppedDataset``).
        jitter: crop jitter (as ``CroppedDataset``).
        seed: item ``i`` at epoch ``e`` uses a generator seeded with ``(seed, i, e)``.
    """

    def __init__(self, cache: CropCache, out_size: int, margin_frac: float = 0.15,
                 jitter: CropJitter = CropJitter(), seed: int = 0) -> None:
        if not isinstance(cache, CropCache):
            raise TypeError(f"cache must be a CropCache, got {type(cache).__name__}")
        self.cache = cache
        self.out_size = int(out_size)
        self.margin_frac = float(margin_frac)
        self.jitter = jitter
        self.seed = int(seed)
        super().__init__()

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> CroppedSample:
        c = self.cache
        cam = c.camera(index)
        verts = c.vertices_m(index)
        rng = np.random.default_rng((self.seed, int(index), self.epoch))
        crop = gt_stereo_crop(verts, cam, self.out_size, self.margin_frac, self.jitter, rng)
        ctx = c.context_crop(index)
        left_ctx, right_ctx = c.images(index)
        left = _resample(left_ctx, ctx.left, crop.left)
        right = _resample(right_ctx, ctx.right, crop.right)
        return CroppedSample(
            left=torch.from_numpy(np.ascontiguousarray(left.transpose(2, 0, 1))),
            right=torch.from_numpy(np.ascontiguousarray(right.transpose(2, 0, 1))),
            mask_left=None, mask_right=None, crop=crop,
            K=torch.from_numpy(cam.K).float(), baseline_m=float(cam.baseline_m),
            vertices_m=torch.from_numpy(verts), joints_m=torch.from_numpy(
                np.array(c.joints_m(index))), index=int(index))
