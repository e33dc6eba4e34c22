"""Tests of hand_mesh_core.eval.metrics against hand-computed values and naive references."""
from __future__ import annotations

import json
import math
import numpy as np
import pytest
import torch
from scipy.io import loadmat
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.eval.config import STB_PALM_ROOT, MetricsConfig
from hand_mesh_core.eval.metrics import (
    JointError, aligned_joint_errors_mm, compute_joint_metrics, joint_error, joint_errors_mm,
    pck_auc, pck_curve, pck_thresholds_mm, procrustes_align, root_relative, umeyama,
)
from hand_mesh_core.hand.joints import JOINT_ORDERS, to_canonical
from shared_data import STB_LABELS


def from_canonical_order(stb_joints: np.ndarray) -> np.ndarray:
    """STB-order joints in canonical order, by the joint names (palm left in slot 0)."""
    return stb_joints[..., np.argsort(JOINT_ORDERS["stb"]), :]


def _hand(seed: int = 0, batch: int = 4) -> np.ndarray:
    """Random joints around 0.5 m in front of the camera, (B, 21, 3) metres."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.04, size=(batch, 21, 3)) + np.array([0.0, 0.0, 0.5])


# ----------------------------------------------------------------------------- joint errors
def test_345_offset_gives_5mm_absolute_and_zero_aligned():
    gt = torch.from_numpy(_hand())
    pred = gt + torch.tensor([0.003, 0.004, 0.0], dtype=gt.dtype)
    assert torch.allclose(joint_errors_mm(pred, gt), torch.full((4, 21), 5.0, dtype=gt.dtype))
    m = compute_joint_metrics(pred, gt)
    assert m.absolute.mean_mm == pytest.approx(5.0)
    assert m.absolute.median_mm == pytest.approx(5.0)
    assert m.root_relative.mean_mm == pytest.approx(0.0, abs=1e-9)
    assert m.procrustes.mean_mm == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(m.absolute.per_joint_mm, np.full(21, 5.0))


def test_root_offset_hand_computed():
    # Only the root (wrist) is off by a 3-4-5 (mm) vector: the absolute error is 5 mm on one of
    # 21 joints; root-relative, the root is exact and the 20 other joints are off by 5 mm.
    gt = torch.from_numpy(_hand(batch=1))
    pred = gt.clone()
    pred[0, 0] += torch.tensor([0.0, 0.003, 0.004], dtype=gt.dtype)
    m = compute_joint_metrics(pred, gt)
    assert m.absolute.mean_mm == pytest.approx(5.0 / 21)
    assert m.root_relative.mean_mm == pytest.approx(100.0 / 21)
    assert m.root_relative.per_joint_mm[0] == pytest.approx(0.0)
    # STB palm root (wrist + ring MCP) / 2: the root moves by half the offset (2.5 mm), so every
    # joint except the offset one is off by 2.5 mm, and that one by 2.5 mm too.
    m2 = compute_joint_metrics(pred, gt, config=MetricsConfig(root_joints=STB_PALM_ROOT))
    np.testing.assert_allclose(m2.root_relative.per_joint_mm, np.full(21, 2.5))


def test_root_relative_values_and_vs_loop():
    j = torch.arange(12, dtype=torch.float64).reshape(1, 4, 3)
    out = root_relative(j, (0,))
    assert torch.equal(out[0, 0], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(out[0, 3], torch.tensor([9.0, 9.0, 9.0], dtype=torch.float64))
    out2 = root_relative(j, (0, 2))  # root = mean of (0,1,2) and (6,7,8) = (3,4,5)
    assert torch.equal(out2[0, 1], torch.zeros(3, dtype=torch.float64))
    x = torch.from_numpy(_hand(3))
    ref = torch.stack([f - (f[1] + f[5] + f[9]) / 3 for f in x])
    assert torch.allclose(root_relative(x, (1, 5, 9)), ref)


def test_errors_vectorised_vs_naive_loop():
    gt = _hand(1, batch=5)
    pred = gt + np.random.default_rng(2).normal(scale=0.01, size=gt.shape)
    m = compute_joint_metrics(pred, gt)
    naive_abs = np.array([[math.dist(p, g) * 1000 for p, g in zip(fp, fg)]
                          for fp, fg in zip(pred, gt)])
    naive_rr = np.array([[math.dist(p - fp[0], g - fg[0]) * 1000 for p, g in zip(fp, fg)]
                         for fp, fg in zip(pred, gt)])
    assert m.absolute.mean_mm == pytest.approx(naive_abs.mean())
    assert m.absolute.median_mm == pytest.approx(np.median(naive_abs))
    np.testing.assert_allclose(m.absolute.per_joint_mm, naive_abs.mean(axis=0))
    assert m.root_relative.mean_mm == pytest.approx(naive_rr.mean())
    # numpy and torch inputs give the same result.
    m_t = compute_joint_metrics(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    assert m_t.absolute.mean_mm == pytest.approx(naive_abs.mean(), rel=1e-5)


# ----------------------------------------------------------------------------- Procrustes
def test_similarity_transform_is_undone():
    gt = torch.from_numpy(_hand(4))
    rot = torch.from_numpy(Rotation.from_rotvec([0.3, -1.2, 0.5]).as_matrix())
    pred = 1.7 * gt @ rot.T + torch.tensor([0.1, -0.2, 0.3], dtype=gt.dtype)
    aligned = procrustes_align(pred, gt)
    assert torch.allclose(aligned, gt, atol=1e-10)
    t = umeyama(gt, pred)
    assert torch.allclose(t.scale, torch.full((4,), 1.7, dtype=gt.dtype))
    assert torch.allclose(t.rotation, rot.expand(4, 3, 3), atol=1e-10)


def test_procrustes_matches_scipy():
    gt = _hand(5, batch=1)[0]
    pred = gt + np.random.default_rng(6).normal(scale=0.01, size=gt.shape)
    mtx1, mtx2, disparity = scipy_procrustes(gt, pred)  # no reflection in this case
    aligned = procrustes_align(torch.from_numpy(pred), torch.from_numpy(gt)).numpy()
    # scipy standardises: centre on gt's mean and divide by gt's Frobenius norm.
    gt_c = gt - gt.mean(axis=0)
    standardised = (aligned - gt.mean(axis=0)) / np.linalg.norm(gt_c)
    np.testing.assert_allclose(standardised, mtx2, atol=1e-10)
    np.testing.assert_allclose(mtx1, gt_c / np.linalg.norm(gt_c), atol=1e-12)
    assert np.sum((standardised - mtx1) ** 2) == pytest.approx(disparity)


def test_procrustes_vs_naive_kabsch_reference():
    gt = _hand(7, batch=3)
    pred = gt + np.random.default_rng(8).normal(scale=0.02, size=gt.shape)
    got = aligned_joint_errors_mm(torch.from_numpy(pred), torch.from_numpy(gt), "procrustes")
    for b in range(3):
        gc, pc = gt[b] - gt[b].mean(0), pred[b] - pred[b].mean(0)
        rot, _ = Rotation.align_vectors(gc, pc)  # proper rotation minimising ||gc - R pc||
        rp = rot.apply(pc)
        scale = np.sum(gc * rp) / np.sum(pc * pc)
        ref = np.linalg.norm(scale * rp - gc, axis=1) * 1000
        np.testing.assert_allclose(got[b].numpy(), ref, atol=1e-8)


def test_reflection_hand_computed():
    # gt: +-3, +-2, +-1 on the axes (centroid 0, diagonal covariance 18, 8, 2).
    # pred: gt mirrored in x. The best proper rotation flips the axis of least variance too:
    # R pred = (x, y, -z) of gt, scale = (18 + 8 - 2) / 28 = 6/7. Errors: x points |3 - 18/7| =
    # 3/7, y points 2/7, z points 1 + 6/7 = 13/7; mean (6 + 4 + 26) / 42 = 6/7 (units of gt).
    gt = np.array([[3, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]],
                  dtype=np.float64) / 1000  # mm -> m
    pred = gt * np.array([-1.0, 1.0, 1.0])
    err = aligned_joint_errors_mm(torch.from_numpy(pred), torch.from_numpy(gt), "procrustes")
    np.testing.assert_allclose(err.numpy(), [3 / 7, 3 / 7, 2 / 7, 2 / 7, 13 / 7, 13 / 7],
                               atol=1e-12)
    t = umeyama(torch.from_numpy(pred), torch.from_numpy(gt))
    assert torch.linalg.det(t.rotation).item() == pytest.approx(1.0)
    assert t.scale.item() == pytest.approx(6 / 7)
    # scipy (and allow_reflection=True) undo the mirror exactly.
    assert scipy_procrustes(gt, pred)[2] == pytest.approx(0.0, abs=1e-12)
    t_refl = umeyama(torch.from_numpy(pred), torch.from_numpy(gt), allow_reflection=True)
    assert torch.linalg.det(t_refl.rotation).item() == pytest.approx(-1.0)
    assert torch.allclose(t_refl.apply(torch.from_numpy(pred)), torch.from_numpy(gt))


def test_umeyama_degenerate_prediction_gets_zero_scale():
    gt = torch.from_numpy(_hand(9, batch=1))
    pred = torch.zeros_like(gt)  # collapsed to a point
    t = umeyama(pred, gt)
    assert torch.isfinite(t.scale).all() and t.scale.item() == 0.0
    aligned = t.apply(pred)
    assert torch.allclose(aligned, gt.mean(dim=1, keepdim=True).expand_as(gt))


# ----------------------------------------------------------------------------- PCK and AUC
def test_pck_and_auc_hand_computed():
    errors = torch.tensor([[10.0, 25.0, 40.0, 60.0]])
    thr = np.array([20.0, 30.0, 40.0, 50.0])
    pck = pck_curve(errors, thr)
    assert pck.tolist() == [0.25, 0.5, 0.75, 0.75]  # 40 <= 40 counts as a hit
    # trapezoid: (0.375 + 0.625 + 0.75) * 10 / 30
    assert pck_auc(thr, pck) == pytest.approx(17.5 / 30)
    # a failed frame doubles the denominator, and its joints are misses
    errors2 = torch.tensor([[10.0, 25.0, 40.0, 60.0], [0.0, 0.0, 0.0, 0.0]])
    pck2 = pck_curve(errors2, thr, valid=torch.tensor([True, False]))
    assert pck2.tolist() == [0.125, 0.25, 0.375, 0.375]
    # closed forms: all hits -> 1; PCK rising linearly 0 -> 1 -> 0.5
    assert pck_auc(thr, np.ones(4)) == pytest.approx(1.0)
    assert pck_auc(np.linspace(20, 50, 31), np.linspace(0, 1, 31)) == pytest.approx(0.5)


def test_pck_vs_naive_loop():
    rng = np.random.default_rng(10)
    errors = rng.uniform(0, 70, size=(6, 21))
    valid = np.array([True, True, False, True, True, False])
    thr = pck_thresholds_mm()
    assert thr[0] == 20.0 and thr[-1] == 50.0 and len(thr) == 31
    got = pck_curve(torch.from_numpy(errors), thr, torch.from_numpy(valid)).numpy()
    naive = []
    for t in thr:
        hits = sum(1 for b in range(6) for j in range(21) if valid[b] and errors[b, j] <= t)
        naive.append(hits / (6 * 21))
    np.testing.assert_allclose(got, naive)


def test_failed_frames_excluded_from_mean_and_missed_in_pck():
    gt = _hand(11, batch=3)
    pred = gt + np.array([0.003, 0.004, 0.0])  # 5 mm everywhere
    pred[1] = np.nan  # a failed frame may hold anything
    m = compute_joint_metrics(pred, gt, valid=np.array([True, False, True]))
    assert (m.n_frames, m.n_failed) == (3, 1)
    assert m.failure_rate == pytest.approx(1 / 3)
    assert m.absolute.mean_mm == pytest.approx(5.0)
    np.testing.assert_allclose(m.absolute.pck.pck, np.full(31, 2 / 3))
    assert m.absolute.pck.auc == pytest.approx(2 / 3)
    assert m.procrustes.pck.pck[0] == pytest.approx(2 / 3)


def test_all_failed_gives_nan_and_json_null():
    gt = _hand(12, batch=2)
    m = compute_joint_metrics(np.zeros_like(gt), gt, valid=np.array([False, False]))
    assert math.isnan(m.absolute.mean_mm) and m.absolute.pck.auc == 0.0
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert d["absolute"]["mean_mm"] is None and d["n_failed"] == 2
    assert d["procrustes"]["per_joint_mm"] == [None] * 21


def test_to_dict_round_trips_through_json():
    gt = _hand(13, batch=2)
    m = compute_joint_metrics(gt + 0.001, gt)
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert set(d) == {"n_frames", "n_failed", "failure_rate", "root_joints", "absolute",
                      "root_relative", "procrustes"}
    assert d["absolute"]["mean_mm"] == pytest.approx(math.sqrt(3))
    assert len(d["absolute"]["pck"]["pck"]) == 31
    assert m.summary("procrustes") is m.procrustes


# ----------------------------------------------------------------------------- real STB labels
@pytest.mark.skipif(not STB_LABELS.is_file(), reason="STB sample labels not available")
def test_stb_consecutive_frames_vs_numpy_reference():
    """STB labels (mm, palm-centre first): frame t+1 as a 'prediction' of frame t."""
    hand_m = loadmat(STB_LABELS)["handPara"][:, :, :40].transpose(2, 1, 0) / 1000.0
    gt, pred = hand_m[:-1], hand_m[1:]
    m = compute_joint_metrics(pred, gt)  # root (0,) = STB's palm centre in its own order
    naive = np.linalg.norm(pred - gt, axis=-1) * 1000
    assert m.absolute.mean_mm == pytest.approx(naive.mean())
    rr = np.linalg.norm((pred - pred[:, :1]) - (gt - gt[:, :1]), axis=-1) * 1000
    assert m.root_relative.mean_mm == pytest.approx(rr.mean())
    # The similarity alignment minimises the squared error over all translations, so per
    # frame its RMS is at most the root-relative RMS (a particular translation).
    pa = aligned_joint_errors_mm(torch.from_numpy(pred), torch.from_numpy(gt), "procrustes")
    assert torch.all(pa.pow(2).mean(-1).sqrt() <= torch.from_numpy(rr).pow(2).mean(-1).sqrt()
                     + 1e-9)
    # STB_PALM_ROOT on canonical joints (wrist estimated from the palm) is the labelled palm.
    canonical = to_canonical(hand_m, source="stb")
    rel = root_relative(torch.from_numpy(canonical), STB_PALM_ROOT).numpy()
    ref = from_canonical_order(hand_m - hand_m[:, :1])
    np.testing.assert_allclose(rel[:, 1:], ref[:, 1:], atol=1e-12)
    # A rigid move of a real hand is undone exactly.
    rot = Rotation.from_rotvec([0.1, 0.2, -0.3]).as_matrix()
    moved = torch.from_numpy(gt @ rot.T + 0.05)
    assert joint_error(moved, torch.from_numpy(gt), "procrustes").item() < 1e-8


# ----------------------------------------------------------------------------- autograd
@pytest.mark.parametrize("alignment", ["absolute", "root_relative", "procrustes"])
def test_gradcheck(alignment):
    gen = torch.Generator().manual_seed(14)
    gt = torch.randn(2, 5, 3, dtype=torch.float64, generator=gen)
    pred = (gt + 0.1 * torch.randn(2, 5, 3, dtype=torch.float64, generator=gen))
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: joint_error(p, gt, alignment), (pred,))


def test_module_matches_function_and_reductions():
    gt = torch.from_numpy(_hand(15))
    pred = gt + 0.002
    mod = JointError("root_relative", reduction="none", root_joints=(0, 9))
    assert torch.equal(mod(pred, gt), joint_error(pred, gt, "root_relative", "none", (0, 9)))
    none = joint_error(pred, gt, reduction="none")
    assert none.shape == (4, 21)
    assert joint_error(pred, gt, reduction="sum").item() == pytest.approx(none.sum().item())
    assert joint_error(pred, gt).item() == pytest.approx(none.mean().item())


# ----------------------------------------------------------------------------- validation
def test_validation_errors():
    x = torch.zeros(2, 21, 3)
    with pytest.raises(TypeError, match="torch.Tensor"):
        joint_errors_mm(np.zeros((2, 21, 3)), x)
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 3\)"):
        joint_errors_mm(torch.zeros(2, 21, 2), torch.zeros(2, 21, 2))
    with pytest.raises(ValueError, match="same shape"):
        joint_errors_mm(x, torch.zeros(1, 21, 3))
    with pytest.raises(ValueError, match="same shape"):
        umeyama(x, torch.zeros(1, 21, 3))
    with pytest.raises(ValueError, match="alignment must be one of"):
        aligned_joint_errors_mm(x, x, "mirror")
    with pytest.raises(ValueError, match="alignment must be one of"):
        JointError("mirror")
    with pytest.raises(ValueError, match="reduction must be one of"):
        joint_error(x, x, reduction="max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        JointError(reduction="max")
    with pytest.raises(ValueError, match=r"must be in \[0, 21\)"):
        root_relative(x, (21,))
    with pytest.raises(TypeError, match="non-empty sequence of ints"):
        root_relative(x, ())
    with pytest.raises(TypeError, match="non-empty sequence of ints"):
        root_relative(x, (0.5,))
    with pytest.raises(TypeError, match="torch.Tensor"):
        pck_curve(np.zeros((2, 21)), [20.0])
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        pck_curve(torch.zeros(21), [20.0])
    with pytest.raises(ValueError, match=r"\(T,\)"):
        pck_curve(torch.zeros(2, 21), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="bool mask"):
        pck_curve(torch.zeros(2, 21), [20.0], valid=torch.ones(2))
    with pytest.raises(ValueError, match=r"valid must have shape \(2,\)"):
        pck_curve(torch.zeros(2, 21), [20.0], valid=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="T >= 2"):
        pck_auc([20.0], [1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        pck_auc([30.0, 20.0], [1.0, 1.0])
    with pytest.raises(TypeError, match="numpy array or torch.Tensor"):
        compute_joint_metrics([[0.0, 0.0, 0.0]], np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match=r"\(B, N, 3\) with B >= 1"):
        compute_joint_metrics(np.zeros((21, 3)), np.zeros((21, 3)))
    with pytest.raises(ValueError, match=r"root_joints \(30,\) must be in \[0, 21\)"):
        compute_joint_metrics(np.zeros((1, 21, 3)), np.zeros((1, 21, 3)),
                              config=MetricsConfig(root_joints=(30,)))
    with pytest.raises(ValueError, match="gt_m contains NaN"):
        compute_joint_metrics(np.zeros((1, 21, 3)), np.full((1, 21, 3), np.nan))
    with pytest.raises(ValueError, match="marked valid"):
        compute_joint_metrics(np.full((1, 21, 3), np.nan), np.zeros((1, 21, 3)))


def test_metrics_config_validation():
    assert MetricsConfig().root_joints == (0,)
    with pytest.raises(ConfigError, match="at least one joint"):
        MetricsConfig(root_joints=())
    with pytest.raises(ConfigError, match="distinct"):
        MetricsConfig(root_joints=(0, 0))
    with pytest.raises(ConfigError, match="must be >= 0"):
        MetricsConfig(root_joints=(-1,))
    with pytest.raises(ConfigError, match="must be > pck_min_mm"):
        MetricsConfig(pck_min_mm=50.0, pck_max_mm=20.0)
    with pytest.raises(ConfigError, match="must be >= 2"):
        MetricsConfig(pck_steps=1)
    cfg = MetricsConfig(pck_min_mm=0.0, pck_max_mm=10.0, pck_steps=11)
    np.testing.assert_allclose(pck_thresholds_mm(cfg), np.arange(11.0))
