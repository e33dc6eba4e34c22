"""Rest skeleton, segment radii and joint frames of the procedural right hand.

Canonical hand frame (the frame of every template/rest quantity and of the model's output
before ``global_orient``/``transl``), for a RIGHT hand:

* origin at the wrist joint (centre of the radiocarpal joint),
* +y from the wrist towards the middle-finger MCP (fingers point along +y in the flat pose),
* +z along the palm normal, out of the palm (volar side),
* +x = y x z, towards the thumb (radial side). Units: metres.

A left hand is the mirror image x -> -x of this frame (see ``HandModel.forward``).

Joint frames: each articulated joint k has a rest rotation ``JOINT_FRAMES[k]`` whose columns are
its anatomical axes in the hand frame: x = flexion axis, y = bone direction (towards the
child), z = volar normal of the segment. A pose vector (axis-angle, radians) is expressed in this
frame: its x component flexes (positive curls the finger towards the palm), its y component
twists the segment about its own axis, its z component abducts (positive moves the finger towards
the little finger in a right hand).

Proportions. Segment lengths are joint-centre distances chosen to follow the adult proportions
of Buryanov & Kotiuk, "Proportions of hand segments", Int. J. Morphol. 28(3):755-758, 2010
(doi:10.4067/S0717-95022010000300015): proximal > middle > distal phalanx, middle finger longest,
then ring, index, little; the finger lengths (MCP to tip) match the young-adult means of
Chatzioglou, Pinar & Govsa, "Biometric analysis hand parameters in young adults", Anat. Cell
Biol. 57(2):172-182, 2024 (thumb 49.5, index 63.9, middle 70.7, ring 65.5, little 53.3 mm, skin
crease to tip) once the MCP-to-crease offset (~20-25 mm) is added, and the hand length (wrist to
middle fingertip) is 184 mm, between the female and male adult means of Greiner, "Hand
anthropometry of U.S. Army personnel", Tech. Rep. NATICK/TR-92/011, 1991 (about 175-194 mm).
Values are rounded to the millimetre; they are a plausible average hand, not one subject.
"""
from __future__ import annotations

import numpy as np

from hand_mesh_core.hand.joints import ARTICULATED_JOINTS, FINGER_JOINTS, NUM_JOINTS, PARENTS

__all__ = ["MM", "rest_joints", "JOINT_RADII_M", "PALM", "joint_frames"]

#: Metres per millimetre (the tables below are in mm).
MM = 1e-3

#: Base joint (MCP; thumb CMC) positions in the hand frame, mm.
_BASE_MM = {
    "thumb": (20.0, 22.0, 9.0),
    "index": (24.0, 84.0, 0.0),
    "middle": (0.0, 88.0, 0.0),
    "ring": (-20.0, 84.0, 0.0),
    "little": (-39.0, 74.0, 0.0),
}
#: Segment lengths base->2nd, 2nd->3rd, 3rd->tip joint, mm (thumb: metacarpal, proximal,
#: distal phalanx; fingers: proximal, middle, distal phalanx).
_LENGTHS_MM = {
    "thumb": (46.0, 32.0, 27.0),
    "index": (40.0, 23.0, 22.0),
    "middle": (45.0, 27.0, 24.0),
    "ring": (42.0, 27.0, 23.0),
    "little": (33.0, 20.0, 20.0),
}
#: Rest direction of each segment in the flat pose: (angle from +y towards +x in the palm
#: plane, deg; volar elevation towards +z, deg). Fingers fan out slightly; the thumb points
#: radially and lies volar of the palm plane.
_DIRECTIONS_DEG = {
    "thumb": ((40.0, 14.0), (30.0, 8.0), (26.0, 4.0)),
    "index": ((7.0, 0.0),) * 3,
    "middle": ((0.0, 0.0),) * 3,
    "ring": ((-7.0, 0.0),) * 3,
    "little": ((-16.0, 0.0),) * 3,
}
#: Surface radius at the base, 2nd and 3rd joint and at the rounded tip, mm (half of the
#: finger breadth; the thumb base value shapes the thenar eminence).
_RADII_MM = {
    "thumb": (14.0, 10.5, 9.5, 8.5),
    "index": (9.5, 8.5, 7.5, 6.8),
    "middle": (10.0, 9.0, 7.8, 7.0),
    "ring": (9.3, 8.3, 7.4, 6.7),
    "little": (8.2, 7.2, 6.6, 6.0),
}
#: Volar direction (hand frame, before orthogonalisation) of the thumb's segments: the thumb
#: is pronated so its pulp faces the index finger and the palm.
_THUMB_VOLAR = (-0.7, 0.0, 0.7)

#: Palm as a superellipsoid (mm): centre, semi-axes, exponents ((|x|/a)^n + (|y|/b)^n)^(m/n)
#: + (|z|/c)^m = 1 with n = ``exponent_xy``, m = ``exponent_z``, and the width taper towards
#: the wrist (x semi-axis times ``taper`` at y = ``taper_y0_mm``, 1 above ``taper_y1_mm``).
PALM = {
    "centre_mm": (-6.0, 37.0, 1.0),
    "half_mm": (39.0, 54.0, 14.0),
    "exponent_xy": 5.0,
    "exponent_z": 2.5,
    "taper": 0.72,
    "taper_y0_mm": -14.0,
    "taper_y1_mm": 50.0,
}


def _direction(angle_deg: float, elev_deg: float) -> np.ndarray:
    a, e = np.deg2rad(angle_deg), np.deg2rad(elev_deg)
    return np.array([np.sin(a) * np.cos(e), np.cos(a) * np.cos(e), np.sin(e)])


def rest_joints() -> np.ndarray:
    """The 21 rest joints of the default (shape zero) right hand.

    Returns:
        (21, 3) float64 joints in metres, canonical order, canonical hand frame.
    """
    joints = np.zeros((NUM_JOINTS, 3))
    for f, (name, idx) in enumerate(zip(_BASE_MM, FINGER_JOINTS)):
        joints[idx[0]] = np.asarray(_BASE_MM[name]) * MM
        for s in range(3):
            d = _direction(*_DIRECTIONS_DEG[name][s])
            joints[idx[s + 1]] = joints[idx[s]] + _LENGTHS_MM[name][s] * MM * d
    return joints


#: JOINT_RADII_M[j] = surface radius around joint j, metres (wrist: 0, it is inside the palm).
JOINT_RADII_M = np.zeros(NUM_JOINTS)
for _name, _idx in zip(_BASE_MM, FINGER_JOINTS):
    JOINT_RADII_M[list(_idx)] = np.asarray(_RADII_MM[_name]) * MM


def joint_frames(joints: np.ndarray) -> np.ndarray:
    """Anatomical rest frames of the 15 articulated joints.

    Args:
        joints: (21, 3) rest joints, canonical hand frame.

    Returns:
        (15, 3, 3) rotations; columns = (flexion axis, bone direction, volar normal) in the hand
        frame, in pose order (``ARTICULATED_JOINTS``).
    """
    frames = np.zeros((len(ARTICULATED_JOINTS), 3, 3))
    child = {PARENTS[j]: j for j in range(1, NUM_JOINTS) if PARENTS[j] > 0}
    for k, j in enumerate(ARTICULATED_JOINTS):
        y = joints[child[j]] - joints[j]
        y /= np.linalg.norm(y)
        volar = np.asarray(_THUMB_VOLAR if j in FINGER_JOINTS[0] else (0.0, 0.0, 1.0))
        z = volar - y * (volar @ y)
        z /= np.linalg.norm(z)
        x = np.cross(y, z)
        frames[k] = np.stack([x, y, z], axis=1)
    return frames
