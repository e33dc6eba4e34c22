"""Weighted total of the six terms, switches, and end-to-end gradients through the renderer."""
from __future__ import annotations

import pytest
import torch

import hand_mesh_core.losses.total as total_mod
from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.losses.chamfer import stereo_chamfer_loss
from hand_mesh_core.losses.edge import edge_length_loss
from hand_mesh_core.losses.laplacian import laplacian_loss
from hand_mesh_core.losses.mask import mask_loss
from hand_mesh_core.losses.normal import normal_consistency_loss
from hand_mesh_core.losses.photo import photo_consistency_loss
from hand_mesh_core.losses.total import (
    TERM_NAMES, Branch, LossConfig, LossWeights, SelfSupervisedLoss, StereoWarp,
    self_supervised_loss,
)
from hand_mesh_core.render.renderer import render_mesh, to_right_frame

F64 = torch.float64
CAM = StereoCamera()
SIZE = 48


def _branches(requires_grad=False):
    v, f = uv_sphere(0.03, 6, 10, center_m=(0.004, -0.002, 0.55), dtype=F64)
    v = v.unsqueeze(0)
    crop = StereoCrop(CropTransform.square(CAM.cx, CAM.cy, 160, SIZE), shift_px=170.0)
    g = torch.Generator().manual_seed(1)
    left_v = (v + 0.001 * torch.randn(v.shape, generator=g, dtype=F64))
    right_v = to_right_frame(v + 0.001 * torch.randn(v.shape, generator=g, dtype=F64),
                             CAM.baseline_m)
    left_v.requires_grad_(requires_grad)
    right_v.requires_grad_(requires_grad)
    branches = []
    for vert, c in ((left_v, crop.left), (right_v, crop.right)):
        K = torch.tensor(c.crop_K(CAM.K), dtype=F64)
        out = render_mesh(vert, f, K, (SIZE, SIZE))
        img = torch.rand(1, 3, SIZE, SIZE, generator=g, dtype=F64)
        skin = out.mask.clone()
        skin[:, :, : SIZE // 3] = False  # a skin mask that disagrees somewhat
        branches.append(Branch(vertices_m=vert, image=img, skin_mask=skin, depth_m=out.depth_m,
                               soft_mask=out.soft_mask, pseudo_vertices_m=vert.detach() * 1.01))
    warp = StereoWarp(CAM.fx, CAM.baseline_m, crop.shift_px, crop.left.scale_x)
    return branches[0], branches[1], f, warp, (left_v, right_v)


def test_paper_default_weights_and_config_validation():
    w = LossWeights()
    assert (w.photo, w.edge, w.laplacian, w.mask, w.chamfer, w.normal) == (
        100.0, 1.0, 10.0, 0.1, 0.001, 0.001)
    assert LossConfig().photo_alpha == 0.85 and LossConfig().ssim_window == 3
    with pytest.raises(ConfigError, match="must be >= 0.0"):
        LossWeights(photo=-1.0)
    with pytest.raises(ConfigError, match="odd"):
        LossConfig(ssim_window=4)
    cfg = LossConfig.from_dict({"weights": {"mask": 0.0}})
    assert cfg.weights.mask == 0.0
    assert LossConfig.from_dict(cfg.to_dict()) == cfg


def test_total_is_the_weighted_sum_of_the_terms():
    left, right, f, warp, _ = _branches()
    cfg = LossConfig(weights=LossWeights(photo=2.0, edge=3.0, laplacian=5.0, mask=7.0,
                                         chamfer=11.0, normal=13.0))
    terms = self_supervised_loss(left, right, f, warp, cfg)
    photo = sum(photo_consistency_loss(o.image, t.image, t.depth_m, t.skin_mask, warp.fx_px,
                                       warp.baseline_m, warp.shift_px, warp.scale_x, view)
                for view, t, o in (("left", left, right), ("right", right, left)))
    expected = {
        "photo": photo,
        "edge": sum(edge_length_loss(b.vertices_m, b.pseudo_vertices_m, f, "sum")
                    for b in (left, right)),
        "laplacian": sum(laplacian_loss(b.vertices_m, f) for b in (left, right)),
        "mask": sum(mask_loss(b.soft_mask, b.skin_mask) for b in (left, right)),
        "chamfer": stereo_chamfer_loss(left.vertices_m, right.vertices_m, CAM.baseline_m),
        "normal": normal_consistency_loss(left.vertices_m, right.vertices_m, f, "sum"),
    }
    for name in TERM_NAMES:
        torch.testing.assert_close(getattr(terms, name), expected[name])
        assert getattr(terms, name) > 0, name
    weights = (2.0, 3.0, 5.0, 7.0, 11.0, 13.0)
    torch.testing.assert_close(terms.total,
                               sum(w * expected[n] for w, n in zip(weights, TERM_NAMES)))
    logged = terms.as_floats()
    assert set(logged) == set(TERM_NAMES) | {"total"}


def test_disabled_terms_are_not_computed(monkeypatch):
    left, right, f, warp, _ = _branches()

    def boom(*args, **kwargs):
        raise AssertionError("a disabled term was computed")

    for name in ("photo_consistency_loss", "edge_length_loss", "laplacian_loss", "mask_loss",
                 "stereo_chamfer_loss", "normal_consistency_loss"):
        monkeypatch.setattr(total_mod, name, boom)
    zero = LossConfig(weights=LossWeights(photo=0, edge=0, laplacian=0, mask=0, chamfer=0,
                                          normal=0))
    terms = self_supervised_loss(left, right, f, warp, zero)
    assert all(getattr(terms, n) == 0 for n in TERM_NAMES + ("total",))
    # Inputs of disabled terms may be missing.
    bare = Branch(left.vertices_m, left.image, left.skin_mask)
    self_supervised_loss(bare, bare, f, warp, zero)


@pytest.mark.parametrize("term, field", [("photo", "depth_m"), ("mask", "soft_mask"),
                                         ("edge", "pseudo_vertices_m")])
def test_missing_inputs_of_enabled_terms_raise(term, field):
    left, right, f, warp, _ = _branches()
    only = LossWeights(**{n: (1.0 if n == term else 0.0) for n in TERM_NAMES})
    bare = Branch(**{**left.__dict__, field: None})
    with pytest.raises(ValueError, match=f"{term} term is on but Branch.{field}"):
        self_supervised_loss(bare, right, f, warp, LossConfig(weights=only))


def test_gradients_reach_both_branches_through_the_renderer():
    left, right, f, warp, (left_v, right_v) = _branches(requires_grad=True)
    terms = SelfSupervisedLoss(f)(left, right, warp)
    terms.total.backward()
    for v in (left_v, right_v):
        assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0
    # The photo term alone also reaches the vertices (via depth -> disparity -> grid_sample).
    left, right, f, warp, (left_v, right_v) = _branches(requires_grad=True)
    only_photo = LossConfig(weights=LossWeights(edge=0, laplacian=0, mask=0, chamfer=0,
                                                normal=0))
    self_supervised_loss(left, right, f, warp, only_photo).total.backward()
    assert right_v.grad.abs().sum() > 0 and left_v.grad.abs().sum() > 0
