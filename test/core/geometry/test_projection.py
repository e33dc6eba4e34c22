"""Projection, disparity and triangulation: round trips, references, gradients."""
import pytest
import torch

from hand_mesh_core.geometry.projection import (
    depth_to_disparity, disparity_to_depth, project, triangulate, unproject)

K = torch.tensor([[800.0, 0.0, 320.0], [0.0, 790.0, 240.0], [0.0, 0.0, 1.0]],
                 dtype=torch.float64)


def _points(b=2, n=50):
    g = torch.Generator().manual_seed(1)
    xy = (torch.rand(b, n, 2, generator=g, dtype=torch.float64) - 0.5) * 0.4
    z = 0.3 + torch.rand(b, n, 1, generator=g, dtype=torch.float64) * 0.7
    return torch.cat([xy, z], dim=-1)


def test_project_matches_naive_loop():
    pts = _points(1, 5)[0]
    uv = project(pts, K)
    for i in range(5):
        x, y, z = pts[i].tolist()
        assert uv[i, 0].item() == pytest.approx(800 * x / z + 320)
        assert uv[i, 1].item() == pytest.approx(790 * y / z + 240)


def test_project_unproject_round_trip_batched_K():
    pts = _points()
    Kb = torch.stack([K, K * torch.tensor([[1.1, 1, 1], [1, 1.1, 1], [1, 1, 1]],
                                          dtype=torch.float64)])
    uv = project(pts, Kb)
    back = unproject(uv, pts[..., 2], Kb)
    assert torch.allclose(back, pts, atol=1e-12)


def test_triangulate_recovers_points():
    pts = _points()
    baseline = 0.12
    uv_l = project(pts, K)
    uv_r = project(pts - torch.tensor([baseline, 0.0, 0.0], dtype=torch.float64), K)
    assert torch.all(uv_l[..., 0] > uv_r[..., 0])  # positive disparity
    assert torch.allclose(triangulate(uv_l, uv_r, K, baseline), pts, atol=1e-10)
    # per-batch baselines broadcast as (B, 1)
    bl = torch.tensor([[0.12], [0.12]], dtype=torch.float64)
    assert torch.allclose(triangulate(uv_l, uv_r, K, bl), pts, atol=1e-10)


def test_triangulate_uses_abs_disparity_and_clamps():
    uv = torch.tensor([[[330.0, 240.0]]], dtype=torch.float64)
    swapped = triangulate(uv - torch.tensor([10.0, 0.0], dtype=torch.float64), uv, K, 0.1)
    direct = triangulate(uv, uv - torch.tensor([10.0, 0.0], dtype=torch.float64), K, 0.1)
    assert torch.allclose(swapped[..., 2], direct[..., 2])
    same = triangulate(uv, uv, K, 0.1)
    assert torch.isfinite(same).all()


def test_disparity_depth():
    depth = torch.tensor([0.5, 1.0, 0.0, -1.0, float("inf"), float("nan")])
    disp = depth_to_disparity(depth, 800.0, 0.1)
    assert torch.allclose(disp, torch.tensor([160.0, 80.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(disparity_to_depth(disp[:2], 800.0, 0.1), depth[:2])
    assert disparity_to_depth(torch.tensor([0.0]), 800.0, 0.1).item() == 0.0


def test_gradcheck():
    pts = _points(1, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: project(p, K), (pts,))
    uv_r = project(pts.detach() - torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64), K)
    uv_l = project(pts.detach(), K).requires_grad_(True)
    uv_r.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: triangulate(a, b, K, 0.1), (uv_l, uv_r))
    d = torch.tensor([0.4, 0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: depth_to_disparity(x, 800.0, 0.1), (d,))


@pytest.mark.parametrize("fn, args, pattern", [
    (project, (torch.zeros(4, 2), K), r"\(\.\.\., N, 3\)"),
    (project, (torch.zeros(4, 3), torch.eye(4)), r"K must have shape"),
    (project, (torch.zeros(4, 3), torch.zeros(2, 2, 3, 3)), r"more batch dims"),
    (unproject, (torch.zeros(4, 3), torch.zeros(4), K), r"\(\.\.\., N, 2\)"),
    (unproject, (torch.zeros(4, 2), torch.zeros(5), K), r"depth must have shape"),
    (triangulate, (torch.zeros(4, 2), torch.zeros(5, 2), K, 0.1), r"same shape"),
])
def test_shape_errors(fn, args, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(*args)
