"""Held-out evaluation against a per-pair naive reference; shipping a checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hand_mesh_core.model.checkpoint import load_checkpoint, save_checkpoint
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.train.batch import CroppedDataset, collate_cropped
from hand_mesh_core.train.crop_cache import CropCache, CropCacheSpec, write_crop_cache
from hand_mesh_core.train.heldout import evaluate_heldout
from hand_mesh_core.train.ship import ShipSets, ship_checkpoint


@pytest.fixture
def net(topology, tiny_network):
    torch.manual_seed(0)
    model = HandMeshNet(tiny_network, topology)
    with torch.no_grad():  # a non-trivial (untrained but not template) prediction
        model.uv_head.weight.normal_(0.0, 0.05)
    return model.eval()


def _naive(net, samples):
    ds = CroppedDataset(samples, net.config.input_size)
    joint, rel = [], []
    for i in range(len(samples)):
        b = collate_cropped([ds[i]])
        with torch.no_grad():
            out = net(b.left, b.right, b.crops, b.K, b.baseline_m)
        p, g = out.joints[0].numpy().astype(np.float64), b.joints_m[0].numpy()
        joint.append(np.mean([np.linalg.norm(p[j] - g[j]) for j in range(21)]) * 1000)
        rel.append(np.mean([np.linalg.norm((p[j] - p[0]) - (g[j] - g[0]))
                            for j in range(21)]) * 1000)
    return np.array(joint), np.array(rel)


def test_matches_naive_per_pair_loop(net, topology, samples_factory):
    samples = samples_factory(5, topology, seed=2)
    m = evaluate_heldout(net, samples, batch_size=2)
    joint, rel = _naive(net, samples)
    np.testing.assert_allclose(m.per_sample_joint_err_mm.numpy(), joint, rtol=1e-4)
    assert m.mean_joint_err_mm == pytest.approx(joint.mean(), rel=1e-4)
    assert m.median_joint_err_mm == pytest.approx(np.median(joint), rel=1e-4)
    assert m.root_rel_joint_err_mm == pytest.approx(rel.mean(), rel=1e-4)
    assert m.num_samples == 5 and m.mean_vertex_err_mm > 0 and m.uv_err_px > 0
    d = m.to_dict("x_")
    assert d["x_mean_joint_err_mm"] == m.mean_joint_err_mm and d["x_num_samples"] == 5.0
    assert not net.training


def test_cache_input_close_to_direct(net, topology, samples_factory, tmp_path):
    samples = samples_factory(4, topology, seed=5)
    cache = CropCache(write_crop_cache(samples, tmp_path / "c", CropCacheSpec(
        context_size=96, jpeg_quality=100)))
    a = evaluate_heldout(net, samples)
    b = evaluate_heldout(net, cache)
    assert b.num_samples == 4
    assert b.mean_joint_err_mm == pytest.approx(a.mean_joint_err_mm, rel=0.1)


def test_validation(net, topology, samples_factory):
    samples = samples_factory(2, topology)
    with pytest.raises(TypeError, match="HandMeshNet"):
        evaluate_heldout("net", samples)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_heldout(net, samples, batch_size=0)
    with pytest.raises(ValueError, match="at least one"):
        evaluate_heldout(net, [])
    nolabel = [s.__class__(**{**s.__dict__, "joints_m": None}) for s in samples]
    with pytest.raises(ValueError, match="vertices_m and joints_m"):
        evaluate_heldout(net, nolabel)


def test_ship_writes_metrics_and_confidence(net, topology, samples_factory, tmp_path):
    src = save_checkpoint(tmp_path / "p.safetensors", net, training_data="toy run",
                          metrics={"train_loss": 1.5}, extra={"stage": "pretrain"})
    sets = ShipSets(samples_factory(6, topology, seed=1), samples_factory(3, topology, seed=2),
                    samples_factory(3, topology, seed=3, depth_range_m=(0.8, 0.9)), "toy sets")
    metrics = ship_checkpoint(src, tmp_path / "s.safetensors", sets, threshold_mm=1e4,
                              topology=topology)
    shipped, info = load_checkpoint(tmp_path / "s.safetensors", topology)
    assert info.training_data == "toy run" and info.extra["heldout"] == "toy sets"
    assert info.extra["stage"] == "pretrain" and info.extra["confidence_threshold_mm"] == 1e4
    assert info.metrics == pytest.approx(metrics)
    assert metrics["train_loss"] == 1.5 and metrics["confidence_positive_rate"] == 1.0
    ref_s = evaluate_heldout(net, sets.source)
    ref_t = evaluate_heldout(net, sets.target)
    assert metrics["heldout_source_mean_joint_err_mm"] == pytest.approx(ref_s.mean_joint_err_mm)
    assert metrics["heldout_target_mean_joint_err_mm"] == pytest.approx(ref_t.mean_joint_err_mm)
    assert metrics["heldout_source_mean_joint_err_mm"] != \
        metrics["heldout_target_mean_joint_err_mm"]
    assert not torch.equal(shipped.confidence_coef, net.confidence_coef)
    assert json.loads((tmp_path / "s.json").read_text())["metrics"] == info.metrics
