"""Silhouette loss."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.losses.mask import MaskLoss, mask_loss

F64 = torch.float64


def test_zero_identical_grows_and_matches_naive():
    target = torch.rand(2, 5, 6, dtype=F64) > 0.5
    soft = target.to(F64)
    assert mask_loss(soft, target) == 0
    noise = torch.rand(2, 5, 6, dtype=F64)
    vals = [mask_loss((soft + s * (noise - soft)), target) for s in (0.1, 0.2, 0.4)]
    assert vals[0] < vals[1] < vals[2]
    x = soft + 0.3 * (noise - soft)
    naive = sum(float((x[b, i, j] - float(target[b, i, j])) ** 2)
                for b in range(2) for i in range(5) for j in range(6))
    assert abs(mask_loss(x, target, "sum").item() - naive) < 1e-12
    assert abs(MaskLoss()(x, target).item() - naive / 60) < 1e-12
    assert mask_loss(x, target, "none").shape == (2, 5, 6)


def test_gradcheck_and_errors():
    x = torch.rand(1, 4, 4, dtype=F64, requires_grad=True)
    t = torch.rand(1, 4, 4, dtype=F64)
    assert torch.autograd.gradcheck(lambda y: mask_loss(y, t, "none"), (x,))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mask_loss(x, t, "max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        MaskLoss("max")
    with pytest.raises(ValueError, match="shape"):
        mask_loss(x, t[:, :2])
    with pytest.raises(ValueError, match="3-D"):
        mask_loss(x[0], t[0])
    with pytest.raises(TypeError, match="target_mask"):
        mask_loss(x, t.numpy())
    with pytest.raises(TypeError, match="floating"):
        mask_loss(x > 0.5, t)
