"""Batch-norm helpers of hand_mesh_core.train.common: AdaBN re-estimation, freezing, eval_mode."""
from __future__ import annotations

import torch
from torch import nn

from hand_mesh_core.train.common import eval_mode, freeze_batchnorm, reestimate_batchnorm


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_reestimate_equals_naive_average_and_keeps_weights():
    net = _net()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 3, generator=g) * 2 + 5 for _ in range(4)]
    weights = {k: v.clone() for k, v in net.named_parameters()}
    net.train()
    freeze_batchnorm(net)
    assert reestimate_batchnorm(net, batches, lambda m, x: m(x)) == 1
    # Naive reference: the statistics of each batch's features, averaged over the batches
    # (momentum=None is a cumulative average; var is the unbiased batch variance).
    with torch.no_grad():
        feats = [net[0](x) for x in batches]
    mean = torch.stack([f.mean(0) for f in feats]).mean(0)
    var = torch.stack([f.var(0, unbiased=True) for f in feats]).mean(0)
    bn = net[1]
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    assert int(bn.num_batches_tracked) == 4
    for k, v in net.named_parameters():
        torch.testing.assert_close(v, weights[k])
    # Modes and momentum are restored (the frozen BN stays frozen inside a training net).
    assert net.training and not bn.training and bn.momentum == 0.1


def test_reestimate_without_batchnorm_is_a_no_op():
    net = nn.Linear(3, 2)
    assert reestimate_batchnorm(net, [torch.zeros(2, 3)], lambda m, x: m(x)) == 0


def test_eval_mode_restores_each_module():
    net = _net()
    net.train()
    freeze_batchnorm(net)
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert net.training and net[0].training and not net[1].training
    # A plain model.train(True) would have switched the frozen layer back on.
    net.train(True)
    assert net[1].training
