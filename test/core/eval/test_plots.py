"""Tests of the evaluation figures: files, geometry of what is drawn, and validation."""
from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from hand_mesh_core.eval.config import PlotConfig
from hand_mesh_core.eval.metrics import PCKCurve
from hand_mesh_core.eval.plots import (
    OverlayPanel, draw_mesh, draw_skeleton, plot_before_after, plot_mesh_overlays,
    plot_pck_curves, plot_per_joint_errors,
)
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.mesh import uv_sphere

CAMERA = StereoCamera(fx=200.0, fy=200.0, cx=79.5, cy=59.5, baseline_m=0.1, width=160,
                      height=120)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sphere(center=(0.0, 0.0, 0.5), radius=0.05):
    v, f = uv_sphere(radius, 6, 8, center)
    return v.numpy().astype(np.float64), f.numpy().astype(np.int32)


def _joints(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.02, size=(21, 3)) + [0.0, 0.0, 0.5]


def test_draw_mesh_projects_and_sorts_far_to_near():
    verts, faces = _sphere()
    fig = Figure()
    ax = fig.add_subplot()
    uv = draw_mesh(ax, verts, faces, CAMERA)
    ref = np.stack([200 * verts[:, 0] / verts[:, 2] + 79.5,
                    200 * verts[:, 1] / verts[:, 2] + 59.5], -1)
    np.testing.assert_allclose(uv, ref, atol=1e-9)
    filled = [c for c in ax.collections if isinstance(c, PolyCollection)][0]
    polys = filled.get_paths()
    assert len(polys) == len(faces)
    # painter's algorithm: mean depth of the drawn triangles is non-increasing
    depth = verts[faces, 2].mean(1)
    drawn = [np.argmin(np.abs(uv[faces].mean(1) - p.vertices[:3].mean(0)).sum(1)) for p in polys]
    assert np.all(np.diff(depth[drawn]) <= 1e-12)


def test_draw_mesh_skips_triangles_behind_camera():
    verts, faces = _sphere(center=(0.0, 0.0, 0.02), radius=0.05)  # crosses z = 0
    fig = Figure()
    ax = fig.add_subplot()
    draw_mesh(ax, verts, faces, CAMERA)
    n_front = int((verts[faces, 2].min(1) > 0).sum())
    assert 0 < n_front < len(faces)
    assert len(ax.collections[0].get_paths()) == n_front


def test_draw_skeleton_bones():
    fig = Figure()
    ax = fig.add_subplot()
    uv = draw_skeleton(ax, _joints(), CAMERA)
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines[0].get_segments()) == 20  # 20 bones
    np.testing.assert_allclose(lines[0].get_segments()[0], uv[[0, 1]])  # wrist -> thumb_cmc


def test_overlay_png_draws_mesh_where_it_projects(tmp_path):
    # Black image, opaque red mesh, no zoom: red pixels appear, and only if the mesh is in front.
    image = np.zeros((120, 160, 3), np.uint8)
    cfg = PlotConfig(mesh_alpha=1.0, zoom_margin_frac=-1.0, dpi=50)
    verts, faces = _sphere()
    path = plot_mesh_overlays(image, [OverlayPanel("p", verts, None, "red")], faces, CAMERA,
                              tmp_path / "a.png", config=cfg)
    img = matplotlib.image.imread(path)[..., :3]
    red = (img[..., 0] > 0.8) & (img[..., 1] < 0.2) & (img[..., 2] < 0.2)
    assert red.sum() > 50
    behind = verts * [1.0, 1.0, -1.0]
    path_b = plot_mesh_overlays(image, [OverlayPanel("p", behind, None, "red")], faces, CAMERA,
                                tmp_path / "b.png", config=cfg)
    img_b = matplotlib.image.imread(path_b)[..., :3]
    red_b = (img_b[..., 0] > 0.8) & (img_b[..., 1] < 0.2) & (img_b[..., 2] < 0.2)
    assert red_b.sum() == 0


def test_before_after_and_curves_write_pngs(tmp_path):
    image = np.full((120, 160, 3), 90, np.uint8)
    verts, faces = _sphere()
    gt = _joints(1)
    out = plot_before_after(image, verts + [0.02, 0.0, 0.0], verts, faces, CAMERA,
                            tmp_path / "ba.png", gt + 0.01, gt, gt, config=PlotConfig(dpi=40))
    assert out.read_bytes()[:8] == PNG_MAGIC
    curve = PCKCurve(np.linspace(20, 50, 31), np.linspace(0, 1, 31), 0.5)
    assert plot_pck_curves({"a": curve, "b": curve}, tmp_path / "pck.png").read_bytes()[:8] \
        == PNG_MAGIC
    per_joint = {"a": np.arange(21.0), "b": np.full(21, np.nan)}
    assert plot_per_joint_errors(per_joint, tmp_path / "pj.png").read_bytes()[:8] == PNG_MAGIC


def test_validation(tmp_path):
    verts, faces = _sphere()
    image = np.zeros((120, 160, 3), np.uint8)
    panel = [OverlayPanel("p", verts)]
    curve = PCKCurve(np.array([20.0, 50.0]), np.array([0.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match="at least one method"):
        plot_pck_curves({}, tmp_path / "x.png")
    with pytest.raises(TypeError, match="PCKCurve"):
        plot_pck_curves({"a": [0.1]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\.png"):
        plot_pck_curves({"a": curve}, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="at least one method"):
        plot_per_joint_errors({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"shape \(21,\)"):
        plot_per_joint_errors({"a": np.zeros(20)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        plot_mesh_overlays(image.astype(np.float32), panel, faces, CAMERA, tmp_path / "x.png")
    with pytest.raises(ValueError, match="but the camera is 160x120"):
        plot_mesh_overlays(image[:10], panel, faces, CAMERA, tmp_path / "x.png")
    with pytest.raises(TypeError, match="StereoCamera"):
        plot_mesh_overlays(image, panel, faces, "cam", tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(F, 3\) integer"):
        plot_mesh_overlays(image, panel, faces.astype(float), CAMERA, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one OverlayPanel"):
        plot_mesh_overlays(image, [], faces, CAMERA, tmp_path / "x.png")
    with pytest.raises(TypeError, match="OverlayPanel"):
        plot_mesh_overlays(image, [verts], faces, CAMERA, tmp_path / "x.png")
    with pytest.raises(ValueError, match="outside"):
        plot_mesh_overlays(image, panel, faces + 1000, CAMERA, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"vertices_m must have shape \(V, 3\)"):
        plot_mesh_overlays(image, [OverlayPanel("p", verts[:, :2])], faces, CAMERA,
                           tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"joints_m must have shape \(21, 3\)"):
        plot_mesh_overlays(image, [OverlayPanel("p", verts, np.zeros((20, 3)))], faces,
                           CAMERA, tmp_path / "x.png")
