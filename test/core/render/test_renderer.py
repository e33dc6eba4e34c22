"""Renderer: closed-form depth, open3d agreement, gradients, occlusion, edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.mesh import grid_plane, uv_sphere
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.render.config import RenderConfig
from hand_mesh_core.render.interpolate import interpolate
from hand_mesh_core.render.rasterize import rasterize, rasterize_projected, resolve_backend
from hand_mesh_core.render.renderer import MeshRenderer, render_mesh, to_right_frame
from hand_mesh_core.render.silhouette import band_region, soft_silhouette

CAM = StereoCamera()
F64 = torch.float64


def _K(fx=150.0, cx=63.7, cy=64.2, dtype=F64):
    return torch.tensor([[fx, 0.0, cx], [0.0, fx * 1.01, cy], [0.0, 0.0, 1.0]], dtype=dtype)


def _rays(K, h, w):
    v, u = torch.meshgrid(torch.arange(h, dtype=K.dtype), torch.arange(w, dtype=K.dtype),
                          indexing="ij")
    return torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)


@pytest.fixture(scope="module")
def hand():
    """The procedural hand (vertices (1, V, 3) float64 in front of the camera, faces)."""
    model_mod = pytest.importorskip("hand_mesh_core.hand.model",
                                    reason="hand model not available yet")
    model = model_mod.HandModel.procedural()
    pose = 0.3 * torch.rand(1, 15, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = model(pose=pose, global_orient=torch.tensor([[0.2, -0.3, 0.1]]),
                    transl=torch.tensor([[-0.01, -0.08, 0.45]]))
    return out.vertices.to(F64), torch.as_tensor(model.faces)


def test_tilted_plane_depth_closed_form():
    v, f = grid_plane(0.2, 0.2, 4, 3, 0.0, dtype=F64)
    a = math.radians(25.0)
    rot = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]],
                       dtype=F64)
    centre = torch.tensor([0.003, -0.002, 0.5], dtype=F64)
    v = v @ rot.T + centre
    K = _K()
    out = render_mesh(v, f, K, (128, 128), RenderConfig(backend="torch"))
    n = rot[:, 2]
    ray = _rays(K, 128, 128)
    expected = (n @ centre) / (ray @ n)
    m = out.mask[0]
    assert m.sum() > 2000
    torch.testing.assert_close(out.depth_m[0][m], expected[m], atol=1e-12, rtol=1e-12)
    assert (out.depth_m[0][~m] == 0).all()
    # Flat normals: the plane's normal (it faces the camera: -z in its own frame).
    torch.testing.assert_close(out.normals[0][m], (-n).expand(int(m.sum()), 3))


def test_sphere_depth_closed_form():
    r, c = 0.05, torch.tensor([0.004, -0.003, 0.5], dtype=F64)
    v, f = uv_sphere(r, 40, 80, center_m=tuple(c.tolist()), dtype=F64)
    K = _K()
    out = render_mesh(v, f, K, (128, 128), RenderConfig(backend="torch", soft_mask=False))
    d = _rays(K, 128, 128)
    # Ray-sphere: |t d - c|^2 = r^2, nearest root.
    a, b, cc = (d * d).sum(-1), -2 * (d @ c), c @ c - r * r
    disc = b * b - 4 * a * cc
    inner = disc > 0.3 * disc.amax()  # well inside the silhouette
    t = (-b - torch.sqrt(disc.clamp_min(0))) / (2 * a)
    sagitta = r * (1 - math.cos(math.pi / 40))  # max gap between the sphere and its facets
    err = out.depth_m[0][inner] - t[inner]
    assert inner.sum() > 500 and out.mask[0][inner].all()
    assert err.min() >= -1e-12 and err.max() <= 1.01 * sagitta


def _scene(dtype=torch.float32):
    g = torch.Generator().manual_seed(3)
    v, f = uv_sphere(0.05, 12, 24, center_m=(0.0113, 0.0037, 0.45), dtype=F64)
    v = v + 0.002 * torch.randn(v.shape, generator=g, dtype=F64)
    return v.to(dtype), f


#: Both backends work in float32: a pixel centre within ~1e-4 px of an edge may go either way.
#: Such pixels are recognised by a barycentric below this (1e-4 px / ~10 px triangle height).
EDGE_TIE_BARY = 1e-4


def _assert_same_ids(a, b):
    differ = a.face_ids != b.face_ids
    if differ.any():
        near_edge = torch.minimum(a.bary.amin(-1), b.bary.amin(-1))
        near_edge = torch.where(a.mask & b.mask, near_edge,
                                torch.where(a.mask, a.bary.amin(-1), b.bary.amin(-1)))
        assert (near_edge[differ] < EDGE_TIE_BARY).all(), near_edge[differ]
        assert differ.sum() <= 1e-3 * a.mask.sum()


@pytest.mark.parametrize("size, fx", [((128, 128), 150.0), ((480, 640), 822.79041)])
def test_torch_rasterizer_matches_open3d(size, fx):
    v, f = _scene()
    K = _K(fx, (size[1] - 1) / 2 + 0.37, (size[0] - 1) / 2 - 0.21, torch.float32)
    verts = torch.stack([v, v + torch.tensor([0.012, -0.007, 0.03])])
    a = rasterize(verts, f, K, size, backend="torch")
    b = rasterize(verts, f, K, size, backend="open3d")
    assert a.mask.sum() > 500
    _assert_same_ids(a, b)
    same = a.face_ids == b.face_ids
    torch.testing.assert_close(a.depth_m[same], b.depth_m[same], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.bary[same], b.bary[same], atol=2e-3, rtol=0)


def test_differentiable_depth_matches_open3d_raycasting():
    """Torch-recomputed depth vs open3d's ray hits, float64 vertices, to 1e-5 m."""
    v, f = _scene(F64)
    K = torch.tensor(CAM.K, dtype=F64)
    ref = rasterize(v, f, K, (CAM.height, CAM.width), backend="open3d")
    it = interpolate(v, f, K, ref.face_ids)
    assert ref.mask.sum() > 1000
    torch.testing.assert_close(it.depth_m, ref.depth_m, atol=1e-5, rtol=0)


def test_hand_mesh_agrees_with_open3d(hand):
    """The posed procedural hand: same visible faces, depth to 1e-5 m, full image and crop."""
    hv, hf = hand
    full_K = torch.tensor(CAM.K, dtype=F64)
    uv = project(hv, full_K)[0]
    lo, hi = uv.amin(0), uv.amax(0)
    side = float((hi - lo).max()) * 1.1
    crop = CropTransform.square(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, side, 128)
    for K, size in ((full_K, (CAM.height, CAM.width)),
                    (torch.tensor(crop.crop_K(CAM.K), dtype=F64), (128, 128))):
        ref = rasterize(hv, hf, K, size, backend="open3d")
        mine = rasterize(hv.float(), hf, K.float(), size, backend="torch")
        assert ref.mask.sum() > 0.2 * size[0] * size[1] * (0.3 if size[1] == 640 else 1)
        _assert_same_ids(mine, ref)
        it = interpolate(hv, hf, K, ref.face_ids)
        torch.testing.assert_close(it.depth_m, ref.depth_m, atol=1e-5, rtol=0)


def test_rasterize_projected_matches_rasterize():
    v, f = _scene(F64)
    K = _K()
    a = rasterize(v, f, K, (96, 128), backend="torch")
    uv = project(v.unsqueeze(0), K)
    b = rasterize_projected(uv, v[None, :, 2], f, (96, 128))
    assert torch.equal(a.face_ids, b.face_ids)
    torch.testing.assert_close(a.depth_m, b.depth_m)


def test_interpolated_attribute_is_the_surface_point():
    v, f = _scene(F64)
    K = _K()
    fr = rasterize(v, f, K, (128, 128))
    it = interpolate(v, f, K, fr.face_ids, attributes=v)
    m = fr.mask
    expected = _rays(K, 128, 128).unsqueeze(0) * it.depth_m.unsqueeze(-1)
    torch.testing.assert_close(it.attributes[m], expected[m], atol=1e-12, rtol=0)
    torch.testing.assert_close(it.bary.sum(-1)[m], torch.ones(int(m.sum()), dtype=F64))
    assert (it.bary[m] > -1e-9).all()


def _two_triangles():
    # Every pixel centre is >= 0.026 px from every projected edge, so the finite differences
    # of gradcheck never change which face covers a pixel.
    v = torch.tensor([[-0.0487, -0.04, 0.50], [0.0613, -0.0287, 0.55], [-0.0287, 0.05, 0.52],
                      [0.0513, 0.06, 0.60]], dtype=F64, requires_grad=True)
    f = torch.tensor([[0, 2, 1], [1, 2, 3]])  # counter-clockwise seen from the camera
    K = torch.tensor([[40.0, 0, 3.6], [0, 40.0, 3.4], [0, 0, 1]], dtype=F64)
    return v, f, K


def test_depth_gradcheck():
    v, f, K = _two_triangles()
    assert rasterize(v, f, K, (8, 8)).mask.sum() > 20
    assert torch.autograd.gradcheck(
        lambda x: render_mesh(x, f, K, (8, 8), RenderConfig(soft_mask=False)).depth_m, (v,))


def test_soft_mask_gradcheck():
    v, f, K = _two_triangles()
    cfg = RenderConfig(soft_scale_px=0.8, soft_band_px=3.0)
    soft = soft_silhouette(v, f, K, (8, 8), config=cfg)
    assert 0 < soft.min() < 0.5 < soft.max()
    assert torch.autograd.gradcheck(lambda x: soft_silhouette(x, f, K, (8, 8), config=cfg), (v,))
    hard = rasterize(v, f, K, (8, 8)).mask
    assert torch.autograd.gradcheck(
        lambda x: soft_silhouette(x, f, K, (8, 8), hard_mask=hard, config=cfg), (v,))
    # Outside pixels near the boundary get gradient (what the mask loss needs).
    x = v.detach().clone().requires_grad_(True)
    s = soft_silhouette(x, f, K, (8, 8), config=cfg)
    s[~hard].sum().backward()
    assert x.grad.abs().sum() > 0


def test_soft_mask_tracks_hard_mask_and_band_region():
    v, f = _scene()
    K = _K(dtype=torch.float32)
    out = render_mesh(v, f, K, (128, 128))
    full = soft_silhouette(v, f, K, (128, 128))  # no band restriction: plain SoftRas
    near, deep = band_region(out.mask, RenderConfig().soft_band_px)
    assert near.sum() > 100 and deep.sum() > 100
    # Same value near the silhouette; far outside both are ~0; deep inside SoftRas has seams
    # along shared edges (>= 0.75 on a closed mesh), the banded version is exactly 1.
    torch.testing.assert_close(out.soft_mask[near], full[near], atol=1e-12, rtol=0)
    assert full[~near & ~deep].max() < 1e-3
    assert full[deep].min() > 0.75
    assert (out.soft_mask[deep] == 1).all() and not (near & deep).any()
    far_out = ~out.mask & ~near
    assert (out.soft_mask[far_out] == 0).all()
    assert ((out.soft_mask > 0.5) == out.mask).float().mean() > 0.99


def test_occluded_object_is_hidden():
    sphere_v, sphere_f = uv_sphere(0.03, 8, 16, center_m=(0.0, 0.0, 0.6), dtype=F64)
    plane_v, plane_f = grid_plane(0.3, 0.3, 2, 2, 0.4, dtype=F64)
    v = torch.cat([sphere_v, plane_v])
    f = torch.cat([sphere_f, plane_f + sphere_v.shape[0]])
    K = _K(cx=31.6, cy=32.3)
    for backend in ("torch", "open3d"):
        fr = rasterize(v, f, K, (64, 64), backend=backend)
        assert fr.mask.all()
        assert (fr.face_ids >= sphere_f.shape[0]).all(), backend
        torch.testing.assert_close(fr.depth_m, torch.full_like(fr.depth_m, 0.4))
    # Move the sphere in front: now it shows.
    v2 = torch.cat([sphere_v - torch.tensor([0, 0, 0.3], dtype=F64), plane_v])
    assert (rasterize(v2, f, K, (64, 64)).face_ids < sphere_f.shape[0]).any()


@pytest.mark.parametrize("backend", ["torch", "open3d"])
def test_empty_degenerate_and_behind_camera(backend):
    cfg = RenderConfig(backend=backend)
    K = _K()
    # No faces.
    out = render_mesh(torch.zeros(1, 3, 3, dtype=F64), torch.zeros(0, 3, dtype=torch.int64), K,
                      (16, 16), cfg)
    assert not out.mask.any() and (out.depth_m == 0).all() and (out.soft_mask == 0).all()
    # Off-screen, degenerate (collinear, repeated) and behind-the-camera triangles.
    v = torch.tensor([[5.0, 5.0, 1.0], [5.1, 5.0, 1.0], [5.0, 5.1, 1.0],  # off-screen
                      [0.0, 0.0, 0.5], [0.01, 0.0, 0.5], [0.02, 0.0, 0.5],  # collinear
                      [-0.05, -0.05, -0.3], [0.05, -0.05, 0.4], [0.0, 0.05, 0.4],  # behind
                      [0.0, 0.0, 0.0]], dtype=F64, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [3, 4, 5], [3, 3, 3], [6, 7, 8], [9, 9, 9]])
    out = render_mesh(v, f, K, (16, 16), cfg)
    assert not out.mask.any()
    (out.depth_m.sum() + out.soft_mask.sum() + out.normals.sum()).backward()
    assert torch.isfinite(v.grad).all()


def test_stereo_crop_views_agree():
    """Right view = vertices - (B, 0, 0), rendered in the right crop of a StereoCrop."""
    v, f = grid_plane(0.08, 0.08, 2, 2, 0.6, dtype=F64)
    v = v + torch.tensor([0.0, 0.0, 0.0], dtype=F64)
    disp = CAM.fx_baseline / 0.6
    crop = StereoCrop(CropTransform.square(CAM.cx, CAM.cy, 256, 128), shift_px=140.0)
    K = torch.tensor(crop.left.crop_K(CAM.K), dtype=F64)
    renderer = MeshRenderer(RenderConfig(soft_mask=False))
    left = renderer(v, f, K, (128, 128))
    right = renderer(to_right_frame(v, CAM.baseline_m), f, torch.tensor(
        crop.right.crop_K(CAM.K), dtype=F64), (128, 128))
    torch.testing.assert_close(right.depth_m[right.mask], torch.full_like(
        right.depth_m[right.mask], 0.6))

    def centre_u(m):
        cols = torch.nonzero(m[0])[:, 1].to(F64)
        return (cols.min() + cols.max()) / 2

    expected = (disp - crop.shift_px) * crop.left.scale_x
    assert abs((centre_u(left.mask) - centre_u(right.mask)) - expected) <= 1.0
    # Batched baseline per item.
    two = to_right_frame(torch.stack([v, v]), torch.tensor([0.1, 0.2], dtype=F64))
    torch.testing.assert_close(two[1, :, 0], v[:, 0] - 0.2)


def test_full_resolution_matches_crop_resolution():
    v, f = _scene(F64)
    K = torch.tensor(CAM.K, dtype=F64)
    full = render_mesh(v, f, K, (CAM.height, CAM.width), RenderConfig(soft_mask=False))
    crop = CropTransform.square(319.5, 239.5, 128, 128)  # 1:1 crop, x0 = 256, y0 = 176
    sub = render_mesh(v, f, torch.tensor(crop.crop_K(CAM.K), dtype=F64), (128, 128),
                      RenderConfig(soft_mask=False))
    torch.testing.assert_close(sub.depth_m[0], full.depth_m[0, 176:304, 256:384])


def test_validation_errors():
    v, f, K = _two_triangles()
    with pytest.raises(ValueError, match="backend must be one of"):
        rasterize(v, f, K, (8, 8), backend="opengl")
    with pytest.raises(ValueError, match="needs CPU"):
        resolve_backend("open3d", torch.device("cuda"), 0)
    with pytest.raises(ValueError, match="K must have shape"):
        rasterize(v, f, torch.eye(4), (8, 8))
    with pytest.raises(ValueError, match="image_size"):
        rasterize(v, f, K, (8, 0))
    with pytest.raises(ValueError, match="faces must index"):
        rasterize(v, f + 10, K, (8, 8))
    with pytest.raises(ValueError, match="faces must have shape"):
        rasterize(v, f[:, :2], K, (8, 8))
    with pytest.raises(TypeError, match="integer"):
        rasterize(v, f.double(), K, (8, 8))
    with pytest.raises(ValueError, match="vertices must have shape"):
        rasterize(v[:, :2], f, K, (8, 8))
    with pytest.raises(TypeError, match="floating"):
        rasterize(v.long(), f, K, (8, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        rasterize(np.zeros((4, 3)), f, K, (8, 8))
    with pytest.raises(ValueError, match="face_ids"):
        interpolate(v, f, K, torch.zeros(8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="attributes"):
        interpolate(v, f, K, torch.zeros(1, 8, 8, dtype=torch.int64), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="hard_mask"):
        soft_silhouette(v, f, K, (8, 8), hard_mask=torch.zeros(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="uv must"):
        rasterize_projected(torch.zeros(4, 2), torch.zeros(4), f, (8, 8))
    with pytest.raises(ValueError, match="depth_m must"):
        rasterize_projected(torch.zeros(1, 4, 2), torch.zeros(4), f, (8, 8))
    from hand_mesh_core.config.base import ConfigError
    with pytest.raises(ConfigError, match="soft_band_px"):
        RenderConfig(soft_scale_px=1.0, soft_band_px=1.0)
    with pytest.raises(ConfigError, match="backend"):
        RenderConfig(backend="gl")


def test_auto_backend_falls_back_to_open3d_for_huge_triangles():
    v, f = grid_plane(2.0, 2.0, 1, 1, 0.01, dtype=torch.float32)  # fills the image
    K = _K(dtype=torch.float32)
    small = RenderConfig(max_torch_pairs=100)
    assert resolve_backend("auto", torch.device("cpu"), 101, small) == "open3d"
    assert resolve_backend("auto", torch.device("cpu"), 100, small) == "torch"
    a = rasterize(v, f, K, (32, 32), backend="auto", config=small)
    b = rasterize(v, f, K, (32, 32), backend="torch")
    assert a.mask.all() and torch.equal(a.mask, b.mask)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_rasterizer_matches_cpu():
    """The torch rasteriser on CUDA: same ids as on CPU; outputs and gradients finite."""
    v, f = _scene()
    for size, K in (((128, 128), _K(dtype=torch.float32)),
                    ((480, 640), torch.tensor(CAM.K, dtype=torch.float32))):
        cpu = rasterize(v, f, K, size, backend="torch")
        gpu = rasterize(v.cuda(), f.cuda(), K.cuda(), size, backend="auto")
        assert cpu.mask.sum() > 500
        _assert_same_ids(gpu_to_cpu(gpu), cpu)
        torch.testing.assert_close(gpu.depth_m.cpu(), cpu.depth_m, atol=1e-5, rtol=0)
        vg = v.cuda().requires_grad_(True)
        out = render_mesh(vg, f.cuda(), K.cuda(), size)
        (out.depth_m.sum() + out.soft_mask.sum()).backward()
        assert out.depth_m.is_cuda and torch.isfinite(vg.grad).all() and vg.grad.abs().sum() > 0
        ref = render_mesh(v, f, K, size)
        torch.testing.assert_close(out.soft_mask.cpu(), ref.soft_mask, atol=1e-4, rtol=0)


def gpu_to_cpu(fr):
    return type(fr)(face_ids=fr.face_ids.cpu(), bary=fr.bary.cpu(), depth_m=fr.depth_m.cpu())


def _naive_rasterize(v, f, K, size, cull):
    """Per-pixel, per-face reference: float64 edge functions, nearest inside face wins."""
    h, w = size
    uv = project(v.unsqueeze(0), K)[0]
    z = v[:, 2]
    ids = torch.full((h, w), -1, dtype=torch.int64)
    depth = torch.zeros(h, w, dtype=F64)
    for y in range(h):
        for x in range(w):
            best = math.inf
            for j, (a, b, c) in enumerate(f.tolist()):
                (ax, ay), (bx, by), (cx, cy) = uv[a].tolist(), uv[b].tolist(), uv[c].tolist()
                area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
                if area == 0 or (cull and area > 0) or min(z[a], z[b], z[c]) < 1e-3:
                    continue
                lam = [((cx - bx) * (y - by) - (cy - by) * (x - bx)) / area,
                       ((ax - cx) * (y - cy) - (ay - cy) * (x - cx)) / area,
                       ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / area]
                if min(lam) < 0:
                    continue
                d = 1.0 / (lam[0] / z[a] + lam[1] / z[b] + lam[2] / z[c])
                if d < best:
                    best, ids[y, x], depth[y, x] = d, j, d
    return ids, depth


@pytest.mark.parametrize("cull", [True, False])
def test_scanline_rasterizer_matches_naive_reference(cull):
    """Two interpenetrating jittered spheres (occlusion, both orientations) vs brute force."""
    g = torch.Generator().manual_seed(11)
    a, fa = uv_sphere(0.02, 5, 8, center_m=(0.003, 0.001, 0.3), dtype=F64)
    b, fb = uv_sphere(0.015, 4, 7, center_m=(-0.008, 0.004, 0.29), dtype=F64)
    v = torch.cat([a, b]) + 0.001 * torch.randn(a.shape[0] + b.shape[0], 3, generator=g,
                                                dtype=F64)
    f = torch.cat([fa, fb + a.shape[0]])
    K = _K(fx=200.0, cx=15.3, cy=14.6)
    size = (30, 32)
    ids, depth = _naive_rasterize(v, f, K, size, cull)
    fr = rasterize(v, f, K, size, backend="torch", config=RenderConfig(cull_back_faces=cull))
    assert (ids >= 0).sum() > 200
    assert torch.equal(fr.face_ids[0], ids)
    torch.testing.assert_close(fr.depth_m[0], depth, atol=1e-12, rtol=0)
    # Perspective-correct barycentrics reproduce the surface point's depth.
    m = fr.mask[0]
    zc = v[:, 2][f[fr.face_ids[0][m]]]
    torch.testing.assert_close((fr.bary[0][m] * zc).sum(-1), depth[m], atol=1e-12, rtol=0)
    assert torch.equal(fr.pixel_index, torch.nonzero(fr.mask.reshape(-1)).squeeze(1))


def test_back_face_culling():
    """An open plane seen from behind vanishes with culling; a closed mesh is unchanged."""
    v, f = grid_plane(0.1, 0.1, 2, 2, 0.5, dtype=F64)
    K = _K(cx=31.6, cy=32.3)
    on, off = RenderConfig(backend="torch"), RenderConfig(backend="torch", cull_back_faces=False)
    assert rasterize(v, f, K, (64, 64), config=on).mask.sum() == 900  # 30 x 30 px
    back = f[:, [0, 2, 1]]  # reversed winding: the plane now faces away from the camera
    for backend in ("torch", "open3d"):
        assert not rasterize(v, back, K, (64, 64), backend, on).mask.any(), backend
        assert rasterize(v, back, K, (64, 64), backend, off).mask.sum() == 900, backend
    sv, sf = _scene(F64)
    a = rasterize(sv, sf, _K(), (128, 128), config=on)
    b = rasterize(sv, sf, _K(), (128, 128), config=off)
    assert a.mask.sum() > 800
    _assert_same_ids(a, b)
    torch.testing.assert_close(a.depth_m, b.depth_m, atol=1e-12, rtol=0)


def test_batched_rasterize_matches_single_items():
    v, f = _scene(F64)
    verts = torch.stack([v, v + torch.tensor([0.01, -0.02, 0.05], dtype=F64)])
    K = torch.stack([_K(), _K(fx=170.0)])
    both = rasterize(verts, f, K, (96, 100))
    for i in range(2):
        one = rasterize(verts[i], f, K[i], (96, 100))
        assert torch.equal(both.face_ids[i], one.face_ids[0])
        torch.testing.assert_close(both.depth_m[i], one.depth_m[0], atol=0, rtol=0)
        torch.testing.assert_close(both.bary[i], one.bary[0], atol=0, rtol=0)
    it = interpolate(verts, f, K, both.face_ids, attributes=verts, pixel_index=both.pixel_index)
    ref = interpolate(verts, f, K, both.face_ids, attributes=verts)
    torch.testing.assert_close(it.depth_m, ref.depth_m, atol=0, rtol=0)
    torch.testing.assert_close(it.attributes, ref.attributes, atol=0, rtol=0)
    torch.testing.assert_close(it.depth_m[both.mask], both.depth_m[both.mask], atol=1e-12,
                               rtol=0)


def test_interpolate_matches_per_pixel_ray_face_intersection():
    """Per-face tables vs the per-pixel reference formula (three cross products)."""
    from hand_mesh_core.render.interpolate import ray_face_intersection

    v, f = _scene(F64)
    K = _K()
    fr = rasterize(v, f, K, (128, 128))
    it = interpolate(v, f, K, fr.face_ids)
    m = fr.mask[0]
    tri = v[f[fr.face_ids[0][m]]]
    depth, bary, ok = ray_face_intersection(tri, _rays(K, 128, 128)[m])
    assert ok.all() and m.sum() > 800
    torch.testing.assert_close(it.depth_m[0][m], depth, atol=1e-12, rtol=0)
    torch.testing.assert_close(it.bary[0][m], bary, atol=1e-9, rtol=0)


def test_barycentrics_gradcheck():
    v, f, K = _two_triangles()
    assert torch.autograd.gradcheck(
        lambda x: render_mesh(x, f, K, (8, 8), RenderConfig(soft_mask=False)).bary, (v,))


def test_signed_distance_backward_matches_autograd_reference():
    """Analytic backward of the soft silhouette's distances vs autograd through the formula."""
    from hand_mesh_core.render.silhouette import _segment_dist2, _SignedDist2

    g = torch.Generator().manual_seed(2)
    corners = (10 * torch.rand(6, 300, generator=g, dtype=F64)).requires_grad_(True)
    px, py = (10 * torch.rand(2, 300, generator=g, dtype=F64)).unbind(0)
    weights = torch.randn(300, generator=g, dtype=F64)
    fast = _SignedDist2.apply(corners, px, py)
    (fast * weights).sum().backward()
    grad_fast, corners.grad = corners.grad, None
    ax, ay, bx, by, cx, cy = corners.unbind(0)
    d2 = torch.minimum(torch.minimum(_segment_dist2(px, py, ax, ay, bx, by),
                                     _segment_dist2(px, py, bx, by, cx, cy)),
                       _segment_dist2(px, py, cx, cy, ax, ay))
    with torch.no_grad():
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        w0 = (cx - bx) * (py - by) - (cy - by) * (px - bx)
        w1 = (ax - cx) * (py - cy) - (ay - cy) * (px - cx)
        w2 = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
        inside = (w0 * area >= 0) & (w1 * area >= 0) & (w2 * area >= 0)
    ref = torch.where(inside, d2, -d2)
    assert 20 < inside.sum() < 280
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=0)
    (ref * weights).sum().backward()
    torch.testing.assert_close(grad_fast, corners.grad, atol=1e-10, rtol=0)
    assert torch.autograd.gradcheck(lambda c: _SignedDist2.apply(c, px[:40], py[:40]),
                                    (corners.detach()[:, :40].clone().requires_grad_(True),))
