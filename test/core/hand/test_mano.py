"""Restricted MANO loader: a small synthetic MANO-like pickle, and refusal of other globals."""
import collections
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hand_mesh_core.hand.config import HandModelConfig
from hand_mesh_core.hand.kinematics import axis_angle_to_matrix
from hand_mesh_core.hand.mano import (CANONICAL_TO_MANO_JOINT, CANONICAL_TO_MANO_POSE,
                                      MANO_PARENTS, UnsafePickleError, load_mano,
                                      restricted_loads)
from hand_mesh_core.hand.model import HandModel

V = 30
TIPS = (25, 26, 27, 28, 29)


class _Ch:  # pickled as chumpy.ch.Ch
    def __init__(self, x):
        self.x = x


@pytest.fixture
def fake_chumpy(monkeypatch):
    mod = types.ModuleType("chumpy.ch")
    _Ch.__module__, _Ch.__qualname__, _Ch.__name__ = "chumpy.ch", "Ch", "Ch"
    mod.Ch = _Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", mod)
    return _Ch


def _mano_dict(ch):
    rng = np.random.default_rng(0)
    w = rng.random((V, 16))
    reg = rng.random((16, V)) * (rng.random((16, V)) < 0.3) + 1e-3
    kintree = np.array([[2 ** 32 - 1] + list(MANO_PARENTS[1:]), list(range(16))],
                       dtype=np.int64)
    return {"v_template": 0.1 * rng.normal(size=(V, 3)),
            "f": rng.integers(0, V, size=(40, 3)).astype(np.uint32),
            "weights": w / w.sum(1, keepdims=True),
            "J_regressor": sp.csc_matrix(reg / reg.sum(1, keepdims=True)),
            "kintree_table": kintree,
            "shapedirs": ch(0.01 * rng.normal(size=(V, 3, 10))),
            "posedirs": 0.01 * rng.normal(size=(V, 3, 135)),
            "hands_mean": np.zeros(45)}


def _write(tmp_path, data, protocol=2):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [1, 2])
def test_load_small_mano(tmp_path, fake_chumpy, protocol):
    data = _mano_dict(fake_chumpy)
    path = _write(tmp_path, data, protocol)
    m = load_mano(path, TIPS)
    assert m.v_template.shape == (V, 3) and m.weights.shape == (V, 21)
    np.testing.assert_allclose(m.joint_regressor.sum(1), 1.0)
    np.testing.assert_allclose(m.shapedirs, data["shapedirs"].x)
    for c, mj in enumerate(CANONICAL_TO_MANO_JOINT):
        if mj >= 0:
            np.testing.assert_allclose(m.weights[:, c], data["weights"][:, mj])


def _naive_mano(data, pose_mano, betas):
    """Reference MANO (SMPL-style) forward in MANO's own joint order, float64 numpy."""
    v = data["v_template"] + data["shapedirs"].x @ betas
    j = data["J_regressor"].toarray() @ v
    rots = [axis_angle_to_matrix(torch.tensor(p)).numpy() for p in pose_mano]
    feat = np.concatenate([(r - np.eye(3)).ravel() for r in rots])
    v = v + data["posedirs"] @ feat
    g = [None] * 16
    g[0] = np.eye(4)
    g[0][:3, 3] = j[0]
    for k in range(1, 16):
        loc = np.eye(4)
        loc[:3, :3] = rots[k - 1]
        loc[:3, 3] = j[k] - j[MANO_PARENTS[k]]
        g[k] = g[MANO_PARENTS[k]] @ loc
    posed_j = np.stack([x[:3, 3] for x in g])
    a = [x.copy() for x in g]
    for k in range(16):
        a[k][:3, 3] -= a[k][:3, :3] @ j[k]
    t = np.einsum("vk,kab->vab", data["weights"], np.stack(a))
    verts = np.einsum("vab,vb->va", t[:, :3, :3], v) + t[:, :3, 3]
    return verts, posed_j


def test_mano_model_matches_reference(tmp_path, fake_chumpy):
    data = _mano_dict(fake_chumpy)
    path = _write(tmp_path, data)
    model = HandModel.from_mano(path, HandModelConfig(mano_fingertip_vertices=TIPS)).double()
    assert model.num_vertices == V and model.num_shape == 10
    zero = model()
    torch.testing.assert_close(zero.vertices[0], torch.tensor(data["v_template"]))
    gen = torch.Generator().manual_seed(0)
    pose = 0.4 * torch.randn(1, 15, 3, generator=gen, dtype=torch.float64)
    betas = torch.randn(1, 10, generator=gen, dtype=torch.float64)
    out = model(pose, betas)
    pose_mano = pose[0, list(CANONICAL_TO_MANO_POSE)].numpy()
    ref_v, ref_j = _naive_mano(data, pose_mano, betas[0].numpy())
    np.testing.assert_allclose(out.vertices[0].numpy(), ref_v, atol=1e-6)  # buffers are float32
    for c, mj in enumerate(CANONICAL_TO_MANO_JOINT):
        expected = ref_j[mj] if mj >= 0 else ref_v[TIPS[[4, 8, 12, 16, 20].index(c)]]
        np.testing.assert_allclose(out.joints[0, c].numpy(), expected, atol=1e-6)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload", [_Evil(), collections.OrderedDict(a=1),
                                     {"v_template": np.zeros(3), "x": collections.Counter()}])
def test_refuses_other_globals(tmp_path, payload):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafePickleError, match="refusing"):
        load_mano(path, TIPS)
    with pytest.raises(UnsafePickleError):
        HandModel.from_mano(path)


def test_validation(tmp_path, fake_chumpy):
    with pytest.raises(FileNotFoundError):
        load_mano(tmp_path / "missing.pkl", TIPS)
    data = _mano_dict(fake_chumpy)
    with pytest.raises(ValueError, match="fingertip_vertices"):
        load_mano(_write(tmp_path, data), (1, 2, 3, 4, V))
    bad = dict(data, weights=data["weights"][:, :15])
    with pytest.raises(ValueError, match="weights"):
        load_mano(_write(tmp_path, bad), TIPS)
    bad = {k: v for k, v in data.items() if k != "posedirs"}
    with pytest.raises(ValueError, match="posedirs"):
        load_mano(_write(tmp_path, bad), TIPS)
    kin = data["kintree_table"].copy()
    kin[0, 5] = 0
    with pytest.raises(ValueError, match="kintree"):
        load_mano(_write(tmp_path, dict(data, kintree_table=kin)), TIPS)
    with pytest.raises(ValueError, match="dict"):
        load_mano(_write(tmp_path, [1, 2]), TIPS)
    assert restricted_loads(pickle.dumps(np.arange(3), protocol=2)).tolist() == [0, 1, 2]


def test_reconstructor_only_for_allowed_classes():
    from hand_mesh_core.hand.mano import _reconstructor

    with pytest.raises(UnsafePickleError):
        _reconstructor(dict, object, None)
    with pytest.raises(UnsafePickleError):
        _reconstructor(sp.csc_matrix, dict, None)
