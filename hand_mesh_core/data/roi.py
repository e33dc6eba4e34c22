"""Find the hand (not the face) in a rectified stereo pair.

Colour alone cannot tell a hand from a face or a skin-coloured background, so every skin blob of
the left image (:mod:`hand_mesh_core.data.skin`) is scored with more cues:

* **stereo**: the blob, shifted left by a disparity ``d``, must land on skin in the right image.
  ``d`` is searched over the depth range of the config; the cue is the best IoU between the
  blob and the right mask window (a cross-correlation of masks, one ``cv2.matchTemplate`` per
  blob), with full marks from ``good_stereo_iou`` on. A face cut by the right image border, or
  a background patch whose colour differs between views, gets a low IoU. The peak ``d`` gives
  the blob's depth ``z = fx * B / d``.
* **size at depth**: the blob's long side in metres (``side_px * z / f``) must be a hand's
  (default 12-28 cm: a 15-22 cm hand plus a little wrist).
* **shape**: deep convexity defects between fingers (a weak cue: closed hands have none).
* **tracking**: overlap with a prior ROI (e.g. the previous frame's projected hand).

* **depth layers** (``dense_stereo``, images needed): a semi-global dense disparity
  (:func:`dense_disparity`) splits each blob into layers ``z +- hand_depth_halfrange_m``
  (:func:`depth_layers`), so a hand merged with a skin-coloured patch on a farther surface
  becomes its own candidate.
* **protrusion**: the fraction of a ring around the candidate lying at least
  ``behind_margin_m`` (and ``behind_margin_px``) behind it, both read on the dense disparity;
  a hand is held in front of what surrounds it, a patch printed on a wall is not.
* **wrist cut** (``split_forearm``): a blob longer than a hand at its depth also yields its
  hand end, cut at the narrowest section of its width profile (:func:`split_forearm`) when the
  removed part looks like a forearm (convex, no finger gaps); the hand end then scores at
  least as the whole blob, so the window is the hand's, not hand + forearm. A blob cut by the
  image border at one end (an arm entering the picture) longer than ``arm_hand_length_m`` is
  cut to that length at its free end when no wrist is found.
* optional **colour refinement** (``refine_skin``): the colour model is refitted on the chosen
  blob and the search repeated (:func:`refine_skin_masks`).
* **disparity check** (``check_disparity``, images needed): the chosen blob's disparity is
  measured again on the images, a full-resolution SGBM over its box (:func:`local_disparity`);
  when the two disagree by more than ``max_disparity_disagreement_px`` the image's wins (a
  mask match can lock onto a merged neighbour or a periodic offset, tens of px off).

Known limits: a hand whose colour leaves the skin box (dark skin in shadow) is barely in the
mask and cannot be found; SGBM is unreliable on repetitive stripes, which can give background
blobs a spurious protrusion.

The best blob above ``min_score`` becomes a square window with a margin (its side at least
``min_window_size_m`` at the blob's depth: a blob that is only part of the hand still gets a
hand-sized window), and the right window is
the left one shifted by the matched disparity. An external ROI (a detector's box) can be given
instead; its disparity is measured the same way, falling back to a depth prior.

Boxes are ``(x0, y0, width, height)`` in full-image px, where ``(x0, y0)`` is the top-left
*edge* in pixel coordinates (the convention of :class:`hand_mesh_core.geometry.crop.
CropTransform`: pixel ``i`` covers ``[i - 0.5, i + 0.5)``, so the box of whole pixels
``x..x+w-1`` has ``x0 = x - 0.5``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from hand_mesh_core.data.config import RoiConfig, SkinConfig
from hand_mesh_core.data.skin import fit_skin_model, skin_masks_stereo
from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["Box", "RoiCandidate", "HandRoi", "match_disparity", "box_iou", "dense_disparity",
           "depth_layers", "local_disparity", "split_forearm", "score_candidates",
           "find_hand_roi", "refine_skin_masks", "roi_from_box", "track_hand_roi",
           "quick_hand_roi", "HandRoiTracker", "draw_hand_roi"]

Box = tuple[float, float, float, float]
#: cv2.convexityDefects reports depths in fixed point with 8 fractional bits (OpenCV docs).
_DEFECT_DEPTH_SCALE = 256.0
#: Finger gaps of an open hand: 4 between 5 fingers; more count as 4.
_MAX_FINGER_GAPS = 4
#: Drawing colours (RGB) of :func:`draw_hand_roi`.
_MASK_RGB = (0, 160, 255)
_CANDIDATE_RGB = (255, 200, 0)
_ROI_RGB = (0, 255, 0)
_JOINT_RGB = (255, 0, 0)
#: Opacity of the skin-mask overlay.
_MASK_ALPHA = 0.45
#: Height of the score labels (font scale 0.45), px.
_TEXT_HEIGHT_PX = 14
#: OpenCV StereoSGBM: disparities are fixed point with 4 fractional bits, numDisparities must
#: be a multiple of 16, P1 = 8 and P2 = 32 times (channels * block^2) are the values the
#: OpenCV documentation recommends; uniqueness 5-15 is its suggested range.
_SGBM_SUBPIXEL = 16.0
_SGBM_DISPARITY_STEP = 16
_SGBM_P1 = 8
_SGBM_P2 = 32
_SGBM_UNIQUENESS = 10
#: Pixels without a disparity join a depth layer within this (elliptic kernel side), px.
_LAYER_FILL_PX = 7
#: Components scored per depth layer (a layer may hold the hand and a background patch).
_PIECES_PER_LAYER = 2
#: Gap between fragments of one depth layer that a closing bridges, m (a dark finger crease or
#: a shadowed knuckle is ~ 1 cm wide).
_LAYER_GAP_M = 0.0
#: Fewest pixels for a width profile, fewest valid ring pixels for a protrusion, thinnest ring.
_MIN_SPLIT_PIXELS = 50
_MIN_RING_PIXELS = 30
_MIN_RING_PX = 3
#: Width profile smoothing: moving-average length as a fraction of the blob length.
_PROFILE_SMOOTH_FRAC = 0.03
#: Derived (reduced-resolution) configs kept per (config, scale).
_CONFIG_CACHE_SIZE = 16
#: Tracking with a narrowed disparity range: a match within this of the range's ends is no
#: peak (reduced px; the parabola refines a peak by at most 0.5 px).
_TRACK_EDGE_PX = 0.5
#: Pixels within this of an end along the axis are the end's tip (border test), px.
_END_BAND_PX = 3.0
#: Fewest skin pixels with a local SGBM disparity for :func:`local_disparity` to answer (the
#: median of fewer is noise; a hand at 2 m still has ~ 1000 skin pixels at 640x480).
_MIN_LOCAL_PIXELS = 30


@dataclass(frozen=True)
class RoiCandidate:
    """One scored skin blob of the left image.

    Attributes:
        bbox_left: the blob's bounding box, px.
        area_px: blob area, px.
        stereo_iou: best IoU of the blob with the right mask over the disparity range (0-1).
        disparity_px: disparity at that IoU (sub-pixel), 0 when the stereo match failed.
        depth_m: ``fx * B / disparity``, 0 when unknown.
        size_m: the blob's long side at that depth, 0 when unknown.
        finger_gaps: convexity defects deeper than ``finger_defect_frac`` of the long side.
        prior_iou: IoU of ``bbox_left`` with the prior box (0 without a prior).
        score: the weighted sum of the cues (see :class:`RoiConfig`).
        behind_frac: fraction of the blob's surrounding ring (dense disparity) that lies at
            least ``behind_margin_m`` behind it (0 without a dense disparity or with too few
            valid ring pixels).
        layer_disparity_px: peak of the dense disparity of the blob's depth layer, px (0
            without a dense disparity).
        forearm_cut: the blob is the hand end of a longer blob cut at the wrist.
    """

    bbox_left: Box
    area_px: int
    stereo_iou: float
    disparity_px: float
    depth_m: float
    size_m: float
    finger_gaps: int
    prior_iou: float
    score: float
    behind_frac: float = 0.0
    layer_disparity_px: float = 0.0
    forearm_cut: bool = False

    @property
    def stereo_ok(self) -> bool:
        """Whether a disparity was measured."""
        return self.disparity_px > 0

    @property
    def bbox_right(self) -> Box:
        """The left box moved by the disparity (the blob's box in the right image)."""
        x0, y0, w, h = self.bbox_left
        return (x0 - self.disparity_px, y0, w, h)


@dataclass(frozen=True)
class HandRoi:
    """The hand's square window in the left image and its disparity.

    Attributes:
        left: square window ``(x0, y0, side, side)`` in the left image, px.
        disparity_px: expected disparity of the hand (> 0), px.
        depth_m: ``fx * B / disparity_px``, m.
        score: the chosen candidate's score (``inf`` for an external box).
        source: "skin" (chosen among blobs of the whole image), "track" (chosen among blobs
            of a window around a prior, :func:`track_hand_roi`), "quick" (the fast path over
            the whole image, :func:`quick_hand_roi`) or "external" (given box).
        stereo_matched: False when the disparity comes from the depth prior.
        candidate: the chosen blob, None for an external box.
        candidates: every scored blob, best first.
    """

    left: Box
    disparity_px: float
    depth_m: float
    score: float
    source: str
    stereo_matched: bool
    candidate: RoiCandidate | None = None
    candidates: tuple[RoiCandidate, ...] = field(default=())

    @property
    def right(self) -> Box:
        """The right window: same rows, moved left by the disparity."""
        x0, y0, w, h = self.left
        return (x0 - self.disparity_px, y0, w, h)

    @property
    def center_uv(self) -> tuple[float, float]:
        """Centre of the left window, full-image pixel coordinates."""
        x0, y0, w, h = self.left
        return (x0 + w / 2, y0 + h / 2)


def box_iou(a: Box, b: Box) -> float:
    """IoU of two ``(x0, y0, w, h)`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def _check_box(box: Box, name: str) -> Box:
    if len(box) != 4:
        raise ValueError(f"{name} must be (x0, y0, width, height), got {box!r}")
    box = tuple(float(v) for v in box)
    if not all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"{name} must be finite with width, height > 0, got {box!r}")
    return box  # type: ignore[return-value]


def _disparity_range(camera: StereoCamera, config: RoiConfig) -> tuple[int, int]:
    d_min = int(np.floor(camera.fx_baseline / config.max_depth_m))
    d_max = int(np.ceil(camera.fx_baseline / config.min_depth_m))
    return max(d_min, 0), max(d_max, 1)


def match_disparity(blob: np.ndarray, x0: int, y0: int, mask_right: np.ndarray,
                    d_min: int, d_max: int) -> tuple[float, float]:
    """Disparity that best overlays a left blob on the right mask.

    For every integer ``d`` in ``[d_min, d_max]`` the blob (its bounding-box crop, top-left at
    ``(x0, y0)`` in the left image) is compared with the right mask window at ``x0 - d``; pixels
    outside the right image count as background. The IoU peak is refined to sub-pixel with a
    parabola through its neighbours.

    Args:
        blob: (h, w) bool blob mask in its bounding box.
        x0, y0: top-left pixel of the box in the left image.
        mask_right: (H, W) bool right skin mask.
        d_min, d_max: disparity search range, px, ``0 <= d_min <= d_max``.

    Returns:
        ``(disparity_px, iou)``; ``(0.0, 0.0)`` when the blob is empty.
    """
    if blob.ndim != 2 or mask_right.ndim != 2:
        raise ValueError(f"blob and mask_right must be 2-D, got {blob.shape}, {mask_right.shape}")
    if not 0 <= d_min <= d_max:
        raise ValueError(f"need 0 <= d_min <= d_max, got d_min={d_min}, d_max={d_max}")
    h, w = blob.shape
    H, W = mask_right.shape
    if y0 < 0 or y0 + h > H or x0 < 0 or x0 + w > W:
        raise ValueError(f"blob box ({x0}, {y0}, {w}, {h}) is outside the {W}x{H} image")
    area = float(blob.sum())
    if area == 0:
        return 0.0, 0.0
    band = mask_right[y0:y0 + h].astype(np.float32)
    # Right window for disparity d starts at column x0 - d; pad so every window exists.
    pad_l = max(0, d_max - x0)
    pad_r = max(0, x0 + w - d_min - W)
    band = np.pad(band, ((0, 0), (pad_l, pad_r)))
    start = x0 - d_max + pad_l   # column of the window at d = d_max in the padded band
    stop = x0 - d_min + pad_l    # ... at d = d_min
    strip = band[:, start:stop + w]
    inter = cv2.matchTemplate(strip, blob.astype(np.float32), cv2.TM_CCORR)[0]
    col = np.concatenate([[0.0], np.cumsum(strip.sum(axis=0, dtype=np.float64))])
    win = col[w:] - col[:-w]
    iou = inter / np.maximum(area + win - inter, 1.0)
    iou = iou[::-1]              # index k <-> d = d_min + k
    k = int(np.argmax(iou))
    best = float(iou[k])
    if best <= 0:
        return 0.0, 0.0
    offset = 0.0
    if 0 < k < len(iou) - 1:
        a, b, c = iou[k - 1], iou[k], iou[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            offset = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
    return float(d_min + k + offset), best


def _finger_gaps(blob: np.ndarray, min_depth_px: float) -> int:
    contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0
    contour = max(contours, key=cv2.contourArea)
    if len(contour) < 4:
        return 0
    hull = cv2.convexHull(contour, returnPoints=False)
    try:
        defects = cv2.convexityDefects(contour, hull)
    except cv2.error:  # self-intersecting hull indices on degenerate contours
        return 0
    if defects is None:
        return 0
    depths = defects.reshape(-1, 4)[:, 3] / _DEFECT_DEPTH_SCALE
    return int(min((depths >= min_depth_px).sum(), _MAX_FINGER_GAPS))


def _size_score(size_m: float, config: RoiConfig) -> float:
    below = config.min_hand_size_m - size_m
    above = size_m - config.max_hand_size_m
    outside = max(below, above, 0.0)
    return float(max(0.0, 1.0 - outside / config.size_tolerance_m))


def _sgbm(min_disparity: int, num_disparities: int, block: int) -> cv2.StereoSGBM:
    """OpenCV's semi-global matcher with this module's settings (``_SGBM_*``) for grey images;
    ``num_disparities`` a multiple of ``_SGBM_DISPARITY_STEP``."""
    return cv2.StereoSGBM_create(minDisparity=min_disparity, numDisparities=num_disparities,
                                 blockSize=block, P1=_SGBM_P1 * block * block,
                                 P2=_SGBM_P2 * block * block, uniquenessRatio=_SGBM_UNIQUENESS,
                                 disp12MaxDiff=1)


def dense_disparity(left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                    config: RoiConfig | None = None) -> np.ndarray:
    """Dense left disparity (OpenCV semi-global matching) over the ROI depth range.

    The pair is converted to grey and reduced ``config.stereo_downscale`` times; both views are
    padded on the left so that every column (also those near the left border) searches the
    whole range ``[fx B / max_depth_m, fx B / min_depth_m]``. The result is upsampled (nearest)
    to full resolution.

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images of ``camera``'s size.
        camera: the pair.
        config: settings (depth range, ``stereo_downscale``, ``sgbm_block_px``).

    Returns:
        (H, W) float32 disparity, full-resolution px; 0 where unknown.
    """
    config = RoiConfig.resolve(config)
    _check_pair(left, right, camera)
    scale = config.stereo_downscale
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (left, right)]
    for _ in range(int(np.log2(scale))):
        grey = [cv2.pyrDown(g) for g in grey]
    d_min, d_max = _disparity_range(camera, config)
    lo, hi = d_min // scale, -(-d_max // scale)
    num = -(-(hi - lo + 1) // _SGBM_DISPARITY_STEP) * _SGBM_DISPARITY_STEP
    pad = lo + num
    grey = [cv2.copyMakeBorder(g, 0, 0, pad, 0, cv2.BORDER_CONSTANT, value=0) for g in grey]
    raw = _sgbm(lo, num, config.sgbm_block_px).compute(grey[0], grey[1])[:, pad:]
    disp = raw.astype(np.float32) / _SGBM_SUBPIXEL * scale
    disp[raw < lo * _SGBM_SUBPIXEL] = 0.0
    if scale > 1:
        disp = cv2.resize(disp, (camera.width, camera.height), interpolation=cv2.INTER_NEAREST)
    return disp


def local_disparity(left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                    mask_left: np.ndarray, box: Box, disparity_px: float,
                    config: RoiConfig | None = None) -> float:
    """The median full-resolution SGBM disparity of the skin pixels in a box.

    OpenCV's semi-global matching runs on the grey box (with the columns to its left that the
    search needs) at full resolution, over ``disparity_px +- tol``, where ``tol`` is the
    disparity span of ``+- hand_depth_halfrange_m`` at that disparity (a depth layer's span).
    Only ``mask_left`` pixels inside the box with a valid disparity count.

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images of ``camera``'s size.
        camera: the pair.
        mask_left: (H, W) bool left skin mask.
        box: ``(x0, y0, w, h)`` in the left image, px (pixels whose centres lie inside count).
        disparity_px: the centre of the search, px, > 0 (e.g. the mask-matched disparity).
        config: settings (``hand_depth_halfrange_m``, ``sgbm_block_px``).

    Returns:
        The median disparity, px; 0.0 when fewer than ``_MIN_LOCAL_PIXELS`` pixels have one.

    Raises:
        ValueError: ``mask_left`` not (H, W), or ``disparity_px`` not finite and > 0.
    """
    config = RoiConfig.resolve(config)
    _check_pair(left, right, camera)
    if mask_left.shape != (camera.height, camera.width):
        raise ValueError(f"mask_left must be {(camera.height, camera.width)} (the camera size), "
                         f"got {mask_left.shape}")
    if not (np.isfinite(disparity_px) and disparity_px > 0):
        raise ValueError(f"disparity_px must be finite and > 0, got {disparity_px!r}")
    box = _check_box(box, "box")
    sel = _box_mask(mask_left.shape, box) & mask_left
    ys, xs = np.nonzero(sel)
    if len(xs) < _MIN_LOCAL_PIXELS:
        return 0.0
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    tol = _layer_tolerance_px(disparity_px, camera.fx_baseline, config)
    lo = max(int(np.floor(disparity_px - tol)), 0)
    num = -(-(int(np.ceil(disparity_px + tol)) - lo + 1) // _SGBM_DISPARITY_STEP) \
        * _SGBM_DISPARITY_STEP
    # SGBM reads lo + num columns to the left of a pixel: take them from the image where they
    # exist, pad with black where they do not.
    c0 = max(x0 - lo - num, 0)
    pad = lo + num - (x0 - c0)
    grey = [cv2.copyMakeBorder(cv2.cvtColor(im[y0:y1, c0:x1], cv2.COLOR_RGB2GRAY), 0, 0, pad,
                               0, cv2.BORDER_CONSTANT, value=0) for im in (left, right)]
    raw = _sgbm(lo, num, config.sgbm_block_px).compute(grey[0], grey[1])[:, pad + x0 - c0:]
    values = raw[sel[y0:y1, x0:x1]]
    values = values[values >= lo * _SGBM_SUBPIXEL]
    if len(values) < _MIN_LOCAL_PIXELS:
        return 0.0
    return float(np.median(values)) / _SGBM_SUBPIXEL


def _layer_tolerance_px(d: float, fx_baseline: float, config: RoiConfig) -> float:
    """Disparity half-width of a depth layer ``z +- hand_depth_halfrange_m`` at disparity d."""
    return d * d * config.hand_depth_halfrange_m / fx_baseline


def _behind_margin_px(d: float, fx_baseline: float, config: RoiConfig) -> float:
    """Disparity drop at disparity ``d`` that counts as "behind": ``behind_margin_m`` of
    depth, and at least ``behind_margin_px`` (the dense disparity's noise)."""
    # z = fB / d: a depth step dz at z is a disparity step d^2 dz / (fB + d dz).
    dz = config.behind_margin_m
    return max(d * d * dz / (fx_baseline + d * dz), config.behind_margin_px)


def depth_layers(blob: np.ndarray, disparity: np.ndarray, fx_baseline: float,
                 config: RoiConfig | None = None) -> list[tuple[np.ndarray, float]]:
    """Split a blob into depth layers of its dense disparity.

    Repeatedly the disparity ``d`` whose window ``d +- tol(d)`` (``tol`` = the disparity span of
    ``+- hand_depth_halfrange_m`` at that depth) holds the most remaining valid pixels becomes a
    layer; blob pixels without a disparity join the layer they touch (within a few px). Up to
    ``max_layers`` layers with at least ``min_blob_area_px`` pixels are returned.

    Args:
        blob: (h, w) bool.
        disparity: (h, w) float px, 0 = unknown (same window as ``blob``).
        fx_baseline: ``fx * B``, px * m.
        config: settings.

    Returns:
        ``[(layer_mask (h, w) bool, peak disparity px), ...]``, most populated first.
    """
    config = RoiConfig.resolve(config)
    if blob.shape != disparity.shape or blob.ndim != 2:
        raise ValueError(f"blob and disparity must be the same (h, w), got {blob.shape} and "
                         f"{disparity.shape}")
    if fx_baseline <= 0:
        raise ValueError(f"fx_baseline must be > 0, got {fx_baseline}")
    valid = blob & (disparity > 0)
    unknown = blob & ~valid
    remaining = valid.copy()
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_LAYER_FILL_PX, _LAYER_FILL_PX))
    out = []
    for _ in range(config.max_layers):
        values = disparity[remaining]
        if len(values) < config.min_blob_area_px:
            break
        top = int(np.ceil(values.max())) + 1
        cum = np.concatenate([[0], np.cumsum(np.bincount(values.astype(np.int64),
                                                         minlength=top + 1))])
        d = np.arange(top + 1, dtype=np.float64)
        tol = _layer_tolerance_px(d, fx_baseline, config)
        lo = np.clip(np.floor(d - tol).astype(np.int64), 0, top + 1)
        hi = np.clip(np.floor(d + tol).astype(np.int64) + 1, 0, top + 1)
        count = cum[hi] - cum[lo]
        peak = int(np.argmax(count))
        t = _layer_tolerance_px(float(peak), fx_baseline, config)
        members = disparity[remaining]
        in_layer = (members >= peak - t) & (members < peak + t + 1)
        sel = np.zeros_like(remaining)
        sel[remaining] = in_layer
        peak_d = float(np.median(members[in_layer]))
        remaining &= ~sel
        filled = sel | (unknown & (cv2.dilate(sel.astype(np.uint8), grow) > 0))
        if filled.sum() >= config.min_blob_area_px:
            out.append((filled, peak_d))
    return out


def _piece(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The pixels ``(xs, ys)`` as a mask of their bounding box."""
    x0, y0 = xs.min(), ys.min()
    piece = np.zeros((ys.max() - y0 + 1, xs.max() - x0 + 1), bool)
    piece[ys - y0, xs - x0] = True
    return piece


def _is_forearm(xs: np.ndarray, ys: np.ndarray, hand_xs: np.ndarray, hand_ys: np.ndarray,
                config: RoiConfig) -> bool:
    """Whether the pixels ``(xs, ys)`` cut off a blob look like a forearm next to the kept
    ``(hand_xs, hand_ys)``: convex (solidity >= ``min_forearm_solidity``) and with no more
    finger gaps than the hand piece."""
    if len(xs) < _MIN_SPLIT_PIXELS or len(hand_xs) == 0:
        return False
    arm = _piece(xs, ys)
    hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
    # contourArea of the hull counts pixel centres: add half the perimeter (pixel squares).
    hull_area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1.0
    if len(xs) / hull_area < config.min_forearm_solidity:
        return False
    hand = _piece(hand_xs, hand_ys)
    return (_finger_gaps(arm, config.finger_defect_frac * max(arm.shape))
            <= _finger_gaps(hand, config.finger_defect_frac * max(hand.shape)))


def _touching_ends(pts: np.ndarray, t: np.ndarray, shape: tuple[int, int],
                   border: tuple[bool, bool, bool, bool]) -> list[bool]:
    """For each end of the principal axis (low ``t``, high ``t``): whether its extreme pixels
    lie on an image border that the blob's box touches."""
    h, w = shape
    touches = []
    for end in (0, 1):
        near = (t - t.min() if end == 0 else t.max() - t) <= _END_BAND_PX
        ex = pts[near]
        touches.append(bool((border[0] and (ex[:, 0] == 0).any())
                            or (border[1] and (ex[:, 1] == 0).any())
                            or (border[2] and (ex[:, 0] == w - 1).any())
                            or (border[3] and (ex[:, 1] == h - 1).any())))
    return touches


def _largest_component(blob: np.ndarray, keep: np.ndarray, xs: np.ndarray, ys: np.ndarray
                       ) -> np.ndarray | None:
    """The largest 8-connected component of the pixels ``(xs, ys)[keep]`` (mask of ``blob``'s
    shape), or None when none is kept."""
    piece = np.zeros_like(blob)
    piece[ys[keep], xs[keep]] = True
    n, labels, stats, _ = cv2.connectedComponentsWithStats(piece.astype(np.uint8),
                                                           connectivity=8)
    if n < 2:
        return None
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def split_forearm(blob: np.ndarray, px_per_m: float, config: RoiConfig | None = None,
                  border: tuple[bool, bool, bool, bool] = (False, False, False, False)
                  ) -> np.ndarray | None:
    """Cut the hand off a hand + forearm blob at the wrist.

    The pixels are projected on the blob's principal axis; the count per 1-px slice is the
    width profile. From each end, the narrowest slice between ``wrist_distance_m`` (converted
    with ``px_per_m``) is the wrist candidate; it counts when it is at most ``max_wrist_ratio``
    of the widest slice on the end's side (the palm). When the blob touches the image border
    at exactly one end, that end is the forearm (arms leave the picture, hands come in);
    otherwise the end with the lower ratio is the hand. A cut counts only when the part it
    removes looks like a forearm: convex (solidity >= ``min_forearm_solidity``) and with no
    more finger gaps than the kept part (spread fingers also make a narrow section).

    When no wrist cut counts but the blob touches the border at exactly one end (an arm
    entering the picture) and is longer than ``arm_hand_length_m`` (and at most
    ``max_arm_length_m``), the hand is the part within ``arm_hand_length_m`` of the free end
    (the forearm and wrist are often as wide as the palm: no narrow section to find).

    Args:
        blob: (h, w) bool, one component.
        px_per_m: image px per metre at the blob's depth (``f / z``).
        config: settings.
        border: whether the blob touches the (left, top, right, bottom) image border.

    Returns:
        (h, w) bool hand piece (its largest component), or None when there is no wrist.
    """
    config = RoiConfig.resolve(config)
    if blob.ndim != 2:
        raise ValueError(f"blob must be (h, w), got {blob.shape}")
    if px_per_m <= 0:
        raise ValueError(f"px_per_m must be > 0, got {px_per_m}")
    ys, xs = np.nonzero(blob)
    if len(xs) < _MIN_SPLIT_PIXELS:
        return None
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centre = pts.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((pts - centre).T))
    axis = vecs[:, 1]
    t = (pts - centre) @ axis
    t0 = t.min()
    idx = np.floor(t - t0).astype(np.int64)
    width = np.bincount(idx).astype(np.float64)
    k = max(1, int(round(_PROFILE_SMOOTH_FRAC * len(width))) | 1)
    width = np.convolve(width, np.ones(k) / k, mode="same")
    lo_px, hi_px = (v * px_per_m for v in config.wrist_distance_m)
    ends = []
    for end in (0, 1):
        prof = width if end == 0 else width[::-1]
        a, b = int(np.ceil(lo_px)), min(int(np.floor(hi_px)), len(prof) - 2)
        if b < a or a < 1:
            continue
        cut = a + int(np.argmin(prof[a:b + 1]))
        ratio = prof[cut] / max(prof[:cut].max(), 1e-9)
        if ratio <= config.max_wrist_ratio:
            ends.append((ratio, end, cut))
    touches = _touching_ends(pts, t, blob.shape, border)
    if touches[0] != touches[1]:
        hand_end = 1 if touches[0] else 0
        ends = [e for e in ends if e[1] == hand_end]

    def kept(end: int, cut: int) -> np.ndarray:
        return idx < cut if end == 0 else idx > len(width) - 1 - cut

    # A forearm is one convex piece without fingers: a cut whose removed part is ragged or
    # shows more finger gaps than the kept part cut the fingers off (spread fingers make a
    # narrow section too).
    ends = [e for e in ends if _is_forearm(xs[~kept(e[1], e[2])], ys[~kept(e[1], e[2])],
                                           xs[kept(e[1], e[2])], ys[kept(e[1], e[2])], config)]
    if ends:
        _, end, cut = min(ends)
        return _largest_component(blob, kept(end, cut), xs, ys)
    if touches[0] == touches[1] or t.max() - t.min() > config.max_arm_length_m * px_per_m:
        return None
    hand_px = config.arm_hand_length_m * px_per_m
    keep = (t - t.min() <= hand_px) if touches[1] else (t.max() - t <= hand_px)
    if keep.all():
        return None
    return _largest_component(blob, keep, xs, ys)


def score_candidates(mask_left: np.ndarray, mask_right: np.ndarray, camera: StereoCamera,
                     config: RoiConfig | None = None, prior: Box | None = None,
                     disparity: np.ndarray | None = None) -> list[RoiCandidate]:
    """Score the largest left skin blobs (and their depth layers / hand ends) as hands.

    Args:
        mask_left, mask_right: (H, W) bool skin masks of the rectified pair.
        camera: the pair (fx, baseline and image size).
        config: settings.
        prior: optional ``(x0, y0, w, h)`` box where the hand is expected (tracking).
        disparity: optional (H, W) dense left disparity, px, 0 = unknown
            (:func:`dense_disparity`): blobs are split into depth layers and scored on
            protrusion. Without it each blob is one candidate and protrusion is 0.

    Returns:
        Candidates, best score first.
    """
    config = RoiConfig.resolve(config)
    expected = (camera.height, camera.width)
    if mask_left.shape != expected or mask_right.shape != expected:
        raise ValueError(f"masks must be {expected} (the camera size), got {mask_left.shape} "
                         f"and {mask_right.shape}")
    if disparity is not None and disparity.shape != expected:
        raise ValueError(f"disparity must be {expected} (the camera size), got "
                         f"{disparity.shape}")
    if prior is not None:
        prior = _check_box(prior, "prior")
    return _score(mask_left, mask_right, camera, config, prior, disparity,
                  _disparity_range(camera, config))


def _score(mask_left: np.ndarray, mask_right: np.ndarray, camera: StereoCamera,
           config: RoiConfig, prior: Box | None, disparity: np.ndarray | None,
           d_range: tuple[int, int]) -> list[RoiCandidate]:
    """:func:`score_candidates` on checked input, over the disparity range ``d_range``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask_left.astype(np.uint8),
                                                           connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")[:config.max_candidates] + 1
    ctx = _Context(mask_right, camera, config, prior, d_range, disparity, labels)
    out = []
    for i in order:
        x0, y0, w, h, _ = (int(v) for v in stats[i])
        blob = labels[y0:y0 + h, x0:x0 + w] == i
        if disparity is None:
            out.append(ctx.score(blob, x0, y0, i, None))
            out.extend(ctx.forearm(blob, x0, y0, i, out[-1]))
            continue
        layers = depth_layers(blob, disparity[y0:y0 + h, x0:x0 + w], camera.fx_baseline,
                              config)
        if not layers:
            out.append(ctx.score(blob, x0, y0, i, None))
            continue
        for layer, d in layers:
            # Fragments of one hand (dark creases, shadows) join when closer than a gap.
            k = 2 * int(round(_LAYER_GAP_M * min(camera.fx, camera.fy) * d
                              / camera.fx_baseline / 2)) + 1
            closed = cv2.morphologyEx(
                np.pad(layer, k).astype(np.uint8), cv2.MORPH_CLOSE,
                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))[k:-k, k:-k]
            _, lab, _, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
            lab = np.where(layer, lab, 0)
            area = np.bincount(lab.ravel())
            area[0] = 0
            for j in np.argsort(-area, kind="stable")[:_PIECES_PER_LAYER]:
                if area[j] < config.min_blob_area_px:
                    break
                ys, xs = np.nonzero(lab == j)
                px, py = int(xs.min()), int(ys.min())
                piece = lab[py:ys.max() + 1, px:xs.max() + 1] == j
                cand = ctx.score(piece, x0 + px, y0 + py, i, d)
                out.append(cand)
                out.extend(ctx.forearm(piece, x0 + px, y0 + py, i, cand))
    out.sort(key=lambda c: (-c.score, not c.forearm_cut))   # a tie: the hand end first
    return out


@dataclass
class _Context:
    """What scoring one blob needs besides the blob."""

    mask_right: np.ndarray
    camera: StereoCamera
    config: RoiConfig
    prior: Box | None
    d_range: tuple[int, int]
    disparity: np.ndarray | None
    labels: np.ndarray

    def score(self, blob: np.ndarray, x0: int, y0: int, parent: int, layer_d: float | None,
              forearm_cut: bool = False) -> RoiCandidate:
        config, camera = self.config, self.camera
        h, w = blob.shape
        d_min, d_max = self.d_range
        if layer_d is not None:   # search near the layer's disparity only
            tol = _layer_tolerance_px(layer_d, camera.fx_baseline, config)
            d_min = max(d_min, int(np.floor(layer_d - tol)))
            d_max = max(min(d_max, int(np.ceil(layer_d + tol))), d_min)
            # Match the whole skin component inside the piece's box: the layer's pixels alone
            # miss the skin whose dense disparity is unknown or noisy.
            match = self.labels[y0:y0 + h, x0:x0 + w] == parent
        else:
            match = blob
        disparity, iou = match_disparity(match, x0, y0, self.mask_right, d_min, d_max)
        stereo = iou >= config.min_stereo_iou and disparity > 0
        if not stereo and layer_d is not None:
            disparity, stereo = layer_d, True
        depth = camera.fx_baseline / disparity if stereo else 0.0
        size = max(w, h) * depth / min(camera.fx, camera.fy) if stereo else 0.0
        gaps = _finger_gaps(blob, config.finger_defect_frac * max(w, h))
        box = (x0 - 0.5, y0 - 0.5, float(w), float(h))   # pixel-edge convention
        prior_iou = box_iou(box, self.prior) if self.prior is not None else 0.0
        # Protrusion only for depth layers: a blob without dense disparity (flat colour, a
        # repetitive pattern) has no reliable surroundings to compare with.
        protrusion = (self._protrusion(blob, x0, y0, parent)
                      if stereo and layer_d is not None else 0.0)
        score = (config.weight_stereo * min(iou / config.good_stereo_iou, 1.0)
                 + config.weight_size * (_size_score(size, config) if stereo else 0.0)
                 + config.weight_fingers * gaps / _MAX_FINGER_GAPS
                 + config.weight_prior * prior_iou
                 + config.weight_protrusion * min(protrusion / config.good_behind_frac, 1.0))
        return RoiCandidate(box, int(blob.sum()), float(iou), disparity if stereo else 0.0,
                            float(depth), float(size), gaps, float(prior_iou), float(score),
                            float(protrusion), float(layer_d or 0.0), forearm_cut)

    def _protrusion(self, blob: np.ndarray, x0: int, y0: int, parent: int) -> float:
        """Fraction of the valid ring pixels behind the piece, both read on the dense
        disparity (the same measurement: the mask-matched disparity is biased by a few px,
        which is several cm at 1.5 m)."""
        if self.disparity is None:
            return 0.0
        h, w = blob.shape
        H, W = self.labels.shape
        own = self.disparity[y0:y0 + h, x0:x0 + w][blob]
        own = own[own > 0]
        if len(own) == 0:
            return 0.0
        d_piece = float(np.median(own))
        r = max(int(round(self.config.ring_width_frac * max(w, h))), _MIN_RING_PX)
        bx0, by0 = max(x0 - r, 0), max(y0 - r, 0)
        bx1, by1 = min(x0 + w + r, W), min(y0 + h + r, H)
        # Pixels within r of the blob (Euclidean): a distance transform costs O(pixels),
        # a dilation with a (2r+1)^2 disc O(pixels * r) (~90% of the search on a near hand).
        outside = np.full((by1 - by0, bx1 - bx0), 255, np.uint8)
        outside[y0 - by0:y0 - by0 + h, x0 - bx0:x0 - bx0 + w][blob] = 0
        near = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= r
        ring = near & (self.labels[by0:by1, bx0:bx1] != parent)
        values = self.disparity[by0:by1, bx0:bx1][ring]
        values = values[values > 0]
        if len(values) < _MIN_RING_PIXELS:
            return 0.0
        margin = _behind_margin_px(d_piece, self.camera.fx_baseline, self.config)
        return float((values <= d_piece - margin).mean())

    def forearm(self, blob: np.ndarray, x0: int, y0: int, parent: int,
                cand: RoiCandidate) -> list[RoiCandidate]:
        """The hand end of a too-long stereo blob (longer than ``max_hand_size_m``, or than
        ``arm_hand_length_m`` for an arm entering from the image border), as an extra
        candidate."""
        if not self.config.split_forearm or not cand.stereo_ok:
            return []
        h, w = blob.shape
        H, W = self.labels.shape
        border = (x0 == 0, y0 == 0, x0 + w == W, y0 + h == H)
        # An arm cut by the border is cut down to a hand once it is longer than one (a
        # border blob longer than an arm is something else).
        arm = any(border) and cand.size_m <= self.config.max_arm_length_m
        if cand.size_m <= (self.config.arm_hand_length_m if arm
                           else self.config.max_hand_size_m):
            return []
        px_per_m = min(self.camera.fx, self.camera.fy) / cand.depth_m
        piece = split_forearm(blob, px_per_m, self.config, border)
        if piece is None or piece.sum() < self.config.min_blob_area_px:
            return []
        ys, xs = np.nonzero(piece)
        py, px = ys.min(), xs.min()
        sub = piece[py:ys.max() + 1, px:xs.max() + 1]
        layer_d = cand.layer_disparity_px if cand.layer_disparity_px > 0 else None
        cut = self.score(sub, x0 + int(px), y0 + int(py), parent, layer_d, True)
        # The cut passed the wrist, border and forearm tests: its hand end is the same object
        # as the whole blob, only without the forearm, so it scores at least as the blob (a
        # fist or a hand seen end-on is shorter than min_hand_size_m).
        return [replace(cut, score=max(cut.score, cand.score))]


def _square(box: Box, margin_frac: float, min_side_px: float = 0.0) -> Box:
    x0, y0, w, h = box
    side = max(w, h, min_side_px) * (1.0 + 2.0 * margin_frac)
    cx, cy = x0 + w / 2, y0 + h / 2
    return (cx - side / 2, cy - side / 2, side, side)


def _hand_window(cand: RoiCandidate, camera: StereoCamera, config: RoiConfig) -> Box:
    """The square window of a chosen blob: its long side, at least ``min_window_size_m`` at
    its depth (a blob that is only part of the hand still gets a hand-sized window), plus
    the margin."""
    min_side = (config.min_window_size_m * min(camera.fx, camera.fy) / cand.depth_m
                if cand.stereo_ok and cand.depth_m > 0 else 0.0)
    return _square(cand.bbox_left, config.margin_frac, min_side)


def _masks(left: np.ndarray, right: np.ndarray, masks, skin_config):
    if masks is not None:
        if len(masks) != 2:
            raise ValueError("masks must be a (mask_left, mask_right) pair")
        return np.asarray(masks[0], bool), np.asarray(masks[1], bool)
    return skin_masks_stereo(left, right, skin_config)


def find_hand_roi(left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                  config: RoiConfig | None = None, skin_config: SkinConfig | None = None,
                  prior: Box | None = None,
                  masks: tuple[np.ndarray, np.ndarray] | None = None) -> HandRoi | None:
    """Find the hand in a rectified pair from skin blobs.

    With ``config.dense_stereo`` (and images given) a dense disparity splits the blobs into
    depth layers and scores their protrusion; with ``config.refine_skin`` (and no ``masks``
    given) the colour model is then refitted on the chosen blob in both views, the pair is
    re-segmented and searched again with the first result as the prior. With
    ``config.check_disparity`` (and images given) the chosen blob's disparity is measured again
    (:func:`local_disparity`) and replaced when the two differ by more than
    ``max_disparity_disagreement_px``; the window then follows the new depth.

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images (may be None with ``masks``: then
            no dense stereo and no refinement).
        camera: the pair.
        config: ROI settings.
        skin_config: skin-mask settings (ignored when ``masks`` is given).
        prior: optional box where the hand is expected (e.g. last frame's projected hand).
        masks: precomputed (mask_left, mask_right) skin masks.

    Returns:
        The hand's ROI, or None when no blob scores ``min_score``.
    """
    config = RoiConfig.resolve(config)
    have_images = isinstance(left, np.ndarray) and isinstance(right, np.ndarray)
    disparity = (dense_disparity(left, right, camera, config)
                 if config.dense_stereo and have_images else None)
    mask_l, mask_r = _masks(left, right, masks, skin_config)
    roi = _best_roi(mask_l, mask_r, camera, config, prior, disparity)
    if roi is not None and have_images and config.refine_skin and masks is None:
        refined = refine_skin_masks(left, right, roi, skin_config, config.refine_max_mahalanobis)
        roi2 = (None if refined is None
                else _best_roi(refined[0], refined[1], camera, config, prior, disparity))
        if roi2 is not None:
            roi, mask_l = roi2, refined[0]
    if roi is not None and have_images and config.check_disparity:
        roi = _checked_disparity(roi, left, right, camera, mask_l, config)
    return roi


def _checked(left: np.ndarray, right: np.ndarray, camera: StereoCamera, mask_left: np.ndarray,
             box: Box, disparity_px: float, config: RoiConfig) -> float:
    """``disparity_px`` (a mask match of the skin in ``box``), or :func:`local_disparity` when
    the two differ by more than ``max_disparity_disagreement_px``."""
    d = local_disparity(left, right, camera, mask_left, box, disparity_px, config)
    if d > 0 and abs(d - disparity_px) > config.max_disparity_disagreement_px:
        return d
    return disparity_px


def _checked_disparity(roi: HandRoi, left: np.ndarray, right: np.ndarray,
                       camera: StereoCamera, mask_left: np.ndarray, config: RoiConfig
                       ) -> HandRoi:
    """``roi`` with its candidate's disparity checked (:func:`_checked`); the candidate's depth
    and size and the window follow a replaced disparity."""
    cand = roi.candidate
    if cand is None or not cand.stereo_ok:
        return roi
    d = _checked(left, right, camera, mask_left, cand.bbox_left, cand.disparity_px, config)
    if d == cand.disparity_px:
        return roi
    depth = camera.fx_baseline / d
    _, _, w, h = cand.bbox_left
    cand = replace(cand, disparity_px=d, depth_m=depth,
                   size_m=max(w, h) * depth / min(camera.fx, camera.fy))
    return replace(roi, left=_hand_window(cand, camera, config), disparity_px=d, depth_m=depth,
                   candidate=cand)


def refine_skin_masks(left: np.ndarray, right: np.ndarray, roi: HandRoi,
                      skin_config: SkinConfig | None = None,
                      max_mahalanobis: float = 3.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Skin masks re-segmented with a colour model fitted on a chosen blob (both views).

    The model (:func:`hand_mesh_core.data.skin.fit_skin_model`) is fitted on the skin pixels
    of the candidate's box in the left image and of the box moved by its disparity in the
    right image; every pixel within ``max_mahalanobis`` (and ``Y >= y_min``) is skin, then the
    usual clean-up runs. This recovers hand pixels outside the fixed colour box (dark or
    strongly shaded skin) and drops skin-box colours far from this hand's.

    Args:
        left, right: (H, W, 3) uint8 RGB.
        roi: a skin ROI (its ``candidate`` gives the blob box and disparity).
        skin_config: morphology and ``y_min``.
        max_mahalanobis: radius of the refitted model.

    Returns:
        ``(mask_left, mask_right)`` (H, W) bool, or None without a candidate or skin pixels.
    """
    if not isinstance(roi, HandRoi):
        raise TypeError(f"roi must be a HandRoi, got {type(roi).__name__}")
    if max_mahalanobis <= 0:
        raise ValueError(f"max_mahalanobis must be > 0, got {max_mahalanobis}")
    if roi.candidate is None or not roi.candidate.stereo_ok:
        return None
    skin_config = skin_config if skin_config is not None else SkinConfig()
    base_l, base_r = skin_masks_stereo(left, right, skin_config)
    sel_l = _box_mask(base_l.shape, roi.candidate.bbox_left) & base_l
    sel_r = _box_mask(base_r.shape, roi.candidate.bbox_right) & base_r
    model = fit_skin_model([left, right], [sel_l, sel_r])
    if model is None:
        return None
    cfg = skin_config.replace(adaptive=True, adaptive_within_box=False,
                              adaptive_max_mahalanobis=max_mahalanobis)
    return skin_masks_stereo(left, right, cfg, model)


def _box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """Pixels whose centres lie in the ``(x0, y0, w, h)`` box."""
    H, W = shape
    x0, y0 = max(int(np.ceil(box[0])), 0), max(int(np.ceil(box[1])), 0)
    x1 = min(int(np.ceil(box[0] + box[2])), W)
    y1 = min(int(np.ceil(box[1] + box[3])), H)
    out = np.zeros(shape, bool)
    out[y0:y1, x0:x1] = True
    return out


def _best_roi(mask_l: np.ndarray, mask_r: np.ndarray, camera: StereoCamera, config: RoiConfig,
              prior: Box | None, disparity: np.ndarray | None) -> HandRoi | None:
    candidates = score_candidates(mask_l, mask_r, camera, config, prior, disparity)
    if not candidates or candidates[0].score < config.min_score:
        return None
    best = candidates[0]
    if best.stereo_ok:
        disparity_px, depth, matched = best.disparity_px, best.depth_m, True
    else:
        depth, matched = config.default_depth_m, False
        disparity_px = camera.fx_baseline / depth
    return HandRoi(_hand_window(best, camera, config), disparity_px, depth, best.score,
                   "skin", matched, best, tuple(candidates))


def roi_from_box(left: np.ndarray, right: np.ndarray, camera: StereoCamera, box: Box,
                 config: RoiConfig | None = None, skin_config: SkinConfig | None = None,
                 masks: tuple[np.ndarray, np.ndarray] | None = None) -> HandRoi:
    """An ROI from an external box (a detector's), with its disparity measured on skin.

    The window is the square around ``box`` (no extra margin: the detector's box is trusted).
    The disparity matches the left skin pixels inside the box against the right mask, checked
    on the images as in :func:`find_hand_roi` (``check_disparity``); when the match fails (IoU
    below ``min_stereo_iou``) it comes from ``config.default_depth_m``.

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images.
        camera: the pair.
        box: ``(x0, y0, w, h)`` of the hand in the left image, px.
        config, skin_config, masks: as in :func:`find_hand_roi`.
    """
    config = RoiConfig.resolve(config)
    box = _check_box(box, "box")
    mask_l, mask_r = _masks(left, right, masks, skin_config)
    H, W = mask_l.shape
    # Pixels whose centres lie in the box.
    x0, y0 = max(int(np.ceil(box[0])), 0), max(int(np.ceil(box[1])), 0)
    x1 = min(int(np.ceil(box[0] + box[2])), W)
    y1 = min(int(np.ceil(box[1] + box[3])), H)
    disparity, iou = 0.0, 0.0
    if x1 > x0 and y1 > y0:
        d_min, d_max = _disparity_range(camera, config)
        disparity, iou = match_disparity(mask_l[y0:y1, x0:x1], x0, y0, mask_r, d_min, d_max)
    matched = iou >= config.min_stereo_iou and disparity > 0
    if (matched and config.check_disparity and isinstance(left, np.ndarray)
            and isinstance(right, np.ndarray)):
        disparity = _checked(left, right, camera, mask_l, box, disparity, config)
    if matched:
        depth = camera.fx_baseline / disparity
    else:
        depth = config.default_depth_m
        disparity = camera.fx_baseline / depth
    return HandRoi(_square(box, 0.0), float(disparity), float(depth), float("inf"), "external",
                   matched)


def _check_pair(left: np.ndarray, right: np.ndarray, camera: StereoCamera) -> None:
    expected = (camera.height, camera.width, 3)
    for name, image in (("left", left), ("right", right)):
        if not isinstance(image, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
        if image.shape != expected or image.dtype != np.uint8:
            raise ValueError(f"{name} must be {expected} uint8 RGB (the camera size), got "
                             f"{image.shape} {image.dtype}")


def _scaled_skin_config(skin_config: SkinConfig | None, scale: int) -> SkinConfig:
    """Skin settings for images reduced ``scale`` times (kernels and areas in reduced px)."""
    cfg = skin_config if skin_config is not None else SkinConfig()
    if not isinstance(cfg, SkinConfig):
        raise TypeError(f"skin_config must be a SkinConfig, got {type(cfg).__name__}")
    if scale == 1:
        return cfg
    return _reduced_skin_config(cfg, scale)


@lru_cache(maxsize=_CONFIG_CACHE_SIZE)
def _reduced_roi_config(config: RoiConfig, scale: int) -> RoiConfig:
    """The fast path's settings on a window reduced ``scale`` times (cached: building a
    validated config costs ~0.3 ms, a tenth of the fast path)."""
    return config.replace(dense_stereo=False, refine_skin=False,
                          min_blob_area_px=max(1, round(config.min_blob_area_px / scale ** 2)))


@lru_cache(maxsize=_CONFIG_CACHE_SIZE)
def _without_prior(config: RoiConfig) -> RoiConfig:
    return config.replace(weight_prior=0.0)


@lru_cache(maxsize=_CONFIG_CACHE_SIZE)
def _reduced_skin_config(cfg: SkinConfig, scale: int) -> SkinConfig:
    # Odd kernels only: an even one has no centre and shifts the mask (OpenCV anchors it at
    # (k/2, k/2) for both erosion and dilation).
    return cfg.replace(open_kernel_px=(cfg.open_kernel_px // scale) | 1,
                       close_kernel_px=(cfg.close_kernel_px // scale) | 1,
                       min_area_px=round(cfg.min_area_px / scale ** 2))


def track_hand_roi(left: np.ndarray, right: np.ndarray, camera: StereoCamera, prior: Box,
                   config: RoiConfig | None = None, skin_config: SkinConfig | None = None,
                   prior_disparity_px: float | None = None) -> HandRoi | None:
    """Tracking fast path: find the hand only near where it was.

    The searched window is the square of side ``long side of prior * (1 + 2 *
    track_search_margin_frac)`` centred on ``prior``; the right image is read over the same rows
    and the columns that the disparity range can reach. Both are reduced
    ``config.track_downscale`` times (area filter), segmented (skin kernels and areas scaled
    to match) and scored with :func:`score_candidates` (stereo, size at depth, shape, overlap
    with the prior; no dense disparity, no refinement) on a camera of the window. The
    disparity searched is the whole depth range, or the prior's depth +-
    ``track_max_depth_change_m`` when ``prior_disparity_px`` is given. Metric cues (depth,
    size) are unchanged by the reduction; boxes and disparities are returned in full-image px.
    The disparity is not checked on the images (``check_disparity`` is the full search's):
    the fast path's gross errors are wrong blobs, which the check cannot fix, and it would add
    2-6 ms.

    About 1-3 ms at 640x480 for a hand of ~150 px (window 300 px, reduction 2) against
    50-100 ms for :func:`find_hand_roi`; it cannot find a hand that left the window, and a
    skin blob next to the hand can win: re-run the full search when this returns None and now
    and then (:class:`HandRoiTracker`).

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images of ``camera``'s size.
        camera: the pair.
        prior: ``(x0, y0, w, h)`` where the hand was (last blob box or projected mesh), px.
        config: ROI settings (``track_*``, depth and size ranges, score weights).
        skin_config: skin-mask settings at full resolution.
        prior_disparity_px: the hand's last disparity, px (> 0), or None.

    Returns:
        The ROI (``source`` "track", stereo matched), or None when no stereo-matched blob of
        the window scores ``min_score``.
    """
    config = RoiConfig.resolve(config)
    prior = _check_box(prior, "prior")
    _check_pair(left, right, camera)
    fb = camera.fx_baseline
    lo_z, hi_z = config.min_depth_m, config.max_depth_m
    if prior_disparity_px is not None:
        if not (np.isfinite(prior_disparity_px) and prior_disparity_px > 0):
            raise ValueError(f"prior_disparity_px must be finite and > 0 (or None), got "
                             f"{prior_disparity_px!r}")
        z = fb / float(prior_disparity_px)
        lo_z = max(lo_z, z - config.track_max_depth_change_m)
        hi_z = min(hi_z, z + config.track_max_depth_change_m)
        if lo_z >= hi_z:   # the prior lies outside the searched depth range
            return None
    s = config.track_downscale
    H, W = camera.height, camera.width
    side = max(prior[2], prior[3]) * (1.0 + 2.0 * config.track_search_margin_frac)
    cx, cy = prior[0] + prior[2] / 2, prior[1] + prior[3] / 2
    # Whole pixels whose centres lie in the window (pixel i covers [i - 0.5, i + 0.5)).
    x0 = max(int(np.ceil(cx - side / 2)), 0)
    y0 = max(int(np.ceil(cy - side / 2)), 0)
    x1 = min(int(np.floor(cx + side / 2)) + 1, W)
    y1 = min(int(np.floor(cy + side / 2)) + 1, H)
    d_max = int(np.ceil(fb / lo_z))
    c0 = max(x0 - d_max, 0)             # first canvas column: the right view's reach
    wc, hc = (x1 - c0) // s, (y1 - y0) // s
    if x1 - x0 < s or hc < 1:
        return None
    x1, y1 = c0 + wc * s, y0 + hc * s
    crops = [im[y0:y1, c0:x1] for im in (left, right)]
    if s > 1:
        crops = [cv2.resize(c, (wc, hc), interpolation=cv2.INTER_AREA) for c in crops]
    mask_l, mask_r = skin_masks_stereo(crops[0], crops[1], _scaled_skin_config(skin_config, s))
    mask_l[:, :(x0 - c0) // s] = False   # only blobs of the left window are candidates
    cam = StereoCamera(fx=camera.fx / s, fy=camera.fy / s, cx=(camera.cx - c0 + 0.5) / s - 0.5,
                       cy=(camera.cy - y0 + 0.5) / s - 0.5, baseline_m=camera.baseline_m,
                       width=wc, height=hc)
    cfg = _reduced_roi_config(config, s)
    d_range = (max(int(np.floor(cam.fx_baseline / hi_z)), 0),
               max(int(np.ceil(cam.fx_baseline / lo_z)), 1))   # as _disparity_range

    def to_canvas(b: Box) -> Box:
        return ((b[0] - c0 + 0.5) / s - 0.5, (b[1] - y0 + 0.5) / s - 0.5, b[2] / s, b[3] / s)

    def to_full(c: RoiCandidate) -> RoiCandidate:
        bx, by, bw, bh = c.bbox_left
        return replace(c, bbox_left=(c0 + (bx + 0.5) * s - 0.5, y0 + (by + 0.5) * s - 0.5,
                                     bw * s, bh * s),
                       area_px=c.area_px * s * s, disparity_px=c.disparity_px * s,
                       layer_disparity_px=c.layer_disparity_px * s)

    canvas_prior = to_canvas(prior)
    if canvas_prior[2] <= 0 or canvas_prior[3] <= 0:
        canvas_prior = None
    cands = [to_full(c) for c in _score(mask_l, mask_r, cam, cfg, canvas_prior, None, d_range)]
    cands = [c for c in cands if c.stereo_ok]
    if prior_disparity_px is not None:
        # A best match on the edge of the narrowed range is no peak: the hand's depth changed
        # more than allowed (or this is another blob); lost, let the full search decide.
        lo_d, hi_d = d_range
        cands = [c for c in cands if lo_d + _TRACK_EDGE_PX < c.disparity_px / s
                 < hi_d - _TRACK_EDGE_PX]
    if not cands or cands[0].score < config.min_score:
        return None
    best = cands[0]
    return HandRoi(_hand_window(best, camera, config), best.disparity_px,
                   best.depth_m, best.score, "track", True, best, tuple(cands))


def quick_hand_roi(left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                   config: RoiConfig | None = None,
                   skin_config: SkinConfig | None = None) -> HandRoi | None:
    """Quick acquisition: the tracking fast path (:func:`track_hand_roi`) over the whole image,
    without a prior.

    Reduced resolution (``track_downscale``), no dense disparity (no depth layers, no
    protrusion): about 4-6 ms at 640x480 against 30-100 ms for :func:`find_hand_roi`, and less
    accurate (synthetic ROI hits, 30 pairs, seed 7: 15 against 24 on target_lab, 26 against 25
    on source_studio). Meant to start tracking at once while a full search confirms.

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images of ``camera``'s size.
        camera: the pair.
        config: ROI settings (``weight_prior`` is ignored).
        skin_config: skin-mask settings at full resolution.

    Returns:
        The ROI (``source`` "quick", stereo matched) or None.
    """
    config = RoiConfig.resolve(config)
    # The window (a square of at least the prior's long side, same centre) covers the image.
    whole = (-0.5, -0.5, float(camera.width), float(camera.height))
    roi = track_hand_roi(left, right, camera, whole, _without_prior(config), skin_config)
    return None if roi is None else replace(roi, source="quick")


class HandRoiTracker:
    """Frame-to-frame ROI: a window around the last hand (:func:`track_hand_roi`), the whole
    image (:func:`find_hand_roi`, with the last hand's box as the prior) when the window holds
    no hand, when there is no last hand, or after ``full_every`` fast frames in a row.

    Args:
        camera: the pair.
        config: ROI settings.
        skin_config: skin-mask settings.
        full_every: fast frames in a row before a whole-image search (0: never fast, the
            previous behaviour; 1: full search every other frame ...).

    Attributes:
        prior: the last hand's blob box (None when lost), px.
        prior_disparity_px: its disparity, px (None when lost).
        fast_run: fast frames since the last whole-image search.
        last_source: "track", "skin" or "" (nothing found) for the last frame.
    """

    def __init__(self, camera: StereoCamera, config: RoiConfig | None = None,
                 skin_config: SkinConfig | None = None, full_every: int = 30) -> None:
        if isinstance(full_every, bool) or not isinstance(full_every, int) or full_every < 0:
            raise ValueError(f"full_every must be an int >= 0, got {full_every!r}")
        self.camera = camera
        self.config = RoiConfig.resolve(config)
        self.skin_config = skin_config
        self.full_every = full_every
        self.prior: Box | None = None
        self.prior_disparity_px: float | None = None
        self.fast_run = 0
        self.last_source = ""

    def set_prior(self, box: Box | None, disparity_px: float | None = None) -> None:
        """Use ``box`` (e.g. the bounding box of the projected mesh) as the next prior, with
        the hand's disparity when known."""
        self.prior = None if box is None else _check_box(box, "prior")
        if disparity_px is not None and not (np.isfinite(disparity_px) and disparity_px > 0):
            raise ValueError(f"disparity_px must be finite and > 0 (or None), got "
                             f"{disparity_px!r}")
        self.prior_disparity_px = None if box is None or disparity_px is None \
            else float(disparity_px)

    def __call__(self, left: np.ndarray, right: np.ndarray) -> HandRoi | None:
        """Find the hand; on success its blob box and disparity become the next prior."""
        roi = None
        if self.prior is not None and self.fast_run < self.full_every:
            roi = track_hand_roi(left, right, self.camera, self.prior, self.config,
                                 self.skin_config, self.prior_disparity_px)
        if roi is not None:
            self.fast_run += 1
        else:
            roi = find_hand_roi(left, right, self.camera, self.config, self.skin_config,
                                prior=self.prior)
            self.fast_run = 0
        self.last_source = "" if roi is None else roi.source
        if roi is None:
            self.prior = self.prior_disparity_px = None
        else:
            self.prior = roi.candidate.bbox_left
            self.prior_disparity_px = roi.disparity_px if roi.stereo_matched else None
        return roi


def _rect(img: np.ndarray, box: Box, color: tuple[int, int, int], thickness: int) -> None:
    x0, y0, w, h = box   # edges -> first and last covered pixel
    cv2.rectangle(img, (int(round(x0 + 0.5)), int(round(y0 + 0.5))),
                  (int(round(x0 + w - 0.5)), int(round(y0 + h - 0.5))), color, thickness)


def draw_hand_roi(left: np.ndarray, right: np.ndarray, masks: tuple[np.ndarray, np.ndarray],
                  roi: HandRoi | None, uv_left: np.ndarray | None = None,
                  uv_right: np.ndarray | None = None) -> np.ndarray:
    """Debug picture: both views side by side with the skin masks (blue), every candidate
    (yellow, with its score), the chosen windows (green) and optional points (red).

    Args:
        left, right: (H, W, 3) uint8 RGB.
        masks: (mask_left, mask_right), (H, W) bool.
        roi: the ROI (None: masks only).
        uv_left, uv_right: optional (N, 2) pixel coordinates, e.g. projected label joints.

    Returns:
        (H, 2W, 3) uint8 RGB.
    """
    views = []
    for k, (img, mask) in enumerate(zip((left, right), masks)):
        out = img.copy()
        tint = np.array(_MASK_RGB, np.float32)
        out[mask] = ((1 - _MASK_ALPHA) * out[mask] + _MASK_ALPHA * tint).astype(np.uint8)
        if roi is not None:
            for c in roi.candidates:
                if k == 1 and not c.stereo_ok:
                    continue
                box = c.bbox_left if k == 0 else c.bbox_right
                _rect(out, box, _CANDIDATE_RGB, 1)
                if k == 0:   # score above the box, or inside it at the top border
                    y_text = int(box[1]) - 4 if box[1] > _TEXT_HEIGHT_PX else int(box[1]) + 15
                    cv2.putText(out, f"{c.score:.2f}", (int(box[0]) + 3, y_text),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.45, _CANDIDATE_RGB, 1)
            _rect(out, roi.left if k == 0 else roi.right, _ROI_RGB, 2)
        uv = uv_left if k == 0 else uv_right
        if uv is not None:
            for u, v in np.asarray(uv, np.float64).reshape(-1, 2):
                cv2.circle(out, (int(round(u)), int(round(v))), 3, _JOINT_RGB, -1)
        views.append(out)
    return np.hstack(views)
