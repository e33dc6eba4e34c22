"""Skin mask: colour box, adaptive Gaussian, morphology, components, real STB pair."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.config import SkinConfig
from hand_mesh_core.data.skin import (
    SkinModel, SkinSegmenter, clean_mask, fit_skin_model, skin_box_mask, skin_mask,
    skin_masks_stereo,
)
from shared_data import STB_DIR as REAL

SKIN_RGB = (224, 172, 140)     # Y 184, Cr 157, Cb 103: inside the Chai & Ngan box
BLUE_RGB = (40, 60, 200)
DARK_SKIN_RGB = (30, 20, 15)   # skin-like chroma but Y ~ 22 < y_min


def _image(h=120, w=160, color=BLUE_RGB):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = color
    return img


def test_box_mask_known_colours_and_reference():
    img = _image()
    img[10:20, 10:20] = SKIN_RGB
    img[30:40, 30:40] = DARK_SKIN_RGB
    m = skin_box_mask(img)
    assert m[10:20, 10:20].all() and m.sum() == 100
    # Per-pixel reference on random colours, with the same colour conversion.
    rng = np.random.default_rng(0)
    rnd = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    ycrcb = cv2.cvtColor(rnd, cv2.COLOR_RGB2YCrCb)
    cfg = SkinConfig()
    ref = np.array([[cfg.y_min <= p[0] and cfg.cr_range[0] <= p[1] <= cfg.cr_range[1]
                     and cfg.cb_range[0] <= p[2] <= cfg.cb_range[1] for p in row]
                    for row in ycrcb])
    np.testing.assert_array_equal(skin_box_mask(rnd, cfg), ref)


def test_clean_mask_removes_speckle_and_small_components():
    m = np.zeros((100, 100), bool)
    m[10:50, 10:50] = True           # kept
    m[70:75, 70:75] = True           # 25 px: below min area
    m[5, 90] = True                  # speckle: opened away
    out = clean_mask(m, 3, 3, 100)
    assert out[11:49, 11:49].all() and 1590 <= out.sum() <= 1600   # elliptic kernel: corners
    assert not out[60:].any() and not out[:, 60:].any()
    np.testing.assert_array_equal(clean_mask(m, 1, 1, 0), m)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        clean_mask(np.zeros((4, 4, 1), bool), 3, 3, 0)
    with pytest.raises(ValueError, match=">= 1 px"):
        clean_mask(m, 0, 3, 0)


def test_fit_skin_model_matches_numpy():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    mask = rng.random((20, 30)) < 0.3
    model = fit_skin_model([img], [mask])
    chroma = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[mask][:, 1:].astype(np.float64)
    np.testing.assert_allclose(model.mean, chroma.mean(0))
    np.testing.assert_allclose(model.cov, np.cov(chroma.T) + 4.0 * np.eye(2))
    d = model.mahalanobis(cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb))
    x = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[3, 4, 1:] - model.mean
    assert d[3, 4] == pytest.approx(np.sqrt(x @ np.linalg.inv(model.cov) @ x))
    assert fit_skin_model([img], [np.zeros((20, 30), bool)]) is None
    with pytest.raises(ValueError, match="masks"):
        fit_skin_model([img], [])
    with pytest.raises(ValueError, match="does not match"):
        fit_skin_model([img], [np.ones((3, 3), bool)])


def _two_tone_scene(seed=0):
    """Large noisy skin patch + a smaller in-box patch of a distant chroma (orange-ish)."""
    rng = np.random.default_rng(seed)
    img = _image(160, 200)
    img[20:120, 20:120] = SKIN_RGB
    noise = rng.integers(-6, 7, size=(100, 100, 3))
    img[20:120, 20:120] = np.clip(img[20:120, 20:120] + noise, 0, 255).astype(np.uint8)
    img[60:90, 150:180] = (200, 120, 60)   # Cr ~ 162, Cb ~ 87: in the box, far from SKIN_RGB
    return img


def test_adaptive_model_tightens_the_box():
    img = _two_tone_scene()
    assert skin_box_mask(img)[60:90, 150:180].all()
    box = skin_mask(img, SkinConfig(adaptive=False))
    adaptive = skin_mask(img, SkinConfig(adaptive=True))
    assert box[70, 160] and not adaptive[70, 160]
    assert adaptive[30:110, 30:110].mean() > 0.95
    assert not (adaptive & ~box).any()  # within_box: never adds pixels
    # Too few pixels to fit: falls back to the box.
    few = skin_mask(img, SkinConfig(adaptive=True, adaptive_min_pixels=10**6))
    np.testing.assert_array_equal(few, box)


def test_stereo_masks_share_one_model():
    img = _two_tone_scene()
    right = np.roll(img, -20, axis=1)
    ml, mr = skin_masks_stereo(img, right, SkinConfig(adaptive=True))
    np.testing.assert_array_equal(np.roll(ml, -20, axis=1)[:, 5:150], mr[:, 5:150])
    seg = SkinSegmenter(SkinConfig(adaptive=True))
    model = seg.calibrate([img], [skin_mask(img)])
    assert isinstance(model, SkinModel)
    ml2, mr2 = seg(img, right)
    assert ml2.shape == mr2.shape == img.shape[:2]
    np.testing.assert_array_equal(seg(img), ml2)


def test_validation():
    img = _image()
    with pytest.raises(ValueError, match="uint8"):
        skin_mask(img.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        skin_mask(img[..., :2])
    with pytest.raises(TypeError, match="numpy array"):
        skin_mask(torch.zeros(4, 4, 3))
    with pytest.raises(TypeError, match="SkinConfig"):
        skin_mask(img, config={"adaptive": True})
    with pytest.raises(TypeError, match="SkinModel"):
        skin_mask(img, model=(1, 2))
    with pytest.raises(ConfigError, match="low must be < high"):
        SkinConfig(cr_range=(150, 140))
    with pytest.raises(ConfigError, match="<= 255"):
        SkinConfig(cb_range=(77, 300))


@pytest.mark.skipif(not (REAL / "images/B1Counting/BB_left_0.png").is_file(),
                    reason="real STB sample not available")
def test_real_stb_hand_is_skin():
    from hand_mesh_core.data.stb import StbDataset

    s = StbDataset(REAL)[0]
    ml, mr = skin_masks_stereo(s.left, s.right)
    j = s.joints_m.astype(np.float64)
    K = s.camera.K
    uv_l = (j @ K.T)[:, :2] / j[:, 2:]
    uv_r = uv_l - np.stack([s.camera.fx_baseline / j[:, 2], 0 * j[:, 2]], 1)
    kernel = np.ones((7, 7), np.uint8)   # 3 px of slack: label tips sit on the skin border
    for mask, uv in ((ml, uv_l), (mr, uv_r)):
        grown = cv2.dilate(mask.astype(np.uint8), kernel) > 0
        u, v = np.round(uv).astype(int).T
        assert grown[v, u].sum() >= 18   # 18 and 20 of 21 measured
