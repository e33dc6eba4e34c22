"""Mesh topology and normals vs naive loops."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_mesh_core.geometry.mesh import (
    face_normals, grid_plane, mesh_topology, unique_edges, uniform_laplacian, uv_sphere,
    vertex_neighbors, vertex_normals,
)


def _naive_edges(faces):
    s = set()
    for f in faces.tolist():
        for i in range(3):
            a, b = f[i], f[(i + 1) % 3]
            s.add((min(a, b), max(a, b)))
    return sorted(s)


def _naive_neighbors(faces, nv):
    nb = [set() for _ in range(nv)]
    for a, b in _naive_edges(faces):
        nb[a].add(b)
        nb[b].add(a)
    return [sorted(x) for x in nb]


@pytest.fixture
def sphere():
    return uv_sphere(0.05, 6, 8, center_m=(0.01, -0.02, 0.4), dtype=torch.float64)


def test_edges_and_neighbors_match_naive(sphere):
    v, f = sphere
    assert unique_edges(f).tolist() == [list(e) for e in _naive_edges(f)]
    assert vertex_neighbors(f) == _naive_neighbors(f, v.shape[0])
    topo = mesh_topology(f)
    # Euler characteristic of a closed sphere: V - E + F = 2.
    assert v.shape[0] - topo.edges.shape[0] + f.shape[0] == 2
    # face_edges point at the right unique edges.
    for fi, face in enumerate(f.tolist()):
        for k in range(3):
            a, b = sorted((face[k], face[(k + 1) % 3]))
            assert topo.edges[topo.face_edges[fi, k]].tolist() == [a, b]


def test_topology_is_cached_and_extra_vertices():
    _, f = grid_plane(1.0, 1.0, 2, 2, 1.0)
    assert mesh_topology(f) is mesh_topology(f.clone())
    assert mesh_topology(f.numpy()) is mesh_topology(f)
    topo = mesh_topology(f, num_vertices=11)  # two isolated vertices
    assert topo.degree[-2:].tolist() == [0, 0]
    assert topo.neighbors(10) == []


def test_laplacian_matches_naive(sphere):
    v, f = sphere
    lap = uniform_laplacian(f, dtype=torch.float64)
    nb = _naive_neighbors(f, v.shape[0])
    naive = torch.stack([v[i] - v[nb[i]].mean(0) for i in range(v.shape[0])])
    torch.testing.assert_close(torch.sparse.mm(lap, v), naive)


def test_face_normals_unit_outward_and_match_naive(sphere):
    v, f = sphere
    n = face_normals(v.unsqueeze(0).repeat(2, 1, 1), f)
    assert n.shape == (2, f.shape[0], 3)
    torch.testing.assert_close(n.norm(dim=-1), torch.ones(2, f.shape[0], dtype=v.dtype))
    centre = torch.tensor([0.01, -0.02, 0.4], dtype=v.dtype)
    outward = ((v[f].mean(1) - centre) * n[0]).sum(-1)
    assert (outward > 0).all()
    for i, (a, b, c) in enumerate(f.tolist()):
        ref = np.cross((v[b] - v[a]).numpy(), (v[c] - v[a]).numpy())
        np.testing.assert_allclose(n[0, i].numpy(), ref / np.linalg.norm(ref), atol=1e-12)


def test_vertex_normals_match_naive_and_sphere_radial(sphere):
    v, f = sphere
    vn = vertex_normals(v, f)
    fn = face_normals(v, f, normalize=False)
    for i in range(v.shape[0]):
        acc = sum(fn[k] for k in range(f.shape[0]) if i in f[k].tolist())
        torch.testing.assert_close(vn[i], acc / acc.norm())
    radial = v - torch.tensor([0.01, -0.02, 0.4], dtype=v.dtype)
    cos = (vn * radial / radial.norm(dim=-1, keepdim=True)).sum(-1)
    assert cos.min() > 0.95


def test_plane_faces_the_camera_and_degenerate_normals_are_zero():
    v, f = grid_plane(0.2, 0.1, 3, 2, 0.5)
    assert (face_normals(v, f)[:, 2] == -1).all()
    v = torch.zeros(3, 3, requires_grad=True)
    n = face_normals(v, torch.tensor([[0, 1, 2]]))
    assert (n == 0).all()
    n.sum().backward()
    assert torch.isfinite(v.grad).all()


def test_face_normals_gradcheck():
    v, f = uv_sphere(1.0, 3, 4, dtype=torch.float64)
    v = (v + 0.01 * torch.randn_like(v)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: face_normals(x, f), (v,))
    assert torch.autograd.gradcheck(lambda x: vertex_normals(x, f), (v,))


@pytest.mark.parametrize("faces, exc", [
    (np.zeros((4, 2), dtype=np.int64), ValueError),
    (np.zeros((4, 3), dtype=np.float32), TypeError),
    (-np.ones((1, 3), dtype=np.int64), ValueError),
])
def test_bad_faces_raise(faces, exc):
    with pytest.raises(exc):
        mesh_topology(faces)


def test_bad_inputs_raise():
    _, f = grid_plane(1.0, 1.0, 1, 1, 1.0)
    with pytest.raises(ValueError, match="num_vertices"):
        mesh_topology(f, num_vertices=2)
    with pytest.raises(ValueError, match="vertex must be"):
        mesh_topology(f).neighbors(99)
    with pytest.raises(ValueError, match="shape"):
        face_normals(torch.zeros(4, 2), f)
    with pytest.raises(TypeError, match="floating"):
        face_normals(torch.zeros(4, 3, dtype=torch.int64), f)
    with pytest.raises(TypeError, match="torch.Tensor"):
        face_normals(np.zeros((4, 3)), f)
    with pytest.raises(ValueError):
        uv_sphere(-1.0, 4, 4)
    with pytest.raises(ValueError):
        uv_sphere(1.0, 1, 4)
    with pytest.raises(ValueError):
        grid_plane(1.0, 1.0, 0, 1, 1.0)
