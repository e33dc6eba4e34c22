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

Known limit: a hand whose skin blob merges with a skin-coloured background region (or a bare
forearm) is scored as one blob, with a mixed disparity and a too-large size.

The best blob above ``min_score`` becomes a square window with a margin, and the right window is
the left one shifted by the matched disparity. An external ROI (a detector's box) can be given
instead; its disparity is measured the same way, falling back to a depth prior.

Boxes are ``(x0, y0, width, height)`` in full-image px, where ``(x0, y0)`` is the top-left
*edge* in pixel coordinates (the convention of :class:`hand_mesh_core.geometry.crop.
CropTransform`: pixel ``i`` covers ``[i - 0.5, i + 0.5)``, so the box of whole pixels
``x..x+w-1`` has ``x0 = x - 0.5``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from hand_mesh_core.data.config import RoiConfig, SkinConfig
from hand_mesh_core.data.skin import skin_masks_stereo
from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["Box", "RoiCandidate", "HandRoi", "match_disparity", "box_iou", "score_candidates",
           "find_hand_roi", "roi_from_box", "HandRoiTracker", "draw_hand_roi"]

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
        source: "skin" (chosen among blobs) or "external" (given box).
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


def _check_config(config: RoiConfig | None) -> RoiConfig:
    if config is None:
        return RoiConfig()
    if not isinstance(config, RoiConfig):
        raise TypeError(f"config must be a RoiConfig, got {type(config).__name__}")
    return config


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


def score_candidates(mask_left: np.ndarray, mask_right: np.ndarray, camera: StereoCamera,
                     config: RoiConfig | None = None, prior: Box | None = None
                     ) -> list[RoiCandidate]:
    """Score the largest left skin blobs as hands (see the module doc).

    Args:
        mask_left, mask_right: (H, W) bool skin masks of the rectified pair.
        camera: the pair (fx, baseline and image size).
        config: settings.
        prior: optional ``(x0, y0, w, h)`` box where the hand is expected (tracking).

    Returns:
        Candidates, best score first.
    """
    config = _check_config(config)
    expected = (camera.height, camera.width)
    if mask_left.shape != expected or mask_right.shape != expected:
        raise ValueError(f"masks must be {expected} (the camera size), got {mask_left.shape} "
                         f"and {mask_right.shape}")
    if prior is not None:
        prior = _check_box(prior, "prior")
    d_min, d_max = _disparity_range(camera, config)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask_left.astype(np.uint8),
                                                           connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")[:config.max_candidates] + 1
    out = []
    for i in order:
        x0, y0, w, h, _ = (int(v) for v in stats[i])
        blob = labels[y0:y0 + h, x0:x0 + w] == i
        out.append(_score_blob(blob, x0, y0, mask_right, camera, config, prior, d_min, d_max))
    out.sort(key=lambda c: -c.score)
    return out


def _score_blob(blob: np.ndarray, x0: int, y0: int, mask_right: np.ndarray,
                camera: StereoCamera, config: RoiConfig, prior: Box | None, d_min: int,
                d_max: int) -> RoiCandidate:
    h, w = blob.shape
    disparity, iou = match_disparity(blob, x0, y0, mask_right, d_min, d_max)
    stereo = iou >= config.min_stereo_iou and disparity > 0
    depth = camera.fx_baseline / disparity if stereo else 0.0
    size = max(w, h) * depth / min(camera.fx, camera.fy) if stereo else 0.0
    gaps = _finger_gaps(blob, config.finger_defect_frac * max(w, h))
    box = (x0 - 0.5, y0 - 0.5, float(w), float(h))   # pixel-edge convention
    prior_iou = box_iou(box, prior) if prior is not None else 0.0
    score = (config.weight_stereo * min(iou / config.good_stereo_iou, 1.0)
             + config.weight_size * (_size_score(size, config) if stereo else 0.0)
             + config.weight_fingers * gaps / _MAX_FINGER_GAPS
             + config.weight_prior * prior_iou)
    return RoiCandidate(box, int(blob.sum()), float(iou), disparity if stereo else 0.0,
                        float(depth), float(size), gaps, float(prior_iou), float(score))


def _square(box: Box, margin_frac: float) -> Box:
    x0, y0, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin_frac)
    cx, cy = x0 + w / 2, y0 + h / 2
    return (cx - side / 2, cy - side / 2, side, side)


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

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images.
        camera: the pair.
        config: ROI settings.
        skin_config: skin-mask settings (ignored when ``masks`` is given).
        prior: optional box where the hand is expected (e.g. last frame's projected hand).
        masks: precomputed (mask_left, mask_right) skin masks.

    Returns:
        The hand's ROI, or None when no blob scores ``min_score``.
    """
    config = _check_config(config)
    mask_l, mask_r = _masks(left, right, masks, skin_config)
    candidates = score_candidates(mask_l, mask_r, camera, config, prior)
    if not candidates or candidates[0].score < config.min_score:
        return None
    best = candidates[0]
    if best.stereo_ok:
        disparity, depth, matched = best.disparity_px, best.depth_m, True
    else:
        depth, matched = config.default_depth_m, False
        disparity = camera.fx_baseline / depth
    return HandRoi(_square(best.bbox_left, config.margin_frac), disparity, depth, best.score,
                   "skin", matched, best, tuple(candidates))


def roi_from_box(left: np.ndarray, right: np.ndarray, camera: StereoCamera, box: Box,
                 config: RoiConfig | None = None, skin_config: SkinConfig | None = None,
                 masks: tuple[np.ndarray, np.ndarray] | None = None) -> HandRoi:
    """An ROI from an external box (a detector's), with its disparity measured on skin.

    The window is the square around ``box`` (no extra margin: the detector's box is trusted).
    The disparity matches the left skin pixels inside the box against the right mask; when that
    fails (IoU below ``min_stereo_iou``) it comes from ``config.default_depth_m``.

    Args:
        left, right: (H, W, 3) uint8 RGB rectified images.
        camera: the pair.
        box: ``(x0, y0, w, h)`` of the hand in the left image, px.
        config, skin_config, masks: as in :func:`find_hand_roi`.
    """
    config = _check_config(config)
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
    if matched:
        depth = camera.fx_baseline / disparity
    else:
        depth = config.default_depth_m
        disparity = camera.fx_baseline / depth
    return HandRoi(_square(box, 0.0), float(disparity), float(depth), float("inf"), "external",
                   matched)


class HandRoiTracker:
    """Frame-to-frame ROI: the previous hand box (or a projection of the last mesh) is the prior.

    Args:
        camera: the pair.
        config: ROI settings.
        skin_config: skin-mask settings.
    """

    def __init__(self, camera: StereoCamera, config: RoiConfig | None = None,
                 skin_config: SkinConfig | None = None) -> None:
        self.camera = camera
        self.config = _check_config(config)
        self.skin_config = skin_config
        self.prior: Box | None = None

    def set_prior(self, box: Box | None) -> None:
        """Use ``box`` (e.g. the bounding box of the projected mesh) as the next prior."""
        self.prior = None if box is None else _check_box(box, "prior")

    def __call__(self, left: np.ndarray, right: np.ndarray) -> HandRoi | None:
        """Find the hand; on success its blob box becomes the next prior."""
        roi = find_hand_roi(left, right, self.camera, self.config, self.skin_config,
                            prior=self.prior)
        self.prior = roi.candidate.bbox_left if roi is not None else None
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
