"""Pretraining options: photometric augmentation per pair, initial weights, CLI cache path."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.data.augment import augment_stereo_photometric, sample_photometric_params
from hand_mesh_core.model.checkpoint import CheckpointError, save_checkpoint
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.train.config import PretrainConfig
from hand_mesh_core.train.pretrain import photometric_batch, pretrain


def test_photometric_batch_same_params_both_views():
    g = torch.Generator().manual_seed(0)
    left = torch.randint(0, 256, (3, 3, 16, 16), generator=g, dtype=torch.uint8)
    cfg = PretrainConfig(photometric=True)
    a_l, a_r = photometric_batch(left, left.clone(), cfg, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a_l, a_r)  # same pair parameters on both views
    assert not torch.allclose(a_l, left.float() / 255.0, atol=1e-3)
    # Naive reference: draw the same parameters and call the augmentation directly.
    params = sample_photometric_params(3, cfg.augment, generator=torch.Generator().manual_seed(5))
    ref_l, _ = augment_stereo_photometric(left.float() / 255.0, left.float() / 255.0, params)
    torch.testing.assert_close(a_l, ref_l)
    b_l, _ = photometric_batch(left, left, cfg, torch.Generator().manual_seed(6))
    assert not torch.allclose(a_l, b_l)


def test_pretrain_with_photometric_runs(tmp_path, topology, samples_factory, tiny_network):
    samples = samples_factory(4, topology)
    cfg = PretrainConfig(network=tiny_network, steps=3, batch_size=4, device="cpu",
                         photometric=True, checkpoint_every=100)
    res = pretrain(cfg, samples, tmp_path, topology, progress=False)
    assert res.steps == 3 and res.final_loss == res.final_loss  # finite, not NaN


def test_init_weights(tmp_path, topology, samples_factory, tiny_network):
    torch.manual_seed(3)
    init = HandMeshNet(tiny_network, topology)
    with torch.no_grad():
        init.uv_head.weight.normal_(0.0, 0.1)
    path = save_checkpoint(tmp_path / "init.safetensors", init)
    samples = samples_factory(4, topology)
    # lr ~ 0: AdamW moves each weight by about lr per step, so the weights stay the init's.
    cfg = PretrainConfig(network=tiny_network, steps=1, batch_size=4, lr=1e-9, warmup_steps=0,
                         weight_decay=0.0, device="cpu", checkpoint_every=100)
    res = pretrain(cfg, samples, tmp_path / "run", topology, progress=False, init_weights=path)
    for (name, p), q in zip(res.model.named_parameters(), init.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)
    fresh = pretrain(cfg, samples, tmp_path / "fresh", topology, progress=False)
    assert not torch.allclose(fresh.model.uv_head.weight, init.uv_head.weight)
    other = cfg.replace(network=tiny_network.replace(feature_dim=32))
    with pytest.raises(CheckpointError, match="network config differs"):
        pretrain(other, samples, tmp_path / "bad", topology, progress=False, init_weights=path)


def test_freeze_bn_keeps_running_statistics(tmp_path, topology, samples_factory, tiny_network):
    samples = samples_factory(4, topology)
    init = HandMeshNet(tiny_network, topology)
    path = save_checkpoint(tmp_path / "init.safetensors", init)
    cfg = PretrainConfig(network=tiny_network, steps=2, batch_size=4, device="cpu",
                         checkpoint_every=100)

    def stats(model: torch.nn.Module) -> list[torch.Tensor]:
        return [b.clone() for n, b in model.named_buffers() if "running_" in n]

    frozen = pretrain(cfg.replace(freeze_bn=True), samples, tmp_path / "frozen", topology,
                      progress=False, init_weights=path)
    for a, b in zip(stats(frozen.model), stats(init)):
        torch.testing.assert_close(a, b)
    moving = pretrain(cfg, samples, tmp_path / "moving", topology, progress=False,
                      init_weights=path)
    assert any(not torch.allclose(a, b) for a, b in zip(stats(moving.model), stats(init)))
    # The weights still train with frozen statistics.
    assert not torch.allclose(frozen.model.uv_head.weight, init.uv_head.weight)
