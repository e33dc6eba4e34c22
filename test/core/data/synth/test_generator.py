"""The generator: determinism and labels consistent with the rendered images."""
import cv2
import numpy as np
import pytest
import torch

from hand_mesh_core.data.synth import raycast
from hand_mesh_core.data.synth.generator import (MASK_BACKGROUND, MASK_HAND, SynthGenerator,
                                                 sample_seed_sequence)
from hand_mesh_core.data.synth.shading import HandFrame, sample_skin, skin_albedo
from hand_mesh_core.hand.joints import TIP_JOINTS

N_SAMPLES = 3


@pytest.fixture(scope="module")
def lab_samples(lab_gen):
    return [lab_gen.generate(i, 7) for i in range(N_SAMPLES)]


def _project(points, cam, view="left"):
    x = points[:, 0] - (cam.baseline_m if view == "right" else 0.0)
    return np.stack([cam.fx * x / points[:, 2] + cam.cx, cam.fy * points[:, 1] / points[:, 2]
                     + cam.cy], 1)


def test_same_seed_same_bytes_other_seed_differs(lab_gen, lab_samples):
    again = lab_gen.generate(1, 7)
    s = lab_samples[1]
    for name in ("left", "right", "mask_left", "depth_left", "vertices_m"):
        assert getattr(again, name).tobytes() == getattr(s, name).tobytes()
    other = lab_gen.generate(1, 8)
    assert other.left.tobytes() != s.left.tobytes()


def test_labels_match_the_hand_model(lab_gen, lab_samples):
    for s in lab_samples:
        out = lab_gen.rig.model(pose=torch.as_tensor(s.pose)[None],
                                shape=torch.as_tensor(s.shape)[None],
                                global_orient=torch.as_tensor(s.global_orient)[None],
                                transl=torch.as_tensor(s.transl)[None],
                                handedness=s.handedness)
        np.testing.assert_allclose(out.vertices[0].numpy(), s.vertices_m, atol=1e-5)
        np.testing.assert_allclose(out.joints[0].numpy(), s.joints_m, atol=1e-5)
        lo, hi = lab_gen.domain.placement.depth_m
        assert lo - 1e-6 <= s.joints_m.mean(0)[2] <= hi + 1e-6


def test_joints_and_vertices_inside_masks_and_depth(lab_samples):
    for s in lab_samples:
        cam = s.camera
        for view, mask, depth in (("left", s.mask_left, s.depth_left),
                                  ("right", s.mask_right, s.depth_right)):
            uv = np.round(_project(s.vertices_m, cam, view)).astype(int)
            assert uv.min() >= 0 and (uv[:, 0] < cam.width).all() and (uv[:, 1] < cam.height).all()
            seen = depth[uv[:, 1], uv[:, 0]]
            z = s.vertices_m[:, 2]
            # (nearly) nothing lies behind the visible surface (pixel rounding at edges aside);
            # the visible vertices match the depth
            # tolerance: the depth change across ~2 pixel footprints (z / fx per pixel)
            tol = 0.003 + 2.0 * z / cam.fx
            nearest = cv2.erode(depth, np.ones((3, 3)))[uv[:, 1], uv[:, 0]]  # 3x3 minimum
            assert (nearest <= z + tol).all()
            visible = np.abs(seen - z) < tol
            assert visible.mean() > 0.3
            assert (mask[uv[visible, 1], uv[visible, 0]] == MASK_HAND).mean() > 0.9
            # joints lie inside the silhouette (hand or forearm); fingertip joints are surface
            # vertices, so at this low resolution they may sit one pixel outside it
            ju = np.round(_project(s.joints_m, cam, view)).astype(int)
            fg = cv2.dilate((mask != MASK_BACKGROUND).astype(np.uint8), np.ones((3, 3)))
            assert fg[ju[:, 1], ju[:, 0]].all()
            inner = [j for j in range(21) if j not in TIP_JOINTS]
            assert (mask[ju[inner, 1], ju[inner, 0]] != MASK_BACKGROUND).all()


def test_disparity_and_right_mask_is_shifted_left_mask(lab_samples):
    for s in lab_samples:
        cam = s.camera
        d = s.depth_left
        valid = d > 0
        np.testing.assert_allclose(s.disparity_left[valid], cam.fx_baseline / d[valid],
                                   rtol=1e-5)
        assert (s.disparity_left[~valid] == 0).all()
        v, u = np.nonzero(s.mask_left == MASK_HAND)
        ur = np.round(u - s.disparity_left[v, u]).astype(int)
        inside = (ur >= 0) & (ur < cam.width)
        hit = s.mask_right[v[inside], ur[inside]] == MASK_HAND
        assert inside.all() and hit.mean() > 0.9
        # and the right depth there is the same surface
        same = np.abs(s.depth_right[v[inside], ur[inside]][hit] - d[v[inside], u[inside]][hit])
        assert (same < 0.01).mean() > 0.95


def test_texture_is_the_same_in_both_views(lab_gen, lab_samples):
    s = lab_samples[0]
    faces = lab_gen.rig.faces(s.handedness)
    scene = raycast.build_scene([(s.vertices_m, faces)])
    target = s.vertices_m[faces].mean(1)  # triangle centroids
    hits = []
    for view in raycast.VIEWS:
        o = raycast.camera_center(s.camera, view).astype(np.float32)
        hits.append(raycast.cast(scene, o, target - o, nthreads=1))
    ids = np.arange(len(faces))
    both = (hits[0].triangle == ids) & (hits[1].triangle == ids)
    assert both.sum() > 20
    rest_v, rest_n, rest_j = lab_gen.rig.rest(s.handedness)
    skin = sample_skin(np.random.default_rng(0), lab_gen.domain.skin)
    frame = HandFrame.from_joints(rest_j, s.handedness)
    albedo = []
    for h in hits:
        tri = faces[h.triangle[both]]
        bary = h.bary[both][..., None]
        p = (rest_v[tri] * bary).sum(1)
        n = (rest_n[tri] * bary).sum(1)
        albedo.append(skin_albedo(p, n / np.linalg.norm(n, axis=1, keepdims=True), skin,
                                  frame)[0])
    np.testing.assert_allclose(albedo[0], albedo[1], atol=2e-3)
    assert albedo[0].std(0).max() > 0.01  # and it is textured, not flat


def test_seed_sequence_and_generator_errors(lab_gen):
    with pytest.raises(ValueError, match=">= 0"):
        sample_seed_sequence(-1, 0)
    with pytest.raises(ValueError, match=">= 0"):
        lab_gen.generate(-2, 0)
    with pytest.raises(TypeError, match="DomainConfig"):
        SynthGenerator({"name": "x"})
    with pytest.raises(ValueError, match="nthreads"):
        SynthGenerator(lab_gen.domain, lab_gen.rig, nthreads=-1)


def test_impossible_placement_raises(lab_gen):
    d = lab_gen.domain
    bad = d.replace(placement=d.placement.replace(depth_m=[0.05, 0.06], max_tries=2).to_dict())
    with pytest.raises(RuntimeError, match="could not place"):
        SynthGenerator(bad, lab_gen.rig, nthreads=1).generate(0, 0)


def test_stereo_sample_conversion(lab_samples):
    st = lab_samples[0].to_stereo_sample("synth/target_lab")
    assert st.mask_left.dtype == bool and st.joints_m.shape == (21, 3)
    assert st.source == "synth/target_lab/0"
