"""Uniform Laplacian loss vs a naive loop."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.geometry.mesh import grid_plane, uv_sphere, vertex_neighbors
from hand_mesh_core.losses.laplacian import LaplacianLoss, laplacian_delta, laplacian_loss

F64 = torch.float64


def test_matches_naive_loop():
    v, f = uv_sphere(0.05, 4, 6, dtype=F64)
    v = torch.stack([v, v + 0.001 * torch.randn_like(v)])
    nb = vertex_neighbors(f)
    naive = torch.stack([torch.stack([(v[b, i] - v[b, nb[i]].mean(0)).norm()
                                      for i in range(v.shape[1])]) for b in range(2)])
    torch.testing.assert_close(laplacian_loss(v, f, "none"), naive)
    torch.testing.assert_close(laplacian_loss(v, f), naive.mean())
    torch.testing.assert_close(LaplacianLoss(f, "sum")(v), naive.sum())


def test_minimal_for_flat_grid_and_grows_with_bumps():
    v, f = grid_plane(0.1, 0.1, 6, 6, 0.5, dtype=F64)
    v = v.unsqueeze(0)
    interior = laplacian_loss(v, f, "none")[0].reshape(7, 7)[1:-1, 1:-1]
    assert interior.abs().max() < 1e-15
    bump = torch.zeros_like(v)
    bump[0, 24, 2] = 1.0  # the centre vertex
    values = [laplacian_loss(v + s * bump, f) for s in (0.0, 1e-3, 2e-3)]
    assert values[0] < values[1] < values[2]


def test_gradcheck_isolated_vertices_and_errors():
    v, f = uv_sphere(1.0, 3, 4, dtype=F64)
    v = torch.cat([v, torch.ones(1, 3, dtype=F64)]).unsqueeze(0)  # an isolated vertex
    assert laplacian_delta(v, f)[0, -1].abs().sum() == 0
    x = (v + 0.01 * torch.randn_like(v)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: laplacian_loss(y, f, "none"), (x,))
    with pytest.raises(ValueError, match="reduction must be one of"):
        laplacian_loss(v, f, "avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        LaplacianLoss(f, "avg")
    with pytest.raises(ValueError, match="3-D"):
        laplacian_loss(v[0], f)
    with pytest.raises(TypeError, match="torch.Tensor"):
        laplacian_loss(v.numpy(), f)
