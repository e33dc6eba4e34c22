"""Skinning weights, shape blend shapes and the joint regressor of the procedural hand."""
from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from hand_mesh_core.hand.joints import (ARTICULATED_JOINTS, FINGER_JOINTS, NUM_JOINTS, PARENTS,
                                        WRIST)

__all__ = ["skinning_weights", "shape_directions", "fit_joint_regressor", "SHAPE_STEP"]

#: Relative change per unit of a procedural shape coefficient (0.1 = 10 %).
SHAPE_STEP = 0.1
#: Regulariser of the regressor fit towards uniform weights (relative to the data term).
_REGRESSOR_RIDGE = 1e-4
#: Weight of the sum-to-one row in the regressor's non-negative least squares.
_SUM_TO_ONE_WEIGHT = 10.0


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _child(j: int) -> int:
    return next(c for c in range(1, NUM_JOINTS) if PARENTS[c] == j)


def skinning_weights(vertices: np.ndarray, joints: np.ndarray, blend_m: float) -> np.ndarray:
    """Smooth linear-blend-skinning weights from distances to the bones.

    Each joint drives the bone segment(s) it rotates: the wrist the five palm segments
    wrist->finger base, an articulated joint the segment to its child; tip joints drive nothing
    (their column is zero). A vertex belongs to the finger of its nearest segment and is
    weighted over that finger's chain (wrist, base, middle, distal joint) with
    ``w_j ~ exp(-(d_j^2 - d_min^2) / (2 blend^2))`` (``d_j`` distance to joint j's segment; the
    wrist uses its nearest palm segment), so weights blend smoothly across each joint over a
    width of about ``blend_m`` and never leak between neighbouring fingers.

    Args:
        vertices: (V, 3) rest vertices, metres. joints: (21, 3) rest joints, metres.
        blend_m: blend width, metres (> 0).

    Returns:
        (V, 21) float64 weights, non-negative, rows summing to 1.
    """
    palm = np.stack([_segment_distance(vertices, joints[WRIST], joints[fj[0]])
                     for fj in FINGER_JOINTS], axis=1)  # (V, 5)
    bones = np.stack([_segment_distance(vertices, joints[j], joints[_child(j)])
                      for j in ARTICULATED_JOINTS], axis=1).reshape(len(vertices), 5, 3)
    chain = np.concatenate([palm.min(axis=1, keepdims=True)[:, None].repeat(5, 1), bones],
                           axis=2)  # (V, 5 fingers, 4): wrist, base, middle, distal
    nearest = np.concatenate([palm[..., None], bones], axis=2).min(axis=2)  # (V, 5)
    finger = nearest.argmin(axis=1)
    d = chain[np.arange(len(vertices)), finger]  # (V, 4)
    d2 = d * d
    w = np.exp(-(d2 - d2.min(axis=1, keepdims=True)) / (2.0 * blend_m ** 2))
    w /= w.sum(axis=1, keepdims=True)
    out = np.zeros((len(vertices), NUM_JOINTS))
    cols = np.array([[WRIST, *fj[:3]] for fj in FINGER_JOINTS])[finger]  # (V, 4)
    np.put_along_axis(out, cols, w, axis=1)
    return out


def shape_directions(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Linear shape directions for finger length and finger width (one SHAPE_STEP each).

    * finger length: the 15 bones distal of the articulated joints (thumb metacarpal
      included) get ``1 + SHAPE_STEP`` times longer; each vertex follows the joints of its
      weights and stretches along their bones.
    * finger width: each vertex moves away from the axis of the bones of its weights by
      ``SHAPE_STEP`` times its distance (palm weights do not widen).

    Args:
        vertices: (V, 3), joints: (21, 3) rest, metres. weights: (V, 21) skinning weights.

    Returns:
        vertex_dirs (V, 3, 2) and joint_dirs (21, 3, 2): displacement per unit coefficient,
        metres (columns: length, width; joints do not move with width).
    """
    new = joints.copy()
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        scale = 1.0 if p == WRIST else 1.0 + SHAPE_STEP
        new[j] = new[p] + scale * (joints[j] - joints[p])
    d_joints = new - joints
    length = np.zeros_like(vertices)
    width = np.zeros_like(vertices)
    for j in ARTICULATED_JOINTS:
        axis = joints[_child(j)] - joints[j]
        axis /= np.linalg.norm(axis)
        rel = vertices - joints[j]
        along = (rel @ axis)[:, None] * axis
        w = weights[:, j:j + 1]
        length += w * (d_joints[j] + SHAPE_STEP * along)
        width += w * SHAPE_STEP * (rel - along)
    length += weights[:, WRIST:WRIST + 1] * d_joints[WRIST]
    vdirs = np.stack([length, width], axis=2)
    jdirs = np.stack([d_joints, np.zeros_like(d_joints)], axis=2)
    return vdirs, jdirs


def fit_joint_regressor(rest_vertices: np.ndarray, rest_joints: np.ndarray,
                        posed_vertices: np.ndarray, posed_joints: np.ndarray,
                        num_neighbours: int) -> np.ndarray:
    """Fit a sparse, convex joint regressor on posed examples.

    Row j is supported on the ``num_neighbours`` vertices nearest to joint j at rest and
    minimises ``sum_p |J_j(p) - sum_i r_ji v_i(p)|^2`` (plus a small ridge towards uniform)
    subject to ``r_ji >= 0`` (non-negative least squares) and ``sum_i r_ji = 1``.

    Args:
        rest_vertices: (V, 3), rest_joints: (21, 3), metres.
        posed_vertices: (P, V, 3), posed_joints: (P, 21, 3): examples, metres.
        num_neighbours: support size per joint.

    Returns:
        (21, V) float64 regressor, rows non-negative summing to 1.
    """
    num_vertices = len(rest_vertices)
    k = min(num_neighbours, num_vertices)
    out = np.zeros((NUM_JOINTS, num_vertices))
    for j in range(NUM_JOINTS):
        idx = np.argsort(np.linalg.norm(rest_vertices - rest_joints[j], axis=1),
                         kind="stable")[:k]
        a = posed_vertices[:, idx].transpose(0, 2, 1).reshape(-1, k)  # (P*3, k)
        b = posed_joints[:, j].reshape(-1)
        scale = np.sqrt(_REGRESSOR_RIDGE * len(b)) * np.abs(a).mean()
        a_full = np.vstack([a, scale * np.eye(k), _SUM_TO_ONE_WEIGHT * np.ones((1, k))])
        b_full = np.concatenate([b, scale * np.full(k, 1.0 / k), [_SUM_TO_ONE_WEIGHT]])
        r, _ = nnls(a_full, b_full, maxiter=50 * k)
        out[j, idx] = r / r.sum()
    return out
