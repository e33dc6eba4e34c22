"""Symmetric squared Chamfer distance between the stereo branches."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.losses.chamfer import ChamferLoss, chamfer_distance, stereo_chamfer_loss

F64 = torch.float64


def _naive(a, b):
    out = []
    for i in range(a.shape[0]):
        d = [[float(((p - q) ** 2).sum()) for q in b[i]] for p in a[i]]
        ab = sum(min(r) for r in d) / len(d)
        ba = sum(min(d[k][j] for k in range(len(d))) for j in range(len(d[0]))) / len(d[0])
        out.append(ab + ba)
    return torch.tensor(out, dtype=F64)


def test_matches_naive_and_zero_for_identical():
    a = torch.rand(2, 7, 3, dtype=F64)
    b = torch.rand(2, 5, 3, dtype=F64)
    torch.testing.assert_close(chamfer_distance(a, b, "none"), _naive(a, b))
    torch.testing.assert_close(chamfer_distance(a, b, "sum"), _naive(a, b).sum())
    assert chamfer_distance(a, a.flip(1)) == 0


def test_baseline_brings_right_frame_to_left_and_grows():
    left = torch.rand(2, 6, 3, dtype=F64)
    base = 0.12
    right = left - torch.tensor([base, 0, 0], dtype=F64)  # the same mesh seen from the right
    assert stereo_chamfer_loss(left, right, base) < 1e-30
    assert chamfer_distance(left, right) > 1e-3
    per_item = torch.tensor([0.12, 0.1], dtype=F64)
    right2 = left - per_item.reshape(2, 1, 1) * torch.tensor([1.0, 0, 0], dtype=F64)
    assert stereo_chamfer_loss(left, right2, per_item) < 1e-30
    vals = [stereo_chamfer_loss(left, right + torch.tensor([0, 0, s], dtype=F64), base)
            for s in (0.001, 0.002, 0.004)]
    assert vals[0] < vals[1] < vals[2]
    assert ChamferLoss()(left, right, base) < 1e-30


def test_gradcheck_and_errors():
    a = torch.rand(1, 5, 3, dtype=F64, requires_grad=True)
    b = torch.rand(1, 4, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: stereo_chamfer_loss(x, y, 0.1, "none"), (a, b))
    with pytest.raises(ValueError, match="reduction must be one of"):
        chamfer_distance(a, b, "max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        ChamferLoss("max")
    with pytest.raises(ValueError, match="batch sizes"):
        chamfer_distance(a, torch.rand(2, 4, 3, dtype=F64))
    with pytest.raises(ValueError, match="empty"):
        chamfer_distance(a, torch.rand(1, 0, 3, dtype=F64))
    with pytest.raises(ValueError, match="last dimension 3"):
        chamfer_distance(a[..., :2], b)
    with pytest.raises(ValueError, match="baseline_m"):
        stereo_chamfer_loss(a, b, torch.ones(3))
