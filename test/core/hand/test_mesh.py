"""Validity of the procedural template mesh and its skinning weights."""
import numpy as np
import open3d as o3d
import pytest

from hand_mesh_core.hand.anatomy import rest_joints
from hand_mesh_core.hand.joints import TIP_JOINTS
from hand_mesh_core.hand.model import HandModel
from hand_mesh_core.hand.template import hand_sdf, marching_tetrahedra


@pytest.fixture(scope="module")
def model():
    return HandModel.procedural()


def _o3d(v, f):
    return o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(v, np.float64)),
                                     o3d.utility.Vector3iVector(np.asarray(f, np.int32)))


def _signed_volume(v, f):
    t = v[f]
    return np.einsum("fi,fi->f", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0


def _euler(v, f):
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    return len(v) - len(np.unique(edges, axis=0)) + len(f)


def test_template_is_closed_manifold_outward(model):
    v = model.template_vertices.double().numpy()
    f = model.faces.numpy()
    assert 700 <= model.num_vertices <= 1000
    m = _o3d(v, f)
    assert m.is_watertight() and m.is_edge_manifold() and m.is_vertex_manifold()
    assert m.is_orientable()
    assert not m.is_self_intersecting()
    assert _euler(v, f) == 2  # genus 0: one closed sphere-like surface
    vol = _signed_volume(v, f)
    assert 1.5e-4 < vol < 5e-4  # m^3: positive (outward) and hand-sized


def test_template_normals_point_away_from_skeleton(model):
    v = model.template_vertices.double().numpy()
    f = model.faces.numpy()
    t = v[f]
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    centroid = t.mean(axis=1)
    # the field grows along outward normals
    eps = 1e-4
    outward = hand_sdf(centroid + eps * n / np.linalg.norm(n, axis=1, keepdims=True))
    assert (outward > hand_sdf(centroid)).mean() > 0.97


def test_fingertip_vertices_on_tip_joints(model):
    v = model.template_vertices.double().numpy()
    j = rest_joints()
    for tip in TIP_JOINTS:
        assert np.linalg.norm(v - j[tip], axis=1).min() < 1e-6


def test_marching_tetrahedra_sphere_against_closed_form():
    r, h = 0.01 + 0.001 / 3, 0.001  # radius off the grid nodes
    ax = np.arange(-0.015, 0.0151, h)
    g = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1)
    vals = np.linalg.norm(g, axis=-1) - r
    v, f = marching_tetrahedra(vals, np.full(3, ax[0]), h)
    m = _o3d(v, f)
    assert m.is_watertight() and m.is_orientable()
    assert _euler(v, f) == 2
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), r, atol=0.05 * h)  # chord error
    assert _signed_volume(v, f) == pytest.approx(4 / 3 * np.pi * r ** 3, rel=0.03)
    # inside-out field gives the reversed orientation
    v2, f2 = marching_tetrahedra(-vals, np.full(3, ax[0]), h)
    assert _signed_volume(v2, f2) < 0


def test_skinning_weights(model):
    w = model.skinning_weights.double()
    assert w.shape == (model.num_vertices, 21)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(1).numpy(), 1.0, atol=1e-6)
    assert (w[:, list(TIP_JOINTS)] == 0).all()
    # smooth: hard switches (weights moving almost entirely to other joints along one edge)
    # are rare (only where neighbouring fingers meet at the webs)
    f = model.faces.numpy()
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    jump = (w[e[:, 0]] - w[e[:, 1]]).abs().sum(1).numpy()
    assert (jump > 1.5).mean() < 0.02
    # vertices in the plane of a finger joint are shared by the two bones meeting there
    v = model.template_vertices.double().numpy()
    j = rest_joints()
    for parent, joint, child in ((9, 10, 11), (5, 6, 7), (14, 15, 16)):
        axis = (j[child] - j[parent]) / np.linalg.norm(j[child] - j[parent])
        rel = v - j[joint]
        along = rel @ axis
        radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        ring = (np.abs(along) < 0.002) & (radial < 0.012)
        assert ring.sum() >= 3
        assert (w[ring][:, parent] > 0.2).all() and (w[ring][:, joint] > 0.2).all()
    # every articulated joint drives some vertices
    assert (w.max(0).values[[j for j in range(21) if j not in TIP_JOINTS]] > 0.5).all()
