"""Left-right consistency features and the logistic calibration."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.model.confidence import (confidence_from_features, consistency_features,
                                             fit_confidence)


def test_features_zero_when_consistent_and_grow():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 16, 16, generator=g)
    uv = torch.rand(1, 10, 2, generator=g) * 15
    f0 = consistency_features(img, img, uv, uv, uv, uv)
    assert float(f0.photo) == 0 and float(f0.disparity_px) == 0
    shifted = uv + torch.tensor([0.0, 2.0])
    f1 = consistency_features(img, img, uv, uv, uv, shifted)
    assert float(f1.disparity_px) == pytest.approx(2.0)
    f2 = consistency_features(img, 1 - img, uv, uv, uv, uv)
    assert float(f2.photo) > 0.1  # exact value: test_photo_matches_naive_at_integer_pixels
    # Disparity agreement of a z-head: u-disparity vs fx*B/z.
    d = torch.full((1, 10), 3.0)
    f3 = consistency_features(img, img, uv, uv, uv, uv, disparity_from_depth_px=d)
    assert float(f3.disparity_px) == pytest.approx(3.0)


def test_photo_matches_naive_at_integer_pixels():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 8, 8, generator=g), torch.rand(1, 3, 8, 8, generator=g)
    uv = torch.randint(0, 8, (1, 6, 2), generator=g).float()
    f = consistency_features(a, b, uv, uv, uv, uv)
    naive = 0.0
    for i in range(6):
        u, v = int(uv[0, i, 0]), int(uv[0, i, 1])
        naive += float((a[0, :, v, u] - b[0, :, v, u]).abs().mean())
    assert float(f.photo) == pytest.approx(naive / 6, rel=1e-5)


def test_fit_recovers_threshold():
    g = torch.Generator().manual_seed(2)
    photo = torch.rand(200, generator=g)
    disp = torch.rand(200, generator=g) * 4
    err = 10 + 30 * photo + 5 * disp + torch.randn(200, generator=g)
    fit = fit_confidence(torch.stack([photo, disp], 1), err, threshold_mm=30.0)
    assert fit.accuracy > 0.9 and fit.num_samples == 200
    assert fit.coef[1] < 0 and fit.coef[2] < 0
    conf = confidence_from_features(torch.tensor([[0.0, 0.0], [1.0, 4.0]]), fit.coef)
    assert conf[0] > 0.9 and conf[1] < 0.1


def test_validation():
    with pytest.raises(ValueError, match=r"features must be \(B, 2\)"):
        confidence_from_features(torch.zeros(3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"coef must be \(3,\)"):
        confidence_from_features(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"features must be \(N, 2\)"):
        fit_confidence(torch.zeros(3), torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="errors_mm must be"):
        fit_confidence(torch.zeros(3, 2), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        fit_confidence(torch.zeros(1, 2), torch.zeros(1), 1.0)
    with pytest.raises(ValueError, match="threshold_mm must be > 0"):
        fit_confidence(torch.zeros(3, 2), torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="equal"):
        consistency_features(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 5, 4),
                             *(torch.zeros(1, 2, 2),) * 4)
