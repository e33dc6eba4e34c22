"""Procedural noise, skin albedo and the shading model against closed forms."""
import numpy as np
import pytest

from hand_mesh_core.data.synth.config import LightingConfig, SkinToneConfig
from hand_mesh_core.data.synth.shading import (AMBIENT_HEMISPHERE, HandFrame, Light,
                                               LightingParams, nearest_bone, sample_lighting,
                                               sample_skin, shade, skin_albedo)
from hand_mesh_core.data.synth.textures import LATTICE_SIZE, SolidNoise, noise_image
from hand_mesh_core.hand.anatomy import rest_joints
from hand_mesh_core.hand.joints import BONES


def _naive_octave(noise, p, freq, k):
    q = (p @ noise.rotations[k].T) * freq
    out = []
    for x in q:
        b = np.floor(x)
        f = x - b
        w = f * f * (3 - 2 * f)
        i = b.astype(int)
        acc = 0.0
        for c in np.ndindex(2, 2, 2):
            idx = tuple((i + np.array(c)) % LATTICE_SIZE)
            acc += np.prod([w[a] if c[a] else 1 - w[a] for a in range(3)]) * noise.lattice[idx]
        out.append(acc)
    return np.array(out)


def test_solid_noise_matches_naive_trilinear():
    rng = np.random.default_rng(0)
    noise = SolidNoise.random(rng)
    p = rng.uniform(-0.1, 0.1, size=(50, 3))
    np.testing.assert_allclose(noise.octave(p, 300.0, 1), _naive_octave(noise, p, 300.0, 1),
                               atol=1e-4)
    assert np.abs(noise.fractal(p, 100.0)).max() <= 1.0


def test_noise_errors_and_image():
    with pytest.raises(ValueError, match="octaves"):
        SolidNoise.random(np.random.default_rng(0), octaves=0)
    with pytest.raises(ValueError, match="feature_px"):
        noise_image(np.random.default_rng(0), 8, 8, 0.0)
    img = noise_image(np.random.default_rng(0), 31, 47, 5.0)
    assert img.shape == (31, 47) and img.std() > 0.05


def test_nearest_bone_matches_brute_force():
    j = rest_joints()
    rng = np.random.default_rng(1)
    p = rng.uniform(j.min(0), j.max(0), size=(200, 3))

    def seg_dist(x, a, b):
        t = np.clip((x - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
        return np.linalg.norm(x - (a + t * (b - a)))

    ref = [int(np.argmin([seg_dist(x, j[a], j[b]) for a, b in BONES])) for x in p]
    np.testing.assert_array_equal(nearest_bone(p, j), ref)


@pytest.mark.parametrize("handedness", ["right", "left"])
def test_hand_frame_dorsal_is_minus_z(handedness):
    # Hand frame (anatomy.py): +z is volar for both hands (the left hand mirrors x only).
    j = rest_joints().copy()
    if handedness == "left":
        j[:, 0] *= -1
    frame = HandFrame.from_joints(j, handedness)
    np.testing.assert_allclose(frame.dorsal, [0, 0, -1], atol=1e-6)


def test_skin_albedo_is_a_function_of_the_rest_point():
    rng = np.random.default_rng(2)
    skin = sample_skin(rng, SkinToneConfig())
    frame = HandFrame.from_joints(rest_joints(), "right")
    p = rng.uniform(-0.02, 0.1, size=(100, 3))
    n = rng.normal(size=(100, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    a1, s1 = skin_albedo(p, n, skin, frame)
    perm = rng.permutation(100)
    a2, s2 = skin_albedo(p[perm], n[perm], skin, frame)
    np.testing.assert_allclose(a1[perm], a2, atol=1e-6)
    assert a1.min() >= 0 and a1.max() <= 1 and a1.std(0).max() > 0.005  # textured
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        skin_albedo(p, n[:5], skin, frame)


def test_shade_closed_form_lambert_ambient():
    light = Light(np.array([0.0, 0.0, -1.0]), np.array([0.8, 0.8, 0.8], np.float32))
    lp = LightingParams([light], ambient=0.2, specular=0.0, shininess=10.0, wrap=0.0,
                        cast_shadows=False, shadow_strength=1.0)
    n = np.array([[0.0, 0.0, -1.0], [0.0, np.sin(0.5), -np.cos(0.5)]], np.float32)
    v = np.array([[0.0, 0.0, -1.0]] * 2, np.float32)
    a = np.full((2, 3), 0.5, np.float32)
    out = shade(a, n, v, lp)
    hemi = 1 - AMBIENT_HEMISPHERE * 0.5 * (1 + n[:, 1])
    expected = 0.5 * (0.2 * hemi + 0.8 * np.array([1.0, np.cos(0.5)]))
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5)
    vis = np.array([[0.0], [0.0]], np.float32)  # fully shadowed: ambient only
    np.testing.assert_allclose(shade(a, n, v, lp, vis)[:, 0], 0.5 * 0.2 * hemi, rtol=1e-5)


def test_shade_specular_peak_and_errors():
    light = Light(np.array([0.0, 0.0, -1.0]), np.ones(3, np.float32))
    lp = LightingParams([light], 0.0, 0.5, 20.0, 0.0, False, 1.0)
    n = np.array([[0.0, 0.0, -1.0]], np.float32)
    out = shade(np.zeros((1, 3), np.float32), n, n, lp)
    np.testing.assert_allclose(out[0], 0.5 * (20 + 8) / (8 * np.pi), rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        shade(np.zeros((2, 3), np.float32), n, n, lp)
    with pytest.raises(ValueError, match="visibility"):
        shade(np.zeros((1, 3), np.float32), n, n, lp, np.ones((1, 2), np.float32))


def test_sample_lighting_respects_config():
    cfg = LightingConfig(num_lights=(2, 2), light_angle_deg=(30.0, 30.0))
    lp = sample_lighting(np.random.default_rng(0), cfg)
    assert len(lp.lights) == 2
    np.testing.assert_allclose(-lp.lights[0].direction[2], np.cos(np.deg2rad(30.0)))


@pytest.mark.parametrize("feature_px", [3.0, 40.0, 500.0])
def test_noise_image_coarse_octaves_are_smooth_and_deterministic(feature_px):
    a = noise_image(np.random.default_rng(0), 120, 170, feature_px, octaves=1)
    b = noise_image(np.random.default_rng(0), 120, 170, feature_px, octaves=1)
    assert a.shape == (120, 170) and a.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert np.abs(a).max() <= 1.5 and a.std() > 1e-3
    # neighbouring pixels differ by about (range / cell size): coarse cells are smooth
    step = np.abs(np.diff(a, axis=1)).mean()
    assert step < 4.0 / feature_px
