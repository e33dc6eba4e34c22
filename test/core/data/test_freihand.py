"""FreiHAND reader on fabricated samples in the official layout; fitting the hand model."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from hand_mesh_core.data import freihand
from hand_mesh_core.data.config import FreiHandConfig
from hand_mesh_core.data.freihand import FreiHandDataset, fit_hand_to_joints
from hand_mesh_core.data.mono import MonoSample

N = 3
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]   # one per version


@pytest.fixture(scope="module")
def model():
    """A coarse procedural hand (300 vertices: builds ~2x faster; the fit is the same)."""
    from hand_mesh_core.hand.config import HandModelConfig
    from hand_mesh_core.hand.model import HandModel

    torch.set_num_threads(1)
    return HandModel.procedural(HandModelConfig(grid_spacing_m=0.004, target_vertices=300))


def _self_generated(model, b, seed):
    from hand_mesh_core.hand.poses import sample_pose

    g = torch.Generator().manual_seed(seed)
    pose = sample_pose(g, b)
    shape = 0.5 * torch.randn(b, model.num_shape, generator=g)
    orient = 2.0 * (torch.rand(b, 3, generator=g) - 0.5)
    transl = torch.tensor([0.0, 0.0, 0.5]) + 0.05 * torch.rand(b, 3, generator=g)
    with torch.no_grad():
        return model(pose, shape, orient, transl).joints


def _write_root(root, joints, with_verts=True):
    rng = np.random.default_rng(0)
    K = [[[480.0 + k, 0.0, 112.0], [0.0, 480.0 + k, 112.0], [0.0, 0.0, 1.0]] for k in range(N)]
    (root / "training" / "rgb").mkdir(parents=True)
    (root / "training" / "mask").mkdir(parents=True)
    (root / "training_K.json").write_text(json.dumps(K))
    (root / "training_xyz.json").write_text(json.dumps(joints.tolist()))
    if with_verts:
        verts = rng.normal(size=(N, 778, 3)).round(4)
        (root / "training_verts.json").write_text(json.dumps(verts.tolist()))
    mano = rng.normal(size=(N, 1, 61)).round(4)
    (root / "training_mano.json").write_text(json.dumps(mano.tolist()))
    for v, colour in enumerate(COLOURS):
        for i in range(N):
            img = np.full((224, 224, 3), colour[::-1], np.uint8)   # BGR on disk
            cv2.imwrite(str(root / "training" / "rgb" / f"{i + v * N:08d}.jpg"), img)
    for i in range(N):
        m = np.zeros((224, 224), np.uint8)
        m[50:150, 60:120] = 255
        cv2.imwrite(str(root / "training" / "mask" / f"{i:08d}.jpg"), m)


def test_fit_recovers_self_generated_joints(model):
    target = _self_generated(model, 2, seed=0)
    fit = fit_hand_to_joints(model, target)
    err_mm = (fit.joints - target).norm(dim=-1) * 1000
    assert fit.error_m.max() < 0.003 and err_mm.max() < 8.0   # measured: ~1 mm mean
    assert fit.vertices.shape == (2, model.num_vertices, 3)
    # The vertices are the model's at the fitted parameters.
    with torch.no_grad():
        out = model(fit.pose, fit.shape, fit.global_orient, fit.transl)
    torch.testing.assert_close(out.vertices, fit.vertices)
    # A short fit is worse: the optimisation, not the initialisation, does the work.
    short = fit_hand_to_joints(model, target, iterations=2)
    assert short.error_m.mean() > 3 * fit.error_m.mean()
    with pytest.raises(ValueError, match=r"\(B, 21, 3\)"):
        fit_hand_to_joints(model, target[0])
    with pytest.raises(ValueError, match="iterations >= 1"):
        fit_hand_to_joints(model, target, iterations=0)


def test_dataset_layout_versions_masks_mano(tmp_path, model):
    joints = _self_generated(model, N, seed=1).numpy()
    _write_root(tmp_path, joints)
    ds = FreiHandDataset(tmp_path, FreiHandConfig(vertices="none"))
    assert len(ds) == N
    s = ds[1]
    assert isinstance(s, MonoSample) and s.handedness == "right"
    assert np.abs(s.image.astype(int) - COLOURS[0]).max() <= 3          # gs, RGB order
    np.testing.assert_allclose(s.joints_m, joints[1], atol=1e-6)
    assert s.K[0, 0] == 481.0 and s.vertices_m is None
    assert s.mask[100, 90] and not s.mask[10, 10] and s.mask.sum() == pytest.approx(6000, rel=0.02)
    assert s.extras["mano"].shape == (61,) and s.source == "freihand/training/gs/1"
    for v, name in enumerate(("hom", "sample", "auto")):
        img = FreiHandDataset(tmp_path, FreiHandConfig(version=name, vertices="none"))[2].image
        assert np.abs(img.astype(int) - COLOURS[v + 1]).max() <= 3
    mano = FreiHandDataset(tmp_path, FreiHandConfig(vertices="mano"))
    released = np.asarray(json.loads((tmp_path / "training_verts.json").read_text()))
    np.testing.assert_allclose(mano[0].vertices_m, released[0], atol=1e-6)
    assert ds[-1].source.endswith("/2")
    with pytest.raises(IndexError):
        ds[N]


def test_fitted_vertices_are_cached(tmp_path, model, monkeypatch):
    joints = _self_generated(model, N, seed=2).numpy()
    _write_root(tmp_path, joints, with_verts=False)
    cfg = FreiHandConfig(vertices="fit", fit_iterations=150, cache_dir=str(tmp_path / "cache"))
    ds = FreiHandDataset(tmp_path, cfg, hand_model=model)
    s = ds[0]
    assert s.vertices_m.shape == (model.num_vertices, 3) and s.extras["fit_error_m"] < 0.003
    files = list((tmp_path / "cache").glob("freihand_00000000_*.npz"))
    assert len(files) == 1 and model.topology_hash()[:16] in files[0].name

    def boom(*args, **kwargs):
        raise AssertionError("refitted despite the cache")

    monkeypatch.setattr(freihand, "fit_hand_to_joints", boom)
    np.testing.assert_array_equal(FreiHandDataset(tmp_path, cfg, hand_model=model)[0].vertices_m,
                                  s.vertices_m)
    # Changed labels invalidate the entry.
    joints[0, :, 2] += 0.01
    (tmp_path / "training_xyz.json").write_text(json.dumps(joints.tolist()))
    with pytest.raises(AssertionError, match="refitted"):
        FreiHandDataset(tmp_path, cfg, hand_model=model)[0]


def test_errors(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        FreiHandDataset(tmp_path / "nope")
    tmp_path.joinpath("x").mkdir()
    with pytest.raises(FileNotFoundError, match="training_K.json"):
        FreiHandDataset(tmp_path / "x")
    joints = _self_generated(model, N, seed=3).numpy()
    _write_root(tmp_path, joints, with_verts=False)
    with pytest.raises(FileNotFoundError, match="training_verts.json"):
        FreiHandDataset(tmp_path, FreiHandConfig(vertices="mano"))
    with pytest.raises(TypeError, match="FreiHandConfig"):
        FreiHandDataset(tmp_path, {"vertices": "none"})
    (tmp_path / "training" / "rgb" / "00000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="00000001.jpg"):
        FreiHandDataset(tmp_path, FreiHandConfig(vertices="none"))[1]
    (tmp_path / "training_xyz.json").write_text(json.dumps(joints[:, :20].tolist()))
    with pytest.raises(ValueError, match="N x 21 x 3"):
        FreiHandDataset(tmp_path)
    (tmp_path / "training_xyz.json").write_text(json.dumps(joints[:2].tolist()))
    with pytest.raises(ValueError, match="training_K.json"):
        FreiHandDataset(tmp_path)


def test_mono_sample_validation():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        MonoSample(img.astype(np.float32), np.eye(3))
    with pytest.raises(ValueError, match="K must be"):
        MonoSample(img, np.eye(4))
    with pytest.raises(ValueError, match="handedness"):
        MonoSample(img, np.eye(3), handedness="both")
    with pytest.raises(ValueError, match="joints_m"):
        MonoSample(img, np.eye(3), joints_m=np.zeros((20, 3)))
    with pytest.raises(ValueError, match="vertices_m"):
        MonoSample(img, np.eye(3), vertices_m=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="mask"):
        MonoSample(img, np.eye(3), mask=np.zeros((4, 4), bool))
