"""Pose families of the synthetic generator: grasps, pre-grasps, open hands, random, named.

Poses follow the hand model's convention (``hand/anatomy.py``): ``pose`` is (15, 3) axis-angle,
radians, one row per articulated joint (thumb CMC/MCP/IP, index MCP/PIP/DIP, ... little), in the
joint's anatomical frame: x = flexion (positive curls towards the palm), y = twist, z =
abduction. Every family pose gets Gaussian jitter and is then clamped to the hand model's joint
limits (``hand_mesh_core.hand.limits.clamp_pose``), so all samples are anatomically plausible.

Family flexion ranges (radians; MCP, PIP, DIP for fingers; CMC, MCP, IP for the thumb) are
rounded from typical functional ranges of motion during grasping: Hume et al., "Functional
range of motion of the joints of the hand", J. Hand Surg. 15A(2):240-243, 1990 (functional
flexion MCP 61 deg, PIP 60 deg, DIP 39 deg; thumb MCP 21 deg, IP 18 deg), and Bain et al.,
"The functional range of motion of the finger joints", J. Hand Surg. Eur. 40(4):406-411, 2015.
"""
from __future__ import annotations

import numpy as np
import torch

from hand_mesh_core.data.synth.config import PoseConfig
from hand_mesh_core.hand import poses as hand_poses
from hand_mesh_core.hand.limits import clamp_pose

__all__ = ["FAMILY_FLEXION_RAD", "sample_family_pose", "sample_pose"]

#: Number of articulated joints and pose components.
NUM_ARTICULATED = 15
#: (low, high) flexion per family for (finger MCP, PIP, DIP) and (thumb CMC, MCP, IP).
FAMILY_FLEXION_RAD = {
    "open": {"finger": ((-0.15, 0.25), (0.0, 0.25), (0.0, 0.2)),
             "thumb": ((-0.1, 0.2), (0.0, 0.2), (0.0, 0.2))},
    "pregrasp": {"finger": ((0.2, 0.8), (0.3, 0.9), (0.1, 0.5)),
                 "thumb": ((0.1, 0.5), (0.0, 0.4), (0.0, 0.4))},
    "grasp": {"finger": ((0.7, 1.4), (0.8, 1.6), (0.3, 1.0)),
              "thumb": ((0.3, 0.8), (0.2, 0.7), (0.2, 0.8))},
}
#: Abduction spread (rad) of the fingers in a family pose: open hands spread, grasps close up.
FAMILY_SPREAD_RAD = {"open": (-0.05, 0.3), "pregrasp": (-0.05, 0.15), "grasp": (-0.1, 0.05)}
#: Per-finger abduction direction (index spreads radially, little ulnarly; z > 0 is towards the
#: little finger in a right hand).
SPREAD_SIGN = (0.0, -1.0, 0.0, 1.0, 1.5)
#: Finger-to-finger correlation of a family pose: each finger's flexion is this mix of one
#: shared draw and its own draw (real grasps flex neighbouring fingers together).
SHARED_FLEXION = 0.6


def sample_family_pose(rng: np.random.Generator, family: str) -> np.ndarray:
    """A (15, 3) float32 pose of ``family`` in {"open", "pregrasp", "grasp"}, before limits."""
    if family not in FAMILY_FLEXION_RAD:
        raise ValueError(f"family must be one of {list(FAMILY_FLEXION_RAD)}, got {family!r}")
    ranges = FAMILY_FLEXION_RAD[family]
    pose = np.zeros((NUM_ARTICULATED, 3), np.float32)
    shared = rng.uniform(size=3)
    spread = rng.uniform(*FAMILY_SPREAD_RAD[family])
    for finger in range(5):
        kind = "thumb" if finger == 0 else "finger"
        mix = SHARED_FLEXION * shared + (1.0 - SHARED_FLEXION) * rng.uniform(size=3)
        for seg in range(3):
            lo, hi = ranges[kind][seg]
            pose[3 * finger + seg, 0] = lo + (hi - lo) * mix[seg]
        pose[3 * finger, 2] = SPREAD_SIGN[finger] * spread
    return pose


def _clamp(pose: np.ndarray) -> np.ndarray:
    return clamp_pose(torch.from_numpy(np.asarray(pose, np.float32))).numpy()


def sample_pose(rng: np.random.Generator, cfg: PoseConfig) -> tuple[np.ndarray, str]:
    """Draw one pose from the mixture of ``cfg``.

    Returns:
        ``(pose (15, 3) float32 radians within the joint limits, family name)``.
    """
    weights = np.asarray(cfg.weights, np.float64)
    family = cfg.kinds[int(rng.choice(len(cfg.kinds), p=weights / weights.sum()))]
    if family == "random":
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 62)))
        pose = hand_poses.sample_pose(gen, 1, noise_std_rad=cfg.jitter_rad)[0]
        return pose.numpy().astype(np.float32), family
    if family == "named":
        name = cfg.named[int(rng.integers(len(cfg.named)))]
        base = hand_poses.named_pose(name).numpy().astype(np.float32)
    else:
        base = sample_family_pose(rng, family)
    pose = base + cfg.jitter_rad * rng.normal(size=base.shape).astype(np.float32)
    return _clamp(pose), family
