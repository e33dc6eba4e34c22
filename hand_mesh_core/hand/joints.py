"""The canonical 21-joint hand skeleton and maps to the joint orders of public datasets.

Canonical order (FreiHAND / MANO-21; every joint array in hand_mesh uses it)::

    0 wrist
    1 thumb_cmc   2 thumb_mcp   3 thumb_ip    4 thumb_tip
    5 index_mcp   6 index_pip   7 index_dip   8 index_tip
    9 middle_mcp 10 middle_pip 11 middle_dip 12 middle_tip
   13 ring_mcp   14 ring_pip   15 ring_dip   16 ring_tip
   17 little_mcp 18 little_pip 19 little_dip 20 little_tip

Each finger runs from its base joint (MCP; thumb: CMC) to its tip; the parent of a finger's base
joint is the wrist. The 15 *articulated* joints (the ones the pose rotates) are the first three
joints of each finger, in the order thumb, index, middle, ring, little; ``pose[:, k]`` belongs to
joint ``ARTICULATED_JOINTS[k]``.

Dataset orders (never map by index without these tables):

* ``"canonical"``, ``"freihand"``, ``"mano21"``: the order above.
* ``"interhand"``: InterHand2.6M, one hand's 21 joints (Moon et al., ECCV 2020, ``joint_name``
  of the annotation files): thumb tip .. thumb base, index tip .. base, middle, ring, pinky
  (little), then the wrist last.
* ``"stb"``: STB (Zhang et al., ICIP 2017): palm centre, then little, ring, middle, index,
  thumb, each MCP, PIP, DIP, tip (checked on the real labels, see the tests). STB has **no wrist
  label**: it has a palm centre. :func:`to_canonical` estimates the wrist with the convention of
  Ge et al., "3D Hand Shape and Pose Estimation from a Single RGB Image", CVPR 2019 (their
  public STB loader, ``palm2wrist``): the palm centre is taken as the midpoint of the wrist and
  the ring MCP, i.e. ``wrist = ring_mcp + 2 * (palm - ring_mcp)``. :func:`from_canonical` with
  target ``"stb"`` inverts it exactly (``palm = (wrist + ring_mcp) / 2``). The estimated wrist
  is an approximation: bones from it are not anatomical measurements. STB's four thumb labels
  are mapped to thumb_cmc, thumb_mcp, thumb_ip, thumb_tip in that order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = [
    "JOINT_NAMES", "NUM_JOINTS", "FINGER_NAMES", "PARENTS", "BONES", "ARTICULATED_JOINTS",
    "TIP_JOINTS", "FINGER_JOINTS", "WRIST", "JOINT_SOURCES", "JOINT_ORDERS",
    "STB_PALM_TO_WRIST_FACTOR", "to_canonical", "from_canonical", "children",
]

#: The five fingers, in canonical order.
FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
_SEGMENTS = {"thumb": ("cmc", "mcp", "ip", "tip")}
_FINGER_SEGMENTS = ("mcp", "pip", "dip", "tip")

#: Canonical joint names (FreiHAND / MANO-21 order).
JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{f}_{s}" for f in FINGER_NAMES for s in _SEGMENTS.get(f, _FINGER_SEGMENTS))
#: Number of joints of the canonical skeleton.
NUM_JOINTS = len(JOINT_NAMES)
#: Index of the root joint.
WRIST = 0
#: FINGER_JOINTS[f] = the four joint indices of finger f, base to tip.
FINGER_JOINTS: tuple[tuple[int, int, int, int], ...] = tuple(
    tuple(1 + 4 * f + s for s in range(4)) for f in range(len(FINGER_NAMES)))
#: PARENTS[j] = parent joint of j (-1 for the wrist).
PARENTS: tuple[int, ...] = (-1,) + tuple(
    WRIST if s == 0 else 1 + 4 * f + s - 1 for f in range(5) for s in range(4))
#: The 20 bones as (parent, child) pairs, in child order.
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS))
#: The 15 joints rotated by the pose, in pose order (thumb CMC/MCP/IP, index MCP/PIP/DIP, ...).
ARTICULATED_JOINTS: tuple[int, ...] = tuple(j for fj in FINGER_JOINTS for j in fj[:3])
#: The five fingertips (thumb .. little).
TIP_JOINTS: tuple[int, ...] = tuple(fj[3] for fj in FINGER_JOINTS)


def children(joint: int) -> tuple[int, ...]:
    """Indices of the joints whose parent is ``joint`` (canonical order)."""
    return tuple(j for j, p in enumerate(PARENTS) if p == joint)


def _interhand_order() -> tuple[int, ...]:
    # InterHand position i holds canonical joint order[i]: per finger tip..base, wrist last.
    return tuple(j for fj in FINGER_JOINTS for j in reversed(fj)) + (WRIST,)


def _stb_order() -> tuple[int, ...]:
    # STB position i holds canonical joint order[i]; position 0 (palm centre) -> wrist slot.
    return (WRIST,) + tuple(j for f in (4, 3, 2, 1, 0) for j in FINGER_JOINTS[f])


#: JOINT_ORDERS[source][i] = canonical index of the joint stored at position i of ``source``.
JOINT_ORDERS: dict[str, tuple[int, ...]] = {
    "canonical": tuple(range(NUM_JOINTS)),
    "freihand": tuple(range(NUM_JOINTS)),
    "mano21": tuple(range(NUM_JOINTS)),
    "interhand": _interhand_order(),
    "stb": _stb_order(),
}
#: Valid ``source``/``target`` names of :func:`to_canonical` / :func:`from_canonical`.
JOINT_SOURCES: tuple[str, ...] = tuple(JOINT_ORDERS)

#: wrist = ring_mcp + STB_PALM_TO_WRIST_FACTOR * (palm - ring_mcp); Ge et al. CVPR 2019, STB
#: loader (palm centre = midpoint of wrist and ring MCP).
STB_PALM_TO_WRIST_FACTOR = 2.0
_RING_MCP = FINGER_JOINTS[3][0]


def _check(joints: np.ndarray | torch.Tensor, name: str, sources: Sequence[str]) -> None:
    if name not in JOINT_ORDERS:
        raise ValueError(f"unknown joint order {name!r}; valid: {list(sources)}")
    if not isinstance(joints, (np.ndarray, torch.Tensor)):
        raise TypeError(f"joints must be a numpy array or torch tensor, got {type(joints)}")
    if joints.ndim < 2 or tuple(joints.shape[-2:]) != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be (..., {NUM_JOINTS}, 3), got {tuple(joints.shape)}")


def _index(joints, order):
    if isinstance(joints, torch.Tensor):
        return joints[..., torch.as_tensor(order, device=joints.device), :]
    return joints[..., np.asarray(order), :]


def to_canonical(joints: np.ndarray | torch.Tensor, source: str
                 ) -> np.ndarray | torch.Tensor:
    """Reorder dataset joints into the canonical order.

    Args:
        joints: (..., 21, 3) joints in ``source`` order; any unit and frame (kept).
        source: one of :data:`JOINT_SOURCES`. For ``"stb"`` the palm centre (position 0) is
            replaced by the estimated wrist (see the module docstring).

    Returns:
        (..., 21, 3) joints in canonical order, same type, dtype and unit as the input.

    Raises:
        ValueError: unknown source or wrong shape. TypeError: not an array/tensor.
    """
    _check(joints, source, JOINT_SOURCES)
    order = JOINT_ORDERS[source]
    inverse = [0] * NUM_JOINTS
    for i, j in enumerate(order):
        inverse[j] = i
    out = _index(joints, inverse)
    if source == "stb":
        palm = joints[..., 0, :]
        ring = out[..., _RING_MCP, :]
        wrist = ring + STB_PALM_TO_WRIST_FACTOR * (palm - ring)
        out = out.clone() if isinstance(out, torch.Tensor) else out.copy()
        out[..., WRIST, :] = wrist
    return out


def from_canonical(joints: np.ndarray | torch.Tensor, target: str
                   ) -> np.ndarray | torch.Tensor:
    """Reorder canonical joints into a dataset's order (inverse of :func:`to_canonical`).

    Args:
        joints: (..., 21, 3) canonical joints; any unit and frame (kept).
        target: one of :data:`JOINT_SOURCES`. For ``"stb"`` position 0 becomes the palm centre
            ``wrist + (ring_mcp - wrist) / STB_PALM_TO_WRIST_FACTOR``.

    Returns:
        (..., 21, 3) joints in ``target`` order.

    Raises:
        ValueError: unknown target or wrong shape. TypeError: not an array/tensor.
    """
    _check(joints, target, JOINT_SOURCES)
    out = _index(joints, JOINT_ORDERS[target])
    if target == "stb":
        wrist = joints[..., WRIST, :]
        ring = joints[..., _RING_MCP, :]
        out = out.clone() if isinstance(out, torch.Tensor) else out.copy()
        out[..., 0, :] = ring + (wrist - ring) / STB_PALM_TO_WRIST_FACTOR
    return out
