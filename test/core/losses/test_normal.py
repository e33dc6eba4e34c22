"""Normal-consistency loss vs a naive loop."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.losses.normal import NormalConsistencyLoss, normal_consistency_loss

F64 = torch.float64


def test_minimal_for_same_mesh_translated_and_matches_naive():
    v, f = uv_sphere(0.05, 4, 6, center_m=(0.0, 0.0, 0.5), dtype=F64)
    left = v.unsqueeze(0)
    right = left - torch.tensor([0.12, 0, 0], dtype=F64)  # right camera frame
    assert normal_consistency_loss(left, right, f, "sum") < 1e-12
    noise = torch.randn_like(left)
    vals = [normal_consistency_loss(left + s * noise, right, f, "sum") for s in (1e-3, 3e-3)]
    assert 1e-6 < vals[0] < vals[1]
    p = left + 2e-3 * noise
    naive = []
    for face in f.tolist():
        a, b, c = (right[0, i] for i in face)
        n = torch.linalg.cross(b - a, c - a)
        n = n / n.norm()
        for i, j in ((0, 1), (1, 2), (2, 0)):
            e = p[0, face[i]] - p[0, face[j]]
            naive.append((e / e.norm() @ n).abs())
    naive = torch.stack(naive)
    torch.testing.assert_close(normal_consistency_loss(p, right, f, "none").reshape(-1), naive)
    torch.testing.assert_close(NormalConsistencyLoss(f)(p, right), naive.mean())


def test_gradcheck_and_errors():
    v, f = uv_sphere(1.0, 3, 4, dtype=F64)
    left = (v + 0.05 * torch.randn_like(v)).unsqueeze(0).requires_grad_(True)
    right = (v + 0.05 * torch.randn_like(v)).unsqueeze(0).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: normal_consistency_loss(a, b, f, "none"), (left, right))
    with pytest.raises(ValueError, match="reduction must be one of"):
        normal_consistency_loss(left, right, f, "max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        NormalConsistencyLoss(f, "max")
    with pytest.raises(ValueError, match="same shape"):
        normal_consistency_loss(left, right[:, :3], f)
    with pytest.raises(ValueError, match="3-D"):
        normal_consistency_loss(left[0], right[0], f)
