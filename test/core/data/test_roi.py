"""Hand ROI: disparity matching, candidate scoring (stereo, size, prior), real STB pair."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.config import RoiConfig
from hand_mesh_core.data.roi import (
    HandRoiTracker, box_iou, dense_disparity, depth_layers, draw_hand_roi, find_hand_roi,
    local_disparity, match_disparity, quick_hand_roi, refine_skin_masks, roi_from_box,
    score_candidates, split_forearm, track_hand_roi,
)
from hand_mesh_core.geometry.camera import StereoCamera
from shared_data import STB_DIR as REAL

needs_real = pytest.mark.skipif(not (REAL / "images/B1Counting/BB_left_0.png").is_file(),
                                reason="real STB sample not available")
CAM = StereoCamera(fx=400.0, fy=400.0, cx=160.0, cy=120.0, baseline_m=0.1, width=320,
                   height=240)   # fx * B = 40 px*m: 0.5 m -> 80 px


FINGER_TOPS_PX = (14, 0, 6, 22)   # fingers of different lengths (a collinear hull has no gaps)


def _hand_blob():
    """A 120 x 80 px palm with four finger-like prongs (0.15 m tall at 0.5 m for CAM)."""
    m = np.zeros((120, 80), bool)
    m[60:, :] = True
    for k, top in enumerate(FINGER_TOPS_PX):
        m[top:60, 4 + k * 20: 16 + k * 20] = True
    return m


def _naive_iou(blob, x0, y0, right, d):
    h, w = blob.shape
    win = np.zeros_like(blob)
    for j in range(w):
        c = x0 - d + j
        if 0 <= c < right.shape[1]:
            win[:, j] = right[y0:y0 + h, c]
    inter = (blob & win).sum()
    return inter / max((blob | win).sum(), 1)


def test_match_disparity_matches_naive_reference():
    rng = np.random.default_rng(0)
    right = rng.random((50, 120)) < 0.3
    blob = rng.random((10, 15)) < 0.5
    x0, y0 = 70, 20
    d, iou = match_disparity(blob, x0, y0, right, 5, 90)
    ref = [_naive_iou(blob, x0, y0, right, dd) for dd in range(5, 91)]
    assert iou == pytest.approx(max(ref), abs=1e-6)
    assert abs(d - (5 + int(np.argmax(ref)))) <= 0.5


def test_match_disparity_recovers_a_shift_with_border_cut():
    blob = _hand_blob()
    right = np.zeros((240, 320), bool)
    right[100:220, 30:110] = blob             # left box at x0 = 100 -> d = 70
    d, iou = match_disparity(blob, 100, 100, right, 10, 200)
    assert iou == pytest.approx(1.0) and d == pytest.approx(70.0, abs=0.5)
    # A blob at d = 130 would start at x = -30 in the right image: the visible part only.
    right2 = np.zeros((240, 320), bool)
    right2[100:220, 0:50] = blob[:, 30:]
    d2, iou2 = match_disparity(blob, 100, 100, right2, 10, 200)
    assert iou2 == pytest.approx(blob[:, 30:].sum() / blob.sum(), abs=1e-6)
    assert d2 == pytest.approx(130.0, abs=0.5)
    assert match_disparity(np.zeros((3, 3), bool), 0, 0, right, 0, 5) == (0.0, 0.0)
    with pytest.raises(ValueError, match="d_min <= d_max"):
        match_disparity(blob, 100, 100, right, 50, 10)
    with pytest.raises(ValueError, match="outside"):
        match_disparity(blob, 300, 100, right, 0, 10)
    with pytest.raises(ValueError, match="2-D"):
        match_disparity(blob[None], 0, 0, right, 0, 10)


def _scene(hand_xy=(200, 60), hand_d=80, face_xy=(5, 40), face_right=False):
    """Masks with a hand at disparity hand_d (0.5 m) and a bigger blob cut by the border."""
    ml = np.zeros((240, 320), bool)
    mr = np.zeros((240, 320), bool)
    hx, hy = hand_xy
    ml[hy:hy + 120, hx:hx + 80] = _hand_blob()
    mr[hy:hy + 120, hx - hand_d:hx - hand_d + 80] = _hand_blob()
    fx, fy = face_xy
    ml[fy:fy + 130, fx:fx + 100] = True           # "face": larger than the hand
    if face_right:
        mr[fy:fy + 130, fx:fx + 10] = True        # its sliver left in the right view
    return ml, mr


def test_hand_chosen_over_larger_unmatched_face():
    ml, mr = _scene(face_right=True)
    roi = find_hand_roi(None, None, CAM, masks=(ml, mr))
    assert roi is not None and roi.source == "skin" and roi.stereo_matched
    assert roi.candidate.bbox_left == (199.5, 59.5, 80.0, 120.0)   # pixel edges
    assert roi.disparity_px == pytest.approx(80.0, abs=0.5)
    assert roi.depth_m == pytest.approx(0.5, rel=0.01)
    assert roi.candidate.size_m == pytest.approx(120 * 0.5 / 400, rel=0.01)
    assert roi.candidate.finger_gaps == 3
    face = roi.candidates[1]
    assert face.area_px > roi.candidate.area_px and not face.stereo_ok
    x0, y0, w, h = roi.left
    assert w == h == pytest.approx(120 * 1.3)
    assert roi.center_uv == pytest.approx((239.5, 119.5))   # centre of pixels 200..279
    assert roi.right == pytest.approx((x0 - roi.disparity_px, y0, w, h))


def test_size_at_depth_rejects_a_too_large_stereo_blob():
    # Two identical stereo-consistent blobs: 120 px at d = 10 px (4 m) is 1.2 m, far beyond
    # a hand; at d = 80 px (0.5 m) it is 0.15 m.
    cfg = RoiConfig(max_depth_m=5.0)
    ml = np.zeros((240, 320), bool)
    mr = np.zeros((240, 320), bool)
    ml[0:120, 40:120] = _hand_blob()
    mr[0:120, 30:110] = _hand_blob()              # d = 10 px
    ml[120:240, 220:300] = _hand_blob()
    mr[120:240, 140:220] = _hand_blob()           # d = 80 px
    cands = score_candidates(ml, mr, CAM, cfg)
    assert cands[0].bbox_left[:2] == (219.5, 119.5)
    assert cands[0].size_m == pytest.approx(0.15, rel=0.02)
    assert cands[1].size_m == pytest.approx(1.2, rel=0.02)
    assert cands[0].score - cands[1].score == pytest.approx(cfg.weight_size, abs=1e-6)


def test_prior_breaks_a_tie_and_tracker_keeps_it():
    ml = np.zeros((240, 320), bool)
    mr = np.zeros((240, 320), bool)
    for x in (100, 220):
        ml[60:180, x:x + 80] = _hand_blob()
        mr[60:180, x - 90:x - 10] = _hand_blob()   # d = 90 px
    for x in (100, 220):
        cands = score_candidates(ml, mr, CAM, prior=(x - 5, 55, 90, 130))
        assert cands[0].bbox_left[0] == x - 0.5 and cands[0].prior_iou > 0.5
        assert cands[0].score - cands[1].score == pytest.approx(
            RoiConfig().weight_prior * cands[0].prior_iou, abs=1e-5)
    tracker = HandRoiTracker(CAM)
    tracker.set_prior((215, 55, 90, 130))
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb_l, rgb_r = rgb.copy(), rgb.copy()
    rgb_l[ml] = (224, 172, 140)
    rgb_r[mr] = (224, 172, 140)
    roi = tracker(rgb_l, rgb_r)
    assert roi.candidate.bbox_left[0] == 219.5 and tracker.prior == roi.candidate.bbox_left
    assert tracker(rgb, rgb) is None and tracker.prior is None
    with pytest.raises(ValueError, match="prior"):
        tracker.set_prior((0, 0, -1, 5))


def test_no_hand_and_validation():
    empty = np.zeros((240, 320), bool)
    assert find_hand_roi(None, None, CAM, masks=(empty, empty)) is None
    ml, mr = _scene()
    with pytest.raises(ValueError, match="camera size"):
        score_candidates(ml[:10], mr, CAM)
    with pytest.raises(TypeError, match="RoiConfig"):
        find_hand_roi(None, None, CAM, config={"min_score": 1.0}, masks=(ml, mr))
    with pytest.raises(ValueError, match="pair"):
        find_hand_roi(None, None, CAM, masks=(ml,))
    with pytest.raises(ValueError, match="width, height > 0"):
        roi_from_box(None, None, CAM, (0, 0, 0, 10), masks=(ml, mr))
    with pytest.raises(ValueError, match=r"\(x0, y0, width, height\)"):
        roi_from_box(None, None, CAM, (0, 0, 10), masks=(ml, mr))
    with pytest.raises(ConfigError, match="min_depth_m"):
        RoiConfig(min_depth_m=3.0, max_depth_m=2.0)
    with pytest.raises(ConfigError, match="min_hand_size_m"):
        RoiConfig(min_hand_size_m=0.3, max_hand_size_m=0.2)


def test_external_box():
    ml, mr = _scene()
    roi = roi_from_box(None, None, CAM, (195, 55, 90, 130), masks=(ml, mr))
    assert roi.source == "external" and roi.stereo_matched
    assert roi.disparity_px == pytest.approx(80.0, abs=0.5)
    assert roi.left == pytest.approx((175.0, 55.0, 130.0, 130.0))   # square, same centre
    # A box on no skin: the depth prior.
    roi2 = roi_from_box(None, None, CAM, (150, 200, 30, 30), masks=(ml, mr))
    assert not roi2.stereo_matched and roi2.depth_m == RoiConfig().default_depth_m
    assert roi2.disparity_px == pytest.approx(CAM.fx_baseline / roi2.depth_m)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


@needs_real
def test_real_stb_roi_holds_the_hand_not_the_face():
    from hand_mesh_core.data.skin import skin_masks_stereo
    from hand_mesh_core.data.stb import StbDataset

    s = StbDataset(REAL)[0]
    masks = skin_masks_stereo(s.left, s.right)
    roi = find_hand_roi(s.left, s.right, s.camera, masks=masks)
    assert roi is not None and roi.stereo_matched
    assert 147.0 <= roi.disparity_px <= 149.0          # labels: 147-149 px
    assert 0.66 <= roi.depth_m <= 0.68                 # labels: 664-675 mm
    j = s.joints_m.astype(np.float64)
    uv_l = (j @ s.camera.K.T)[:, :2] / j[:, 2:]
    uv_r = uv_l.copy()
    uv_r[:, 0] -= s.camera.fx_baseline / j[:, 2]
    for (x0, y0, w, h), uv in ((roi.left, uv_l), (roi.right, uv_r)):
        assert ((uv[:, 0] >= x0) & (uv[:, 0] < x0 + w)
                & (uv[:, 1] >= y0) & (uv[:, 1] < y0 + h)).all()
    # The face: the subject's head at the left border, x < 155, y 110-345 (checked visually).
    assert box_iou(roi.left, (0, 110, 155, 235)) == 0.0
    # Every candidate on the face (it is split into depth layers) scores far below the hand.
    face = [c for c in roi.candidates if box_iou(c.bbox_left, (0, 110, 155, 235)) > 0]
    assert face and max(c.score for c in face) < roi.score - 1.0
    assert roi.candidate.behind_frac > 0.5                # the hand is in front of the room
    # Without dense stereo (the previous method) the hand is chosen too.
    old = find_hand_roi(s.left, s.right, s.camera, RoiConfig(dense_stereo=False), masks=masks)
    assert box_iou(old.left, roi.left) > 0.8
    # An external box around the hand measures the same disparity.
    ext = roi_from_box(s.left, s.right, s.camera, roi.candidate.bbox_left, masks=masks)
    assert ext.disparity_px == pytest.approx(roi.disparity_px, abs=0.5)


def test_draw_hand_roi():
    ml, mr = _scene(face_right=True)
    rgb = np.full((240, 320, 3), 50, np.uint8)
    roi = find_hand_roi(None, None, CAM, masks=(ml, mr))
    img = draw_hand_roi(rgb, rgb, (ml, mr), roi, np.array([[240.0, 120.0]]),
                        np.array([[160.0, 120.0]]))
    assert img.shape == (240, 640, 3)
    x0, y0, w, _ = (int(round(v)) for v in roi.left)
    assert tuple(img[y0 + 5, x0]) == (0, 255, 0)                  # chosen window, left
    assert tuple(img[120, 240]) == (255, 0, 0)                    # point, left
    assert tuple(img[120, 320 + 160]) == (255, 0, 0)              # point, right
    assert cv2.countNonZero((img[..., 1] == 255).astype(np.uint8)) > 0


# --- dense stereo, depth layers, protrusion, forearm split -------------------------------------

SKIN_RGB = np.array((224, 172, 140), np.float64)   # inside the Chai & Ngan box (test_skin.py)
BG_D, HAND_D = 30, 80                                # px: 1.33 m and 0.5 m for CAM


def _texture(rng, h, w, base, amp):
    """Blocky random texture (2 px cells, matchable after the 2x reduction) around ``base``."""
    cells = rng.uniform(-amp, amp, size=(h // 2 + 1, w // 2 + 1, 3))
    tex = np.repeat(np.repeat(cells, 2, 0), 2, 1)[:h, :w]
    return np.clip(np.asarray(base, np.float64) + tex, 0, 255).astype(np.uint8)


def _stereo_scene(seed=0, patch=True):
    """A textured blue wall at d = 30 px, a textured hand at d = 80 px in front of it and,
    optionally, a skin-coloured patch painted on the wall (coplanar, hand-sized at 1.33 m)."""
    rng = np.random.default_rng(seed)
    wall = _texture(rng, 240, 320 + BG_D, (60, 90, 170), 50)
    if patch:   # 45 px at 1.33 m = 0.15 m, like the hand
        wall[20:65, 60:105] = _texture(rng, 45, 45, SKIN_RGB, 12)
    left, right = wall[:, :320].copy(), wall[:, BG_D:].copy()   # right(x - d) = left(x)
    hand = _hand_blob()
    tex = _texture(rng, 120, 80, SKIN_RGB, 12)
    left[100:220, 200:280][hand] = tex[hand]
    right[100:220, 200 - HAND_D:280 - HAND_D][hand] = tex[hand]
    return left, right


def test_dense_disparity_recovers_two_planes():
    left, right = _stereo_scene(patch=False)
    d = dense_disparity(left, right, CAM)
    assert d.shape == (240, 320) and d.dtype == np.float32
    hand = np.zeros((240, 320), bool)
    hand[100:220, 200:280] = _hand_blob()
    inner = cv2.erode(hand.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert np.median(d[inner]) == pytest.approx(HAND_D, abs=1.0)
    wall = d[10:90, 40:190]                       # left part: needs the left padding
    assert (wall > 0).mean() > 0.9 and np.median(wall[wall > 0]) == pytest.approx(BG_D, abs=1.0)
    with pytest.raises(ValueError, match="camera size"):
        dense_disparity(left[:10], right, CAM)
    with pytest.raises(TypeError, match="numpy array"):
        dense_disparity(None, right, CAM)


def test_depth_layers_split_two_depths_and_fill_unknown():
    fb = CAM.fx_baseline
    blob = np.ones((40, 100), bool)
    disp = np.zeros((40, 100), np.float32)
    disp[:, :60] = 80.0          # 0.5 m: tolerance 80^2 * 0.1 / 40 = 16 px
    disp[:, 70:] = 30.0          # 1.33 m: tolerance 2.25 px
    disp[:, 60:63] = 0.0         # unknown, next to the near layer: joins it
    layers = depth_layers(blob, disp, fb, RoiConfig(min_blob_area_px=100))
    assert [round(d) for _, d in layers] == [80, 30]
    near, far = layers[0][0], layers[1][0]
    assert near[:, :63].all() and not near[:, 70:].any()
    assert far[:, 70:].all() and not far[:, :60].any()
    # Tolerance follows the depth: 80 +- 16 px is one layer.
    disp2 = np.where(np.arange(100) < 50, 70.0, 90.0).astype(np.float32)[None].repeat(40, 0)
    assert len(depth_layers(blob, disp2, fb, RoiConfig(min_blob_area_px=100))) == 1
    with pytest.raises(ValueError, match="same"):
        depth_layers(blob, disp[:5], fb)
    with pytest.raises(ValueError, match="fx_baseline"):
        depth_layers(blob, disp, 0.0)


def _arm_blob(hand_up=True):
    """Vertical hand (palm 80 px wide + fingers) on a 50 px wide, 200 px long forearm."""
    hand = _hand_blob()                                # 120 x 80: fingers up
    m = np.zeros((320, 80), bool)
    m[:120] = hand
    m[120:, 15:65] = True                              # forearm: narrower than the palm
    return m if hand_up else m[::-1]


def test_split_forearm_cuts_at_the_wrist():
    px_per_m = 800.0                                   # 0.1 m = 80 px
    cfg = RoiConfig()
    for hand_up in (True, False):
        blob = _arm_blob(hand_up)
        piece = split_forearm(blob, px_per_m, cfg)
        rows = np.nonzero(piece.any(axis=1))[0]
        if hand_up:
            assert rows.min() == 0 and 112 <= rows.max() <= 135   # wrist at row 120
        else:
            assert rows.max() == 319 and 184 <= rows.min() <= 207
        assert not piece[~blob].any()
    # The end at the image border is the forearm even when its profile looks like a wrist.
    blob = _arm_blob(True)
    piece = split_forearm(blob, px_per_m, cfg, border=(False, True, False, False))
    assert piece is None or not piece[0].any()
    # A uniform bar has no wrist.
    assert split_forearm(np.ones((300, 50), bool), px_per_m, cfg) is None
    with pytest.raises(ValueError, match="px_per_m"):
        split_forearm(blob, 0.0, cfg)
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        split_forearm(blob[None], px_per_m, cfg)


def test_hand_in_front_beats_a_coplanar_skin_patch():
    left, right = _stereo_scene(patch=True)
    roi = find_hand_roi(left, right, CAM)
    assert roi is not None and roi.candidate.layer_disparity_px > 0
    assert roi.disparity_px == pytest.approx(HAND_D, abs=1.0)
    assert box_iou(roi.candidate.bbox_left, (199.5, 99.5, 80, 120)) > 0.8
    patch = [c for c in roi.candidates if box_iou(c.bbox_left, (59.5, 19.5, 45, 45)) > 0.5]
    assert patch and patch[0].size_m == pytest.approx(0.15, rel=0.1)   # hand-sized
    assert roi.candidate.behind_frac > 0.6 and patch[0].behind_frac < 0.2   # 0.74, 0.0
    cfg = RoiConfig()
    assert roi.score - patch[0].score >= cfg.weight_protrusion * 0.7
    # Refinement keeps the hand.
    roi2 = find_hand_roi(left, right, CAM, RoiConfig(refine_skin=True))
    assert box_iou(roi2.left, roi.left) > 0.8


def _hand_mask(x0=200):
    mask = np.zeros((240, 320), bool)
    mask[100:220, x0:x0 + 80] = _hand_blob()
    return mask


@pytest.mark.parametrize("start_px", [66.0, 80.0, 94.0])
def test_local_disparity_recovers_the_hand_from_a_start_within_its_layer(start_px):
    # The layer's span at d = 80 px for CAM: 80^2 * 0.1 / 40 = 16 px each side.
    left, right = _stereo_scene(patch=False)
    d = local_disparity(left, right, CAM, _hand_mask(), (199.5, 99.5, 80.0, 120.0), start_px)
    assert d == pytest.approx(HAND_D, abs=0.25)


def test_local_disparity_near_the_left_border_pads_the_search():
    # Shift the pair 150 columns left (a rectified pair stays one): the hand's box starts at
    # x = 50, fewer columns than the search reaches to its left.
    left, right = _stereo_scene(patch=False)
    c = 150
    left2, right2 = (np.concatenate([im[:, c:], np.zeros((240, c, 3), np.uint8)], 1)
                     for im in (left, right))
    mask = np.concatenate([_hand_mask()[:, c:], np.zeros((240, c), bool)], 1)
    d = local_disparity(left2, right2, CAM, mask, (199.5 - c, 99.5, 80.0, 120.0), 78.0)
    assert d == pytest.approx(HAND_D, abs=0.25)


def test_local_disparity_without_skin_and_validation():
    left, right = _stereo_scene(patch=False)
    mask = _hand_mask()
    box = (199.5, 99.5, 80.0, 120.0)
    assert local_disparity(left, right, CAM, np.zeros_like(mask), box, 80.0) == 0.0
    few = np.zeros_like(mask)
    few[150, 240:260] = True                              # 20 px < the 30 needed
    assert local_disparity(left, right, CAM, few, box, 80.0) == 0.0
    with pytest.raises(ValueError, match="mask_left must be"):
        local_disparity(left, right, CAM, mask[:10], box, 80.0)
    for bad in (0.0, -3.0, float("nan")):
        with pytest.raises(ValueError, match="disparity_px must be finite and > 0"):
            local_disparity(left, right, CAM, mask, box, bad)
    with pytest.raises(ValueError, match="camera size"):
        local_disparity(left[:10], right, CAM, mask, box, 80.0)


def test_find_hand_roi_replaces_a_wrong_mask_match_with_the_local_disparity():
    # The right mask puts the hand 15 px too far left (a skin mask merged with a neighbour,
    # or a periodic match): the mask match says 95 px, the images say 80 px.
    left, right = _stereo_scene(patch=False)
    ml = _hand_mask()
    wrong = _hand_mask(200 - 95)
    off = find_hand_roi(left, right, CAM, RoiConfig(check_disparity=False), masks=(ml, wrong))
    assert off.disparity_px == pytest.approx(95.0, abs=0.5)
    roi = find_hand_roi(left, right, CAM, masks=(ml, wrong))
    assert roi.disparity_px == pytest.approx(HAND_D, abs=0.25)
    assert roi.candidate.disparity_px == roi.disparity_px
    assert roi.depth_m == pytest.approx(CAM.fx_baseline / roi.disparity_px)
    _, _, w, h = roi.candidate.bbox_left
    assert roi.candidate.size_m == pytest.approx(max(w, h) * roi.depth_m / CAM.fx)
    # The window follows the depth (min_window_size_m at 0.5 m, not at 0.42 m), same centre.
    side = RoiConfig().min_window_size_m * CAM.fx / roi.depth_m * (1 + 2 * RoiConfig().margin_frac)
    assert roi.left[2] == pytest.approx(side)
    assert roi.center_uv == pytest.approx(off.center_uv)
    # Within max_disparity_disagreement_px the mask match stays.
    near = find_hand_roi(left, right, CAM, masks=(ml, _hand_mask(200 - 83)))
    assert near.disparity_px == pytest.approx(83.0, abs=0.5)
    loose = RoiConfig(max_disparity_disagreement_px=20.0)
    assert find_hand_roi(left, right, CAM, loose, masks=(ml, wrong)).disparity_px == \
        pytest.approx(95.0, abs=0.5)
    # Masks only (no images): nothing to check against.
    assert find_hand_roi(None, None, CAM, masks=(ml, wrong)).disparity_px == \
        pytest.approx(95.0, abs=0.5)
    # An external box is checked the same way.
    box = (195, 95, 90, 130)
    ext = roi_from_box(left, right, CAM, box, masks=(ml, wrong))
    assert ext.disparity_px == pytest.approx(HAND_D, abs=0.25)
    assert ext.depth_m == pytest.approx(CAM.fx_baseline / ext.disparity_px)
    for cfg, images in ((RoiConfig(check_disparity=False), (left, right)),
                        (RoiConfig(), (None, None))):
        unchecked = roi_from_box(*images, CAM, box, cfg, masks=(ml, wrong))
        assert unchecked.disparity_px == pytest.approx(95.0, abs=0.5)
    with pytest.raises(ConfigError, match="max_disparity_disagreement_px"):
        RoiConfig(max_disparity_disagreement_px=0.0)


def test_forearm_split_gives_a_hand_candidate_with_masks_only():
    # 320 px long blob at d = 80 px (0.5 m): 0.4 m, too long; its hand end is 0.15 m.
    ml = np.zeros((480, 320), bool)
    mr = np.zeros((480, 320), bool)
    cam = StereoCamera(fx=400.0, fy=400.0, cx=160.0, cy=240.0, baseline_m=0.1, width=320,
                       height=480)
    ml[100:420, 200:280] = _arm_blob()
    mr[100:420, 120:200] = _arm_blob()
    cands = score_candidates(ml, mr, cam)
    cut = [c for c in cands if c.forearm_cut]
    assert len(cut) == 1 and cands[0] is cut[0]
    assert cut[0].size_m == pytest.approx(0.15, abs=0.02)
    full = [c for c in cands if not c.forearm_cut][0]
    assert full.size_m == pytest.approx(0.4, rel=0.02)
    off = score_candidates(ml, mr, cam, RoiConfig(split_forearm=False))
    assert len(off) == 1 and not off[0].forearm_cut


def test_refine_skin_masks_and_new_validation():
    left, right = _stereo_scene(patch=False)
    roi = find_hand_roi(left, right, CAM)
    ml, mr = refine_skin_masks(left, right, roi)
    hand = np.zeros((240, 320), bool)
    hand[100:220, 200:280] = _hand_blob()
    assert (ml & hand).sum() / hand.sum() > 0.95 and (ml & ~hand).sum() < 0.02 * hand.sum()
    with pytest.raises(TypeError, match="HandRoi"):
        refine_skin_masks(left, right, (0, 0, 1, 1))
    with pytest.raises(ValueError, match="max_mahalanobis"):
        refine_skin_masks(left, right, roi, max_mahalanobis=0.0)
    ext = roi_from_box(left, right, CAM, (200, 100, 80, 120))
    assert refine_skin_masks(left, right, ext) is None      # no candidate to fit on
    with pytest.raises(ValueError, match="disparity must be"):
        score_candidates(ml, mr, CAM, disparity=np.zeros((5, 5), np.float32))
    with pytest.raises(ConfigError, match="wrist_distance_m"):
        RoiConfig(wrist_distance_m=(0.2, 0.1))
    with pytest.raises(ConfigError, match="stereo_downscale"):
        RoiConfig(stereo_downscale=3)


# ------------------------------------------------------------------ tracking fast path
#: A wide camera (fx B = 40 px m) so that a distractor hand fits outside the tracked window.
WIDE = StereoCamera(fx=400.0, fy=400.0, cx=319.5, cy=119.5, baseline_m=0.1, width=640,
                    height=240)
SKIN_RGB = (224, 172, 140)


def _rgb_pair(hands, cam=WIDE):
    """RGB pair (dark background) with a hand blob at each (x, y, disparity)."""
    left = np.full((cam.height, cam.width, 3), 20, np.uint8)
    right = left.copy()
    blob = _hand_blob()
    for x, y, d in hands:
        left[y:y + 120, x:x + 80][blob] = SKIN_RGB
        right[y:y + 120, x - d:x - d + 80][blob] = SKIN_RGB
    return left, right


def test_track_hand_roi_equals_the_full_search_in_its_window():
    # Same scene, no dense stereo: at reduction 1 the fast path scores the same blob, so box,
    # disparity and score agree with find_hand_roi; at reduction 2 to within a reduced pixel.
    left, right = _rgb_pair([(200, 60, 80)])
    prior = (195.0, 55.0, 90.0, 130.0)
    base = RoiConfig(dense_stereo=False)
    full = find_hand_roi(left, right, WIDE, base, prior=prior)
    fast1 = track_hand_roi(left, right, WIDE, prior, base.replace(track_downscale=1))
    assert fast1.source == "track" and full.source == "skin"
    assert fast1.candidate.bbox_left == full.candidate.bbox_left == (199.5, 59.5, 80.0, 120.0)
    assert fast1.disparity_px == pytest.approx(full.disparity_px, abs=1e-6)
    assert fast1.score == pytest.approx(full.score, abs=1e-6)
    assert fast1.left == pytest.approx(full.left)
    for scale in (2, 4):
        fast = track_hand_roi(left, right, WIDE, prior, base.replace(track_downscale=scale),
                              prior_disparity_px=80.0)
        assert np.allclose(fast.candidate.bbox_left, full.candidate.bbox_left, atol=scale)
        assert fast.disparity_px == pytest.approx(80.0, abs=scale / 2)
        assert fast.depth_m == pytest.approx(0.5, rel=0.02)


def test_tracker_follows_a_moving_hand_and_ignores_a_hand_outside_its_window():
    tracker = HandRoiTracker(WIDE, full_every=100)
    tracker.set_prior((95.0, 35.0, 90.0, 130.0), 80.0)
    for k in range(12):
        x, y = 100 + 14 * k, 40 + 4 * k              # 14 px right, 4 px down per frame
        # A larger, equally stereo-consistent "hand" on the right stays out of the window.
        left, right = _rgb_pair([(x, y, 80), (540, 100, 80)])
        roi = tracker(left, right)
        assert roi is not None and roi.source == "track", k
        assert np.allclose(roi.candidate.bbox_left, (x - 0.5, y - 0.5, 80, 120), atol=2.0), k
        assert roi.disparity_px == pytest.approx(80.0, abs=1.0)
        assert tracker.prior == roi.candidate.bbox_left and tracker.fast_run == k + 1
        assert all(c.bbox_left[0] < 500 for c in roi.candidates)   # never saw the other


def test_tracker_redetects_after_a_jump_and_after_loss():
    tracker = HandRoiTracker(WIDE, full_every=100)
    left, right = _rgb_pair([(100, 60, 80)])
    assert tracker(left, right).source == "skin" and tracker.last_source == "skin"
    assert tracker(left, right).source == "track" and tracker.fast_run == 1
    # The hand jumps out of the window: the window holds nothing, the whole image is searched.
    left, right = _rgb_pair([(480, 80, 80)])
    assert track_hand_roi(left, right, WIDE, tracker.prior) is None
    roi = tracker(left, right)
    assert roi.source == "skin" and tracker.fast_run == 0
    assert roi.candidate.bbox_left == (479.5, 79.5, 80.0, 120.0)
    assert tracker(left, right).source == "track"
    # Lost: nothing anywhere -> None, no prior; the hand's return is found by a full search.
    dark = np.full((240, 640, 3), 20, np.uint8)
    assert tracker(dark, dark) is None and tracker.prior is None
    assert tracker.prior_disparity_px is None and tracker.last_source == ""
    left, right = _rgb_pair([(300, 60, 80)])
    assert tracker(left, right).source == "skin"


def test_tracker_full_search_every_n_and_a_depth_jump():
    left, right = _rgb_pair([(200, 60, 80)])
    tracker = HandRoiTracker(WIDE, full_every=2)
    sources = [tracker(left, right).source for _ in range(7)]
    assert sources == ["skin", "track", "track", "skin", "track", "track", "skin"]
    never = HandRoiTracker(WIDE, full_every=0)
    assert [never(left, right).source for _ in range(3)] == ["skin"] * 3
    # The hand is at 0.5 m (d = 80 px). A prior at 0.4 m (d = 100 px) searches 0.25-0.55 m
    # (default +- 0.15 m) and finds it; a prior at 0.25 m searching +- 0.05 m (d >= 133 px)
    # only sees the blob's overlaps with itself moved by >= 53 px (IoU < min_stereo_iou, or
    # best on the range's edge): lost, the full search decides.
    assert track_hand_roi(left, right, WIDE, (195, 55, 90, 130),
                          prior_disparity_px=100.0).disparity_px == pytest.approx(80, abs=1)
    tight = RoiConfig(track_max_depth_change_m=0.05)
    assert track_hand_roi(left, right, WIDE, (195, 55, 90, 130), tight,
                          prior_disparity_px=160.0) is None
    assert track_hand_roi(left, right, WIDE, (195, 55, 90, 130), tight,
                          prior_disparity_px=84.0).disparity_px == pytest.approx(80, abs=1)
    # A solid block has no second IoU peak: narrowed to 0.35-0.45 m, its best match lies on
    # the range's edge (d = 88.9 px, IoU > min_stereo_iou) and is refused as no peak.
    block_l = np.full((240, 640, 3), 20, np.uint8)
    block_r = block_l.copy()
    block_l[60:180, 200:280] = SKIN_RGB
    block_r[60:180, 120:200] = SKIN_RGB
    assert track_hand_roi(block_l, block_r, WIDE, (195, 55, 90, 130), tight,
                          prior_disparity_px=100.0) is None
    assert track_hand_roi(block_l, block_r, WIDE, (195, 55, 90, 130),
                          prior_disparity_px=100.0).disparity_px == pytest.approx(80, abs=1)
    # A prior depth outside [min_depth_m, max_depth_m] +- the change: nothing to search.
    assert track_hand_roi(left, right, WIDE, (195, 55, 90, 130),
                          prior_disparity_px=4.0) is None


def test_track_hand_roi_validation():
    left, right = _rgb_pair([(200, 60, 80)])
    prior = (195.0, 55.0, 90.0, 130.0)
    with pytest.raises(ValueError, match="width, height > 0"):
        track_hand_roi(left, right, WIDE, (0, 0, 0, 10))
    with pytest.raises(ValueError, match="prior_disparity_px"):
        track_hand_roi(left, right, WIDE, prior, prior_disparity_px=0.0)
    with pytest.raises(ValueError, match="prior_disparity_px"):
        track_hand_roi(left, right, WIDE, prior, prior_disparity_px=float("nan"))
    with pytest.raises(ValueError, match="camera size"):
        track_hand_roi(left[:100], right, WIDE, prior)
    with pytest.raises(TypeError, match="numpy array"):
        track_hand_roi(left, None, WIDE, prior)
    with pytest.raises(TypeError, match="RoiConfig"):
        track_hand_roi(left, right, WIDE, prior, config={"track_downscale": 2})
    with pytest.raises(TypeError, match="SkinConfig"):
        track_hand_roi(left, right, WIDE, prior, skin_config={"y_min": 3})
    with pytest.raises(ValueError, match="full_every"):
        HandRoiTracker(WIDE, full_every=-1)
    with pytest.raises(ValueError, match="full_every"):
        HandRoiTracker(WIDE, full_every=True)
    with pytest.raises(ValueError, match="disparity_px"):
        HandRoiTracker(WIDE).set_prior(prior, -3.0)
    with pytest.raises(ConfigError, match="track_downscale"):
        RoiConfig(track_downscale=3)
    # A prior entirely outside the image: an empty window, no hand.
    assert track_hand_roi(left, right, WIDE, (5000.0, 10.0, 20.0, 20.0)) is None


def test_quick_hand_roi_searches_the_whole_image_without_a_prior():
    # A hand far right and a larger "face" on the left border that the right view misses.
    left, right = _rgb_pair([(520, 80, 80)])
    left[20:150, 0:100] = SKIN_RGB
    right[20:150, 0:10] = SKIN_RGB
    roi = quick_hand_roi(left, right, WIDE)
    assert roi.source == "quick" and roi.stereo_matched
    assert np.allclose(roi.candidate.bbox_left, (519.5, 79.5, 80, 120), atol=2.0)
    assert roi.disparity_px == pytest.approx(80.0, abs=1.0)
    # = the fast path over a whole-image window with the prior's weight off
    whole = track_hand_roi(left, right, WIDE, (-0.5, -0.5, 640.0, 240.0),
                           RoiConfig(weight_prior=0.0))
    assert roi.score == pytest.approx(whole.score) and roi.left == pytest.approx(whole.left)
    assert roi.score < track_hand_roi(left, right, WIDE, (-0.5, -0.5, 640.0, 240.0)).score
    dark = np.full((240, 640, 3), 20, np.uint8)
    assert quick_hand_roi(dark, dark, WIDE) is None
    with pytest.raises(TypeError, match="RoiConfig"):
        quick_hand_roi(left, right, WIDE, config=3)


# ------------------------------------------------- issue 5/6: protrusion, window, wrist cut
def test_protrusion_needs_a_disparity_margin_in_px_on_a_far_wall():
    # A skin patch on a wall at 1.33 m (d = 30 px) whose dense disparity reads 3 px nearer
    # than its surroundings (SGBM bias): in metres that is 0.12 m in front (> behind_margin_m)
    # but within behind_margin_px, so it does not protrude; a hand 50 px nearer does.
    ml = np.zeros((240, 320), bool)
    ml[40:85, 40:85] = True                                  # the patch (45 px = 0.15 m)
    ml[100:220, 200:280] = _hand_blob()                      # the hand at d = 80 px
    mr = np.zeros_like(ml)
    mr[40:85, 40 - BG_D:85 - BG_D] = True
    mr[100:220, 200 - HAND_D:280 - HAND_D] = _hand_blob()
    disp = np.full((240, 320), float(BG_D), np.float32)
    disp[40:85, 40:85] = BG_D + 3.0
    disp[100:220, 200:280][_hand_blob()] = HAND_D
    cfg = RoiConfig()
    assert CAM.fx_baseline / BG_D - CAM.fx_baseline / (BG_D + 3) > cfg.behind_margin_m
    cands = score_candidates(ml, mr, CAM, cfg, disparity=disp)
    patch = [c for c in cands if c.bbox_left[:2] == (39.5, 39.5)][0]
    hand = [c for c in cands if c.bbox_left[:2] == (199.5, 99.5)][0]
    assert patch.behind_frac == 0.0 and hand.behind_frac == pytest.approx(1.0)
    assert cands[0] is hand
    # Without the px margin the patch would protrude: the cue reads the dense map itself.
    loose = score_candidates(ml, mr, CAM, cfg.replace(behind_margin_px=0.0), disparity=disp)
    assert [c for c in loose if c.bbox_left[:2] == (39.5, 39.5)][0].behind_frac == 1.0
    with pytest.raises(ConfigError, match="behind_margin_px"):
        RoiConfig(behind_margin_px=-1.0)


def test_window_is_at_least_min_window_size_at_the_hand_depth():
    # A 40 x 30 px stereo blob at d = 80 px (0.5 m): 0.05 m, a piece of a hand (shadowed
    # skin). Its window is 0.15 m at 0.5 m = 120 px (+ margin), centred on the blob.
    ml = np.zeros((240, 320), bool)
    ml[100:130, 200:240] = True
    mr = np.zeros_like(ml)
    mr[100:130, 120:160] = True
    cfg = RoiConfig(min_score=0.5)
    roi = find_hand_roi(None, None, CAM, cfg, masks=(ml, mr))
    side = cfg.min_window_size_m * CAM.fx / roi.depth_m * (1 + 2 * cfg.margin_frac)
    assert roi.depth_m == pytest.approx(0.5, rel=0.01)
    assert roi.left[2] == roi.left[3] == pytest.approx(side)
    assert roi.center_uv == pytest.approx((219.5, 114.5))
    off = find_hand_roi(None, None, CAM, cfg.replace(min_window_size_m=0.0), masks=(ml, mr))
    assert off.left[2] == pytest.approx(40 * (1 + 2 * cfg.margin_frac))
    # A large blob keeps its own size (the test above: 120 px hand at 0.5 m = 0.15 m).
    ml2, mr2 = _scene()
    assert find_hand_roi(None, None, CAM, masks=(ml2, mr2)).left[2] == pytest.approx(120 * 1.3)
    with pytest.raises(ConfigError, match="min_window_size_m"):
        RoiConfig(min_window_size_m=-0.1)


def _spread_hand_on_arm():
    """A 180 px blob (0.225 m at 800 px/m): four 10 px fingers 60 px long with 10 px gaps
    (spread), a palm 80 px wide and 60 px long, then 60 px of a 50 px wide forearm. From the
    forearm end, the narrowest section 9-22 cm away lies across the fingers (40 of 80 px:
    ratio 0.5); from the finger end it is the wrist (50 of 80 px: 0.625)."""
    m = np.zeros((180, 80), bool)
    for k in range(4):
        m[0:60, 2 + k * 20:12 + k * 20] = True     # fingers
    m[60:120] = True                               # palm
    m[120:, 15:65] = True                          # forearm
    return m


def test_split_forearm_never_cuts_the_fingers_off():
    blob = _spread_hand_on_arm()
    cfg = RoiConfig()
    # The lower width ratio alone cuts the fingers off (keeps palm + forearm) ...
    loose = split_forearm(blob, 800.0, cfg.replace(min_forearm_solidity=1e-6))
    assert loose is not None and not loose[:50].any() and loose[179].any()
    # ... the removed part must be a forearm (convex, no finger gaps): the wrist cut.
    for flip in (False, True):
        piece = split_forearm(blob[::-1] if flip else blob, 800.0, cfg)
        assert piece is not None
        rows = np.nonzero(piece.any(axis=1))[0]
        if flip:
            assert rows.max() == 179 and 50 <= rows.min() <= 72   # wrist: row 60
        else:
            assert rows.min() == 0 and 107 <= rows.max() <= 129   # wrist: row 120
    with pytest.raises(ConfigError, match="min_forearm_solidity"):
        RoiConfig(min_forearm_solidity=1.5)


def test_forearm_cut_wins_a_tie_with_its_blob():
    # Hand + forearm at 0.5 m (0.4 m long): the cut's hand end scores at least the whole
    # blob and comes first; the window is the hand's (plus margin), not hand + forearm.
    cam = StereoCamera(fx=400.0, fy=400.0, cx=160.0, cy=240.0, baseline_m=0.1, width=320,
                       height=480)
    ml = np.zeros((480, 320), bool)
    mr = np.zeros((480, 320), bool)
    ml[100:420, 200:280] = _arm_blob()
    mr[100:420, 120:200] = _arm_blob()
    cfg = RoiConfig(weight_size=0.0)        # the size cue alone would prefer the cut
    cands = score_candidates(ml, mr, cam, cfg)
    whole = [c for c in cands if not c.forearm_cut][0]
    assert cands[0].forearm_cut and cands[0].score == pytest.approx(whole.score)
    roi = find_hand_roi(None, None, cam, cfg, masks=(ml, mr))
    assert roi.candidate.forearm_cut and roi.left[3] < 0.5 * 320 * 1.3


# ------------------------------------------------------------------ border-arm cut
def test_split_forearm_cuts_an_arm_from_the_image_border_down_to_a_hand():
    # A uniform bar (no wrist) 0.4 m long at 800 px/m, entering from the bottom border: the
    # hand is the top arm_hand_length_m (0.2 m = 160 px).
    px_per_m = 800.0
    cfg = RoiConfig()
    bar = np.ones((320, 50), bool)
    bottom = (False, False, False, True)
    piece = split_forearm(bar, px_per_m, cfg, border=bottom)
    rows = np.nonzero(piece.any(axis=1))[0]
    assert rows.min() == 0 and rows.max() == pytest.approx(160, abs=1)
    assert not piece[~bar].any()
    top = split_forearm(bar, px_per_m, cfg, border=(False, True, False, False))
    assert np.array_equal(top, piece[::-1])
    # No border, or the border at both ends: no end is the hand.
    assert split_forearm(bar, px_per_m, cfg) is None
    assert split_forearm(bar, px_per_m, cfg, border=(False, True, False, True)) is None
    # Longer than an arm (0.8 m): something else.
    assert split_forearm(np.ones((700, 50), bool), px_per_m, cfg, border=bottom) is None
    with pytest.raises(ConfigError, match="arm_hand_length_m"):
        RoiConfig(arm_hand_length_m=0.0)


def test_an_arm_blob_at_the_border_scores_its_hand_end():
    # 0.25 m (200 px at d = 80 px, 0.5 m) bar from the bottom border: shorter than
    # max_hand_size_m, so only the border rule cuts it; in mid-image it stays whole.
    cam = StereoCamera(fx=400.0, fy=400.0, cx=160.0, cy=120.0, baseline_m=0.1, width=320,
                       height=240)
    for y0, expect_cut in ((40, True), (20, False)):
        ml = np.zeros((240, 320), bool)
        mr = np.zeros((240, 320), bool)
        ml[y0:y0 + 200, 200:240] = True
        mr[y0:y0 + 200, 120:160] = True
        cands = score_candidates(ml, mr, cam, RoiConfig(dense_stereo=False))
        cut = [c for c in cands if c.forearm_cut]
        assert bool(cut) == expect_cut
        if expect_cut:
            assert cands[0] is cut[0]
            assert cut[0].size_m == pytest.approx(0.2, abs=0.01)
            assert cut[0].bbox_left[1] == y0 - 0.5    # the free (top) end is kept
