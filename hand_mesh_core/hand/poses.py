"""Named hand poses and a sampler of plausible poses.

Poses are (15, 3) tensors in the convention of :mod:`hand_mesh_core.hand.limits`: per
articulated joint (thumb CMC, MCP, IP; index MCP, PIP, DIP; middle; ring; little) the
(flexion, twist, abduction) components of an axis-angle vector in radians.
"""
from __future__ import annotations

import math

import torch

from hand_mesh_core.hand.limits import clamp_pose

__all__ = ["POSE_NAMES", "named_pose", "sample_pose", "SAMPLE_WEIGHTS"]

# (flexion, twist, abduction) in degrees per joint: thumb CMC, MCP, IP, then for index,
# middle, ring, little: MCP, PIP, DIP.
_CURLED = ((85.0, 0.0, 0.0), (100.0, 0.0, 0.0), (65.0, 0.0, 0.0))
_POSES_DEG: dict[str, tuple[tuple[float, float, float], ...]] = {
    "flat": ((0.0, 0.0, 0.0),) * 15,
    "fist": ((40.0, 20.0, 0.0), (45.0, 0.0, 0.0), (40.0, 0.0, 0.0)) + _CURLED * 4,
    "pinch": ((40.0, 25.0, -10.0), (20.0, 0.0, 0.0), (20.0, 0.0, 0.0),
              (45.0, 0.0, 0.0), (45.0, 0.0, 0.0), (25.0, 0.0, 0.0),
              (30.0, 0.0, 0.0), (40.0, 0.0, 0.0), (20.0, 0.0, 0.0),
              (35.0, 0.0, 5.0), (45.0, 0.0, 0.0), (25.0, 0.0, 0.0),
              (40.0, 0.0, 10.0), (50.0, 0.0, 0.0), (30.0, 0.0, 0.0)),
    "point": ((45.0, 20.0, 0.0), (40.0, 0.0, 0.0), (30.0, 0.0, 0.0),
              (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)) + _CURLED * 3,
    "grasp": ((35.0, 25.0, 0.0), (25.0, 0.0, 0.0), (25.0, 0.0, 0.0))
    + ((50.0, 0.0, 0.0), (65.0, 0.0, 0.0), (35.0, 0.0, 0.0)) * 4,
}
#: Valid names of :func:`named_pose`.
POSE_NAMES: tuple[str, ...] = tuple(_POSES_DEG)
#: Mixture weights of :func:`sample_pose` (grasps and pinches dominate: the target use is
#: manipulation).
SAMPLE_WEIGHTS: dict[str, float] = {"flat": 0.1, "fist": 0.1, "pinch": 0.3, "point": 0.1,
                                    "grasp": 0.4}
#: Default per-component Gaussian noise of :func:`sample_pose`, radians (~8.6 deg).
DEFAULT_NOISE_STD_RAD = 0.15
#: Default range of the closure factor (0 = flat, 1 = the full named pose): values below 1 give
#: pre-grasp (partly open) hands.
DEFAULT_CLOSURE = (0.3, 1.0)


def named_pose(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A named pose.

    Args:
        name: one of :data:`POSE_NAMES` ("flat", "fist", "pinch", "point", "grasp").
        dtype: floating dtype of the result.

    Returns:
        (15, 3) pose, radians, within the anatomical limits.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if name not in _POSES_DEG:
        raise ValueError(f"unknown pose {name!r}; valid: {list(POSE_NAMES)}")
    return torch.tensor(_POSES_DEG[name], dtype=torch.float64).mul(math.pi / 180.0).to(dtype)


def sample_pose(generator: torch.Generator, num: int = 1, *,
                noise_std_rad: float = DEFAULT_NOISE_STD_RAD,
                closure: tuple[float, float] = DEFAULT_CLOSURE,
                weights: dict[str, float] | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sample plausible poses: a named pose scaled by a closure factor, plus noise, clamped.

    Args:
        generator: torch random generator (CPU), the only source of randomness.
        num: number of poses (>= 1).
        noise_std_rad: per-component Gaussian noise, radians (>= 0).
        closure: (low, high) of the uniform closure factor, 0 <= low <= high <= 1.
        weights: mixture weight per pose name (default :data:`SAMPLE_WEIGHTS`); keys must be
            pose names, values >= 0 with a positive sum.
        dtype: floating dtype of the result.

    Returns:
        (num, 15, 3) poses within the limits, radians.

    Raises:
        TypeError: generator is not a torch.Generator. ValueError: bad num, noise, closure or
            weights.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be an int >= 1, got {num!r}")
    if not noise_std_rad >= 0.0:
        raise ValueError(f"noise_std_rad must be >= 0, got {noise_std_rad}")
    low, high = closure
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"closure must satisfy 0 <= low <= high <= 1, got {closure}")
    weights = SAMPLE_WEIGHTS if weights is None else weights
    unknown = sorted(set(weights) - set(POSE_NAMES))
    if unknown:
        raise ValueError(f"unknown pose name(s) {unknown} in weights; valid: {list(POSE_NAMES)}")
    names = list(weights)
    probs = torch.tensor([float(weights[n]) for n in names], dtype=torch.float64)
    if (probs < 0).any() or not probs.sum() > 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    bank = torch.stack([named_pose(n, torch.float64) for n in names])
    choice = torch.multinomial(probs, num, replacement=True, generator=generator)
    alpha = low + (high - low) * torch.rand(num, 1, 1, generator=generator, dtype=torch.float64)
    noise = noise_std_rad * torch.randn(num, 15, 3, generator=generator, dtype=torch.float64)
    return clamp_pose(alpha * bank[choice] + noise).to(dtype)
