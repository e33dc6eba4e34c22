"""Confidence calibration on labelled pairs."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.model.confidence import confidence_from_features
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.train.batch import CroppedDataset, collate_cropped
from hand_mesh_core.train.calibrate import calibrate_confidence


def test_calibration_sets_coefficients(topology, samples_factory, tiny_network):
    samples = samples_factory(6, topology)
    # With a threshold above every error all hands are "good": the fitted map must say so.
    net = HandMeshNet(tiny_network, topology).eval()
    fit = calibrate_confidence(net, samples, threshold_mm=1e4)  # every hand counts as good
    assert fit.positive_rate == 1.0 and fit.num_samples == 6
    torch.testing.assert_close(net.confidence_coef, fit.coef)
    ds = CroppedDataset(samples, 32)
    b = collate_cropped([ds[i] for i in range(6)])
    with torch.no_grad():
        out = net(b.left, b.right, b.crops, b.K, b.baseline_m)
    torch.testing.assert_close(out.confidence,
                               confidence_from_features(out.consistency, fit.coef))
    assert torch.all(out.confidence > 0.5)
    with pytest.raises(ValueError, match="at least 2"):
        calibrate_confidence(net, samples[:1])
