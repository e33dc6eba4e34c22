"""Edge-length loss vs a naive loop."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.losses.edge import EdgeLengthLoss, edge_length_loss

F64 = torch.float64


@pytest.fixture
def mesh():
    v, f = uv_sphere(0.05, 4, 6, dtype=F64)
    return torch.stack([v, 1.1 * v]), f


def _naive(v, t, f):
    """Per batch item, per unique edge in sorted (i, j) order."""
    edges = sorted({tuple(sorted((face[i], face[(i + 1) % 3])))
                    for face in f.tolist() for i in range(3)})
    return torch.stack([
        torch.stack([((v[b, i] - v[b, j]).norm() - (t[b, i] - t[b, j]).norm()) ** 2
                     for i, j in edges]) for b in range(v.shape[0])])


def test_zero_for_identical_and_rigid_motion(mesh):
    v, f = mesh
    assert edge_length_loss(v, v.clone(), f) == 0
    rot = torch.linalg.matrix_exp(torch.tensor([[0, -0.3, 0.1], [0.3, 0, -0.2], [-0.1, 0.2, 0]],
                                               dtype=F64))
    moved = v @ rot.T + torch.tensor([0.1, -0.2, 0.3], dtype=F64)
    assert edge_length_loss(moved, v, f) < 1e-28


def test_grows_with_perturbation_and_matches_naive(mesh):
    v, f = mesh
    noise = torch.randn_like(v)
    losses = [edge_length_loss(v + s * noise, v, f, "sum") for s in (1e-3, 2e-3, 4e-3)]
    assert losses[0] < losses[1] < losses[2]
    p = v + 1e-3 * noise
    naive = _naive(p, v, f)
    torch.testing.assert_close(edge_length_loss(p, v, f, "none"), naive)
    torch.testing.assert_close(edge_length_loss(p, v, f, "sum"), naive.sum())
    torch.testing.assert_close(EdgeLengthLoss(f)(p, v), naive.mean())


def test_gradcheck_and_pseudo_label_detached(mesh):
    v, f = mesh
    p = (v + 1e-3 * torch.randn_like(v)).requires_grad_(True)
    t = v.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: edge_length_loss(x, t, f, "none"), (p,))
    edge_length_loss(p, t, f).backward()
    assert t.grad is None


def test_errors(mesh):
    v, f = mesh
    with pytest.raises(ValueError, match="reduction must be one of"):
        edge_length_loss(v, v, f, "max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        EdgeLengthLoss(f, "avg")
    with pytest.raises(ValueError, match="same shape"):
        edge_length_loss(v, v[:1], f)
    with pytest.raises(ValueError, match="3-D"):
        edge_length_loss(v[0], v[0], f)
    with pytest.raises(TypeError, match="floating"):
        edge_length_loss(v.long(), v, f)
