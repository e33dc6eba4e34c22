"""Self-supervised adaptation of the z-head (monocular) variant with the six stereo losses."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.model.checkpoint import load_checkpoint
from hand_mesh_core.model.network import HandMeshNet, with_z_head
from hand_mesh_core.train.adapt import adapt, adaptation_loss, label_crop_fn, photometric_residual
from hand_mesh_core.train.batch import CroppedDataset, collate_cropped
from hand_mesh_core.train.config import AdaptConfig

CROP_MARGIN = 0.15


def _cfg(**kw) -> AdaptConfig:
    base = dict(steps=6, batch_size=4, lr=1e-3, eval_every=2, patience=3, mask_source="labels",
                device="cpu", holdout_frac=0.25)
    return AdaptConfig(**{**base, **kw})


def _batch(samples, size):
    ds = CroppedDataset(samples, size, crop_fn=label_crop_fn(size, CROP_MARGIN))
    return collate_cropped([ds[i] for i in range(len(samples))])


@pytest.fixture
def mono(tiny_network, topology) -> HandMeshNet:
    torch.manual_seed(0)
    return with_z_head(HandMeshNet(tiny_network, topology)).eval()


def test_the_stereo_losses_reach_the_z_head(mono, topology, samples_factory):
    batch = _batch(samples_factory(4, topology), mono.config.input_size)
    cfg = _cfg()
    with torch.no_grad():
        pseudo = mono(batch.left, batch.right, batch.crops, batch.K, batch.baseline_m)
    terms = adaptation_loss(mono.train(), batch, cfg, pseudo)
    assert torch.isfinite(terms.total)
    terms.total.backward()
    assert mono.z_head.weight.grad.abs().sum() > 0 and mono.z_head.bias.grad.abs().sum() > 0
    # the guard's metric is computable from both branches of the binocular forward
    res = photometric_residual(mono, [batch], cfg)
    assert res > 0 and res == res


def test_adapt_trains_a_mono_network_and_writes_a_mono_checkpoint(mono, topology,
                                                                  samples_factory, tmp_path):
    target = samples_factory(4, topology, seed=7, depth_range_m=(0.5, 0.65))
    start = {k: v.clone() for k, v in mono.state_dict().items()}
    # test-time mode (guard on the adapted pairs): seeded and deterministic, this short run
    # lowers the photometric residual of the untrained network, so a checkpoint is written
    res = adapt(_cfg(lr=1e-4, steps=8), mono, target, tmp_path, frames=4,
                crop_fn=label_crop_fn(32, CROP_MARGIN), progress=False)
    for k, v in mono.state_dict().items():  # the network passed in is not modified
        torch.testing.assert_close(v, start[k], rtol=0, atol=0)
    assert res.improved and res.checkpoint is not None and res.best_step > 0
    assert res.best_residual < res.start_residual
    assert res.model.z_head is not None and res.model.config.depth_mode == "mono"
    loaded, info = load_checkpoint(res.checkpoint, topology)
    assert info.network.depth_mode == "mono"
    assert loaded.z_head.weight.abs().max() > 0  # the z-head was trained (it started at zero)
    b = _batch(target[:2], 32)
    with torch.no_grad():
        one = loaded.forward_mono(b.left, b.crops, b.K)
    assert torch.isfinite(one.vertices).all()


def test_guard_refusal_keeps_the_mono_start(mono, topology, samples_factory, tmp_path):
    target = samples_factory(4, topology, seed=7, depth_range_m=(0.5, 0.65))
    res = adapt(_cfg(lr=1e-4, steps=4, min_improvement=0.5), mono, target, tmp_path, frames=4,
                crop_fn=label_crop_fn(32, CROP_MARGIN), progress=False)
    assert not res.improved and res.checkpoint is None
    assert res.model.z_head is not None
    for k, v in res.model.state_dict().items():
        torch.testing.assert_close(v, mono.state_dict()[k], rtol=0, atol=0)
