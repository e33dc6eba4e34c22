"""Fast paths of the generator against their per-pixel references: the analytic background
plane (homography), the table-based Gaussian sensor noise, and whole renders."""
import numpy as np
import pytest
from scipy import stats

from hand_mesh_core.data.synth import raycast
from hand_mesh_core.data.synth.backgrounds import BackgroundPlane
from hand_mesh_core.data.synth.generator import _interp
from hand_mesh_core.data.synth.sensor import gaussian_noise
from hand_mesh_core.geometry.camera import StereoCamera

CAM = StereoCamera(fx=90.0, fy=95.0, cx=30.2, cy=22.7, baseline_m=0.1, width=64, height=48)


def _tilted_plane(rng, tilt_deg, az_deg=30.0):
    tilt, az = np.deg2rad(tilt_deg), np.deg2rad(az_deg)
    normal = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
    e1 = np.cross([0.0, 1.0, 0.0], normal)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    offset = float(normal @ np.array([0.05, -0.02, 0.9]))
    tex = rng.uniform(size=(300, 400, 3)).astype(np.float32)
    return BackgroundPlane(normal, offset, e1, e2, tex, np.array([-0.6, -0.45]), 0.003)


@pytest.mark.parametrize("tilt_deg", [0.0, 25.0])
def test_plane_render_matches_per_pixel_rays(tilt_deg):
    plane = _tilted_plane(np.random.default_rng(0), tilt_deg)
    for view in raycast.VIEWS:
        o, d = raycast.view_rays(CAM, view)
        depth_ref = plane.intersect(o.astype(np.float64), d)
        albedo_ref = plane.albedo(o + depth_ref[..., None] * d)
        albedo, depth = plane.render(CAM, view)
        assert albedo.shape == albedo_ref.shape and depth.dtype == np.float32
        np.testing.assert_allclose(depth, depth_ref, rtol=1e-6)
        # same bilinear filter; sample positions agree to float rounding (1/32 texel steps)
        np.testing.assert_allclose(albedo, albedo_ref, atol=2e-3)
        assert np.abs(albedo - albedo_ref).mean() < 1e-4


def test_plane_render_declines_when_rays_miss():
    plane = _tilted_plane(np.random.default_rng(0), 0.0)
    plane.offset = -plane.offset  # the plane is now behind the cameras
    assert plane.render(CAM, "left") is None
    side = _tilted_plane(np.random.default_rng(0), 89.0, 0.0)  # edge-on: horizon in view
    assert side.render(CAM, "left") is None


def test_gaussian_noise_is_standard_normal_and_deterministic():
    a = gaussian_noise(np.random.default_rng(4), (200, 300))
    b = gaussian_noise(np.random.default_rng(4), (200, 300))
    assert a.dtype == np.float32 and a.shape == (200, 300)
    assert a.tobytes() == b.tobytes()
    assert abs(a.mean()) < 0.01 and abs(a.std() - 1.0) < 0.01
    assert stats.kstest(a.ravel()[:20000], "norm").pvalue > 1e-3
    assert gaussian_noise(np.random.default_rng(5), (10,)).tobytes() != a[0, :10].tobytes()


def test_interp_matches_naive_barycentric_sum():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(20, 3))
    tri = rng.integers(0, 20, size=(50, 3))
    bary = rng.dirichlet(np.ones(3), size=50).astype(np.float32)
    ref = np.array([sum(bary[i, k] * values[tri[i, k]] for k in range(3)) for i in range(50)])
    np.testing.assert_allclose(_interp(values, tri, bary), ref, atol=1e-5)


def test_generator_analytic_and_per_pixel_background_agree(lab_gen, monkeypatch):
    fast = lab_gen.generate(2, 3)
    monkeypatch.setattr(BackgroundPlane, "render", lambda self, camera, view: None)
    slow = lab_gen.generate(2, 3)
    np.testing.assert_array_equal(fast.mask_left, slow.mask_left)
    np.testing.assert_array_equal(fast.mask_right, slow.mask_right)
    np.testing.assert_allclose(fast.depth_left, slow.depth_left, rtol=1e-5)
    np.testing.assert_allclose(fast.depth_right, slow.depth_right, rtol=1e-5)
    diff = np.abs(fast.left.astype(int) - slow.left.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3


def test_rays_only_inside_the_mesh_hulls_render_the_same_as_every_pixel(lab_gen, monkeypatch):
    from hand_mesh_core.data.synth.generator import SynthGenerator

    fast = [lab_gen.generate(i, 11) for i in range(3)]
    monkeypatch.setattr(SynthGenerator, "_mesh_pixels", lambda self, view, geo: np.arange(
        self.camera.width * self.camera.height))
    slow = [lab_gen.generate(i, 11) for i in range(3)]
    for a, b in zip(fast, slow):
        for k in ("mask_left", "mask_right", "depth_left", "depth_right", "left", "right"):
            assert getattr(a, k).tobytes() == getattr(b, k).tobytes(), k
