"""Ray casting, the background plane (stereo disparity) and the sensor model."""
import numpy as np
import pytest

from hand_mesh_core.data.synth import raycast
from hand_mesh_core.data.synth.backgrounds import BackgroundPlane, make_background
from hand_mesh_core.data.synth.config import (BACKGROUND_KINDS, BackgroundConfig,
                                              DistractorConfig, SensorConfig)
from hand_mesh_core.data.synth.meshes import (forearm_mesh, rigid_fit, vertex_normals,
                                              wrist_section)
from hand_mesh_core.data.synth.sensor import SensorParams, apply_sensor, sample_sensor
from hand_mesh_core.geometry.camera import StereoCamera

CAM = StereoCamera(fx=100.0, fy=100.0, cx=31.5, cy=23.5, baseline_m=0.1, width=64, height=48)


def _quad(z):
    v = np.array([[-1, -1, z], [1, -1, z], [1, 1, z], [-1, 1, z]], np.float32)
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def test_cast_depth_and_barycentrics():
    v, f = _quad(0.7)
    scene = raycast.build_scene([(v, f)])
    origin, dirs = raycast.view_rays(CAM, "right")
    hits = raycast.cast(scene, origin, dirs.reshape(-1, 3), nthreads=1)
    assert hits.hit.all()
    np.testing.assert_allclose(hits.t, 0.7, rtol=1e-5)  # unit-z rays: t is the depth
    pts = origin + hits.t[:, None] * dirs.reshape(-1, 3)
    rec = (v[f[hits.triangle]] * hits.bary[..., None]).sum(1)
    np.testing.assert_allclose(rec, pts, atol=1e-5)
    miss = raycast.cast(scene, origin, np.array([[0.0, 0.0, -1.0]]), nthreads=1)
    assert miss.geometry[0] == raycast.MISS and not miss.hit[0]


def test_occluded_and_errors():
    v, f = _quad(0.5)
    scene = raycast.build_scene([(v, f)])
    pts = np.array([[0.0, 0.0, 0.8], [5.0, 0.0, 0.8]])
    nrm = np.array([[0.0, 0.0, -1.0]] * 2)
    np.testing.assert_array_equal(
        raycast.occluded(scene, pts, nrm, np.array([0.0, 0.0, -1.0]), 1), [True, False])
    assert raycast.occluded(scene, np.zeros((0, 3)), np.zeros((0, 3)), nrm[0]).shape == (0,)
    with pytest.raises(ValueError, match="view must be one of"):
        raycast.camera_center(CAM, "middle")
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        raycast.build_scene([(v[:, :2], f)])


def test_background_shifts_by_its_disparity():
    z = 1.0  # fx * B / z = 10 px exactly
    rng = np.random.default_rng(0)
    tex = rng.uniform(size=(200, 300, 3)).astype(np.float32)
    plane = BackgroundPlane(np.array([0.0, 0.0, -1.0]), -z, np.array([1.0, 0.0, 0.0]),
                            np.array([0.0, 1.0, 0.0]), tex, np.array([-0.5, -0.5]), 0.004)
    imgs = []
    for view in raycast.VIEWS:
        o, d = raycast.view_rays(CAM, view)
        t = plane.intersect(o.astype(np.float64), d)
        np.testing.assert_allclose(t, z, rtol=1e-6)
        imgs.append(plane.albedo(o + t[..., None] * d))
    disp = int(CAM.fx_baseline / z)
    np.testing.assert_allclose(imgs[1][:, :-disp], imgs[0][:, disp:], atol=1e-5)
    assert not np.allclose(imgs[0], imgs[1], atol=1e-3)  # not pasted at infinity
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        plane.albedo(np.zeros((5, 3)))


@pytest.mark.parametrize("kind", BACKGROUND_KINDS)
def test_every_background_kind_draws(kind):
    cfg = BackgroundConfig(kinds=(kind,), weights=(1.0,))
    dist = DistractorConfig(face_prob=1.0, skin_patches=(2, 2))
    plane = make_background(np.random.default_rng(3), cfg, dist, CAM, np.array([0, 0, 0.5]),
                            np.array([[0.7, 0.5, 0.4]]))
    assert plane.kind == kind and plane.texture.std() > 0.005
    assert plane.texture.min() >= 0 and plane.texture.max() <= 1


def test_sensor_gamma_exact_without_noise_and_jpeg():
    p = SensorParams(gains=np.ones((2, 3), np.float32), vignetting=0.0, blur_sigma_px=0.0,
                     read_noise=0.0, shot_noise=0.0, gamma=2.2, jpeg_quality=100)
    x = np.random.default_rng(0).uniform(size=(8, 9, 3)).astype(np.float32)
    out = apply_sensor(x, p, 0, np.random.default_rng(1))
    ref = np.round(x.astype(np.float64) ** (1 / 2.2) * 255)
    assert np.abs(out.astype(int) - ref).max() <= 1
    p.jpeg_quality = 50
    assert apply_sensor(x, p, 1, np.random.default_rng(1)).shape == x.shape
    with pytest.raises(ValueError, match="view_index"):
        apply_sensor(x, p, 2, np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        apply_sensor(x[..., 0], p, 0, np.random.default_rng(1))
    s = sample_sensor(np.random.default_rng(0), SensorConfig(jpeg_quality=(80, 80)))
    assert s.jpeg_quality == 80 and s.gains.shape == (2, 3)


def test_mesh_helpers():
    v, f = _quad(0.5)
    np.testing.assert_allclose(vertex_normals(v, f), [[0, 0, 1]] * 4, atol=1e-6)
    rng = np.random.default_rng(0)
    src = rng.normal(size=(10, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    r, t = rigid_fit(src, src @ q.T + [1, 2, 3])
    np.testing.assert_allclose(r, q, atol=1e-9)
    np.testing.assert_allclose(t, [1, 2, 3], atol=1e-9)
    with pytest.raises(ValueError, match="N >= 3"):
        rigid_fit(src[:2], src[:2])
    ring = np.array([[np.cos(a) * 0.03, 0.005, np.sin(a) * 0.02]
                     for a in np.linspace(0, 2 * np.pi, 20)])
    sec = wrist_section(ring)
    np.testing.assert_allclose(sec.radii_xz, [0.03, 0.02], atol=1e-3)
    fv, ff = forearm_mesh(sec, 0.25, 1.2, 0.0, 0.0)
    n = vertex_normals(fv, ff)
    radial = fv.copy()
    radial[:, 1] = 0
    outward = (n * radial).sum(1)[:-1]  # all but the cap centre face outwards
    assert (outward > 0).mean() > 0.9
    with pytest.raises(ValueError, match="near the wrist"):
        wrist_section(ring + [0, 1, 0])
    with pytest.raises(ValueError, match="> 0"):
        forearm_mesh(sec, -1.0, 1.2, 0.0, 0.0)


def test_sensor_image_returns_the_jpeg_that_decodes_to_the_image():
    import cv2

    from hand_mesh_core.data.synth.sensor import sensor_image

    x = np.random.default_rng(0).uniform(size=(16, 24, 3)).astype(np.float32)
    p = SensorParams(gains=np.ones((2, 3), np.float32), vignetting=0.1, blur_sigma_px=0.5,
                     read_noise=0.01, shot_noise=0.01, gamma=2.2, jpeg_quality=80)
    out = sensor_image(x, p, 0, np.random.default_rng(1))
    dec = cv2.imdecode(np.frombuffer(out.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert cv2.cvtColor(dec, cv2.COLOR_BGR2RGB).tobytes() == out.image.tobytes()
    assert out.image.tobytes() == apply_sensor(x, p, 0, np.random.default_rng(1)).tobytes()
    p.jpeg_quality = 100
    assert sensor_image(x, p, 0, np.random.default_rng(1)).jpeg is None


def test_hsv_colours_match_the_scalar_version():
    from hand_mesh_core.data.synth.backgrounds import hsv_colour, hsv_colours

    rng = np.random.default_rng(2)
    h, s, v = rng.uniform(size=(3, 20))
    ref = np.stack([hsv_colour(a, b, c) for a, b, c in zip(h, s, v)])
    np.testing.assert_array_equal(hsv_colours(h, s, v), ref)
    np.testing.assert_allclose(hsv_colour(0.0, 0.0, 1.0), [1, 1, 1])
