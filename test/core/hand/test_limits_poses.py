"""Pose limits, named poses and the pose sampler."""
import math

import pytest
import torch

from hand_mesh_core.hand.limits import (JOINT_LIMITS_DEG, clamp_pose, joint_limits,
                                        pose_within_limits)
from hand_mesh_core.hand.poses import POSE_NAMES, SAMPLE_WEIGHTS, named_pose, sample_pose


def test_limits_table():
    low, high = joint_limits(torch.float64)
    assert low.shape == (15, 3) and (low < high).all()
    assert high[3, 0].item() == pytest.approx(math.radians(90.0))  # index MCP flexion (AAOS)
    assert high[4, 0].item() == pytest.approx(math.radians(110.0))  # index PIP (Hume 1990)
    assert len(JOINT_LIMITS_DEG) == 15


def test_clamp_pose_against_naive_reference():
    gen = torch.Generator().manual_seed(0)
    pose = 3.0 * torch.randn(7, 15, 3, generator=gen, dtype=torch.float64)
    out = clamp_pose(pose)
    for b in range(7):
        for k in range(15):
            for c in range(3):
                lo, hi = (math.radians(x) for x in JOINT_LIMITS_DEG[k][c])
                assert out[b, k, c].item() == pytest.approx(min(max(pose[b, k, c].item(), lo), hi))
    assert pose_within_limits(out).all()
    assert not pose_within_limits(pose).any()
    inside = 0.5 * (joint_limits(torch.float64)[0] + joint_limits(torch.float64)[1])
    assert torch.equal(clamp_pose(inside), inside)


def test_pose_within_limits_tolerance_and_batch_shape():
    _, high = joint_limits(torch.float64)
    p = high.clone()
    p[0, 0] += 1e-3
    assert not pose_within_limits(p).item()
    assert pose_within_limits(p, tol_rad=2e-3).item()
    assert pose_within_limits(torch.zeros(2, 4, 15, 3)).shape == (2, 4)


def test_named_poses_distinct_and_within_limits():
    poses = {n: named_pose(n) for n in POSE_NAMES}
    assert set(POSE_NAMES) == {"flat", "fist", "pinch", "point", "grasp"}
    for name, p in poses.items():
        assert p.shape == (15, 3) and pose_within_limits(p).item(), name
    names = list(poses)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert (poses[names[i]] - poses[names[j]]).abs().max() > 0.1
    assert poses["flat"].abs().max() == 0
    assert named_pose("fist", torch.float64).dtype == torch.float64


def test_sample_pose_deterministic_within_limits_grasp_heavy():
    a = sample_pose(torch.Generator().manual_seed(5), 200)
    b = sample_pose(torch.Generator().manual_seed(5), 200)
    assert torch.equal(a, b) and a.shape == (200, 15, 3)
    assert pose_within_limits(a).all()
    # mostly closing hands: mean index MCP flexion well above zero
    assert a[:, 3, 0].mean() > math.radians(15)
    only_flat = sample_pose(torch.Generator().manual_seed(1), 10, noise_std_rad=0.0,
                            weights={"flat": 1.0})
    assert only_flat.abs().max() == 0
    full = sample_pose(torch.Generator().manual_seed(1), 5, noise_std_rad=0.0,
                       closure=(1.0, 1.0), weights={"fist": 1.0})
    torch.testing.assert_close(full, named_pose("fist").expand(5, 15, 3))
    assert abs(sum(SAMPLE_WEIGHTS.values()) - 1.0) < 1e-9


def test_errors():
    with pytest.raises(ValueError, match="valid"):
        named_pose("wave")
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(TypeError, match="Generator"):
        sample_pose(0, 1)
    with pytest.raises(ValueError, match="num"):
        sample_pose(gen, 0)
    with pytest.raises(ValueError, match="noise_std_rad"):
        sample_pose(gen, 1, noise_std_rad=-1.0)
    with pytest.raises(ValueError, match="closure"):
        sample_pose(gen, 1, closure=(0.8, 0.2))
    with pytest.raises(ValueError, match="valid"):
        sample_pose(gen, 1, weights={"wave": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        sample_pose(gen, 1, weights={"fist": 0.0})
    with pytest.raises(ValueError, match=r"\(\.\.\., 15, 3\)"):
        clamp_pose(torch.zeros(15, 2))
    with pytest.raises(TypeError, match="torch.Tensor"):
        clamp_pose([0.0])
    with pytest.raises(TypeError, match="floating"):
        pose_within_limits(torch.zeros(15, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="tol_rad"):
        pose_within_limits(torch.zeros(15, 3), tol_rad=-1.0)
