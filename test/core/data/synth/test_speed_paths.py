"""Speed work that must not change a single rendered byte: rays only where a face can be hit
or cast a shadow (part hulls), both views rendered in one batch, batched shadow rays, JPEG
decoding only when the pixels are read, label-file encoding, the allocator tuning."""
import platform

import cv2
import numpy as np
import pytest

from hand_mesh_core.data.synth import generator as gen_mod
from hand_mesh_core.data.synth import raycast
from hand_mesh_core.data.synth.backgrounds import BackgroundPlane
from hand_mesh_core.data.synth.generator import SynthGenerator, SynthSample
from hand_mesh_core.data.synth.sensor import (JPEG_NONE, decode_jpeg, sample_sensor,
                                              sensor_image)
from hand_mesh_core.data.synth.writer import (DEPTH_PNG_SCALE, UINT16_MAX, _to_uint16,
                                              tune_malloc, write_sample_files)

ARRAYS = ("left", "right", "mask_left", "mask_right", "depth_left", "depth_right",
          "disparity_left")
SUBS = ("images/left", "images/right", "masks/left", "masks/right", "depth/left",
        "depth/right", "disparity/left")


def _grazing_generator(gen):
    """The lab domain with tilted backgrounds and low lights: long shadows on the plane, far
    from the cameras' axis (the shadow-ray offset matters most there)."""
    d = gen.domain
    d = d.replace(background=d.background.replace(tilt_deg=40.0),
                  lighting=d.lighting.replace(light_angle_deg=(70.0, 85.0), num_lights=(2, 2)))
    return SynthGenerator(d, gen.rig, nthreads=1)


@pytest.mark.parametrize("grazing", [False, True])
def test_part_hulls_render_the_same_as_whole_boxes(lab_gen, monkeypatch, grazing):
    gen = _grazing_generator(lab_gen) if grazing else lab_gen
    counts = {"fast": 0, "slow": 0}
    occluded_batch = raycast.occluded_batch

    def counting(key):
        def run(scene, queries, nthreads=0):
            counts[key] += sum(len(q[0]) for q in queries)
            return occluded_batch(scene, queries, nthreads)
        return run

    monkeypatch.setattr(raycast, "occluded_batch", counting("fast"))
    fast = [gen.generate(i, 21) for i in range(4)]
    # reference: every pixel of the boxes (primary rays and the plane's shadow rays)
    monkeypatch.setattr(SynthGenerator, "_hull_pixels",
                        lambda self, view, parts, box: self._box_pixels(box, self.camera.width))
    monkeypatch.setattr(raycast, "occluded_batch", counting("slow"))
    slow = [gen.generate(i, 21) for i in range(4)]
    for a, b in zip(fast, slow):
        for k in ARRAYS:
            assert getattr(a, k).tobytes() == getattr(b, k).tobytes(), k
    assert counts["fast"] < counts["slow"]  # the hulls do cut shadow rays


def test_shifted_shadow_bounds_the_blocked_plane_points():
    # plane z = 1 facing the cameras, one triangle in front of it, a grazing light (l . n =
    # 0.05): the shadow-ray offset moves the blocked region by ~2 mm, 20x the offset itself
    normal = np.array([0.0, 0.0, -1.0])
    plane = BackgroundPlane(normal, -1.0, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]),
                            np.zeros((1, 1, 3), np.float32), np.zeros(2), 1.0)
    tri = np.array([[0.0, 0.0, 0.9], [0.02, 0.0, 0.9], [0.0, 0.02, 0.9]])
    scene = raycast.build_scene([(tri, np.array([[0, 1, 2]]))])
    cos = 0.05
    light = np.array([np.sqrt(1.0 - cos ** 2), 0.0, -cos])
    shadow = SynthGenerator._shadow_points([tri], plane, light)
    lo_xy, hi_xy = shadow[:, :2].min(0) - 0.005, shadow[:, :2].max(0) + 0.005
    xs, ys = np.meshgrid(np.linspace(lo_xy[0], hi_xy[0], 121),
                         np.linspace(lo_xy[1], hi_xy[1], 121))
    pts = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1)
    blocked = raycast.occluded(scene, pts, np.broadcast_to(normal, pts.shape), light, 1)
    assert 50 < blocked.sum() < len(pts) - 50

    shift = light / (light @ normal) - normal

    def lowest_bary(sign):  # smallest barycentric of each point in the moved shadow
        s = SynthGenerator._shadow_points([tri], plane, light) \
            + sign * raycast.SHADOW_EPS_M * shift
        a, b, c = s[:, :2]
        w = np.linalg.solve(np.stack([b - a, c - a], 1), (pts[:, :2] - a).T).T
        return np.minimum(1.0 - w.sum(1), w.min(1))

    np.testing.assert_allclose(
        SynthGenerator._shadow_points([tri], plane, light, raycast.SHADOW_EPS_M),
        SynthGenerator._shadow_points([tri], plane, light) + raycast.SHADOW_EPS_M * shift)
    lo = lowest_bary(1.0)
    clear = np.abs(lo) > 1e-3  # away from the moved triangle's edges
    np.testing.assert_array_equal(blocked[clear], (lo > 0)[clear])
    # not moved, or moved the other way: blocked points outside the region
    for sign in (0.0, -1.0):
        assert np.any(blocked & (lowest_bary(sign) < -1e-3))


def test_parts_cover_every_face(rig):
    for hand in ("left", "right"):
        faces = rig.faces(hand)
        parts = [set(p.tolist()) for p in rig.part_vertices(hand)]
        assert len(parts) == 6  # palm + 5 fingers
        for f in faces:
            assert any(set(f.tolist()) <= p for p in parts)
        assert set().union(*parts) == set(np.unique(faces).tolist())


def test_occluded_batch_matches_one_call_per_group():
    v = np.array([[-1, -1, 0.5], [1, -1, 0.5], [1, 1, 0.5], [-1, 1, 0.5]], np.float32)
    scene = raycast.build_scene([(v, np.array([[0, 1, 2], [0, 2, 3]]))])
    rng = np.random.default_rng(3)
    groups = []
    for n, dtype in ((50, np.float32), (0, np.float32), (70, np.float64)):
        pts = np.concatenate([rng.uniform(-1.5, 1.5, (n, 2)), np.full((n, 1), 0.8)], 1)
        nrm = np.tile([0.0, 0.0, -1.0], (n, 1))
        light = rng.normal(size=3) * [0.3, 0.3, 0.0] + [0.0, 0.0, -1.0]
        groups.append((pts.astype(dtype), nrm.astype(dtype), light / np.linalg.norm(light)))
    batched = raycast.occluded_batch(scene, groups, 1)
    assert [len(b) for b in batched] == [50, 0, 70]
    for (p, n, light), b in zip(groups, batched):
        assert b.dtype == bool
        np.testing.assert_array_equal(b, raycast.occluded(scene, p, n, light, 1))
    assert 0 < batched[0].sum() < 50
    empty = raycast.occluded_batch(scene, [(np.zeros((0, 3)), np.zeros((0, 3)), light)], 1)
    assert len(empty) == 1 and empty[0].shape == (0,)


def test_sensor_jpeg_is_decoded_only_on_request(studio_gen):
    rng = np.random.default_rng(0)
    radiance = rng.uniform(0.0, 0.8, (24, 32, 3)).astype(np.float32)
    params = sample_sensor(rng, studio_gen.domain.sensor)
    params.jpeg_quality = 80
    full = sensor_image(radiance, params, 1, np.random.default_rng(5))
    lazy = sensor_image(radiance, params, 1, np.random.default_rng(5), decode=False)
    assert lazy.image is None and lazy.jpeg == full.jpeg
    assert decode_jpeg(lazy.jpeg).tobytes() == full.image.tobytes()
    params.jpeg_quality = JPEG_NONE  # no JPEG: the image is always there
    raw = sensor_image(radiance, params, 1, np.random.default_rng(5), decode=False)
    assert raw.jpeg is None and raw.image.shape == (24, 32, 3)
    with pytest.raises(ValueError, match="JPEG"):
        decode_jpeg(b"not a jpeg")


def test_writer_never_decodes_and_images_decode_lazily(lab_gen, tmp_path, monkeypatch):
    sample = lab_gen.generate(1, 4)
    ref = lab_gen.generate(1, 4)
    for sub in SUBS:
        (tmp_path / sub).mkdir(parents=True)

    def refuse(data):
        raise AssertionError("decoded")

    monkeypatch.setattr(gen_mod, "decode_jpeg", refuse)
    write_sample_files(tmp_path, sample)  # JPEG files as they are: no decoding
    with pytest.raises(AssertionError, match="decoded"):
        sample.left
    monkeypatch.undo()
    assert sample.left.tobytes() == decode_jpeg(sample.left_jpeg).tobytes()
    assert sample.right.tobytes() == ref.right.tobytes()
    assert sample.left is sample.left  # decoded once
    stored = cv2.imread(str(tmp_path / "images/left/000001.jpg"), cv2.IMREAD_COLOR)
    assert cv2.cvtColor(stored, cv2.COLOR_BGR2RGB).tobytes() == sample.left.tobytes()
    for sub, arr in (("masks/left", sample.mask_left), ("masks/right", sample.mask_right)):
        assert cv2.imread(str(tmp_path / sub / "000001.png"), cv2.IMREAD_UNCHANGED).tobytes() \
            == arr.tobytes()
    depth = cv2.imread(str(tmp_path / "depth/right/000001.png"), cv2.IMREAD_UNCHANGED)
    assert depth.tobytes() == _to_uint16(sample.depth_right, DEPTH_PNG_SCALE).tobytes()


def test_sample_needs_an_image_or_a_jpeg(lab_gen):
    s = lab_gen.generate(0, 4)
    kwargs = dict(index=0, mask_left=s.mask_left, mask_right=s.mask_right,
                  depth_left=s.depth_left, depth_right=s.depth_right,
                  disparity_left=s.disparity_left, joints_m=s.joints_m,
                  vertices_m=s.vertices_m, camera=s.camera, handedness=s.handedness,
                  pose=s.pose, shape=s.shape, global_orient=s.global_orient, transl=s.transl)
    with pytest.raises(ValueError, match="right view needs an image or a JPEG"):
        SynthSample(**kwargs, left_jpeg=s.left_jpeg)
    given = SynthSample(**kwargs, left_image=s.left, right_image=s.right)
    assert given.left is s.left and given.right is s.right
    dropped = SynthSample(**kwargs, left_jpeg=s.left_jpeg, right_jpeg=s.right_jpeg)
    dropped.left_jpeg = None
    with pytest.raises(ValueError, match="left image was never decoded"):
        dropped.left


def test_to_uint16_matches_naive_rounding():
    vals = np.array([0.0, -0.0, 1e-5, 0.12345, 0.123449, 3.3, 6.55, 6.5535, 6.55355, 7.0, -1e-3,
                     np.inf, -np.inf, np.nan], np.float32)
    ref = []
    for x in vals.astype(np.float64):
        q = np.round(x * DEPTH_PNG_SCALE) if np.isfinite(x) else -1.0
        ref.append(int(q) if 0 <= q <= UINT16_MAX else 0)
    out = _to_uint16(vals, DEPTH_PNG_SCALE)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, ref)


def test_tune_malloc_on_glibc():
    tuned = tune_malloc()
    assert isinstance(tuned, bool)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert tuned


def test_cli_fork_server_preloads_the_writer():
    from hand_mesh_core.cli import synth as synth_cli
    from hand_mesh_core.data.synth import writer

    assert synth_cli.WORKER_MODULE == writer.__name__


# ---------------------------------------------------------------- 1.2.0 speed work, part 2
# Naive references: the broadcast expressions and gathers the fast paths replace (the code of
# 1.2.0 before the change). Every comparison is bit for bit.
def _naive_scale_rows(x, s, out=None):
    res = x * s[:, None]
    if out is None:
        return res
    out[...] = res
    return out


def _naive_scale_columns(x, b, out=None):
    res = x * np.asarray(b)[None]
    if out is None:
        return res
    out[...] = res
    return out


def _naive_add_columns(x, b, out=None):
    res = x + np.asarray(b)[None]
    if out is None:
        return res
    out[...] = res
    return out


def _naive_outer_rows(a, b):
    return a[:, None] * np.asarray(b)[None]


def _naive_tint_rows(x, w, tint):
    x *= 1.0 - w[:, None] + w[:, None] * np.asarray(tint)[None]
    return x


def _octave_eight_gathers(self, points, frequency, index=0):
    """SolidNoise.octave of 1.2.0: 8 gathers from the wrap-padded flat lattice."""
    from hand_mesh_core.data.synth.textures import LATTICE_SIZE

    rot = (self.rotations[index % len(self.rotations)] * frequency).astype(np.float32)
    p = rot @ np.asarray(points, np.float32).T
    base = np.floor(p)
    f = p - base
    w1 = f * f * (3.0 - 2.0 * f)
    i0 = base.astype(np.int32) & (LATTICE_SIZE - 1)
    side = LATTICE_SIZE + 1
    flat = np.pad(np.asarray(self.lattice, np.float32), ((0, 1),) * 3, mode="wrap").ravel()
    idx = (i0[0] * side + i0[1]) * side + i0[2]
    acc = []
    for dx in (0, side * side):
        for dy in (0, side):
            c0 = flat.take(idx + (dx + dy))
            c1 = flat.take(idx + (dx + dy + 1))
            c1 -= c0
            c1 *= w1[2]
            c1 += c0
            acc.append(c1)
    lo = acc[0] + (acc[1] - acc[0]) * w1[1]
    hi = acc[2] + (acc[3] - acc[2]) * w1[1]
    return lo + (hi - lo) * w1[0]


def _interp_three_gathers(values, tri, bary):
    vals = np.asarray(values, np.float32)
    out = vals[tri[:, 0]] * bary[:, 0:1]
    out += vals[tri[:, 1]] * bary[:, 1:2]
    out += vals[tri[:, 2]] * bary[:, 2:3]
    return out


def _naive_shade(albedo, normals, view_dirs, lighting, visibility=None, specular_gain=None):
    """shade() of 1.2.0: the same model with broadcast (N, 1) x (1, 3) products."""
    from hand_mesh_core.data.synth.shading import AMBIENT_HEMISPHERE

    n = np.asarray(normals, np.float32)
    v = np.asarray(view_dirs, np.float32)
    facing = np.einsum("ij,ij->i", n, v)
    n = n * np.where(facing < 0, np.float32(-1.0), np.float32(1.0))[:, None]
    hemi = 1.0 - AMBIENT_HEMISPHERE * 0.5 * (1.0 + n[:, 1])
    diffuse = np.repeat((lighting.ambient * hemi)[:, None], 3, axis=1)
    specular = np.zeros_like(diffuse)
    gain = 1.0 if specular_gain is None else specular_gain[:, None]
    s = lighting.shininess
    norm = (s + 8.0) / (8.0 * np.pi)
    for k, light in enumerate(lighting.lights):
        ndl = n @ light.direction.astype(np.float32)
        vis = 1.0 if visibility is None else visibility[:, k]
        wrapped = np.clip((ndl + lighting.wrap) / (1.0 + lighting.wrap), 0.0, None) * vis
        diffuse += wrapped[:, None] * light.rgb[None]
        h = v + light.direction[None].astype(np.float32)
        ndh = np.einsum("ij,ij->i", n, h)
        ndh /= np.sqrt(np.einsum("ij,ij->i", h, h)) + np.float32(1e-12)
        np.maximum(ndh, 0.0, out=ndh)
        spec = lighting.specular * norm * ndh ** s * (ndl > 0) * vis
        specular += spec[:, None] * light.rgb[None]
    return (albedo * diffuse + gain * specular).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_helpers_match_broadcasting(dtype):
    from hand_mesh_core.data.synth import shading

    rng = np.random.default_rng(3)
    x = rng.normal(size=(1001, 3)).astype(np.float32)
    s = rng.normal(size=1001).astype(dtype)  # float64: the products are float64, as broadcast
    b = rng.normal(size=3).astype(dtype)
    pairs = [(shading.scale_rows(x, s), _naive_scale_rows(x, s)),
             (shading.scale_columns(x, b), _naive_scale_columns(x, b)),
             (shading.add_columns(x, b), _naive_add_columns(x, b)),
             (shading.outer_rows(s, b), _naive_outer_rows(s, b)),
             (shading.tint_rows(x.copy(), s, b), _naive_tint_rows(x.copy(), s, b))]
    for fast, ref in pairs:
        assert fast.dtype == ref.dtype and fast.shape == ref.shape
        assert fast.tobytes() == ref.tobytes()
    # in place (out=x) on a strided view, as the generator uses it
    table = rng.normal(size=(1001, 9)).astype(np.float32)
    view = table[:, 3:6]
    ref = view * s[:, None]
    shading.scale_rows(view, s, out=view)
    assert view.tobytes() == ref.astype(np.float32).tobytes()


def test_octave_corner_table_matches_eight_gathers():
    from hand_mesh_core.data.synth.textures import SolidNoise

    rng = np.random.default_rng(8)
    noise = SolidNoise.random(rng)
    for scale, freq in ((0.03, 40.0), (0.03, 833.3), (5.0, 1.0), (0.03, 0.01)):
        pts = (rng.normal(size=(5000, 3)) * scale).astype(np.float32)
        for k in range(5):  # k = 4 wraps around the 4 rotations
            fast = noise.octave(pts, freq, k)
            assert fast.tobytes() == _octave_eight_gathers(noise, pts, freq, k).tobytes()
    assert noise.corners().shape == (32 ** 3, 8)


def test_interp_one_gather_matches_three():
    rng = np.random.default_rng(9)
    values = rng.normal(size=(300, 10)).astype(np.float32)
    tri = rng.integers(0, 300, size=(4000, 3))
    bary = rng.dirichlet(np.ones(3), size=4000).astype(np.float32)
    fast = gen_mod._interp(values, tri, bary)
    assert fast.tobytes() == _interp_three_gathers(values, tri, bary).tobytes()


@pytest.mark.parametrize("gain", [False, True])
def test_shade_matches_broadcast_reference(gain):
    from hand_mesh_core.data.synth.shading import Light, LightingParams, shade

    rng = np.random.default_rng(10)
    n = rng.normal(size=(3000, 3)).astype(np.float32)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    v = rng.normal(size=(3000, 3)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    albedo = rng.uniform(size=(3000, 3)).astype(np.float32)
    lights = [Light(d / np.linalg.norm(d), rgb.astype(np.float32))
              for d, rgb in zip(rng.normal(size=(2, 3)), rng.uniform(0.2, 1.2, size=(2, 3)))]
    lighting = LightingParams(lights, 0.08, 0.2, 25.0, 0.1, True, 1.0)
    vis = (rng.uniform(size=(3000, 2)) < 0.7).astype(np.float32)
    spec_gain = rng.uniform(1.0, 2.5, size=3000).astype(np.float32) if gain else None
    fast = shade(albedo, n, v, lighting, vis, spec_gain)
    ref = _naive_shade(albedo, n, v, lighting, vis, spec_gain)
    assert fast.dtype == np.float32 and fast.tobytes() == ref.tobytes()


def test_fast_paths_render_the_same_as_references(lab_gen, monkeypatch):
    from hand_mesh_core.data.synth import shading
    from hand_mesh_core.data.synth.textures import SolidNoise

    fast = [lab_gen.generate(i, 33) for i in range(3)]
    for module in (shading, gen_mod):
        for name, naive in (("scale_rows", _naive_scale_rows),
                            ("scale_columns", _naive_scale_columns),
                            ("add_columns", _naive_add_columns),
                            ("outer_rows", _naive_outer_rows), ("tint_rows", _naive_tint_rows)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, naive)
    monkeypatch.setattr(SolidNoise, "octave", _octave_eight_gathers)
    monkeypatch.setattr(gen_mod, "_interp", _interp_three_gathers)
    slow = [lab_gen.generate(i, 33) for i in range(3)]
    for a, b in zip(fast, slow):
        for k in ARRAYS:
            assert getattr(a, k).tobytes() == getattr(b, k).tobytes(), k


def test_octave_rejects_a_lattice_of_another_size():
    from hand_mesh_core.data.synth.textures import SolidNoise

    noise = SolidNoise(np.zeros((8, 8, 8), np.float32), np.eye(3)[None])
    with pytest.raises(ValueError, match="lattice must be"):
        noise.octave(np.zeros((4, 3), np.float32), 1.0)
