"""The two presets really differ: image statistics and label distributions (8 samples each)."""
import numpy as np
import pytest

from hand_mesh_core.data.synth.generator import MASK_BACKGROUND, MASK_HAND

N = 8


def _stats(gen):
    rows = []
    for i in range(N):
        s = gen.generate(i, 11)
        img = s.left.astype(np.float32) / 255.0
        bg = s.mask_left == MASK_BACKGROUND
        hand = s.mask_left == MASK_HAND
        grey = img.mean(2)
        sat = img.max(2) - img.min(2)
        # local contrast of the background: mean |Laplacian-like| difference to the neighbour
        grad = np.abs(np.diff(grey, axis=1))[bg[:, 1:] & bg[:, :-1]].mean()
        rows.append({"bg_grad": grad, "bg_sat": sat[bg].mean(),
                     "hand_brightness": grey[hand].mean(), "hand_std": grey[hand].std(),
                     "depth": s.joints_m.mean(0)[2],
                     "forearm": (s.mask_left == 128).any(),
                     "palm_to_cam": _palm_facing(s)})
    return {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}


def _palm_facing(s):
    # cosine between the direction to the camera and the volar palm normal
    j = s.joints_m.astype(np.float64)
    a, b = j[5] - j[0], j[17] - j[0]
    n = np.cross(a, b) if s.handedness == "right" else np.cross(b, a)
    n /= np.linalg.norm(n)
    to_cam = -j[0] / np.linalg.norm(j[0])
    return float(n @ to_cam)


@pytest.fixture(scope="module")
def stats(lab_gen, studio_gen):
    return {"source": _stats(studio_gen), "target": _stats(lab_gen)}


def test_image_statistics_differ(stats):
    src, tgt = stats["source"], stats["target"]
    assert tgt["bg_grad"].mean() > 2.0 * src["bg_grad"].mean()   # cluttered vs plain
    assert tgt["hand_std"].mean() > src["hand_std"].mean()       # strong shading vs even light
    assert src["hand_brightness"].mean() > tgt["hand_brightness"].mean() + 0.05


def test_label_distributions_differ(stats):
    src, tgt = stats["source"], stats["target"]
    assert tgt["forearm"].mean() >= 0.5 and src["forearm"].sum() == 0
    # the target's palms face the camera (STB-like); the source covers all viewpoints
    assert tgt["palm_to_cam"].min() > 0.0
    assert src["palm_to_cam"].min() < 0.0
    assert src["depth"].min() >= 0.45 and tgt["depth"].std() > src["depth"].std() * 0.5
